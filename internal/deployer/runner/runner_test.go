package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployer/ansible"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployer/delivery"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployer/mask"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployer/plan"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployevent"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/deploytrace"
)

type sink struct {
	mu   sync.Mutex
	reqs []*delivery.Request
}

func (s *sink) Enqueue(r *delivery.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs = append(s.reqs, r)
}

func (s *sink) events(t *testing.T) []deployevent.Event {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []deployevent.Event
	for _, r := range s.reqs {
		if r.Path != delivery.PathEvents {
			continue
		}
		var ev deployevent.Event
		require.NoError(t, json.Unmarshal([]byte(r.Body), &ev))
		require.NoError(t, ev.Validate())
		out = append(out, ev)
	}
	return out
}

// configureAnsible is the one Ansible request of step 0 "configure" of
// deployment dep-42 (service shop), its routing headers and content type
// checked: one request per step.
func (s *sink) configureAnsible(t *testing.T) *delivery.Request {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var ans []*delivery.Request
	for _, r := range s.reqs {
		if r.Path == delivery.PathAnsible {
			ans = append(ans, r)
		}
	}
	require.Len(t, ans, 1, "one request per step")
	trace := deploytrace.DeploymentTraceID("dep-42")
	assert.Equal(t, map[string]string{
		"X-Fastdeploy-Deployment":    "dep-42",
		"X-Fastdeploy-Step":          "configure",
		"X-Fastdeploy-Step-Position": "0",
		"X-Fastdeploy-Service":       "shop",
		"traceparent":                deploytrace.FormatTraceparent(trace, deploytrace.SubprocessSpanID(trace, "dep-42", "configure", 0)),
	}, ans[0].Header)
	assert.Equal(t, delivery.ContentTypeNDJSON, ans[0].ContentType)
	return ans[0]
}

type progress struct {
	mu       sync.Mutex
	out      []string
	started  chan int
	finished []StepResult
	activity []string
}

func (p *progress) StepStarted(position, total int, name string) {
	if p.started != nil {
		p.started <- position
	}
}

func (p *progress) Output(position int, stream, line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.out = append(p.out, fmt.Sprintf("%d %s %s", position, stream, line))
}

func (p *progress) StepFinished(r StepResult, total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.finished = append(p.finished, r)
}
func (p *progress) Finished(Result) {}

func (p *progress) Activity(position int, text string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.activity = append(p.activity, fmt.Sprintf("%d %s", position, text))
}

func (p *progress) activities() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.activity...)
}

func (p *progress) lines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.out...)
}

func parse(t *testing.T, y string) *plan.Plan {
	t.Helper()
	p, err := plan.Parse("plan.yaml", []byte(y))
	require.NoError(t, err)
	return p
}

func opts(t *testing.T, p *plan.Plan, s *sink, pr *progress) Options {
	t.Helper()
	vals, err := p.Resolve(nil)
	require.NoError(t, err)
	return Options{
		Plan: p, PlanPath: filepath.Join(t.TempDir(), "plan.yaml"), Vars: vals, DeploymentID: "dep-42", User: "alice", Origin: "cli",
		Sink: s, Progress: pr, Masker: mask.New(), KillGrace: 200 * time.Millisecond,
		Environ: []string{"PATH=" + os.Getenv("PATH"), "OTEL_RESOURCE_ATTRIBUTES=team=ops"},
	}
}

