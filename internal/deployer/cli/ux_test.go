package cli

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployer/fakereceiver"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployer/logging/logschema"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployer/plan"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployevent"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/deploytrace"
)

func writePlan(t *testing.T, dir, body string) string {
	t.Helper()
	path := filepath.Join(dir, "plan.yaml")
	require.NoError(t, os.WriteFile(path, []byte(body), 0o600))
	return path
}

// TestFlagsAnywhere: the README's command, flags after the plan, works;
// "--" ends the flags; usage errors say precisely what is wrong in one
// line, with no page of help.
func TestFlagsAnywhere(t *testing.T) {
	shell := filepath.Join(plansDir, "shell.yaml")
	r := runApp(t, nil, nil, "run", shell, "--var", "release=1.4.2", "--offline", "--progress", "plain")
	require.Equal(t, ExitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "building 1.4.2")
	r = runApp(t, nil, nil, "run", "--offline", shell, "--var=release=1.4.3", "--progress=plain")
	require.Equal(t, ExitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "building 1.4.3")
	r = runApp(t, nil, nil, "run", "--offline", "--dry-run", "--", shell)
	assert.Equal(t, ExitOK, r.code, r.stderr)

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run"}, "fastdeploy run: missing the plan file"},
		{[]string{"run", "--offline"}, "fastdeploy run: missing the plan file"},
		{[]string{"run", shell, "other.yaml"}, "fastdeploy run: want one plan file, got 2: " + shell + " other.yaml"},
		{[]string{"run", shell, "--var", "release", "1.4.2"}, "fastdeploy run: invalid value \"release\" for flag -var: want key=value"},
		{[]string{"run", shell, "--no-such-flag"}, "fastdeploy run: flag provided but not defined: -no-such-flag"},
		{[]string{"run", "--", shell, "--offline"}, "fastdeploy run: want one plan file, got 2"},
		{[]string{"validate"}, "fastdeploy validate: missing the plan files"},
		{[]string{"validate", "--strict", shell}, "fastdeploy validate: flag provided but not defined: -strict"},
		{[]string{"flush", "extra"}, "fastdeploy flush: takes no operands, got extra"},
		{[]string{"deploy"}, `fastdeploy: unknown command "deploy"`},
	} {
		r := runApp(t, nil, nil, tc.args...)
		assert.Equal(t, ExitUsage, r.code, tc.args)
		assert.True(t, strings.HasPrefix(r.stderr, tc.want), "%v: %q", tc.args, r.stderr)
		assert.LessOrEqual(t, strings.Count(r.stderr, "\n"), 2, "one line and a pointer to help, not a page: %q", r.stderr)
		assert.Empty(t, r.stdout, tc.args)
	}
}

// TestRequiredVariableNotEmpty: an empty value for a required variable is
// refused, a set one accepted (near miss), an empty optional one too.
func TestRequiredVariableNotEmpty(t *testing.T) {
	plan := writePlan(t, t.TempDir(), `service: web
environment: prod
vars:
  db_password: {secret: true, required: true}
  note: {default: x}
steps: [{name: a, run: "true"}]
`)
	r := runApp(t, nil, nil, "run", "--offline", plan, "--var", "db_password=")
	assert.Equal(t, ExitUsage, r.code)
	assert.Contains(t, r.stderr, "variable db_password is required and was given an empty value")
	r = runApp(t, nil, nil, "run", "--offline", "--progress", "plain", plan, "--secret-var", "db_password=generated-"+strings.Repeat("z", 8), "--var", "note=")
	assert.Equal(t, ExitOK, r.code, r.stderr)
}

