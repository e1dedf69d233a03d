// Package secrets finds secrets in strings and under secret-looking keys: a
// catalogue of named rules, each gated by cheap keywords so that its regular
// expression runs only on strings that contain one.
package secrets

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/bits"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/secrets/keywords"
)

// KeyRuleName names redactions of whole values under secret-looking keys.
const KeyRuleName = "secret_key"

// KeyRule is the rule id of KeyRuleName; catalogue and user rules follow.
const KeyRule = 0

// MaxRules bounds catalogue plus user rules (rule ids index fixed arrays).
const MaxRules = keywords.MaxGroups

// Rule is a named secret format.
type Rule struct {
	Name string
	// Keywords: at least one must occur (ASCII case-insensitive) in a string
	// before Pattern runs on it. None means Pattern runs on every string.
	Keywords []string
	// Literal, when set, must occur case-sensitively too: a second cheap gate
	// for rules whose keyword is short and common (Twilio's "SK").
	Literal string
	// Pattern finds the secret: the last capture group that took part in the
	// match, or the whole match when the pattern has no groups.
	Pattern string
	// Verify, when set, vets a match and picks the secret's byte range.
	Verify func(text string, m []int, kc *keyClassifier) (start, end int, ok bool)
	// Multiline rules see the whole string; the others one line at a time.
	Multiline bool
	// AnchorAtKeyword: Pattern is tried only where a keyword occurs, from
	// the start of the key-like word around it (key=value rules).
	AnchorAtKeyword bool
	// AnchorAtKeywordStart: Pattern is tried only where a keyword occurs,
	// from the keyword's first byte (patterns that begin with their keyword).
	// The keywords must all have the same length.
	AnchorAtKeywordStart bool
	// Plausible, for anchored rules, rejects a keyword occurrence before the
	// pattern runs (the pattern must fail wherever it returns false); the
	// key-like word around the keyword is text[keyStart:runEnd].
	Plausible func(text string, keyStart, runEnd int) bool
	// Find, when set, replaces Pattern: it returns the first secret at or
	// after from, as a byte range, and where to look for the next one
	// (start < 0: none). It must run in time linear in what it skips. The
	// engine gives its key vocabulary and nested scans (decoded text).
	Find func(text string, from int, sc Scanner) (start, end, next int)
	// Overflow, for anchored rules, handles a key whose pattern failed
	// because its value runs past the bounded window (a quoted value longer
	// than maxAnchoredMatch): it returns the value's range, found in linear
	// time, or ok=false.
	Overflow func(text string, keyStart, runEnd int, kc *keyClassifier) (start, end int, ok bool)
}

type compiledRule struct {
	Rule
	re       *regexp.Regexp
	boundary bool              // a leading \b was moved out of the pattern
	anchors  *keywords.Matcher // AnchorAtKeyword(Start) only
	kwLen    int               // AnchorAtKeywordStart only
}

// maxAnchoredMatch bounds the text an anchored pattern sees from each
// keyword, so that a line full of keywords (or of unclosed quotes) costs
// time linear in its length; a bare value running past the bound is masked
// to its end anyway.
const maxAnchoredMatch = 2048

// Options adjust the catalogue.
type Options struct {
	// Disabled names catalogue rules to switch off.
	Disabled []string
	// Extra rules, after the catalogue.
	Extra []Rule
	// ExtraSecretKeys are more key names (or words of keys) whose values are
	// secrets.
	ExtraSecretKeys []string
	// AllowedValues: a found secret matching one of these is left alone.
	AllowedValues []*regexp.Regexp
	// HashKey, when set, adds a keyed hash of each secret to its placeholder.
	HashKey []byte
	// Placeholder, when set, replaces every secret instead of
	// "[REDACTED:<rule>]" (the deployer's console convention, "***").
	Placeholder string
}

// Engine is immutable after New and safe for concurrent use.
type Engine struct {
	rules    []compiledRule // index = rule id; rules[KeyRule] has no pattern
	matcher  *keywords.Matcher
	always   keywords.Set // rules without keywords
	keys     *keyClassifier
	allowed  []*regexp.Regexp
	hashKey  []byte
	masks    []string // "[REDACTED:<rule>]" by rule id
	minBytes int
}

