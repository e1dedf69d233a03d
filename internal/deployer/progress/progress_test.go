package progress

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployer/runner"
)

func TestPlainLines(t *testing.T) {
	var buf bytes.Buffer
	p := New(&buf, false)
	defer p.Close()
	p.StepStarted(0, 2, "build")
	p.Output(0, "stdout", "compiling")
	p.Output(0, "stderr", "warning: x")
	p.StepFinished(runner.StepResult{Position: 0, Name: "build", State: "success", Duration: 1500 * time.Millisecond}, 2)
	p.StepFinished(runner.StepResult{Position: 1, Name: "ship", State: "skipped"}, 2)
	p.Finished(runner.Result{DeploymentID: "d1", TraceID: "abc", Status: "success", Steps: []runner.StepResult{
		{Name: "build", State: "success", Duration: 1500 * time.Millisecond}, {Name: "ship", State: "skipped"},
	}, Started: time.Unix(0, 0), Finished: time.Unix(2, 0)})
	assert.Equal(t, `[1/2] build: started
[1/2] build | compiling
[1/2] build | ! warning: x
[1/2] build: success in 1.5s
[2/2] ship: skipped

STEP   STATE    DURATION
build  success  1.5s
ship   skipped  -

deployment d1: success in 2.0s (trace abc)
`, buf.String())
	assert.NotContains(t, buf.String(), "\x1b", "no escape codes off a terminal")
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestLiveStatusLine(t *testing.T) {
	var buf syncBuf
	p := newPrinter(&buf, true, time.Millisecond)
	p.StepStarted(1, 3, "migrate")
	assert.Eventually(t, func() bool { return strings.Count(buf.String(), "[2/3] migrate") >= 3 }, 2*time.Second, time.Millisecond, "the status line is redrawn")
	p.Output(1, "stdout", "applying 0042")
	_, _ = p.Write([]byte("a log line\n"))
	p.StepFinished(runner.StepResult{Position: 1, Name: "migrate", State: "failure", Duration: time.Second, Message: "exit status 1"}, 3)
	p.Close()
	out := buf.String()
	assert.Contains(t, out, "\r\x1b[2K  │ applying 0042\n")
	assert.Contains(t, out, "\r\x1b[2Ka log line\n")
	assert.Contains(t, out, "✘ [2/3] migrate: failure in 1.0s (exit status 1)\n")
	assert.True(t, strings.HasSuffix(out, "(exit status 1)\n"), "status line cleared at the end: %q", out[max(0, len(out)-80):])
}
