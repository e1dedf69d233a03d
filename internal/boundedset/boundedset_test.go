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

func TestSetSlotsRestoreTheRingAsItWas(t *testing.T) {
	s := NewSet[string](3)
	var slots []int
	for _, k := range []string{"a", "b", "c", "d"} {
		seen, slot := s.AddSlot(k)
		assert.False(t, seen)
		slots = append(slots, slot)
	}
	seen, slot := s.AddSlot("d")
	assert.True(t, seen)
	assert.Equal(t, -1, slot, "a key seen takes no slot")
	assert.Equal(t, []int{0, 1, 2, 0}, slots, "d overwrote a, the oldest")
	assert.Equal(t, 3, s.Slots())
	assert.Equal(t, 1, s.Next())

	keys := make([]string, s.Slots())
	for i := range keys {
		keys[i] = s.Slot(i)
	}
	restored := NewSet[string](3)
	assert.True(t, restored.Restore(keys, s.Next()))
	assert.True(t, restored.Contains("d"))
	assert.False(t, restored.Contains("a"))
	_, slot = restored.AddSlot("e")
	assert.Equal(t, 1, slot, "the restored ring overwrites where the old one would have")
	assert.False(t, restored.Contains("b"), "b was the oldest")
	assert.True(t, restored.Contains("c"))
}

func TestSetRestoreRefusesWhatDoesNotFit(t *testing.T) {
	tests := []struct {
		name  string
		limit int
		keys  []string
		next  int
	}{
		{"more keys than the limit", 2, []string{"a", "b", "c"}, 0},
		{"next inside a ring not yet full", 3, []string{"a", "b"}, 1},
		{"next past a full ring", 2, []string{"a", "b"}, 2},
		{"negative next", 2, []string{"a"}, -1},
		{"a key twice", 3, []string{"a", "a"}, 0},
	}
	for _, tt := range tests {
		s := NewSet[string](tt.limit)
		assert.False(t, s.Restore(tt.keys, tt.next), tt.name)
		assert.Zero(t, s.Len(), "%s: nothing restored", tt.name)
		assert.Zero(t, s.Slots(), tt.name)
	}
	s := NewSet[string](2)
	s.Add("x")
	assert.False(t, s.Restore([]string{"a"}, 0), "a set in use is not overwritten")
	assert.True(t, s.Contains("x"))
	fits := NewSet[string](3)
	assert.True(t, fits.Restore([]string{"a", "b"}, 0), "a ring not yet full, near miss of the refusals")
	_, slot := fits.AddSlot("c")
	assert.Equal(t, 2, slot)
}
