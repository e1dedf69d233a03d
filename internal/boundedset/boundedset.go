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
func (m *Map[K, V]) Put(k K, v V) {
	if m.limit <= 0 {
		return
	}
	if _, ok := m.items[k]; ok {
		m.items[k] = v
		return
	}
	if len(m.order) < m.limit {
		m.order = append(m.order, k)
	} else {
		delete(m.items, m.order[m.next])
		m.order[m.next] = k
		m.next = (m.next + 1) % m.limit
	}
	m.items[k] = v
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
