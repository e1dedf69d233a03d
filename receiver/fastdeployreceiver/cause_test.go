package fastdeployreceiver

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployattr"
)

// TestFailedStepCarriesItsCause: a failed step's stderr tail is on its span
// (status description: message and last line; exception event: the whole
// tail) and on its log record; an ignored failure is marked and is not the
// deployment's failed step; a killed step's signal is recorded.
func TestFailedStepCarriesItsCause(t *testing.T) {
	t.Parallel()
	tr := newTestReceiver(t, nil)
	step := func(id, name string, pos int, extra string) string {
		return ev("step.finished", id, "2026-11-27T11:00:05Z",
			`,"step":{"name":"`+name+`","position":`+string(rune('0'+pos))+`,"started":"2026-11-27T11:00:01Z",`+extra+`}`)
	}
	rep := tr.events(t,
		ev("deployment.started", "a", "2026-11-27T11:00:00Z", ""),
		step("b", "warm cache", 0, `"state":"failure","exit_code":3,"command":"sh -c warm","message":"exit status 3","ignored":true,"stderr_tail":"cache unavailable"`),
		step("c", "migrate", 1, `"state":"failure","exit_code":1,"command":"sh -c migrate","message":"exit status 1","stderr_tail":"psql: connecting\nERROR: relation orders already exists"`),
		step("d", "oom", 2, `"state":"failure","exit_signal":"SIGKILL","command":"sh -c big","message":"killed by SIGKILL"`),
		strings.Replace(ev("deployment.finished", "e", "2026-11-27T11:00:10Z", ""), `"success"`, `"failure"`, 1),
	)
	require.Equal(t, 200, rep.status, rep.body)

	byName := map[string]ptrace.Span{}
	for _, s := range allSpans(tr.traces) {
		byName[s.Name()] = s
	}
	migrate := byName["migrate"]
	assert.Equal(t, ptrace.StatusCodeError, migrate.Status().Code())
	assert.Equal(t, "exit status 1: ERROR: relation orders already exists", migrate.Status().Message())
	require.Equal(t, 1, migrate.Events().Len())
	exc := migrate.Events().At(0)
	assert.Equal(t, "exception", exc.Name())
	msg, _ := exc.Attributes().Get("exception.message")
	assert.Equal(t, "psql: connecting\nERROR: relation orders already exists", msg.Str())
	typ, _ := exc.Attributes().Get("exception.type")
	assert.Equal(t, "exit_code_1", typ.Str())
	_, ignored := migrate.Attributes().Get(deployattr.StepIgnored)
	assert.False(t, ignored)

	warm := byName["warm cache"]
	v, ok := warm.Attributes().Get(deployattr.StepIgnored)
	require.True(t, ok)
	assert.True(t, v.Bool())

	oom := byName["oom"]
	assert.Equal(t, "signal_SIGKILL", spanAttr(oom, deployattr.ErrorType))
	assert.Equal(t, 0, oom.Events().Len(), "no tail, no exception event")
	sub := byName["sh"]
	for _, s := range allSpans(tr.traces) {
		if s.ParentSpanID() == oom.SpanID() {
			sub = s
		}
	}
	assert.Equal(t, "SIGKILL", spanAttr(sub, deployattr.ProcessExitSignal))
	assert.Equal(t, "killed by SIGKILL", sub.Status().Message())

	// The ignored failure did not end the deployment; the last real one did.
	assert.Equal(t, "deployment failed at step oom", byName["deploy api"].Status().Message())

	logs := map[string]plog.LogRecord{}
	for _, lr := range allLogs(tr.logs) {
		if name, ok := lr.Attributes().Get(deployattr.LogStepName); ok {
			logs[name.Str()] = lr
		}
	}
	m := logs["migrate"]
	assert.Equal(t, plog.SeverityNumberError, m.SeverityNumber())
	assert.Equal(t, "step 2 migrate of deployment 7 finished: failure after 4s: exit status 1: ERROR: relation orders already exists", m.Body().Str())
	tail, _ := m.Attributes().Get("exception.message")
	assert.Equal(t, "psql: connecting\nERROR: relation orders already exists", tail.Str())
	w := logs["warm cache"]
	assert.Equal(t, plog.SeverityNumberWarn, w.SeverityNumber(), "an ignored failure is a warning")
	assert.Contains(t, w.Body().Str(), "(ignored: continue_on_error)")
}

// TestStepCauseIsBounded: a long last line is cut on a rune boundary.
func TestStepCauseIsBounded(t *testing.T) {
	long := strings.Repeat("é", 400)
	step := stepWith("exit status 1", "first\n"+long)
	got := stepCause(&step)
	assert.LessOrEqual(t, len(got), maxStatusMessage+len("…"))
	assert.True(t, strings.HasPrefix(got, "exit status 1: éé"))
	assert.True(t, strings.HasSuffix(got, "é…"), "cut between characters")
	// A message already holding the line does not repeat it.
	step = stepWith("exit status 2: task failed: boom", "boom")
	assert.Equal(t, "exit status 2: task failed: boom", stepCause(&step))
}

// TestLoopItemsNestUnderTheirTask: a loop item's span is a child of its
// task's span on that host, named by the item's label like the terminal
// line; without a label (no_log), by its index.
func TestLoopItemsNestUnderTheirTask(t *testing.T) {
	t.Parallel()
	tr := newTestReceiver(t, nil)
	tr.events(t, ev("deployment.started", "a", "2026-11-27T11:00:00Z", ""))
	lines := strings.Join([]string{
		`{"position":3,"name":"prepare","state":"success","host":"web1","item_index":0,"item":"releases","start":"2026-11-27T11:00:02Z","end":"2026-11-27T11:00:03Z","misc":{}}`,
		`{"position":3,"name":"prepare","state":"success","host":"web1","item_index":1,"start":"2026-11-27T11:00:03Z","end":"2026-11-27T11:00:04Z","misc":{}}`,
		`{"position":3,"name":"prepare","state":"success","host":"web1","start":"2026-11-27T11:00:02Z","end":"2026-11-27T11:00:04Z","misc":{"results":[{},{}]}}`,
	}, "\n")
	rep := tr.post(t, pathAnsible, "application/x-ndjson", lines, headerDeployment, "7")
	require.Equal(t, 200, rep.status, rep.body)
	tr.events(t, ev("deployment.finished", "b", "2026-11-27T11:00:10Z", ""))
	byName := map[string]ptrace.Span{}
	for _, s := range allSpans(tr.traces) {
		byName[s.Name()] = s
	}
	require.Contains(t, byName, "prepare")
	require.Contains(t, byName, "prepare (item releases)")
	require.Contains(t, byName, "prepare (item 1)")
	task := byName["prepare"]
	assert.Equal(t, task.SpanID(), byName["prepare (item releases)"].ParentSpanID())
	assert.Equal(t, task.SpanID(), byName["prepare (item 1)"].ParentSpanID())
	assert.NotEqual(t, byName["prepare (item releases)"].SpanID(), byName["prepare (item 1)"].SpanID())
}
