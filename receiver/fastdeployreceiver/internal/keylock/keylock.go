// Package keylock serialises work by key: holders of the same key run one
// after the other, holders of different keys run in parallel. Memory is
// bounded by the keys held or waited on at once, not by every key ever
// seen.
package keylock

import (
	"slices"
	"sync"
)

// Locks is a set of named mutexes. The zero value is ready to use.
type Locks struct {
	mu   sync.Mutex
	held map[string]*entry
}

type entry struct {
	mu   sync.Mutex
	refs int // holders and waiters
}

func (l *Locks) ref(key string) *entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held == nil {
		l.held = map[string]*entry{}
	}
	e := l.held[key]
	if e == nil {
		e = &entry{}
		l.held[key] = e
	}
	e.refs++
	return e
}

// Lock takes every key, in sorted order so that two callers that share
// several keys cannot deadlock. keys must be sorted and without repeats;
// Sorted makes them so.
func (l *Locks) Lock(keys []string) {
	for _, k := range keys {
		l.ref(k).mu.Lock()
	}
}

// TryLock takes key only when nobody holds or waits for it.
func (l *Locks) TryLock(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, busy := l.held[key]; busy {
		return false
	}
	if l.held == nil {
		l.held = map[string]*entry{}
	}
	e := &entry{refs: 1}
	e.mu.Lock()
	l.held[key] = e
	return true
}

// Unlock releases keys taken by Lock or TryLock.
func (l *Locks) Unlock(keys []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		e := l.held[k]
		e.refs--
		if e.refs == 0 {
			delete(l.held, k)
		}
		e.mu.Unlock()
	}
}

// Len is the number of keys held or waited on.
func (l *Locks) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.held)
}

// Sorted returns keys sorted and without repeats, as Lock needs them.
func Sorted(keys []string) []string {
	slices.Sort(keys)
	return slices.Compact(keys)
}
