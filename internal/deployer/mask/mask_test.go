package mask

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestString(t *testing.T) {
	m := New("hunter2-long", "s3cr3t", "ab", "")
	tests := []struct{ in, want string }{
		{"plain output", "plain output"},
		{"connect with s3cr3t now", "connect with *** now"},
		{"two: hunter2-long and s3cr3t", "two: *** and ***"},
		{"short ab stays", "short ab stays"},
		{"mysql --password=pa55word -u root", "mysql --password=*** -u root"},
		{"mysql --password pa55word", "mysql --password ***"},
		{`{"db_password": "pa55word", "user": "x"}`, `{"db_password": "***", "user": "x"}`},
		{"API_KEY=abcdef123 ./deploy", "API_KEY=*** ./deploy"},
		{"ENCRYPTION_KEY=pa55-enc-value ./deploy", "ENCRYPTION_KEY=*** ./deploy"},
		{"curl -H 'Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.x'", "curl -H 'Authorization: Bearer ***'"},
		{"git clone https://deploy:pa55@example.org/r.git", "git clone https://deploy:***@example.org/r.git"},
		{"the password is s3cr3t", "the password is ***"},
		{"ansible-playbook -e db_password=hunter3", "ansible-playbook -e db_password=***"},
		{"tool --token --verbose", "tool --token --verbose"},
		{"docker login -u ci -p pa55word-x registry", "docker login -u ci -p *** registry"},
	}
	for _, tt := range tests {
		got := m.String(tt.in)
		assert.Equal(t, tt.want, got, tt.in)
		assert.NotContains(t, got, "pa55")
		assert.NotContains(t, got, "s3cr3t")
	}
}

func TestNilAndZeroMaskWhatTheEngineFinds(t *testing.T) {
	var m *Masker
	assert.Equal(t, "--token=***", m.String("--token=abc123x"))
	assert.Equal(t, "ok", New().String("ok"))
}

func TestBytesReturnsSameSliceWhenClean(t *testing.T) {
	m := New("secret-value")
	in := []byte("nothing here")
	assert.Same(t, &in[0], &m.Bytes(in)[0])
	assert.Equal(t, "x *** y", string(m.Bytes([]byte("x secret-value y"))))
}

func TestValue(t *testing.T) {
	m := New()
	looks := func(n string) bool { return strings.Contains(strings.ToLower(n), "password") }
	assert.Equal(t, Placeholder, m.Value("DB_PASSWORD", "x", looks))
	assert.Equal(t, "", m.Value("DB_PASSWORD", "", looks))
	assert.Equal(t, "1.2", m.Value("RELEASE", "1.2", looks))
}

func BenchmarkString(b *testing.B) {
	m := New("hunter2-long", "s3cr3t")
	line := "2026-02-03 10:14:04 step output line with some words and numbers 12345 and nothing to hide"
	for b.Loop() {
		_ = m.String(line)
	}
}

// Values masks JSON structurally and keeps it valid JSON: values under
// secret keys whole, known values and catalogue finds everywhere, keys too.
func TestValuesKeepsJSONValid(t *testing.T) {
	m := New("hunter2-long", `quo"te-pass`)
	pat := "ghp_" + strings.Repeat("Ab1", 12)
	in := `{"password": "x y z", "cmd": "login hunter2-long", "n": 12345678901234567890,
		"argv": ["mysql", "-pS3cretPw!", "--password", "pa55-two"], "nested": {"db_pass": 1234},
		"` + pat + `": 1, "esc": "say quo\"te-pass", "plain": "nothing"}`
	out := m.Values(in)
	var doc map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &doc), out)
	for _, leak := range []string{"x y z", "hunter2-long", "S3cretPw", "pa55-two", "1234,", pat, "te-pass"} {
		assert.NotContains(t, out, leak)
	}
	assert.Contains(t, out, "12345678901234567890") // numbers keep their digits
	assert.Equal(t, "nothing", doc["plain"])
	assert.Equal(t, "a", (*Masker)(nil).Values("a"))
	clean := `{"b": 1, "a": "text"}`
	assert.Equal(t, clean, m.Values(clean), "clean JSON comes back byte for byte")
}

// A key printed in stdout reaches stdout_lines too, and a name/value pair
// names its value: an Ansible result loses the key everywhere.
func TestValuesMasksCopiesAndNamedValues(t *testing.T) {
	body := strings.Repeat("Qk9HVVMtS0VZLU1BVEVSSUFM", 2) + "0123456789ab"
	pem := "-----BEGIN RSA PRIVATE KEY-----\n" + body + "\n" + body + "AB\n-----END RSA PRIVATE KEY-----"
	doc := map[string]any{
		"stdout": pem, "stdout_lines": strings.Split(pem, "\n"),
		"env": []any{map[string]any{"name": "DB_PASSWORD", "value": "gen-pw-value-1"}},
	}
	raw, err := json.Marshal(doc)
	require.NoError(t, err)
	out := New().Values(string(raw))
	assert.NotContains(t, out, body)
	assert.NotContains(t, out, "gen-pw-value-1")
	assert.Contains(t, out, "DB_PASSWORD")
}
