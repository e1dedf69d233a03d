//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deploytrace"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/testutil/otlpsink"
)

func needAnsible(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("ansible-playbook"); err != nil {
		t.Skip("ansible-playbook not installed (Debian package ansible; make test installs it)")
	}
}

// writeFiles writes name -> content into a new directory and returns it.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600))
	}
	return dir
}

// deployer runs the bundled deployer with args and returns its exit code
// and combined output.
func deployer(t *testing.T, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, deployerBinary(t), args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), out.String()
	}
	require.NoError(t, err, out.String())
	return 0, out.String()
}

// The playbook exercises every kind of task result the bundled callback
// reports; the literal password is one the deployer does not know, so
// only the collector's secret_redaction can keep it from the export.
const e2ePlaybook = `
- name: configure shop
  hosts: all
  connection: local
  gather_facts: false
  tasks:
    - name: say hello
      ansible.builtin.debug:
        msg: "deploying {{ app_version }}"
    - name: optional probe
      ansible.builtin.command: /bin/false
      ignore_errors: true
    - name: never runs
      ansible.builtin.debug:
        msg: never
      when: false
    - name: prepare directories
      ansible.builtin.command: "echo mkdir {{ item }}"
      loop: [releases, shared]
      changed_when: false
    - name: write version
      ansible.builtin.command: "echo {{ app_version }}"
      notify: reload shop
    - name: log in to database
      ansible.builtin.command: "echo psql --password={{ db_password }} --password=lit3ral-pw-not-real -c 'select 1'"
      changed_when: false
  handlers:
    - name: reload shop
      ansible.builtin.debug:
        msg: reloaded
`

const e2eAnsiblePlan = `service: shop
environment: staging
vars:
  release: "2.0.0"
  db_password: {default: hunter2-not-real, secret: true}
steps:
  - name: prepare
    run: echo "preparing shop $release"
  - name: configure
    ansible:
      playbook: site.yml
      inventory: localhost,
      extra_vars:
        app_version: ${release}
        db_password: ${db_password}
    timeout: 5m
  - name: optional check
    run: echo "cache cold" >&2; exit 3
    continue_on_error: true
  - name: migrate
    run: echo "migration 7 failed" >&2; exit 4
  - name: switch traffic
    run: echo never
`

