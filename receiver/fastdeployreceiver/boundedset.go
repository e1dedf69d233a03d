package fastdeployreceiver

// boundedSet remembers the most recent n keys in insertion order; the
// oldest is forgotten first. Its memory is bounded whatever clients send.
type boundedSet[K comparable, V any] struct {
	limit int
	items map[K]V
	order []K // ring of keys, oldest at next
	next  int
}

func newBoundedSet[K comparable, V any](limit int) *boundedSet[K, V] {
	return &boundedSet[K, V]{limit: limit, items: make(map[K]V)}
}

func (s *boundedSet[K, V]) get(k K) (V, bool) {
	v, ok := s.items[k]
	return v, ok
}

func (s *boundedSet[K, V]) put(k K, v V) {
	if s.limit <= 0 {
		return
	}
	if _, ok := s.items[k]; ok {
		s.items[k] = v
		return
	}
	if len(s.order) < s.limit {
		s.order = append(s.order, k)
	} else {
		delete(s.items, s.order[s.next])
		s.order[s.next] = k
		s.next = (s.next + 1) % s.limit
	}
	s.items[k] = v
}

func (s *boundedSet[K, V]) len() int { return len(s.items) }
