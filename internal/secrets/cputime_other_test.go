//go:build !linux

package secrets

import "time"

var clockStart = time.Now()

// threadCPUTime falls back to the wall clock where the thread's CPU clock
// is not at hand.
func threadCPUTime() time.Duration { return time.Since(clockStart) }
