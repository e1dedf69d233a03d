package boundedset

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestMapForgetsTheOldestFirst(t *testing.T) {
	m := New[string, int](3)
	for i, k := range []string{"a", "b", "c"} {
		m.Put(k, i)
	}
	m.Put("a", 10) // known key: new value, same place
	v, ok := m.Get("a")
	assert.True(t, ok)
	assert.Equal(t, 10, v)
	m.Put("d", 3)
	assert.False(t, m.Contains("a"), "a was the oldest")
	assert.True(t, m.Contains("b"))
	assert.Equal(t, 3, m.Len())
	var order []string
	m.All(func(k string, _ int) bool { order = append(order, k); return true })
	assert.Equal(t, []string{"b", "c", "d"}, order)
	order = nil
	m.All(func(k string, _ int) bool { order = append(order, k); return false })
	assert.Equal(t, []string{"b"}, order, "All stops when told")
}

func TestLimitBoundsMemory(t *testing.T) {
	tests := []struct {
		limit, puts, want int
	}{
		{limit: 0, puts: 5, want: 0},
		{limit: -1, puts: 5, want: 0},
		{limit: 1, puts: 5, want: 1},
		{limit: 4, puts: 3, want: 3},
		{limit: 4, puts: 1000, want: 4},
	}
	for _, tt := range tests {
		m := New[int, struct{}](tt.limit)
		for i := range tt.puts {
			m.Put(i, struct{}{})
		}
		assert.Equal(t, tt.want, m.Len(), "limit %d after %d puts", tt.limit, tt.puts)
		if tt.want > 0 {
			assert.True(t, m.Contains(tt.puts-1), "the newest is always kept")
		}
		assert.LessOrEqual(t, len(m.order), max(tt.limit, 0))
	}
}

func TestSetAddReportsRepeats(t *testing.T) {
	s := NewSet[int](2)
	assert.False(t, s.Add(1))
	assert.True(t, s.Add(1))
	assert.False(t, s.Add(2))
	assert.False(t, s.Add(3)) // forgets 1
	assert.False(t, s.Contains(1))
	assert.False(t, s.Add(1), "a forgotten key is new again")
	assert.Equal(t, 2, s.Len())
}
