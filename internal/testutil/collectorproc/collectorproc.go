// Package collectorproc runs the built collector binary for end-to-end
// tests: a config from a template, free loopback ports, a health wait, and a
// SIGTERM with a deadline at the end.
package collectorproc

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Binary returns the collector binary named by FASTDEPLOY_COLLECTOR, or
// skips the test with the command that builds it.
func Binary(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("FASTDEPLOY_COLLECTOR")
	if bin == "" {
		t.Skip("FASTDEPLOY_COLLECTOR is not set: run `make e2e-test`, which builds the collector first")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("collector binary: %v", err)
	}
	return bin
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Process is a running collector.
type Process struct {
	cmd    *exec.Cmd
	output *lockedBuffer
	done   chan struct{}
	err    error
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Start writes config to a temporary file, starts the collector with it and
// waits until healthURL answers 200. The process is stopped at cleanup.
func Start(t testing.TB, bin, config, healthURL string) *Process {
	t.Helper()
	path := filepath.Join(t.TempDir(), "collector.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	return StartCommand(t, exec.Command(bin, "--config", path), healthURL)
}

// StartCommand starts cmd (a collector with arguments and environment of
// the caller's choosing, or another server under test), waits until
// healthURL answers 200, and stops it at cleanup. Its output is captured.
func StartCommand(t testing.TB, cmd *exec.Cmd, healthURL string) *Process {
	t.Helper()
	p, err := TryStartCommand(t, cmd, healthURL)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TryStartCommand is StartCommand returning the failure instead of ending
// the test, so a caller can retry, e.g. with other ports when one of its
// free ports was taken in the meantime. A process that did not become
// healthy is stopped before it returns.
func TryStartCommand(t testing.TB, cmd *exec.Cmd, healthURL string) (*Process, error) {
	t.Helper()
	name := filepath.Base(cmd.Path)
	p := &Process{cmd: cmd, output: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd.Stdout = p.output
	p.cmd.Stderr = p.output
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	if err := p.waitHealthy(healthURL, 60*time.Second); err != nil {
		p.Stop(t)
		return nil, fmt.Errorf("%s did not become healthy: %w\n%s", name, err, p.Output())
	}
	t.Cleanup(func() {
		p.Stop(t)
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.Output())
		}
	})
	return p, nil
}

func (p *Process) waitHealthy(url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ticker := time.NewTicker(50 * time.Millisecond)
	defer ticker.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("exited: %v", p.err)
		case <-ctx.Done():
			return fmt.Errorf("health at %s: %w", url, ctx.Err())
		case <-ticker.C:
		}
	}
}

// PID is the collector's process id, for reading its memory use.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Output is what the collector printed so far.
func (p *Process) Output() string { return p.output.String() }

// Stop sends SIGTERM and waits up to 30 s, then kills.
func (p *Process) Stop(t testing.TB) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Errorf("collector did not stop within 30s of SIGTERM")
	}
}

// Kill sends SIGKILL, as a crash would, and waits for the exit.
func (p *Process) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}