// New compiles the catalogue (minus disabled rules) and the extra rules.
func New(opts Options) (*Engine, error) {
	disabled := map[string]bool{}
	for _, d := range opts.Disabled {
		disabled[d] = true
	}
	e := &Engine{allowed: opts.AllowedValues, hashKey: opts.HashKey, minBytes: 1 << 30}
	e.rules = append(e.rules, compiledRule{Rule: Rule{Name: KeyRuleName}})
	all := append(append([]Rule{}, Catalogue()...), opts.Extra...)
	for _, r := range all {
		if disabled[r.Name] {
			continue
		}
		cr, err := compile(r)
		if err != nil {
			return nil, err
		}
		e.rules = append(e.rules, cr)
	}
	if len(e.rules) > MaxRules {
		return nil, fmt.Errorf("%d rules, at most %d are supported", len(e.rules)-1, MaxRules-1)
	}
	groups := make([][]string, len(e.rules))
	for id, r := range e.rules {
		if id == KeyRule {
			continue
		}
		if len(r.Keywords) == 0 {
			e.always.Add(id)
			e.minBytes = 1
		}
		for _, kw := range r.Keywords {
			groups[id] = append(groups[id], keywords.Normalize(kw))
			e.minBytes = min(e.minBytes, len(kw))
		}
	}
	m, err := keywords.New(groups)
	if err != nil {
		return nil, fmt.Errorf("keyword matcher: %w", err)
	}
	e.matcher = m
	kc, err := newKeyClassifier(opts.ExtraSecretKeys)
	if err != nil {
		return nil, fmt.Errorf("key classifier: %w", err)
	}
	e.keys = kc
	for _, r := range e.rules {
		mask := "[REDACTED:" + r.Name + "]"
		if opts.Placeholder != "" {
			mask = opts.Placeholder
		}
		e.masks = append(e.masks, mask)
	}
	return e, nil
}

func compile(r Rule) (compiledRule, error) {
	cr := compiledRule{Rule: r}
	if r.Find != nil {
		return cr, nil
	}
	pattern := r.Pattern
	// Go's regexp skips ahead with a literal prefix, which a leading \b hides;
	// the boundary is checked on the match instead.
	if strings.HasPrefix(pattern, `\b`) {
		pattern = pattern[2:]
		cr.boundary = true
	}
	if r.AnchorAtKeywordStart {
		for _, kw := range r.Keywords {
			if cr.kwLen != 0 && len(kw) != cr.kwLen {
				return cr, fmt.Errorf("rule %q: keywords of a start-anchored rule must have one length", r.Name)
			}
			cr.kwLen = len(kw)
		}
	}
	if r.AnchorAtKeyword || r.AnchorAtKeywordStart {
		pattern = "^(?:" + pattern + ")"
		m, err := keywords.New([][]string{normalized(r.Keywords)})
		if err != nil {
			return cr, fmt.Errorf("rule %q: %w", r.Name, err)
		}
		cr.anchors = m
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return cr, fmt.Errorf("rule %q: %w", r.Name, err)
	}
	cr.re = re
	return cr, nil
}

func normalized(kws []string) []string {
	out := make([]string, len(kws))
	for i, kw := range kws {
		out[i] = keywords.Normalize(kw)
	}
	return out
}

// RuleNames returns the names of the active rules by id.
func (e *Engine) RuleNames() []string {
	names := make([]string, len(e.rules))
	for i, r := range e.rules {
		names[i] = r.Name
	}
	return names
}

// Tally counts redactions by rule, for the whole batch and for the current
// item (span, log record, data point), and keeps the item's secrets so
// that other copies of them in the item (stdout_lines beside stdout) can be
// masked too.
type Tally struct {
	Counts    [MaxRules]int64
	Item      int
	ItemRules keywords.Set
	// Found are the secrets masked in the current item, as substrings of
	// the inputs (no copies), with their rule ids.
	Found []Found
}

// Found is one masked secret.
type Found struct {
	Text string
	Rule int
}

func (t *Tally) add(rule int) {
	t.Counts[rule]++
	t.Item++
	t.ItemRules.Add(rule)
}

// StartItem resets the per-item counters.
func (t *Tally) StartItem() {
	t.Item = 0
	t.ItemRules = keywords.Set{}
	clear(t.Found)
	t.Found = t.Found[:0]
}

// IsSecretKey reports whether values under key are secrets.
func (e *Engine) IsSecretKey(key string) bool { return e.keys.IsSecret(key) }