func TestRunSuccessEventsAndTraceContext(t *testing.T) {
	p := parse(t, `service: web
environment: staging
revision: abc
vars: {release: "1.0"}
steps:
  - name: one
    run: echo "tp=$TRACEPARENT"; echo "res=$OTEL_RESOURCE_ATTRIBUTES"; echo "rel=$release"; echo oops >&2
  - name: two
    command: [echo, "v${release}"]
`)
	s, pr := &sink{}, &progress{}
	o := opts(t, p, s, pr)
	o.Context = map[string]any{"ticket": "OPS-1"}
	res := Run(context.Background(), o)
	assert.Equal(t, deployevent.StatusSuccess, res.Status)
	require.Len(t, res.Steps, 2)
	trace := deploytrace.DeploymentTraceID("dep-42")
	assert.Equal(t, trace.String(), res.TraceID)
	wantTP := deploytrace.FormatTraceparent(trace, deploytrace.SubprocessSpanID(trace, "dep-42", "one", 0))
	assert.Equal(t, []string{
		"0 stdout tp=" + wantTP,
		"0 stdout res=team=ops,deployment.id=dep-42,deployment.environment.name=staging",
		"0 stdout rel=1.0",
		"0 stderr oops",
		"1 stdout v1.0",
	}, sortedByStep(pr.lines()))

	evs := s.events(t)
	var types []string
	for _, ev := range evs {
		types = append(types, ev.Type)
		assert.Equal(t, deployevent.ID("dep-42"), ev.Deployment.ID)
		assert.Equal(t, "web", ev.Deployment.Service)
		assert.Equal(t, "abc", ev.Deployment.Revision)
		assert.Equal(t, "alice", ev.Deployment.User)
		assert.NotEmpty(t, ev.ID)
	}
	assert.Equal(t, []string{"deployment.started", "step.started", "step.finished", "step.started", "step.finished", "deployment.finished"}, types)
	assert.Equal(t, deployevent.StatusSuccess, evs[5].Deployment.Status)
	// The finish alone describes the deployment, for a collector that did
	// not see its start.
	fin0 := evs[5].Deployment
	assert.Equal(t, map[string]any{"ticket": "OPS-1"}, fin0.Context)
	assert.Equal(t, "staging", fin0.Environment)
	require.NotNil(t, fin0.Started)
	assert.True(t, fin0.Started.Equal(*evs[0].Deployment.Started))
	assert.Empty(t, evs[0].Traceparent, "no incoming trace: the receiver derives ids itself")
	assert.Equal(t, deploytrace.FormatTraceparent(trace, deploytrace.DeploymentSpanID(trace, "dep-42")), evs[1].Traceparent)
	fin := evs[2].Step
	assert.Equal(t, "one", fin.Name)
	assert.Equal(t, deployevent.StatusSuccess, fin.State)
	require.NotNil(t, fin.ExitCode)
	assert.Zero(t, *fin.ExitCode)
	require.NotNil(t, fin.PID)
	assert.Positive(t, *fin.PID)
	assert.False(t, fin.Finished.Before(*fin.Started))
	assert.Equal(t, "echo v1.0", evs[4].Step.Command)
	assert.True(t, evs[5].Deployment.Finished.After(*evs[0].Deployment.Started) || evs[5].Deployment.Finished.Equal(*evs[0].Deployment.Started))
	ids := map[string]bool{}
	for _, ev := range evs {
		assert.False(t, ids[ev.ID], "delivery ids are unique per event")
		ids[ev.ID] = true
	}
}

func sortedByStep(lines []string) []string {
	// stdout and stderr are read concurrently; order is kept per stream.
	var out, errs []string
	for _, l := range lines {
		if strings.Contains(l, " stderr ") {
			errs = append(errs, l)
		} else {
			out = append(out, l)
		}
	}
	var res []string
	for _, l := range out {
		if strings.HasPrefix(l, "1 ") && len(errs) > 0 {
			res = append(res, errs...)
			errs = nil
		}
		res = append(res, l)
	}
	return append(res, errs...)
}

func TestRunIncomingTraceparent(t *testing.T) {
	p := parse(t, "service: web\nenvironment: prod\nsteps: [{name: a, run: 'echo $TRACEPARENT'}]\n")
	s, pr := &sink{}, &progress{}
	o := opts(t, p, s, pr)
	o.Parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	res := Run(context.Background(), o)
	assert.Equal(t, "0af7651916cd43dd8448eb211c80319c", res.TraceID)
	evs := s.events(t)
	assert.Equal(t, o.Parent, evs[0].Traceparent, "deployment joins the caller's trace")
	assert.Contains(t, pr.lines()[0], "0af7651916cd43dd8448eb211c80319c")
}

