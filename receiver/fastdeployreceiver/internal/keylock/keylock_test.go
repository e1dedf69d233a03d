package keylock

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Holders of one key never overlap; the counter they update without any
// other lock ends exact (and -race sees no conflict).
func TestSameKeySerialises(t *testing.T) {
	var l Locks
	counters := map[string]int{}
	var wg sync.WaitGroup
	for i := range 200 {
		keys := Sorted([]string{[]string{"a", "b", "c"}[i%3], []string{"a", "b", "c"}[(i+1)%3]})
		wg.Go(func() {
			l.Lock(keys)
			defer l.Unlock(keys)
			for _, k := range keys {
				counters[k]++
			}
		})
	}
	wg.Wait()
	assert.Equal(t, map[string]int{"a": 133, "b": 134, "c": 133}, counters)
	assert.Zero(t, l.Len(), "no key is remembered once free")
}

// A key held elsewhere does not hold up another key.
func TestDifferentKeysRunInParallel(t *testing.T) {
	var l Locks
	l.Lock([]string{"a"})
	done := make(chan struct{})
	go func() {
		l.Lock([]string{"b"})
		l.Unlock([]string{"b"})
		close(done)
	}()
	<-done
	assert.False(t, l.TryLock("a"), "a is held")
	require.True(t, l.TryLock("c"))
	l.Unlock([]string{"a", "c"})
	assert.True(t, l.TryLock("a"), "a is free again")
	l.Unlock([]string{"a"})
	assert.Zero(t, l.Len())
}

func TestSorted(t *testing.T) {
	assert.Equal(t, []string{"a", "b"}, Sorted([]string{"b", "a", "b"}))
	assert.Empty(t, Sorted(nil))
}
