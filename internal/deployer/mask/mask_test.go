package mask

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
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
		{`{"db_password": "pa55word", "user": "x"}`, `{"db_password": ***, "user": "x"}`},
		{"API_KEY=abcdef123 ./deploy", "API_KEY=*** ./deploy"},
		{"token: ghp_abcdefghijkl", "token: ***"},
		{"curl -H 'Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.x'", "curl -H 'Authorization: Bearer ***'"},
		{"Bearer eyJhbGciOiJIUzI1NiJ9", "Bearer ***"},
		{"git clone https://deploy:pa55@example.org/r.git", "git clone https://deploy:***@example.org/r.git"},
		{"the password is s3cr3t", "the password is ***"},
		{"ansible-playbook -e db_password=hunter3", "ansible-playbook -e db_password=***"},
		{"tool --api-key 'abc def' --verbose", "tool --api-key *** --verbose"},
		{"tool --token --verbose", "tool --token --verbose"},
	}
	for _, tt := range tests {
		got := m.String(tt.in)
		assert.Equal(t, tt.want, got, tt.in)
		assert.NotContains(t, got, "pa55")
		assert.NotContains(t, got, "s3cr3t")
	}
}

func TestNilAndZeroMaskPatterns(t *testing.T) {
	var m *Masker
	assert.Equal(t, "--token=***", m.String("--token=abc"))
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

func TestValuesKeepsJSONValid(t *testing.T) {
	m := New("hunter2-long")
	assert.Equal(t, `{"password": "x", "cmd": "login ***"}`, m.Values(`{"password": "x", "cmd": "login hunter2-long"}`))
	assert.Equal(t, "a", (*Masker)(nil).Values("a"))
}