func TestRunFailureSkipsTheRest(t *testing.T) {
	p := parse(t, `service: web
environment: prod
steps:
  - {name: ok, run: "true"}
  - {name: optional, run: "exit 3", continue_on_error: true}
  - {name: broken, command: [sh, -c, "echo bad >&2; exit 1"]}
  - {name: never, run: "echo never"}
  - {name: missing binary, command: [/nonexistent/tool]}
`)
	s, pr := &sink{}, &progress{}
	res := Run(context.Background(), opts(t, p, s, pr))
	assert.Equal(t, deployevent.StatusFailure, res.Status)
	var states []string
	for _, st := range res.Steps {
		states = append(states, st.State)
	}
	assert.Equal(t, []string{"success", "failure", "failure", "skipped", "skipped"}, states)
	assert.Equal(t, "exit status 3", res.Steps[1].Message)
	assert.Equal(t, 1, *res.Steps[2].ExitCode)
	assert.NotContains(t, strings.Join(pr.lines(), "\n"), "never")
	evs := s.events(t)
	last := evs[len(evs)-1]
	assert.Equal(t, deployevent.StatusFailure, last.Deployment.Status)
	skipped := evs[len(evs)-2]
	assert.Equal(t, deployevent.TypeStepFinished, skipped.Type)
	assert.Equal(t, deployevent.StateSkipped, skipped.Step.State)
	assert.Equal(t, 4, skipped.Step.Position)
	assert.Equal(t, "not run: step broken failed", skipped.Step.Message)

	// The ignored failure is marked as such, in the result and the event.
	assert.True(t, res.Steps[1].Ignored)
	assert.False(t, res.Steps[1].Failed())
	assert.False(t, res.Steps[2].Ignored)
	assert.Equal(t, "broken", res.FailedStep().Name)
	assert.Equal(t, []string{"bad"}, res.Steps[2].StderrTail)
	var optional, broken *deployevent.Step
	for _, ev := range evs {
		if ev.Type == deployevent.TypeStepFinished && ev.Step.Name == "optional" {
			optional = ev.Step
		}
		if ev.Type == deployevent.TypeStepFinished && ev.Step.Name == "broken" {
			broken = ev.Step
		}
	}
	require.NotNil(t, optional)
	require.NotNil(t, broken)
	assert.True(t, optional.Ignored)
	assert.False(t, broken.Ignored)
	assert.Equal(t, "bad", broken.StderrTail)
}

// TestStderrTailIsBoundedAndMasked: the last lines only, each cut, the
// total within what an event may carry, secrets masked.
func TestStderrTailIsBoundedAndMasked(t *testing.T) {
	p := parse(t, `service: web
environment: prod
vars: {db_password: {default: tail-secret-value, secret: true}}
steps:
  - name: noisy
    run: |
      i=0; while [ $i -lt 50 ]; do echo "line $i" >&2; i=$((i+1)); done
      echo "ok on stdout"
      head -c 3000 /dev/zero | tr '\0' x >&2; echo >&2
      echo "ERROR: cannot connect with password $db_password" >&2
      exit 4
`)
	s, pr := &sink{}, &progress{}
	o := opts(t, p, s, pr)
	o.Masker = mask.New("tail-secret-value")
	res := Run(context.Background(), o)
	tail := res.Steps[0].StderrTail
	require.NotEmpty(t, tail)
	assert.LessOrEqual(t, len(tail), 10)
	assert.Equal(t, "ERROR: cannot connect with password ***", tail[len(tail)-1])
	assert.Equal(t, 400+len("…"), len(tail[len(tail)-2]), "a long line is cut")
	assert.NotContains(t, TailText(tail), "ok on stdout")
	assert.LessOrEqual(t, len(TailText(tail)), 2048)
	evs := s.events(t)
	fin := evs[len(evs)-2]
	assert.Equal(t, TailText(tail), fin.Step.StderrTail)
	assert.NotContains(t, fin.Step.StderrTail, "tail-secret-value")
	assert.Equal(t, 4, *fin.Step.ExitCode)
}

