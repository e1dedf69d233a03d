//go:build !linux

package secretredactionprocessor

import "time"

var clockStart = time.Now()

// processCPUTime falls back to the wall clock where the process's CPU
// clock is not at hand.
func processCPUTime() time.Duration { return time.Since(clockStart) }