func TestUserDefaultsToTheLoginUser(t *testing.T) {
	rcv := fakereceiver.Start()
	defer rcv.Close()
	plan := writePlan(t, t.TempDir(), "service: web\nenvironment: prod\nsteps: [{name: a, run: 'true'}]\n")
	// No USER in the environment (cron, systemd): the account's name.
	r := runApp(t, map[string]string{"FASTDEPLOY_COLLECTOR_URL": rcv.URL()}, nil, "run", plan)
	require.Equal(t, ExitOK, r.code, r.stderr)
	out, err := exec.Command("id", "-un").Output()
	require.NoError(t, err)
	assert.Equal(t, strings.TrimSpace(string(out)), rcv.Events()[0].Deployment.User)
	assert.NotEqual(t, "unknown", rcv.Events()[0].Deployment.User)
}

// TestDryRunShowsEverythingMasked: env, timeouts, dirs and extra vars are
// shown, secret ones masked.
func TestDryRunShowsEverythingMasked(t *testing.T) {
	secret := "dry-" + strings.Repeat("q", 12)
	plan := writePlan(t, t.TempDir(), `service: web
environment: prod
timeout: 10m
env: {LOG_LEVEL: info, API_TOKEN: "${api_token}"}
vars:
  api_token: {required: true, secret: true}
  release: "2.0"
steps:
  - name: migrate
    run: ./migrate
    timeout: 90s
    dir: db
    env: {DB_PASSWORD: "${api_token}", MODE: fast}
  - name: configure
    ansible:
      playbook: site.yml
      inventory: hosts.ini
      extra_vars: {version: "${release}", db_password: "${api_token}", list: [a, b]}
`)
	r := runApp(t, nil, nil, "run", "--dry-run", plan, "--secret-var", "api_token="+secret)
	require.Equal(t, ExitOK, r.code, r.stderr)
	for _, want := range []string{
		", 2 steps (dry run", "timeout: 10m0s", "env:\n  LOG_LEVEL=info\n  API_TOKEN=***",
		"1. migrate: run: ./migrate [timeout 1m30s] [dir db]", "   env:\n     DB_PASSWORD=***\n     MODE=fast",
		"2. configure: ansible-playbook site.yml -i hosts.ini", "     db_password=***", `     list=["a","b"]`, "     version=2.0",
	} {
		assert.Contains(t, r.stdout, want)
	}
	assert.NotContains(t, r.stdout, secret)
}

// TestFailureSummaryNamesTheCause: the failed step, its exit code, the
// last lines of its stderr and the trace with its link; the ignored
// failure is marked ignored, never as the cause.
func TestFailureSummaryNamesTheCause(t *testing.T) {
	rcv := fakereceiver.Start()
	defer rcv.Close()
	env := map[string]string{"FASTDEPLOY_COLLECTOR_URL": rcv.URL(), "FASTDEPLOY_TRACE_URL": "http://127.0.0.1:16686/"}
	r := runApp(t, env, nil, "run", "--deployment-id", "fail-sum", filepath.Join(plansDir, "failing.yaml"))
	require.Equal(t, ExitFailed, r.code)
	trace := deploytrace.DeploymentTraceID("fail-sum").String()
	assert.Contains(t, r.stdout, "[2/4] optional cache warm-up: failure (ignored: continue_on_error) in ")
	assert.Contains(t, r.stdout, "[4/4] switch traffic: skipped (not run: step migrate failed)")
	assert.Contains(t, r.stdout, "optional cache warm-up  failure (ignored)")
	assert.Regexp(t, `deployment fail-sum: failure in \S+ at step \[3/4\] migrate \(trace `+trace+`\)
  migrate: exit code 1
  last lines of stderr:
    ERROR: relation already exists
  trace: http://127.0.0.1:16686/trace/`+trace+`
`, r.stdout)
	// Text logs: the ignored failure is a warning, the real one an error.
	assert.Regexp(t, `level=WARN msg="step 2/4 optional cache warm-up: failure \(ignored: continue_on_error\)"`, r.stderr)
	assert.Regexp(t, `level=ERROR msg="step 3/4 migrate: failure"`, r.stderr)
	assert.Regexp(t, `level=ERROR msg="deployment of billing to production: failure at step 3/4 migrate"`, r.stderr)
	for _, ev := range rcv.Events() {
		if ev.Type == deployevent.TypeStepFinished && ev.Step.Name == "migrate" {
			assert.Equal(t, "ERROR: relation already exists", ev.Step.StderrTail)
			assert.False(t, ev.Step.Ignored)
		}
		if ev.Type == deployevent.TypeStepFinished && ev.Step.Name == "optional cache warm-up" {
			assert.True(t, ev.Step.Ignored)
			assert.Equal(t, "cache unavailable", ev.Step.StderrTail)
		}
	}

	// {trace_id} in the base is replaced (Grafana Tempo's explore, ...).
	env["FASTDEPLOY_TRACE_URL"] = "http://127.0.0.1:3000/explore?trace={trace_id}"
	r = runApp(t, env, nil, "run", "--deployment-id", "fail-sum-2", filepath.Join(plansDir, "failing.yaml"))
	assert.Contains(t, r.stdout, "  trace: http://127.0.0.1:3000/explore?trace="+deploytrace.DeploymentTraceID("fail-sum-2").String()+"\n")
}