// MaskKeyValue returns the placeholder for a whole value under a secret key,
// or ok=false when the value is not worth masking (empty, a template, already
// masked, or allowed).
func (e *Engine) MaskKeyValue(value string, t *Tally) (string, bool) {
	if isStructuralPlaceholder(value) || e.isAllowed(value) {
		return value, false
	}
	t.add(KeyRule)
	t.Found = append(t.Found, Found{value, KeyRule})
	return e.mask(KeyRule, value), true
}

func (e *Engine) mask(rule int, secret string) string {
	if e.hashKey == nil || e.masks[rule][0] != '[' {
		return e.masks[rule]
	}
	h := hmac.New(sha256.New, e.hashKey)
	h.Write([]byte(secret))
	var sum [sha256.Size]byte
	return "[REDACTED:" + e.rules[rule].Name + ":" + hex.EncodeToString(h.Sum(sum[:0])[:6]) + "]"
}

func (e *Engine) isAllowed(secret string) bool {
	for _, re := range e.allowed {
		if re.MatchString(secret) {
			return true
		}
	}
	return false
}

type span struct{ start, end, rule int }

// Redact replaces every secret in s. It returns s itself, without
// allocating, when nothing is found.
func (e *Engine) Redact(s string, t *Tally) (string, bool) {
	if len(s) < e.minBytes {
		return s, false
	}
	var buf [8]span
	spans := e.find(s, buf[:0], 0)
	if len(spans) == 0 {
		return s, false
	}
	var b strings.Builder
	b.Grow(len(s))
	prev := 0
	for _, sp := range spans {
		b.WriteString(s[prev:sp.start])
		b.WriteString(e.mask(sp.rule, s[sp.start:sp.end]))
		t.add(sp.rule)
		t.Found = append(t.Found, Found{s[sp.start:sp.end], sp.rule})
		prev = sp.end
	}
	b.WriteString(s[prev:])
	return b.String(), true
}

// maxDecodeDepth bounds nested scans of decoded text (base64 in base64).
const maxDecodeDepth = 2

// find returns the secrets of s as sorted, merged spans.
func (e *Engine) find(s string, spans []span, depth int) []span {
	var whole keywords.Set
	// Keywords and most secrets live within one line: each line is scanned
	// once, and a rule's pattern runs only on the lines holding its keywords.
	for lineStart := 0; lineStart < len(s); {
		lineEnd := strings.IndexByte(s[lineStart:], '\n')
		if lineEnd < 0 {
			lineEnd = len(s)
		} else {
			lineEnd += lineStart
		}
		line := s[lineStart:lineEnd]
		var cand keywords.Set
		e.matcher.Scan(line, &cand)
		cand.Or(&e.always)
		for w, word := range cand {
			for word != 0 {
				id := w*64 + bits.TrailingZeros64(word)
				word &= word - 1
				if e.rules[id].Multiline {
					whole.Add(id)
					continue
				}
				spans = e.apply(id, line, lineStart, spans, depth)
			}
		}
		lineStart = lineEnd + 1
	}
	for w, word := range whole {
		for word != 0 {
			id := w*64 + bits.TrailingZeros64(word)
			word &= word - 1
			spans = e.apply(id, s, 0, spans, depth)
		}
	}
	// JSON-style \u escapes hide keys and values from the rules ("db_\u0070assword"):
	// scan the unescaped text too, and map what it finds back.
	if depth < maxDecodeDepth && strings.Contains(s, `\u00`) {
		spans = append(spans, e.findUnescaped(s, depth)...)
	}
	if len(spans) == 0 {
		return spans
	}
	// Sort by start (stable: the earlier rule names an overlap), then merge.
	slices.SortStableFunc(spans, func(a, b span) int { return a.start - b.start })
	merged := spans[:1]
	for _, sp := range spans[1:] {
		last := &merged[len(merged)-1]
		if sp.start < last.end {
			last.end = max(last.end, sp.end)
			continue
		}
		merged = append(merged, sp)
	}
	return merged
}

