// Package boundedset remembers the most recent keys, up to a limit, in
// insertion order: the oldest is forgotten first. Its memory is bounded
// whatever clients send. It is what the receiver's delivery ids, finished
// deployments and replayed signatures, and the connector's span dedup and
// finished deployments, each need.
package boundedset

// Map remembers up to a limit of keys with a value each. It is not safe for
// concurrent use.
type Map[K comparable, V any] struct {
	limit int
	items map[K]V
	order []K // ring of keys, oldest at next
	next  int
}

// New returns a Map of at most limit keys; a limit of 0 or less remembers
// nothing.
func New[K comparable, V any](limit int) *Map[K, V] {
	return &Map[K, V]{limit: limit, items: make(map[K]V)}
}

// Get returns the value of k and whether k is remembered.
func (m *Map[K, V]) Get(k K) (V, bool) {
	v, ok := m.items[k]
	return v, ok
}

// Contains reports whether k is remembered.
func (m *Map[K, V]) Contains(k K) bool {
	_, ok := m.items[k]
	return ok
}

// Put remembers k with v. A key already remembered gets the new value and
// keeps its place; a new key past the limit forgets the oldest.
func (m *Map[K, V]) Put(k K, v V) { m.put(k, v) }

// put returns the slot k took, -1 when it kept its place or nothing is
// remembered.
func (m *Map[K, V]) put(k K, v V) int {
	if m.limit <= 0 {
		return -1
	}
	if _, ok := m.items[k]; ok {
		m.items[k] = v
		return -1
	}
	slot := len(m.order)
	if len(m.order) < m.limit {
		m.order = append(m.order, k)
	} else {
		slot = m.next
		delete(m.items, m.order[slot])
		m.order[slot] = k
		m.next = (m.next + 1) % m.limit
	}
	m.items[k] = v
	return slot
}

// Len is the number of keys remembered.
func (m *Map[K, V]) Len() int { return len(m.items) }

// All calls fn with every key and value, oldest first, until fn returns
// false.
func (m *Map[K, V]) All(fn func(K, V) bool) {
	n := len(m.order)
	for i := range n {
		k := m.order[(m.next+i)%n]
		if !fn(k, m.items[k]) {
			return
		}
	}
}

// Set remembers up to a limit of keys.
type Set[K comparable] struct{ m Map[K, struct{}] }

// NewSet returns a Set of at most limit keys.
func NewSet[K comparable](limit int) *Set[K] {
	return &Set[K]{m: Map[K, struct{}]{limit: limit, items: make(map[K]struct{})}}
}

// Add remembers k and reports whether it was remembered already.
func (s *Set[K]) Add(k K) (seen bool) {
	if s.m.Contains(k) {
		return true
	}
	s.m.Put(k, struct{}{})
	return false
}

// Contains reports whether k is remembered.
func (s *Set[K]) Contains(k K) bool { return s.m.Contains(k) }

// Len is the number of keys remembered.
func (s *Set[K]) Len() int { return s.m.Len() }

// Slots, Slot, Next, AddSlot and Restore expose the ring for a caller that
// writes it to storage one slot at a time: only the slots that changed are
// written, and a restart restores the ring as it was, so the oldest key is
// still forgotten first.

// AddSlot is Add that also tells the slot a new key took (-1 when seen).
func (s *Set[K]) AddSlot(k K) (seen bool, slot int) {
	if s.m.Contains(k) {
		return true, -1
	}
	return false, s.m.put(k, struct{}{})
}

// Slots is the number of slots in use.
func (s *Set[K]) Slots() int { return len(s.m.order) }

// Slot returns the key in slot i, 0 <= i < Slots().
func (s *Set[K]) Slot(i int) K { return s.m.order[i] }

// Next is the slot the next new key overwrites once every slot is in use.
func (s *Set[K]) Next() int { return s.m.next }

// Restore makes an empty set hold keys in these slots, next being the slot
// to overwrite first. It reports false, and changes nothing, when the set
// is not empty or the layout does not fit its limit; AddSlot the keys
// oldest first instead.
func (s *Set[K]) Restore(keys []K, next int) bool {
	m := &s.m
	full := len(keys) == m.limit
	if len(m.order) != 0 || len(keys) > m.limit || next < 0 || (next != 0 && !full) || (full && next >= len(keys)) {
		return false
	}
	for _, k := range keys {
		if _, dup := m.items[k]; dup {
			clear(m.items)
			return false
		}
		m.items[k] = struct{}{}
	}
	m.order, m.next = append([]K(nil), keys...), next
	return true
}