// TestKilledStepRecordsTheSignal: a process killed by a signal has no
// exit code; its signal is what the result and the event say.
func TestKilledStepRecordsTheSignal(t *testing.T) {
	p := parse(t, "service: web\nenvironment: prod\nsteps: [{name: oom, run: 'echo dying >&2; kill -KILL $$'}]\n")
	s := &sink{}
	res := Run(context.Background(), opts(t, p, s, &progress{}))
	st := res.Steps[0]
	assert.Equal(t, deployevent.StatusFailure, st.State)
	assert.Equal(t, "SIGKILL", st.Signal)
	assert.Nil(t, st.ExitCode)
	assert.Equal(t, "killed by SIGKILL", st.Message)
	evs := s.events(t)
	fin := evs[len(evs)-2]
	assert.Equal(t, "SIGKILL", fin.Step.ExitSignal)
	assert.Nil(t, fin.Step.ExitCode)
	assert.Equal(t, "dying", fin.Step.StderrTail)
}

func TestRunCommandNotFound(t *testing.T) {
	p := parse(t, "service: web\nenvironment: prod\nsteps: [{name: a, command: [/nonexistent/tool]}]\n")
	s := &sink{}
	res := Run(context.Background(), opts(t, p, s, &progress{}))
	assert.Equal(t, deployevent.StatusFailure, res.Status)
	assert.Contains(t, res.Steps[0].Message, "no such file or directory")
	evs := s.events(t)
	assert.Equal(t, []string{"deployment.started", "step.started", "step.finished", "deployment.finished"},
		[]string{evs[0].Type, evs[1].Type, evs[2].Type, evs[3].Type})
}

// pidAlive reports whether a process still runs. A killed orphan stays a
// zombie until init reaps it, which counts as dead.
func pidAlive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	rest := stat[bytes.LastIndexByte(stat, ')')+1:]
	return !bytes.HasPrefix(bytes.TrimSpace(rest), []byte("Z"))
}

func readPIDs(t *testing.T, path string) []int {
	t.Helper()
	var pids []int
	require.Eventually(t, func() bool {
		data, err := os.ReadFile(path)
		if err != nil {
			return false
		}
		pids = nil
		for _, f := range strings.Fields(string(data)) {
			n, err := strconv.Atoi(f)
			require.NoError(t, err)
			pids = append(pids, n)
		}
		return len(pids) >= 2
	}, 5*time.Second, 5*time.Millisecond)
	return pids
}

func TestStepTimeoutKillsTheProcessGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pids")
	// The child ignores SIGTERM: only SIGKILL after the grace stops it.
	p := parse(t, fmt.Sprintf(`service: web
environment: prod
steps:
  - name: hang
    run: "sh -c 'trap \"\" TERM; echo $$ >> %s; while :; do sleep 0.05; done' & echo $$ >> %s; wait"
    timeout: 300ms
  - name: after
    run: "true"
`, pidFile, pidFile))
	s := &sink{}
	start := time.Now()
	res := Run(context.Background(), opts(t, p, s, &progress{}))
	assert.Less(t, time.Since(start), 3*time.Second)
	assert.Equal(t, deployevent.StatusTimeout, res.Status)
	assert.Equal(t, deployevent.StatusTimeout, res.Steps[0].State)
	assert.Equal(t, "step timeout of 300ms reached", res.Steps[0].Message)
	assert.Equal(t, deployevent.StateSkipped, res.Steps[1].State)
	for _, pid := range readPIDs(t, pidFile) {
		assert.Eventually(t, func() bool { return !pidAlive(pid) }, 2*time.Second, 10*time.Millisecond, "pid %d survived", pid)
	}
}

func TestPlanTimeout(t *testing.T) {
	// The timeout is long enough that step a ends well inside it on a
	// busy machine (starting a shell can take a while there), and step b
	// runs until the timeout stops it.
	p := parse(t, "service: web\nenvironment: prod\ntimeout: 1500ms\nsteps:\n  - {name: a, run: 'true'}\n  - {name: b, run: 'sleep 60'}\n  - {name: c, run: 'true'}\n")
	res := Run(context.Background(), opts(t, p, &sink{}, &progress{}))
	assert.Equal(t, deployevent.StatusTimeout, res.Status)
	assert.Equal(t, []string{"success", "timeout", "skipped"}, []string{res.Steps[0].State, res.Steps[1].State, res.Steps[2].State})
	assert.Equal(t, "deployment timeout of 1.5s reached", res.Steps[1].Message)
}