// findUnescaped decodes \u00XX escapes of printable ASCII, scans the result
// and maps its spans to s.
func (e *Engine) findUnescaped(s string, depth int) []span {
	var spans []span
	dec := make([]byte, 0, len(s))
	origin := make([]int, 0, len(s)+1) // origin[i]: offset in s of dec[i]
	for i := 0; i < len(s); {
		if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' && s[i+2] == '0' && s[i+3] == '0' {
			if v, ok := hexByte(s[i+4], s[i+5]); ok && v >= 0x20 && v < 0x7f {
				dec = append(dec, v)
				origin = append(origin, i)
				i += 6
				continue
			}
		}
		dec = append(dec, s[i])
		origin = append(origin, i)
		i++
	}
	origin = append(origin, len(s))
	if len(dec) == len(s) {
		return nil
	}
	for _, sp := range e.find(string(dec), nil, depth+1) {
		spans = append(spans, span{origin[sp.start], origin[sp.end], sp.rule})
	}
	return spans
}

func hexByte(a, b byte) (byte, bool) {
	h, ok1 := hexVal(a)
	l, ok2 := hexVal(b)
	return h<<4 | l, ok1 && ok2
}

func hexVal(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// Scanner is what a Find rule may use of the engine running it.
type Scanner struct {
	e     *Engine
	depth int
}

// HoldsSecret reports whether decoded text (from base64) holds a secret.
func (sc Scanner) HoldsSecret(s string) bool { return sc.e.holdsSecret(s, sc.depth) }

// IsSecretKey applies the engine's key vocabulary.
func (sc Scanner) IsSecretKey(k string) bool { return sc.e.keys.IsSecret(k) }

func (e *Engine) holdsSecret(s string, depth int) bool {
	if depth >= maxDecodeDepth || len(s) < e.minBytes {
		return false
	}
	var buf [4]span
	return len(e.find(s, buf[:0], depth+1)) > 0
}

// RedactJoined redacts elems as the one text they form when joined by sep:
// an argv scanned as its command line ("--password", "X"), or output lines
// scanned as the output (a PEM key over stdout_lines). It returns the
// redacted elements, or nil when nothing was found. Only elements holding a
// keyword make it join (and allocate).
func (e *Engine) RedactJoined(elems []string, sep string, t *Tally) []string {
	if len(elems) < 2 {
		return nil
	}
	any := !e.always.Empty()
	total := len(sep) * (len(elems) - 1)
	for _, el := range elems {
		total += len(el)
		if !any {
			var cand keywords.Set
			e.matcher.Scan(el, &cand)
			any = !cand.Empty()
		}
	}
	if !any || total < e.minBytes {
		return nil
	}
	var b strings.Builder
	b.Grow(total)
	starts := make([]int, len(elems)+1)
	for i, el := range elems {
		if i > 0 {
			b.WriteString(sep)
		}
		starts[i] = b.Len()
		b.WriteString(el)
	}
	starts[len(elems)] = total + len(sep)
	joined := b.String()
	spans := e.find(joined, nil, 0)
	if len(spans) == 0 {
		return nil
	}
	out := append([]string(nil), elems...)
	// Each element keeps its text outside the spans; a span's part inside
	// an element becomes the mask (once per element).
	for i, el := range elems {
		lo, hi := starts[i], starts[i]+len(el)
		var sb strings.Builder
		prev, touched := lo, false
		for _, sp := range spans {
			if sp.end <= lo || sp.start >= hi {
				continue
			}
			st, en := max(sp.start, lo), min(sp.end, hi)
			if st >= en {
				continue
			}
			touched = true
			sb.WriteString(joined[prev:st])
			sb.WriteString(e.mask(sp.rule, joined[sp.start:sp.end]))
			prev = en
		}
		if touched {
			sb.WriteString(joined[prev:hi])
			out[i] = sb.String()
		}
	}
	for _, sp := range spans {
		t.add(sp.rule)
		t.Found = append(t.Found, Found{joined[sp.start:sp.end], sp.rule})
	}
	return out
}

// apply runs rule id over text, which starts at offset in the whole string.
func (e *Engine) apply(id int, text string, offset int, spans []span, depth int) []span {
	r := &e.rules[id]
	if r.Literal != "" && !strings.Contains(text, r.Literal) {
		return spans
	}
	if r.Find != nil {
		for from := 0; from < len(text); {
			start, end, next := r.Find(text, from, Scanner{e, depth})
			if start < 0 {
				break
			}
			if start < end && !e.isAllowed(text[start:end]) {
				spans = append(spans, span{offset + start, offset + end, id})
			}
			from = max(next, from+1)
		}
		return spans
	}
	if r.anchors != nil {
		return e.applyAnchored(id, r, text, offset, spans)
	}
	if !r.re.MatchString(text) {
		return spans // the common near miss, without allocating
	}
	for _, m := range r.re.FindAllStringSubmatchIndex(text, -1) {
		if r.boundary && m[0] > 0 && isWordByte(text[m[0]-1]) {
			continue
		}
		spans = e.accept(id, r, text, m, offset, spans)
	}
	return spans
}

// applyAnchored tries the pattern only from the start of each key-like word
// that holds a keyword (or from the keyword itself), on a bounded window, so
// long lines cost a keyword scan, not a regex scan per keyword.
func (e *Engine) applyAnchored(id int, r *compiledRule, text string, offset int, spans []span) []span {
	for from := 0; from < len(text); {
		kwEnd := r.anchors.NextEnd(text, from)
		if kwEnd < 0 {
			break
		}
		var keyStart int
		if r.AnchorAtKeywordStart {
			keyStart = kwEnd - r.kwLen
		} else {
			// Each run of key bytes is tried once, from its start: linear
			// even on "passpasspass...".
			keyStart = kwEnd - 1
			for keyStart > from && isKeyByte(text[keyStart-1]) {
				keyStart--
			}
		}
		runEnd := kwEnd
		for runEnd < len(text) && isKeyByte(text[runEnd]) {
			runEnd++
		}
		if r.boundary && keyStart > 0 && isWordByte(text[keyStart-1]) {
			from = runEnd
			continue
		}
		if r.Plausible != nil && !r.Plausible(text, keyStart, runEnd) {
			from = runEnd
			continue
		}
		winEnd := min(len(text), max(runEnd, keyStart+maxAnchoredMatch))
		m := r.re.FindStringSubmatchIndex(text[keyStart:winEnd])
		if m == nil {
			if winEnd < len(text) && r.Overflow != nil {
				if start, end, ok := r.Overflow(text, keyStart, runEnd, e.keys); ok && !e.isAllowed(text[start:end]) {
					spans = append(spans, span{offset + start, offset + end, id})
					from = end
					continue
				}
			}
			from = runEnd
			continue
		}
		for i := range m { // m is ours: shift it to line offsets
			if m[i] >= 0 {
				m[i] += keyStart
			}
		}
		n := len(spans)
		spans = e.accept(id, r, text, m, offset, spans)
		next := max(m[1], runEnd)
		if len(spans) > n {
			next = max(next, spans[n].end-offset) // a value extended past the match
		}
		if winEnd < len(text) && m[1] == winEnd && len(spans) > n && spans[n].end == offset+winEnd {
			// A value cut by the window: mask the rest of it too.
			end := winEnd
			for end < len(text) && !isValueEnd(text[end]) {
				end++
			}
			spans[n].end = offset + end
			next = end
		}
		from = next
	}
	return spans
}

func isValueEnd(b byte) bool {
	return b == ' ' || b == '\t' || b == '\n' || b == '\r' || b == '"' || b == '\''
}

func (e *Engine) accept(id int, r *compiledRule, text string, m []int, offset int, spans []span) []span {
	start, end, ok := lastGroup(m)
	if r.Verify != nil {
		start, end, ok = r.Verify(text, m, e.keys)
	}
	if !ok || start >= end || e.isAllowed(text[start:end]) {
		return spans
	}
	return append(spans, span{offset + start, offset + end, id})
}

func isWordByte(b byte) bool { return isAlnum(b) || b == '_' }

func isKeyByte(b byte) bool { return isAlnum(b) || b == '_' || b == '.' || b == '-' }

// lastGroup returns the last capture group that took part, else the match.
func lastGroup(m []int) (int, int, bool) {
	for g := len(m)/2 - 1; g >= 1; g-- {
		if m[2*g] >= 0 {
			return m[2*g], m[2*g+1], true
		}
	}
	return m[0], m[1], true
}

// Default returns the engine with the built-in catalogue and vocabulary,
// built once: what the deployer masks with.
var Default = sync.OnceValue(func() *Engine {
	e, err := New(Options{})
	if err != nil {
		panic(err) // the built-in catalogue always compiles (tested)
	}
	return e
})

// Mask returns the placeholder of a secret found by rule (an id from
// Tally.Found), for callers masking its other copies.
func (e *Engine) Mask(rule int, secret string) string { return e.mask(rule, secret) }