// TestDeployerBundledAnsibleTrace runs a plan with shell steps that succeed
// and fail and a real ansible-playbook step through the bundled callback,
// against the built collector, and checks the exported trace: deployment >
// step > subprocess > task spans, a span per host result and per loop item,
// states, statuses, times within the run, and no password anywhere.
func TestDeployerBundledAnsibleTrace(t *testing.T) {
	needAnsible(t)
	s := startStack(t, basicConfig)
	dir := writeFiles(t, map[string]string{"plan.yaml": e2eAnsiblePlan, "site.yml": e2ePlaybook})
	const depID = "e2e-ansible-cb-1"
	before := time.Now()
	code, out := deployer(t, "run", "--collector-url", s.receiver, "--deployment-id", depID,
		"--spool-dir", filepath.Join(t.TempDir(), "spool"), "--progress", "plain", filepath.Join(dir, "plan.yaml"))
	after := time.Now()
	t.Logf("deployer ran %s", after.Sub(before).Round(time.Millisecond))
	require.Equal(t, 1, code, "migrate failed, so did the deployment:\n%s", out)
	assert.Contains(t, out, "failed:   [localhost] optional probe: non-zero return code (ignored)", "per-task progress")
	assert.Contains(t, out, "ok:       [localhost] reload shop (handler)")
	assert.NotContains(t, out, "hunter2-not-real")

	const wantTasks = 9 // 7 task results, 2 loop items
	require.True(t, s.sink.WaitFor(60*time.Second, func() bool {
		sp := spansOf(s.sink, depID)
		return len(sp["deployment"]) == 1 && len(sp["ansible.task"]) >= wantTasks
	}), out)
	spans := spansOf(s.sink, depID)
	require.Len(t, spans["deployment"], 1)
	dep := spans["deployment"][0]
	assert.True(t, dep.ParentSpanID().IsEmpty(), "the deployment is the root")
	assert.Equal(t, ptrace.StatusCodeError, dep.Status().Code())
	assert.Equal(t, "deployment failed at step migrate", dep.Status().Message())
	assertWithin(t, dep, before, after)

	steps := map[string]ptrace.Span{}
	for _, st := range spans["step"] {
		steps[st.Name()] = st
		assert.Equal(t, dep.SpanID(), st.ParentSpanID(), st.Name())
		assertWithin(t, st, dep.StartTimestamp().AsTime(), dep.EndTimestamp().AsTime())
	}
	states := map[string]string{}
	for name, st := range steps {
		states[name] = attr(st, "fastdeploy.status")
	}
	assert.Equal(t, map[string]string{"prepare": "success", "configure": "success", "optional check": "failure",
		"migrate": "failure", "switch traffic": "skipped"}, states)
	assert.Equal(t, ptrace.StatusCodeError, steps["migrate"].Status().Code())
	assert.Equal(t, ptrace.StatusCodeOk, steps["configure"].Status().Code())

	subs := map[pcommon.SpanID]ptrace.Span{}
	for _, sub := range spans["subprocess"] {
		subs[sub.ParentSpanID()] = sub
	}
	require.Len(t, subs, 4, "every step that ran has a subprocess")
	configureSub, ok := subs[steps["configure"].SpanID()]
	require.True(t, ok, "the ansible step has a subprocess span")
	assert.Contains(t, attr(configureSub, "process.command_line"), "ansible-playbook")
	assert.Equal(t, "0", attr(configureSub, "process.exit.code"))
	assert.Equal(t, "4", attr(subs[steps["migrate"].SpanID()], "process.exit.code"))
	assert.Empty(t, spans["ansible.playbook"], "the bundled callback's tasks hang under the subprocess directly")

	type task struct {
		name, host, state, play string
		position, item          string
		handler                 bool
		status                  ptrace.StatusCode
	}
	var tasks []task
	byPosition := map[string]ptrace.Span{}
	for _, sp := range spans["ansible.task"] {
		if attr(sp, "fastdeploy.ansible.item") == "" {
			assert.Equal(t, configureSub.SpanID(), sp.ParentSpanID(), "task %s hangs under the ansible-playbook subprocess", sp.Name())
		}
		assertWithin(t, sp, configureSub.StartTimestamp().AsTime(), configureSub.EndTimestamp().AsTime())
		// community.general.opentelemetry's names and value formats.
		tk := task{name: attr(sp, "ansible.task.name"), host: attr(sp, "ansible.task.host.name"),
			state: attr(sp, "ansible.task.host.status"), play: attr(sp, "fastdeploy.ansible.play.name"),
			position: attr(sp, "fastdeploy.ansible.task.position"), item: attr(sp, "fastdeploy.ansible.item"),
			handler: attr(sp, "fastdeploy.ansible.handler") == "true", status: sp.Status().Code()}
		tasks = append(tasks, tk)
		if tk.item == "" {
			byPosition[tk.position] = sp
		}
	}
	// A loop item's span hangs under its task's span.
	for _, sp := range spans["ansible.task"] {
		if item := attr(sp, "fastdeploy.ansible.item"); item != "" {
			task, ok := byPosition[attr(sp, "fastdeploy.ansible.task.position")]
			require.True(t, ok, "item %s has its task's span", item)
			assert.Equal(t, task.SpanID(), sp.ParentSpanID(), "item %s hangs under its task", sp.Name())
		}
	}
	assert.ElementsMatch(t, []task{
		{"[localhost] configure shop: say hello", "localhost", "ok", "configure shop", "0", "", false, ptrace.StatusCodeOk},
		{"[localhost] configure shop: optional probe", "localhost", "ignored", "configure shop", "1", "", false, ptrace.StatusCodeError},
		{"[localhost] configure shop: never runs", "localhost", "skipped", "configure shop", "2", "", false, ptrace.StatusCodeUnset},
		{"[localhost] configure shop: prepare directories", "localhost", "ok", "configure shop", "3", "", false, ptrace.StatusCodeOk},
		{"[localhost] configure shop: prepare directories", "localhost", "ok", "configure shop", "3", "releases", false, ptrace.StatusCodeOk},
		{"[localhost] configure shop: prepare directories", "localhost", "ok", "configure shop", "3", "shared", false, ptrace.StatusCodeOk},
		{"[localhost] configure shop: write version", "localhost", "ok", "configure shop", "4", "", false, ptrace.StatusCodeOk},
		{"[localhost] configure shop: log in to database", "localhost", "ok", "configure shop", "5", "", false, ptrace.StatusCodeOk},
		{"[localhost] configure shop: reload shop", "localhost", "ok", "configure shop", "6", "", true, ptrace.StatusCodeOk},
	}, tasks)
	// Items lie within their task's span; tasks follow each other.
	loop := byPosition["3"]
	for _, sp := range spans["ansible.task"] {
		if attr(sp, "fastdeploy.ansible.item") != "" {
			assertWithin(t, sp, loop.StartTimestamp().AsTime(), loop.EndTimestamp().AsTime())
		}
	}
	for p := 1; p <= 6; p++ {
		prev, cur := byPosition[strconv.Itoa(p-1)], byPosition[strconv.Itoa(p)]
		assert.False(t, cur.StartTimestamp().AsTime().Before(prev.EndTimestamp().AsTime()), "task %d starts after task %d ended", p, p-1)
	}
	assert.Equal(t, "non-zero return code", byPosition["1"].Status().Message())
	assert.Equal(t, "1", attr(byPosition["1"], "ansible.task.result"), "the module's rc")
	assert.Equal(t, "ansible.builtin.command", attr(byPosition["1"], "ansible.task.module"))
	assert.Equal(t, "non-zero return code", attr(byPosition["1"], "ansible.task.message"))
	assert.Contains(t, attr(byPosition["1"], "ansible.task.args.value"), "/bin/false")

	exported := s.sink.ExportedJSON(t)
	assert.NotContains(t, exported, "hunter2-not-real", "the secret extra var never leaves")
	assert.NotContains(t, exported, "lit3ral-pw-not-real", "a password-looking argument never leaves")
	assert.Contains(t, exported, "psql --password=", "the command itself is exported")
}