// TestCancelledStepsSayCancelled: after Ctrl-C the steps that never ran
// are cancelled, not "an earlier step did not succeed".
func TestCancelledStepsSayCancelled(t *testing.T) {
	dir := t.TempDir()
	plan := writePlan(t, dir, `service: web
environment: prod
steps:
  - {name: long, run: "touch started; sleep 30"}
  - {name: after, run: "true"}
`)
	signals := make(chan os.Signal, 1)
	go func() {
		for {
			if _, err := os.Stat(filepath.Join(dir, "started")); err == nil {
				signals <- syscall.SIGINT
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	r := runApp(t, nil, signals, "run", "--offline", "--kill-grace", "300ms", plan)
	assert.Equal(t, ExitCancelled, r.code)
	assert.Contains(t, r.stdout, "[2/2] after: cancelled (not run: the deployment was cancelled)")
	assert.Contains(t, r.stdout, "at step [1/2] long")
	assert.Regexp(t, `long: cancelled by signal, killed by SIG(TERM|KILL)\n`, r.stdout)
	assert.NotContains(t, r.stdout, "did not succeed")
}

// keysOnce checks a text log line names each key once.
var textKey = regexp.MustCompile(`(?:^| )([A-Za-z0-9_.@-]+)=`)

func textKeysOnce(t *testing.T, line string) {
	t.Helper()
	seen := map[string]bool{}
	for _, m := range textKey.FindAllStringSubmatch(line, -1) {
		assert.False(t, seen[m[1]], "key %s twice: %s", m[1], line)
		seen[m[1]] = true
	}
}

// TestEveryLogLineIsECS runs the deployer through each situation that
// makes it log (success with step output, an ignored and a real failure,
// skipped steps, a bad TRACEPARENT, Ctrl-C, retries against an
// overloaded collector, a collector down, one that hangs past the run,
// refusals of events and of credentials, a dead trace endpoint) and
// checks every JSON line against the schema, and every text line for
// repeated keys.
func TestEveryLogLineIsECS(t *testing.T) {
	shell := filepath.Join(plansDir, "shell.yaml")
	failing := filepath.Join(plansDir, "failing.yaml")
	kinds := map[string]bool{}
	check := func(name string, r result, format string) {
		t.Helper()
		lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
		require.NotEmpty(t, lines, name)
		for _, line := range lines {
			if line == "" {
				continue
			}
			if format == "json" {
				require.NoError(t, logschema.Check([]byte(line)), "%s: %s", name, line)
				if m := regexp.MustCompile(`"event.action":"([^"]+)"`).FindStringSubmatch(line); m != nil {
					kinds[m[1]] = true
				}
			} else {
				textKeysOnce(t, line)
			}
		}
	}
	overloaded := fakereceiver.Start()
	defer overloaded.Close()
	overloaded.FaultFor = func(n int, _ *http.Request) fakereceiver.Fault {
		if n <= 3 {
			return fakereceiver.Unavailable
		}
		return fakereceiver.None
	}
	hanging := fakereceiver.Start()
	defer hanging.Close()
	hanging.FaultFor = func(int, *http.Request) fakereceiver.Fault { return fakereceiver.Hang }
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":"bad event","field":"step.name"}`))
	}))
	defer refusing.Close()
	unauthorized := fakereceiver.Start()
	defer unauthorized.Close()
	unauthorized.Secret = []byte("the-right-one")
	down := fakereceiver.Start()
	downURL := down.URL()
	down.Close()

	dir := t.TempDir()
	cancelPlan := writePlan(t, dir, "service: web\nenvironment: prod\nsteps:\n  - {name: long, run: 'touch started; sleep 30'}\n  - {name: after, run: 'true'}\n")

	for _, format := range []string{"json", "text"} {
		base := []string{"run", "--log-format", format, "--log-level", "debug", "--progress", "plain"}
		with := func(args ...string) []string { return append(append([]string(nil), base...), args...) }
		r := runApp(t, map[string]string{"FASTDEPLOY_COLLECTOR_URL": overloaded.URL(), "TRACEPARENT": "00-bad"}, nil, with(shell, "--var", "release=1.0")...)
		assert.Equal(t, ExitOK, r.code, r.stderr)
		check("success, retries, bad traceparent", r, format)
		if format == "json" {
			assert.Equal(t, 3, strings.Count(r.stderr, `"event.action":"delivery.retry"`), "one line per retry")
			assert.Regexp(t, `"message":"collector answered 503 Service Unavailable; retry 1 in \d+ms"`, r.stderr)
		}

		r = runApp(t, map[string]string{"FASTDEPLOY_COLLECTOR_URL": downURL}, nil, with("--delivery-timeout", "300ms", failing)...)
		assert.Equal(t, ExitFailed, r.code)
		check("failure, collector down", r, format)
		if format == "text" {
			for _, line := range strings.Split(r.stderr, "\n") {
				if strings.Contains(line, "retry") {
					assert.Less(t, len(line), 200, "a retry warning is one short line: %s", line)
					assert.NotContains(t, line, "dial tcp", "no Go error chain per retry")
				}
			}
		}

		start := time.Now()
		r = runApp(t, map[string]string{"FASTDEPLOY_COLLECTOR_URL": hanging.URL()}, nil, with("--delivery-timeout", "1500ms", shell)...)
		assert.Equal(t, ExitOK, r.code)
		assert.Less(t, time.Since(start), 6*time.Second, "the wait is bounded")
		assert.Contains(t, r.stderr, "for the collector to take", "the wait after the summary is announced")
		check("collector hangs", r, format)

		r = runApp(t, map[string]string{"FASTDEPLOY_COLLECTOR_URL": refusing.URL}, nil, with(shell)...)
		check("collector refuses events", r, format)
		assert.Contains(t, r.stderr, "collector refused events")

		r = runApp(t, map[string]string{"FASTDEPLOY_COLLECTOR_URL": unauthorized.URL(), "FASTDEPLOY_SECRET": "a-wrong-one"}, nil, with(shell)...)
		check("collector refuses credentials", r, format)
		assert.Contains(t, r.stderr, "refused our credentials")

		r = runApp(t, map[string]string{"FASTDEPLOY_COLLECTOR_URL": overloaded.URL()}, nil,
			with("--trace-http", "--otlp-endpoint", downURL, shell)...)
		check("trace endpoint down", r, format)
		assert.Contains(t, r.stderr, "cannot export the deployer's HTTP spans")

		os.Remove(filepath.Join(dir, "started"))
		signals := make(chan os.Signal, 1)
		go func() {
			for {
				if _, err := os.Stat(filepath.Join(dir, "started")); err == nil {
					signals <- syscall.SIGINT
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
		r = runApp(t, nil, signals, with("--offline", "--kill-grace", "300ms", cancelPlan)...)
		assert.Equal(t, ExitCancelled, r.code)
		check("cancelled", r, format)
	}
	for _, k := range []string{"deployment.started", "step.started", "step.finished", "deployment.finished", "delivery.retry", "delivery.wait", "trace.export"} {
		assert.True(t, kinds[k], "no %s line was checked", k)
	}
}

// TestRevisionForLeadTime: the revision and its commit time come from a
// git checkout holding the plan, from the plan, or from flags, in that
// order of precedence reversed.
func TestRevisionForLeadTime(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	rcv := fakereceiver.Start()
	defer rcv.Close()
	dir := t.TempDir()
	plan := writePlan(t, dir, "service: web\nenvironment: prod\nsteps: [{name: a, run: 'true'}]\n")
	git := func(args ...string) string {
		cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.invalid",
			"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.invalid",
			"GIT_AUTHOR_DATE=2026-03-01T09:00:00+02:00", "GIT_COMMITTER_DATE=2026-03-02T10:30:00+02:00")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, string(out))
		return strings.TrimSpace(string(out))
	}
	git("init", "-q")
	git("add", "plan.yaml")
	git("commit", "-q", "-m", "plan")
	head := git("rev-parse", "HEAD")
	env := map[string]string{"FASTDEPLOY_COLLECTOR_URL": rcv.URL()}
	committed := time.Date(2026, 3, 2, 8, 30, 0, 0, time.UTC)

	last := func() deployevent.Deployment {
		evs := rcv.Events()
		return evs[len(evs)-1].Deployment
	}
	r := runApp(t, env, nil, "run", "--deployment-id", "git-1", plan)
	require.Equal(t, ExitOK, r.code, r.stderr)
	d := last()
	assert.Equal(t, head, d.Revision)
	require.NotNil(t, d.RevisionTime)
	assert.True(t, committed.Equal(*d.RevisionTime), "committer time, not author time: %s", d.RevisionTime)
	for _, ev := range rcv.Events() {
		assert.Equal(t, head, ev.Deployment.Revision, "every event carries it")
	}

	// The plan names an older revision: its own commit time is read.
	first := head
	require.NoError(t, os.WriteFile(filepath.Join(dir, "other"), []byte("x"), 0o600))
	git("add", "other")
	git("commit", "-q", "-m", "second", "--date", "2026-03-05T00:00:00Z")
	plan2 := filepath.Join(dir, "pinned.yaml")
	require.NoError(t, os.WriteFile(plan2, []byte("service: web\nenvironment: prod\nrevision: "+first[:10]+"\nsteps: [{name: a, run: 'true'}]\n"), 0o600))
	r = runApp(t, env, nil, "run", "--deployment-id", "git-2", plan2)
	require.Equal(t, ExitOK, r.code, r.stderr)
	d = last()
	assert.Equal(t, first[:10], d.Revision)
	assert.True(t, committed.Equal(*d.RevisionTime))

	// Flags win; an unknown revision has no time unless given.
	r = runApp(t, env, nil, "run", "--deployment-id", "git-3", "--revision", "v9", "--revision-time", "2026-04-01T12:00:00Z", plan)
	require.Equal(t, ExitOK, r.code, r.stderr)
	d = last()
	assert.Equal(t, "v9", d.Revision)
	assert.True(t, time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC).Equal(*d.RevisionTime))
	r = runApp(t, env, nil, "run", "--deployment-id", "git-4", "--revision", "not-in-git", plan)
	require.Equal(t, ExitOK, r.code, r.stderr)
	assert.Nil(t, last().RevisionTime)
	r = runApp(t, env, nil, "run", "--revision-time", "yesterday", plan)
	assert.Equal(t, ExitUsage, r.code)
	assert.Contains(t, r.stderr, `--revision-time "yesterday": want an RFC 3339 time`)

	// The plan's revision_time, outside any checkout.
	plain := writePlan(t, t.TempDir(), "service: web\nenvironment: prod\nrevision: abc\nrevision_time: 2026-02-01T00:00:00Z\nsteps: [{name: a, run: 'true'}]\n")
	r = runApp(t, env, nil, "run", "--deployment-id", "git-5", plain)
	require.Equal(t, ExitOK, r.code, r.stderr)
	d = last()
	assert.Equal(t, "abc", d.Revision)
	assert.True(t, time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC).Equal(*d.RevisionTime))
}