func TestCancelStopsStepAndReports(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pids")
	p := parse(t, fmt.Sprintf(`service: web
environment: prod
steps:
  - name: first
    run: "true"
  - name: long
    run: "sleep 30 & echo $! >> %s; echo $$ >> %s; wait"
  - name: never
    run: "true"
`, pidFile, pidFile))
	s, pr := &sink{}, &progress{started: make(chan int, 3)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan Result)
	go func() { done <- Run(ctx, opts(t, p, s, pr)) }()
	require.Equal(t, 0, <-pr.started)
	require.Equal(t, 1, <-pr.started)
	pids := readPIDs(t, pidFile)
	cancel()
	res := <-done
	assert.Equal(t, deployevent.StatusCancelled, res.Status)
	assert.Equal(t, []string{"success", "cancelled", "cancelled"}, []string{res.Steps[0].State, res.Steps[1].State, res.Steps[2].State})
	assert.Equal(t, "not run: the deployment was cancelled", res.Steps[2].Message)
	assert.True(t, res.Steps[2].NotRun)
	assert.Equal(t, "long", res.FailedStep().Name, "the step cancelled while it ran ended the deployment")
	// The cancellation's SIGTERM ended the step's shell (or, on a machine
	// too busy to handle it within the kill grace, its SIGKILL).
	assert.Contains(t, []string{"SIGTERM", "SIGKILL"}, res.Steps[1].Signal)
	assert.Nil(t, res.Steps[1].ExitCode)
	for _, pid := range pids {
		assert.Eventually(t, func() bool { return !pidAlive(pid) }, 2*time.Second, 10*time.Millisecond, "pid %d survived", pid)
	}
	evs := s.events(t)
	last := evs[len(evs)-1]
	assert.Equal(t, deployevent.TypeDeploymentFinished, last.Type)
	assert.Equal(t, deployevent.StatusCancelled, last.Deployment.Status)
}

func TestSecretsMasked(t *testing.T) {
	p := parse(t, `service: web
environment: prod
env: {DB_PASSWORD: hunter2-env}
vars:
  token: {default: tok-from-plan-123, secret: true}
steps:
  - name: leak
    run: echo "env=$DB_PASSWORD token=$token pw=--password=inline-pw"
  - name: leak argv
    command: [echo, "${token}", --api-key=argv-key]
`)
	s, pr := &sink{}, &progress{}
	var logs bytes.Buffer
	o := opts(t, p, s, pr)
	o.Masker = mask.New("hunter2-env", "tok-from-plan-123")
	o.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	res := Run(context.Background(), o)
	require.Equal(t, deployevent.StatusSuccess, res.Status)
	s.mu.Lock()
	var bodies strings.Builder
	for _, r := range s.reqs {
		bodies.WriteString(r.Body)
	}
	s.mu.Unlock()
	all := strings.Join(pr.lines(), "\n") + logs.String() + bodies.String()
	for _, secret := range []string{"hunter2-env", "tok-from-plan-123", "inline-pw", "argv-key"} {
		assert.NotContains(t, all, secret)
	}
	assert.Contains(t, strings.Join(pr.lines(), "\n"), "env=*** token=*** pw=--password=***")
	assert.Contains(t, bodies.String(), `"command":"echo *** --api-key=***"`)
}

