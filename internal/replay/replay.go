// Package replay remembers signed requests so that each is ingested at
// most once, even when copies arrive at the same moment.
//
// Checking "seen?" before ingesting and recording "seen" after lets every
// copy that arrives between the two through. Here a copy reserves its key
// atomically before anything is ingested: exactly one copy holds the
// reservation; the others are told the request is in progress (and
// should retry) or was already ingested. The holder commits once the
// pipeline took the data, or releases when the pipeline refused it, so
// that an honest retry of a refused request is ingested.
package replay

import "sync"

// State is the answer to a reservation.
type State int

const (
	// Reserved: the caller holds the key and must Commit or Release it.
	Reserved State = iota
	// InProgress: another copy holds the key now; retry later.
	InProgress
	// Done: a copy was ingested; acknowledge without ingesting.
	Done
)

// Cache remembers up to limit committed keys, forgetting the oldest
// first; reservations in progress are not counted (there are at most as
// many as requests in flight).
type Cache struct {
	limit int

	mu       sync.Mutex
	done     map[string]struct{}
	order    []string // ring of committed keys, oldest at next
	next     int
	reserved map[string]struct{}
}

// New returns a cache of limit committed keys.
func New(limit int) *Cache {
	return &Cache{limit: limit, done: map[string]struct{}{}, reserved: map[string]struct{}{}}
}

// Reserve claims key for the caller unless a copy holds it or was
// ingested.
func (c *Cache) Reserve(key string) State {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.done[key]; ok {
		return Done
	}
	if _, ok := c.reserved[key]; ok {
		return InProgress
	}
	c.reserved[key] = struct{}{}
	return Reserved
}

// Release gives up a reservation: the request was not ingested.
func (c *Cache) Release(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.reserved, key)
}

// Commit turns a reservation into a remembered request.
func (c *Cache) Commit(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.reserved, key)
	if c.limit <= 0 {
		return
	}
	if _, ok := c.done[key]; ok {
		return
	}
	if len(c.order) < c.limit {
		c.order = append(c.order, key)
	} else {
		delete(c.done, c.order[c.next])
		c.order[c.next] = key
		c.next = (c.next + 1) % c.limit
	}
	c.done[key] = struct{}{}
}

// Len returns the committed keys remembered and the reservations held.
func (c *Cache) Len() (committed, reserved int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.done), len(c.reserved)
}