// otlpSink is an OTLP/HTTP trace endpoint that keeps what it gets.
type otlpSink struct {
	mu    sync.Mutex
	spans []ptrace.Span
}

func (s *otlpSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	req := ptraceotlp.NewExportRequest()
	if r.URL.Path != "/v1/traces" || req.UnmarshalProto(body) != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rs := range req.Traces().ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				s.spans = append(s.spans, sp)
			}
		}
	}
}

// TestTraceHTTP: with --trace-http, each call to the collector is a client
// span in the deployment's trace, under the deployment span; without it,
// nothing is exported (off by default).
func TestTraceHTTP(t *testing.T) {
	rcv := fakereceiver.Start()
	defer rcv.Close()
	sink := &otlpSink{}
	otlp := httptest.NewServer(sink)
	defer otlp.Close()
	env := map[string]string{"FASTDEPLOY_COLLECTOR_URL": rcv.URL(), "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.URL}
	shell := filepath.Join(plansDir, "shell.yaml")

	r := runApp(t, env, nil, "run", "--deployment-id", "untraced", shell)
	require.Equal(t, ExitOK, r.code, r.stderr)
	assert.Empty(t, sink.spans, "off by default")

	r = runApp(t, env, nil, "run", "--trace-http", "--deployment-id", "traced", shell)
	require.Equal(t, ExitOK, r.code, r.stderr)
	sink.mu.Lock()
	defer sink.mu.Unlock()
	require.NotEmpty(t, sink.spans)
	trace := deploytrace.DeploymentTraceID("traced")
	for _, sp := range sink.spans {
		assert.Equal(t, "POST /v1/deployments/events", sp.Name())
		assert.Equal(t, ptrace.SpanKindClient, sp.Kind())
		assert.Equal(t, [16]byte(trace), [16]byte(sp.TraceID()))
		assert.Equal(t, [8]byte(deploytrace.DeploymentSpanID(trace, "traced")), [8]byte(sp.ParentSpanID()))
		code, ok := sp.Attributes().Get("http.response.status_code")
		require.True(t, ok)
		assert.Equal(t, int64(http.StatusOK), code.Int(), "the fake receiver answers 200")
	}
	// The receiver's own headers are untouched: no injected traceparent.
	assert.Len(t, rcv.Events(), 16)
}

// TestHelpPlanIsAValidPlan: the plan the help shows is one a user can
// copy: it validates, with every field the help explains.
func TestHelpPlanIsAValidPlan(t *testing.T) {
	r := runApp(t, nil, nil, "help", "run")
	_, rest, ok := strings.Cut(r.stdout, "Plan format (YAML)")
	require.True(t, ok)
	var yamlLines []string
	started := false
	for _, line := range strings.Split(rest, "\n") {
		if strings.HasPrefix(line, "  service:") {
			started = true
		}
		if !started {
			continue
		}
		if line == "" {
			break
		}
		yamlLines = append(yamlLines, strings.TrimPrefix(line, "  "))
	}
	p, err := plan.Parse("help", []byte(strings.Join(yamlLines, "\n")))
	require.NoError(t, err, strings.Join(yamlLines, "\n"))
	assert.Equal(t, "web", p.Service)
	require.Len(t, p.Steps, 3)
	assert.Equal(t, []string{"run", "command", "ansible"}, []string{p.Steps[0].Kind(), p.Steps[1].Kind(), p.Steps[2].Kind()})
	assert.True(t, p.Steps[1].ContinueOnError)
	require.NotNil(t, p.RevisionTime)
	assert.Equal(t, "2026-11-27T09:30:00Z", p.RevisionTime.UTC().Format(time.RFC3339))
}
