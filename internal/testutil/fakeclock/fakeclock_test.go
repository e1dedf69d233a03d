package fakeclock

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestClock(t *testing.T) {
	t0 := time.Date(2025, 3, 4, 10, 30, 0, 0, time.UTC)
	c := New(t0)
	assert.Equal(t, t0, c.Now())
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() { defer wg.Done(); c.Advance(time.Second); _ = c.Now() }()
	}
	wg.Wait()
	assert.Equal(t, t0.Add(4*time.Second), c.Now(), "every advance counts, under -race")
	c.Set(t0)
	assert.Equal(t, t0, c.Now())
}
