// Package mask hides secrets in text the deployer prints, logs or sends:
// known secret values (variables whose names look secret, --secret-var
// values) and credential-looking arguments such as --password=x.
package mask

import (
	"regexp"
	"sort"
	"strings"
)

// Placeholder replaces every masked value.
const Placeholder = "***"

// minSecretLen keeps one- and two-character values from masking half of
// every line; such values are no secret anyway.
const minSecretLen = 3

// credentialArg matches "name=value" and "name: value" whose name looks
// like a credential, capturing the value; credentialFlag matches the
// "--name value" form of command lines.
var (
	credentialArg  = regexp.MustCompile(`(?i)(` + credentialName + `["']?\s*[=:]\s*)("[^"]*"|'[^']*'|[^\s"',}]+)`)
	credentialFlag = regexp.MustCompile(`(?i)(\s-{1,2}` + credentialName + `\s+)("[^"]*"|'[^']*'|[^\s"'-][^\s"']*)`)
)

const credentialName = `(?:passw(?:or)?d|passwd|secret|token|api[_-]?key|private[_-]?key|credentials?|auth(?:orization)?)[A-Za-z0-9_-]*`

// bearer matches HTTP bearer and basic credentials.
var bearer = regexp.MustCompile(`(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}`)

// urlPassword matches the password of scheme://user:password@host.
var urlPassword = regexp.MustCompile(`([a-z][a-z0-9+.-]*://[^/\s:@]+:)[^@\s/]+@`)

// Masker replaces secrets in strings. The zero value masks patterns only.
// A Masker is read-only after construction and safe for concurrent use.
type Masker struct {
	values   []string
	replacer *strings.Replacer
}

// New returns a masker for the given secret values.
func New(values ...string) *Masker {
	m := &Masker{}
	seen := map[string]bool{}
	for _, v := range values {
		if len(v) >= minSecretLen && !seen[v] {
			seen[v] = true
			m.values = append(m.values, v)
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

// String masks s.
func (m *Masker) String(s string) string {
	if m != nil && m.replacer != nil {
		s = m.replacer.Replace(s)
	}
	if !mayHoldCredential(s) {
		return s
	}
	s = bearer.ReplaceAllString(s, "$1 "+Placeholder)
	for _, re := range []*regexp.Regexp{credentialArg, credentialFlag} {
		s = re.ReplaceAllStringFunc(s, func(match string) string {
			sub := re.FindStringSubmatch(match)
			if v := strings.ToLower(sub[2]); v == Placeholder || v == "bearer" || v == "basic" {
				return match
			}
			return sub[1] + Placeholder
		})
	}
	return urlPassword.ReplaceAllString(s, "${1}"+Placeholder+"@")
}

// Values replaces only the known secret values in s, not patterns. Use it
// on structured text such as JSON, where a pattern could break the syntax.
func (m *Masker) Values(s string) string {
	if m != nil && m.replacer != nil {
		return m.replacer.Replace(s)
	}
	return s
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

// hints are lower-case fragments every pattern needs; checking them first
// keeps masking of ordinary output lines cheap.
var hints = []string{"pass", "secret", "token", "key", "auth", "credential", "bearer", "basic", "://"}

func mayHoldCredential(s string) bool {
	lower := strings.ToLower(s)
	for _, h := range hints {
		if strings.Contains(lower, h) {
			return true
		}
	}
	return false
}