// assertWithin checks that a span lies within [from, to].
func assertWithin(t *testing.T, sp ptrace.Span, from, to time.Time) {
	t.Helper()
	start, end := sp.StartTimestamp().AsTime(), sp.EndTimestamp().AsTime()
	assert.False(t, end.Before(start), "%s ends after it starts", sp.Name())
	assert.False(t, start.Before(from), "%s starts at %s, not before %s", sp.Name(), start, from)
	assert.False(t, end.After(to), "%s ends at %s, not after %s", sp.Name(), end, to)
}

const gatedPlaybook = `
- name: configure shop
  hosts: all
  connection: local
  gather_facts: false
  tasks:
    - name: say hello
      ansible.builtin.debug:
        msg: hello
    - name: prepare directories
      ansible.builtin.command: "echo mkdir {{ item }}"
      loop: [releases, shared]
      changed_when: false
`

// TestDeployerCollectorKilledMidRun kills the collector while a step runs
// (the step waits on a fifo the test controls), lets the deployment finish
// into the spool, restarts the collector on the same storage and port, runs
// `fastdeploy flush`, and counts at the sink: every span and every event's
// log record arrives exactly once, and the trace is complete.
func TestDeployerCollectorKilledMidRun(t *testing.T) {
	needAnsible(t)
	deployerBin := deployerBinary(t)
	c := newStorageCollector(t, logsPipeline)
	sink := c.sink
	receiverURL := fmt.Sprintf("http://127.0.0.1:%d", c.receiverPort)

	gate := filepath.Join(t.TempDir(), "gate")
	require.NoError(t, syscall.Mkfifo(gate, 0o600))
	plan := fmt.Sprintf(`service: shop
environment: staging
env: {GATE: %q}
steps:
  - name: before
    run: echo before
  - name: wait for gate
    run: read line < "$GATE" && echo "gate says $line"
  - name: configure
    ansible:
      playbook: site.yml
      inventory: localhost,
  - name: after
    run: echo after
`, gate)
	dir := writeFiles(t, map[string]string{"plan.yaml": plan, "site.yml": gatedPlaybook})
	spool := filepath.Join(t.TempDir(), "spool")
	const depID = "e2e-killed-1"

	first := c.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	run := exec.CommandContext(ctx, deployerBin, "run", "--collector-url", receiverURL, "--deployment-id", depID,
		"--spool-dir", spool, "--delivery-timeout", "2s", "--progress", "plain", filepath.Join(dir, "plan.yaml"))
	var out bytes.Buffer
	run.Stdout, run.Stderr = &out, &out
	require.NoError(t, run.Start())
	exited := make(chan error, 1)
	go func() { exited <- run.Wait() }()

	// Opening the fifo for writing returns once the step has opened it.
	opened := make(chan *os.File, 1)
	go func() {
		f, err := os.OpenFile(gate, os.O_WRONLY, 0)
		if err == nil {
			opened <- f
		}
	}()
	var gateW *os.File
	select {
	case gateW = <-opened:
	case err := <-exited:
		t.Fatalf("deployer exited before the gate step: %v\n%s", err, out.String())
	case <-time.After(2 * time.Minute):
		t.Fatalf("the gate step never started\n%s", out.String())
	}
	// What the deployer sent so far (deployment.started, the first step's
	// two events, the gate step's start: 4 log records, and the first
	// step's span and subprocess span) is exported before the kill: the
	// batch processor acknowledges what it holds in memory, which a
	// SIGKILL loses (see config/loadtest.yaml for a crash-safe pipeline).
	require.True(t, sink.WaitFor(30*time.Second, func() bool { return len(sink.Logs()) >= 4 && len(sink.Spans()) >= 2 }),
		"events before the kill exported: %d log records, %d spans\n%s", len(sink.Logs()), len(sink.Spans()), out.String())
	first.Kill()

	_, err := gateW.WriteString("open\n")
	require.NoError(t, err)
	require.NoError(t, gateW.Close())
	select {
	case err := <-exited:
		require.NoError(t, err, "the deployment succeeds without a collector:\n%s", out.String())
	case <-ctx.Done():
		t.Fatalf("deployer did not finish\n%s", out.String())
	}
	entries, err := os.ReadDir(spool)
	require.NoError(t, err)
	require.NotEmpty(t, entries, "what the collector missed was spooled:\n%s", out.String())

	c.Start(t)
	code, flushOut := deployer(t, "flush", "--collector-url", receiverURL, "--spool-dir", spool)
	require.Equal(t, 0, code, flushOut)
	t.Log(strings.TrimSpace(flushOut))

	// deployment + 4 steps + 4 subprocesses + 2 task results + 2 items.
	const wantSpans = 1 + 4 + 4 + 4
	// deployment started/finished, 4 steps started/finished, 4 task lines.
	const wantLogs = 2 + 8 + 4
	require.True(t, sink.WaitFor(60*time.Second, func() bool {
		return len(sink.Spans()) >= wantSpans && len(sink.Logs()) >= wantLogs
	}), "got %d spans and %d log records: %s", len(sink.Spans()), len(sink.Logs()), describeSpans(sink.Spans()))
	// A second flush finds nothing left to send.
	code, flushOut = deployer(t, "flush", "--collector-url", receiverURL, "--spool-dir", spool)
	require.Equal(t, 0, code, flushOut)
	assert.Contains(t, flushOut, "flushed 0 requests")

	trace := deploytrace.DeploymentTraceID(depID).String()
	spanSeen := map[string]int{}
	kinds := map[string]int{}
	var dep ptrace.Span
	for _, s := range sink.Spans() {
		assert.Equal(t, trace, s.Span.TraceID().String())
		spanSeen[s.Span.SpanID().String()]++
		k := attr(s.Span, "fastdeploy.span.kind")
		kinds[k]++
		if k == "deployment" {
			dep = s.Span
		}
	}
	assert.Len(t, spanSeen, wantSpans, "every span of the deployment")
	for id, n := range spanSeen {
		assert.Equal(t, 1, n, "span %s exported once", id)
	}
	assert.Equal(t, map[string]int{"deployment": 1, "step": 4, "subprocess": 4, "ansible.task": 4}, kinds)
	assert.Equal(t, ptrace.StatusCodeOk, dep.Status().Code())

	logSeen := map[string]int{}
	for _, l := range sink.Logs() {
		action, _ := l.Record.Attributes().Get("event.action")
		logSeen[action.AsString()+" "+l.Record.SpanID().String()]++
	}
	assert.Len(t, logSeen, wantLogs, "every event: %v", logSeen)
	for k, n := range logSeen {
		assert.Equal(t, 1, n, "event %s accepted once", k)
	}
}

func describeSpans(spans []otlpsink.Span) string {
	var b strings.Builder
	for _, s := range spans {
		fmt.Fprintf(&b, "\n  %s %s %q parent %s [%s..%s]", s.Span.SpanID(), attr(s.Span, "fastdeploy.span.kind"), s.Span.Name(),
			s.Span.ParentSpanID(), s.Span.StartTimestamp().AsTime().Format(time.StampMicro), s.Span.EndTimestamp().AsTime().Format(time.StampMicro))
	}
	return b.String()
}