func TestAnsibleStepForwardsJSONLines(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "ansible-playbook")
	fixture, err := filepath.Abs("../ansible/testdata/site.jsonl")
	require.NoError(t, err)
	// Records its arguments and callback, then replays a real run.
	script := fmt.Sprintf("#!/bin/sh\necho \"$@\" > %s/args\necho \"$ANSIBLE_STDOUT_CALLBACK\" > %s/callback\ncat \"$4\" | sed 's/^@//' > /dev/null\ncp \"${6#@}\" %s/vars.json 2>/dev/null\necho '[WARNING]: not json'\ncat %s\n",
		dir, dir, dir, fixture)
	require.NoError(t, os.WriteFile(fake, []byte(script), 0o755))
	p := parse(t, `service: shop
environment: staging
vars: {release: "2.0", db_password: {default: hunter2-not-real, secret: true}}
steps:
  - name: configure
    ansible:
      playbook: site.yml
      inventory: localhost,
      extra_vars: {app_version: "${release}", db_password: "${db_password}"}
`)
	s, pr := &sink{}, &progress{}
	o := opts(t, p, s, pr)
	o.AnsiblePlaybook = fake
	o.AnsibleCallback = ansible.CallbackJSONL
	o.Masker = mask.New("hunter2-not-real")
	res := Run(context.Background(), o)
	require.Equal(t, deployevent.StatusSuccess, res.Status, res.Steps[0].Message)

	args, err := os.ReadFile(filepath.Join(dir, "args"))
	require.NoError(t, err)
	assert.Regexp(t, `^-i localhost, --extra-vars @\S+/extra-vars.json \S+/site.yml\n$`, string(args))
	assert.NotContains(t, res.Steps[0].Command, "hunter2")
	cb, err := os.ReadFile(filepath.Join(dir, "callback"))
	require.NoError(t, err)
	assert.Equal(t, "ansible.posix.jsonl\n", string(cb))

	lines := pr.lines()
	assert.Contains(t, lines, "0 stdout [WARNING]: not json")
	assert.Contains(t, lines, "0 ansible changed:  [localhost] write version")
	assert.Contains(t, lines, "0 ansible ok:       [localhost] prepare directories (2 items)")

	ans := s.configureAnsible(t)
	assert.Equal(t, 16, ans.Items)
	assert.NotContains(t, ans.Body, "hunter2-not-real", "known secrets masked inside the JSON")
	for _, l := range strings.Split(strings.TrimSpace(ans.Body), "\n") {
		assert.True(t, json.Valid([]byte(l)), l)
	}
}

