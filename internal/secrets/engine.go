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
	"strings"

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
	// (start < 0: none). It must run in time linear in what it skips.
	Find func(text string, from int) (start, end, next int)
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
		e.masks = append(e.masks, "[REDACTED:"+r.Name+"]")
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
// item (span, log record, data point).
type Tally struct {
	Counts    [MaxRules]int64
	Item      int
	ItemRules keywords.Set
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
	return e.mask(KeyRule, value), true
}

func (e *Engine) mask(rule int, secret string) string {
	if e.hashKey == nil {
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
	spans := buf[:0]
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
				spans = e.apply(id, line, lineStart, spans)
			}
		}
		lineStart = lineEnd + 1
	}
	for w, word := range whole {
		for word != 0 {
			id := w*64 + bits.TrailingZeros64(word)
			word &= word - 1
			spans = e.apply(id, s, 0, spans)
		}
	}
	if len(spans) == 0 {
		return s, false
	}
	// Insertion sort by start, then merge overlaps (the earlier match names them).
	for i := 1; i < len(spans); i++ {
		for j := i; j > 0 && spans[j].start < spans[j-1].start; j-- {
			spans[j], spans[j-1] = spans[j-1], spans[j]
		}
	}
	merged := spans[:1]
	for _, sp := range spans[1:] {
		last := &merged[len(merged)-1]
		if sp.start < last.end {
			last.end = max(last.end, sp.end)
			continue
		}
		merged = append(merged, sp)
	}
	var b strings.Builder
	b.Grow(len(s))
	prev := 0
	for _, sp := range merged {
		b.WriteString(s[prev:sp.start])
		b.WriteString(e.mask(sp.rule, s[sp.start:sp.end]))
		t.add(sp.rule)
		prev = sp.end
	}
	b.WriteString(s[prev:])
	return b.String(), true
}

// apply runs rule id over text, which starts at offset in the whole string.
func (e *Engine) apply(id int, text string, offset int, spans []span) []span {
	r := &e.rules[id]
	if r.Literal != "" && !strings.Contains(text, r.Literal) {
		return spans
	}
	if r.Find != nil {
		for from := 0; from < len(text); {
			start, end, next := r.Find(text, from)
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
