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
// secret-looking keys, and what the engine finds in every other string and
// in keys. Text that is not JSON is masked as a string.
func (m *Masker) Values(s string) string {
	s = m.knownValues(s)
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil || dec.More() {
		return m.String(s)
	}
	changed := false
	doc = m.walk(doc, false, &changed)
	if !changed {
		return s
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return m.String(s)
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

func (m *Masker) walk(v any, underSecretKey bool, changed *bool) any {
	e := engine()
	var t secrets.Tally
	switch x := v.(type) {
	case string:
		if underSecretKey {
			if out, ok := e.MaskKeyValue(x, &t); ok {
				*changed = true
				return out
			}
			return x
		}
		if out, ok := e.Redact(x, &t); ok {
			*changed = true
			return out
		}
		return x
	case json.Number:
		if underSecretKey {
			if out, ok := e.MaskKeyValue(string(x), &t); ok {
				*changed = true
				return out
			}
		}
		return x
	case []any:
		for i := range x {
			x[i] = m.walk(x[i], underSecretKey, changed)
		}
		return x
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, child := range x {
			key := k
			if masked, ok := e.Redact(k, &t); ok {
				key = masked
				*changed = true
			}
			out[key] = m.walk(child, underSecretKey || e.IsSecretKey(k), changed)
		}
		return out
	}
	return v
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
