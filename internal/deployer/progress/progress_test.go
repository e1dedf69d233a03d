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

// TestLiveLayoutAndSummary: output sits under its step's header line and
// above its result; the live line names the running task; the summary
// names the failed step, how it ended, its stderr tail and the trace link.
func TestLiveLayoutAndSummary(t *testing.T) {
	var buf syncBuf
	p := newPrinter(&buf, true, time.Hour) // redraws only on events
	p.TraceURL = func(id string) string { return "http://ui/trace/" + id }
	p.StepStarted(0, 2, "configure")
	p.Activity(0, "TASK [web1] write config")
	assert.Regexp(t, `\[1/2\] configure  \d+ms  TASK \[web1\] write config`, buf.String())
	p.Activity(1, "TASK [web1] stale") // not the running step: ignored
	p.Output(0, "ansible", "ok:       [web1] write config")
	p.StepFinished(runner.StepResult{Position: 0, Name: "configure", State: "success", Duration: time.Second}, 2)
	p.StepStarted(1, 2, "migrate")
	p.Output(1, "stdout", "applying")
	p.Output(1, "stderr", "ERROR: boom")
	code := 3
	failed := runner.StepResult{Position: 1, Name: "migrate", State: "failure", Duration: time.Second, ExitCode: &code,
		Message: "exit status 3", StderrTail: []string{"psql: connecting", "ERROR: boom"}}
	p.StepFinished(failed, 2)
	p.Finished(runner.Result{DeploymentID: "d9", TraceID: "t1", Status: "failure", Started: time.Unix(0, 0), Finished: time.Unix(3, 0),
		Steps: []runner.StepResult{{Name: "configure", State: "success", Duration: time.Second}, failed}})
	p.Close()
	var lines []string
	for _, l := range strings.Split(buf.String(), "\n") {
		// What stays on screen: the text after the last line clear.
		if i := strings.LastIndex(l, "\x1b[2K"); i >= 0 {
			l = l[i+len("\x1b[2K"):]
		}
		lines = append(lines, l)
	}
	screen := strings.Join(lines, "\n")
	assert.Contains(t, screen, `▸ [1/2] configure
  │ ok:       [web1] write config
✔ [1/2] configure: success in 1.0s
▸ [2/2] migrate
  │ applying
  │ ! ERROR: boom
✘ [2/2] migrate: failure in 1.0s (exit status 3)
`)
	assert.Contains(t, screen, `deployment d9: failure in 3.0s at step [2/2] migrate (trace t1)
  migrate: exit code 3
  last lines of stderr:
    psql: connecting
    ERROR: boom
  trace: http://ui/trace/t1
`)
	assert.NotContains(t, screen, "stale")
}

func TestHow(t *testing.T) {
	code := 1
	for _, tc := range []struct {
		r    runner.StepResult
		want string
	}{
		{runner.StepResult{State: "failure", ExitCode: &code, Message: "exit status 1"}, "exit code 1"},
		{runner.StepResult{State: "failure", Signal: "SIGKILL", Message: "killed by SIGKILL"}, "killed by SIGKILL"},
		{runner.StepResult{State: "timeout", Signal: "SIGTERM", Message: "step timeout of 5s reached"}, "step timeout of 5s reached, killed by SIGTERM"},
		{runner.StepResult{State: "failure", Message: "exec: \"nope\": executable file not found in $PATH"}, "exec: \"nope\": executable file not found in $PATH"},
		{runner.StepResult{State: "failure", ExitCode: &code, Message: `exit status 1: task "x" failed on h: boom`}, `exit code 1, task "x" failed on h: boom`},
	} {
		assert.Equal(t, tc.want, How(tc.r))
	}
}
