package keywords

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestScan(t *testing.T) {
	m, err := New([][]string{
		{"password", "passwd"},
		{"ghp_"},
		{"-----begin"},
		{"he", "she", "hers"},
	})
	require.NoError(t, err)
	tests := []struct {
		text string
		want []int
	}{
		{"", nil},
		{"nothing to see", nil},
		{"DB_PASSWORD=x", []int{0}},
		{"token ghp_abc", []int{1}},
		{"-----BEGIN RSA", []int{2}},
		{"ushers", []int{3}},
		{"passwd ghp_ -----Begin", []int{0, 1, 2}},
		{"pas sword", nil},
		{"ppassword", []int{0}},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			var s Set
			m.Scan(tt.text, &s)
			var got []int
			for i := 0; i < MaxGroups; i++ {
				if s.Has(i) {
					got = append(got, i)
				}
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestScanAgreesWithContains(t *testing.T) {
	kws := [][]string{{"abc"}, {"bcd"}, {"cab"}, {"aab"}, {"b"}}
	m, err := New(kws)
	require.NoError(t, err)
	texts := []string{"aabcab", "xxbcdx", "cacab", "ABCD", "zzz", "aaab"}
	for _, text := range texts {
		var s Set
		m.Scan(text, &s)
		for g, group := range kws {
			want := false
			for _, kw := range group {
				want = want || strings.Contains(strings.ToLower(text), kw)
			}
			assert.Equal(t, want, s.Has(g), "%q group %d", text, g)
		}
	}
}

func TestNewErrors(t *testing.T) {
	_, err := New([][]string{{""}})
	assert.Error(t, err)
	_, err = New(make([][]string, MaxGroups+1))
	assert.Error(t, err)
}

func BenchmarkScanClean(b *testing.B) {
	m, _ := New([][]string{{"password"}, {"ghp_"}, {"akia"}, {"-----begin"}, {"eyj"}, {"xoxb-"}})
	text := strings.Repeat("TASK [deploy : restart service] changed: [web-01] ok=3 ", 40)
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		var s Set
		m.Scan(text, &s)
	}
}

func TestNextEnd(t *testing.T) {
	m, err := New([][]string{{"pass", "token"}})
	require.NoError(t, err)
	s := "x DB_PASS=1 api_token=2"
	assert.Equal(t, 9, m.NextEnd(s, 0))
	assert.Equal(t, 21, m.NextEnd(s, 9))
	assert.Equal(t, -1, m.NextEnd(s, 21))
}

// TestScanAgreesWithNaive checks the automaton and its skipping of
// positions no keyword starts at against plain substring search, on random
// keywords (one byte long too) and texts over a small alphabet, where
// keywords overlap and nest.
func TestScanAgreesWithNaive(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	word := func(alphabet string, n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[rnd.IntN(len(alphabet))]
		}
		return string(b)
	}
	for round := range 300 {
		groups := make([][]string, 1+rnd.IntN(6))
		for g := range groups {
			for range 1 + rnd.IntN(3) {
				groups[g] = append(groups[g], word("abcd", 1+rnd.IntN(4)))
			}
		}
		m, err := New(groups)
		require.NoError(t, err)
		for range 20 {
			text := word("abcdABxy", rnd.IntN(24))
			var got Set
			m.Scan(text, &got)
			lower := strings.ToLower(text)
			for g, group := range groups {
				want := false
				for _, kw := range group {
					want = want || strings.Contains(lower, kw)
				}
				require.Equal(t, want, got.Has(g), "round %d: %q in %q", round, group, text)
			}
			// NextEnd: the first end of any keyword starting at or after from.
			from := rnd.IntN(len(text) + 1)
			wantEnd := -1
			for _, group := range groups {
				for _, kw := range group {
					for j := from; j+len(kw) <= len(lower); j++ {
						if lower[j:j+len(kw)] == kw && (wantEnd < 0 || j+len(kw) < wantEnd) {
							wantEnd = j + len(kw)
						}
					}
				}
			}
			require.Equal(t, wantEnd, m.NextEnd(text, from), "round %d: %q from %d in %q", round, groups, from, text)
		}
	}
}
