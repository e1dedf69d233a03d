package loadgen

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ProcessMemory reads a process's resident set size and its peak (VmRSS
// and VmHWM from /proc/<pid>/status, Linux only), in bytes.
func ProcessMemory(pid int) (rss, peak int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("read memory of process %d: %w", pid, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		kb, convErr := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if convErr != nil {
			return 0, 0, fmt.Errorf("parse %s of process %d: %w", k, pid, convErr)
		}
		if k == "VmRSS" {
			rss = kb << 10
		} else {
			peak = kb << 10
		}
	}
	return rss, peak, sc.Err()
}

// RSSSampler records the highest RSS of a process seen while it runs, for
// peaks within a part of a process's life (VmHWM covers all of it).
type RSSSampler struct {
	mu     sync.Mutex
	max    int64
	cancel context.CancelFunc
	done   chan struct{}
}

// SampleRSS samples pid's RSS every interval until Stop.
func SampleRSS(pid int, interval time.Duration) *RSSSampler {
	ctx, cancel := context.WithCancel(context.Background())
	s := &RSSSampler{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			s.sample(pid)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *RSSSampler) sample(pid int) {
	rss, _, err := ProcessMemory(pid)
	if err != nil {
		return
	}
	s.mu.Lock()
	s.max = max(s.max, rss)
	s.mu.Unlock()
}

// Stop ends sampling and returns the highest RSS seen, in bytes.
func (s *RSSSampler) Stop() int64 {
	s.cancel()
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.max
}