// TestAnsibleStepBundledCallback checks the default: the bundled plugin is
// written where ANSIBLE_CALLBACK_PLUGINS points and selected, its json_cb
// lines (recorded from a real run of testdata/plans/playbooks/site.yml)
// are forwarded masked with the step's headers, progress shows each task
// and the recap, and a failed task names the step's failure.
func TestAnsibleStepBundledCallback(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "ansible-playbook")
	fixture, err := filepath.Abs("../ansible/testdata/site.json_cb.ndjson")
	require.NoError(t, err)
	failed := `{"position":9,"name":"migrate","state":"failure","host":"db1","play":"configure shop","error_message":"exit 3","start":"2026-11-27T11:02:18+01:00","end":"2026-11-27T11:02:19+01:00","misc":{"rc":3}}`
	script := fmt.Sprintf(`#!/bin/sh
echo "$ANSIBLE_STDOUT_CALLBACK" > %[1]s/callback
cp "${ANSIBLE_CALLBACK_PLUGINS%%%%:*}/fastdeploy_json_cb.py" %[1]s/plugin.py
echo '[WARNING]: not json'
echo 'RUNNING [db1] migrate' >&2
cat %[2]s
echo '%[3]s'
echo 'RECAP localhost ok=6 changed=2 failed=1' >&2
echo 'ERROR! something' >&2
exit 2
`,
		dir, fixture, failed)
	require.NoError(t, os.WriteFile(fake, []byte(script), 0o755))
	p := parse(t, `service: shop
environment: staging
vars: {db_password: {default: hunter2-not-real, secret: true}}
steps:
  - name: configure
    ansible:
      playbook: site.yml
      extra_vars: {db_password: "${db_password}"}
`)
	s, pr := &sink{}, &progress{}
	o := opts(t, p, s, pr)
	o.AnsiblePlaybook = fake
	o.Environ = append(o.Environ, "ANSIBLE_CALLBACK_PLUGINS=/opt/own-callbacks")
	o.Masker = mask.New("hunter2-not-real")
	res := Run(context.Background(), o)
	require.Equal(t, deployevent.StatusFailure, res.Status)
	assert.Equal(t, `exit status 2: task "migrate" failed on db1: exit 3`, res.Steps[0].Message)
	// The cause, for the summary and the collector: stderr's last lines
	// and the failed task's message; the RUNNING line is for the live
	// status line only.
	assert.Equal(t, []string{"ERROR! something", `task "migrate" failed on db1: exit 3`}, res.Steps[0].StderrTail)
	assert.Equal(t, []string{"0 TASK [db1] migrate"}, pr.activities())
	for _, l := range pr.lines() {
		assert.NotContains(t, l, "RUNNING")
	}

	cb, err := os.ReadFile(filepath.Join(dir, "callback"))
	require.NoError(t, err)
	assert.Equal(t, "fastdeploy_json_cb\n", string(cb))
	plugin, err := os.ReadFile(filepath.Join(dir, "plugin.py"))
	require.NoError(t, err)
	assert.Equal(t, ansible.BundledSource(), plugin)

	assert.Equal(t, []string{
		"0 stdout [WARNING]: not json",
		"0 ansible PLAY configure shop",
		"0 ansible ok:       [localhost] show version",
		"0 ansible failed:   [localhost] optional probe: non-zero return code (ignored)",
		"0 ansible skipped:  [localhost] only on debian 3",
		"0 ansible ok:       [localhost] prepare directories (item releases)",
		"0 ansible ok:       [localhost] prepare directories (item shared)",
		"0 ansible ok:       [localhost] prepare directories (2 items)",
		"0 ansible changed:  [localhost] write version",
		"0 ansible ok:       [localhost] log in to database",
		"0 ansible ok:       [localhost] reload shop (handler)",
		"0 ansible failed:   [db1] migrate: exit 3",
	}, filterStreams(pr.lines(), "stdout", "ansible"))
	assert.Contains(t, pr.lines(), "0 ansible RECAP localhost ok=6 changed=2 failed=1")
	assert.Contains(t, pr.lines(), "0 stderr ERROR! something")
	for _, l := range pr.lines() {
		assert.NotContains(t, l, "hunter2-not-real")
	}

	ans := s.configureAnsible(t)
	assert.Equal(t, 10, ans.Items, "every json_cb line, not the warning")
	fixtureData, err := os.ReadFile(fixture)
	require.NoError(t, err)
	require.Contains(t, string(fixtureData), "hunter2-not-real", "the fixture holds the secret the deployer must mask")
	assert.NotContains(t, ans.Body, "hunter2-not-real", "known secrets masked inside the JSON")
	for _, l := range strings.Split(strings.TrimSpace(ans.Body), "\n") {
		_, ok := ansible.ParseTask([]byte(l))
		assert.True(t, ok, l)
	}
}

func filterStreams(lines []string, streams ...string) []string {
	var out []string
	for _, l := range lines {
		for _, s := range streams {
			if strings.HasPrefix(l, "0 "+s+" ") && !strings.HasPrefix(l, "0 ansible RECAP") {
				out = append(out, l)
			}
		}
	}
	return out
}

func TestDeliveryIDIsStable(t *testing.T) {
	a := DeliveryID("d", "step.finished", 3)
	assert.Equal(t, a, DeliveryID("d", "step.finished", 3))
	assert.NotEqual(t, a, DeliveryID("d", "step.started", 3))
	assert.NotEqual(t, a, DeliveryID("d", "step.finished", 4))
	assert.Len(t, a, 32)
}

func TestLineWriter(t *testing.T) {
	var got []string
	w := &lineWriter{fn: func(s string) { got = append(got, s) }}
	_, _ = w.Write([]byte("a\r\nb"))
	_, _ = w.Write([]byte("c\n\nd"))
	w.Flush()
	assert.Equal(t, []string{"a", "bc", "", "d"}, got)
	got = nil
	_, _ = w.Write(bytes.Repeat([]byte("x"), maxLine+10))
	w.Flush()
	assert.Equal(t, []int{maxLine, 10}, []int{len(got[0]), len(got[1])})
}

func TestCommandLineQuoting(t *testing.T) {
	assert.Equal(t, `sh -c 'echo "$A" it'\''s' plain`, commandLine([]string{"sh", "-c", `echo "$A" it's`, "plain"}))
}
