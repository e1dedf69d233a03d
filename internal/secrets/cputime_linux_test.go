//go:build linux

package secrets

import (
	"syscall"
	"time"
)

// threadCPUTime is the CPU time the calling OS thread has used: time the
// scheduler gave to other processes does not count, so ratios of it hold
// on a loaded machine.
func threadCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_THREAD, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
