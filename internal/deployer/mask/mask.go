// Package mask hides secrets in text the deployer prints, logs, spools or
// sends: known secret values (declared secret variables, --secret-var,
// secret-looking environment variables) by value, and whatever the
// collector's secret engine finds (the same catalogue and key rules the
// secret_redaction processor uses).
package mask

import (
	"bytes"
	"encoding/json"
	"sort"
	"strings"
	"sync"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/secrets"
)

// Placeholder replaces every masked value.
const Placeholder = "***"

// engine is the collector's engine with the deployer's placeholder.
var engine = sync.OnceValue(func() *secrets.Engine {
	e, err := secrets.New(secrets.Options{Placeholder: Placeholder})
	if err != nil {
		panic(err) // the built-in catalogue always compiles (tested)
	}
	return e
})

// minSecretLen keeps one- and two-character values from masking half of
// every line; such values are no secret anyway.
const minSecretLen = 3

// Masker replaces secrets in strings. The zero value (and nil) masks what
// the engine finds only. A Masker is read-only after construction and safe
// for concurrent use.
type Masker struct {
	values   []string
	replacer *strings.Replacer
}

// New returns a masker for the given secret values.
func New(values ...string) *Masker {
	m := &Masker{}
	seen := map[string]bool{}
	for _, v := range values {
		for _, form := range forms(v) {
			if len(form) >= minSecretLen && !seen[form] {
				seen[form] = true
				m.values = append(m.values, form)
			}
		}
	}
	// Longest first so a secret containing another is masked whole.
	sort.Slice(m.values, func(i, j int) bool { return len(m.values[i]) > len(m.values[j]) })
	if len(m.values) > 0 {
		pairs := make([]string, 0, 2*len(m.values))
		for _, v := range m.values {
			pairs = append(pairs, v, Placeholder)
		}
		m.replacer = strings.NewReplacer(pairs...)
	}
	return m
}

// forms are the value and its JSON-escaped form (a secret with a quote or
// backslash looks different inside an event body or an Ansible line).
func forms(v string) []string {
	out := []string{v}
	if b, err := json.Marshal(v); err == nil {
		if esc := string(b[1 : len(b)-1]); esc != v {
			out = append(out, esc)
		}
	}
	return out
}

// String masks s: known values, then everything the engine finds.
func (m *Masker) String(s string) string {
	s = m.knownValues(s)
	var t secrets.Tally
	out, _ := engine().Redact(s, &t)
	return out
}

func (m *Masker) knownValues(s string) string {
	if m != nil && m.replacer != nil {
		return m.replacer.Replace(s)
	}
	return s
}

// Values masks a JSON document (an event body, an Ansible callback line)
// as the collector would: known values everywhere, whole values under
// secret-looking keys and named by a sibling ({name: DB_PASSWORD, value:
// x}), lists of strings as the command line or output they form, keys
// too, and other copies of every secret found (a key in stdout reaches
// stdout_lines). Text that is not JSON is masked as a string.
func (m *Masker) Values(s string) string {
	s = m.knownValues(s)
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil || dec.More() {
		return m.String(s)
	}
	w := walker{e: engine()}
	doc = w.walk(doc, "", false)
	if !w.changed {
		return s
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return m.String(s)
	}
	return copiesMasked(strings.TrimSuffix(buf.String(), "\n"), w.tally.Found)
}

type walker struct {
	e       *secrets.Engine
	tally   secrets.Tally
	changed bool
}

func (w *walker) walk(v any, key string, underSecretKey bool) any {
	switch x := v.(type) {
	case string:
		if underSecretKey {
			if out, ok := w.e.MaskKeyValue(x, &w.tally); ok {
				w.changed = true
				return out
			}
			return x
		}
		if out, ok := w.e.Redact(x, &w.tally); ok {
			w.changed = true
			return out
		}
		return x
	case json.Number:
		if underSecretKey {
			if out, ok := w.e.MaskKeyValue(string(x), &w.tally); ok {
				w.changed = true
				return out
			}
		}
		return x
	case []any:
		if !underSecretKey {
			if elems, ok := allStrings(x); ok {
				if out := w.e.RedactJoined(elems, secrets.ListSeparator(key, elems[0]), &w.tally); out != nil {
					w.changed = true
					for i := range x {
						x[i] = out[i]
					}
				}
				return x
			}
		}
		for i := range x {
			x[i] = w.walk(x[i], key, underSecretKey)
		}
		return x
	case map[string]any:
		named := w.e.ValueNamedBySibling(len(x), func(f string) (string, bool) {
			n, ok := x[f].(string)
			return n, ok
		})
		out := make(map[string]any, len(x))
		for k, child := range x {
			newKey := k
			if masked, ok := w.e.Redact(k, &w.tally); ok {
				newKey = masked
				w.changed = true
			}
			secret := underSecretKey || w.e.IsSecretKey(k) || (named && k == "value")
			out[newKey] = w.walk(child, k, secret)
		}
		return out
	}
	return v
}

func allStrings(x []any) ([]string, bool) {
	out := make([]string, len(x))
	for i, v := range x {
		s, ok := v.(string)
		if !ok {
			return nil, false
		}
		out[i] = s
	}
	return out, len(out) >= 2
}

// copiesMasked masks, in the encoded document, other copies of the
// secrets found: whole secrets of 8 bytes and more, and lines of 16 bytes
// and more of multi-line ones (the lines of a key in stdout_lines).
func copiesMasked(doc string, found []secrets.Found) string {
	var pairs []string
	for _, f := range found {
		if strings.Contains(f.Text, "***") {
			continue
		}
		if len(f.Text) >= 8 && !strings.ContainsAny(f.Text, "\n\"\\") {
			pairs = append(pairs, f.Text, Placeholder)
		}
		for _, line := range strings.Split(f.Text, "\n") {
			if line = strings.TrimSpace(line); len(line) >= 16 && !strings.ContainsAny(line, "\"\\") {
				pairs = append(pairs, line, Placeholder)
			}
		}
	}
	if len(pairs) == 0 {
		return doc
	}
	return strings.NewReplacer(pairs...).Replace(doc)
}

// Value masks the value of a variable: wholly when its name looks secret.
func (m *Masker) Value(name, value string, looksSecret func(string) bool) string {
	if looksSecret(name) && value != "" {
		return Placeholder
	}
	return m.String(value)
}

// Bytes masks b; it returns b itself when nothing needed masking.
func (m *Masker) Bytes(b []byte) []byte {
	s := string(b)
	if out := m.String(s); out != s {
		return []byte(out)
	}
	return b
}
