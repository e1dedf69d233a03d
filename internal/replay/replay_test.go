package replay

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestConcurrentCopies: 32 copies of one request reserve at once; exactly
// one holds the key, whatever the interleaving, and the rest are told it
// is in progress. Forced interleaving: every copy waits at a barrier, and
// the holder decides only after all others have answered.
func TestConcurrentCopies(t *testing.T) {
	for _, outcome := range []string{"commit", "release"} {
		c := New(16)
		const copies = 32
		var start, answered sync.WaitGroup
		start.Add(1)
		answered.Add(copies)
		states := make([]State, copies)
		for i := range copies {
			go func() {
				start.Wait()
				states[i] = c.Reserve("k")
				answered.Done()
			}()
		}
		start.Done()
		answered.Wait()
		count := map[State]int{}
		for _, s := range states {
			count[s]++
		}
		require.Equal(t, map[State]int{Reserved: 1, InProgress: copies - 1}, count)
		if outcome == "commit" {
			c.Commit("k")
			assert.Equal(t, Done, c.Reserve("k"), "a copy after the commit is a replay")
		} else {
			c.Release("k")
			assert.Equal(t, Reserved, c.Reserve("k"), "an honest retry after a refusal is ingested")
		}
	}
}

func TestBounded(t *testing.T) {
	t.Parallel()
	c := New(3)
	for i := range 5 {
		k := fmt.Sprint(i)
		require.Equal(t, Reserved, c.Reserve(k))
		c.Commit(k)
	}
	committed, reserved := c.Len()
	assert.Equal(t, 3, committed)
	assert.Zero(t, reserved)
	assert.Equal(t, Reserved, c.Reserve("0"), "the oldest is forgotten first")
	assert.Equal(t, Done, c.Reserve("4"))
	assert.Equal(t, InProgress, c.Reserve("0"))
	c.Release("0")
	// Committing a key twice does not take two places.
	require.Equal(t, Reserved, c.Reserve("x"))
	c.Commit("x")
	c.Commit("x")
	assert.Equal(t, Done, c.Reserve("3"), "3 survives: x took one place")
}
