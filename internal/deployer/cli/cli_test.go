package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployer/fakereceiver"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployevent"
)

const plansDir = "../../../testdata/plans"

type result struct {
	code           int
	stdout, stderr string
}

func runApp(t *testing.T, env map[string]string, signals chan os.Signal, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	if env == nil {
		env = map[string]string{}
	}
	if _, ok := env["FASTDEPLOY_SPOOL_DIR"]; !ok {
		env["FASTDEPLOY_SPOOL_DIR"] = t.TempDir()
	}
	env["PATH"] = os.Getenv("PATH")
	env["HOME"] = os.Getenv("HOME")
	app := &App{Stdout: &out, Stderr: &errOut, Getenv: func(k string) string { return env[k] }, Signals: signals}
	code := app.Main(args)
	return result{code, out.String(), errOut.String()}
}

func TestHelp(t *testing.T) {
	r := runApp(t, nil, nil, "--help")
	assert.Equal(t, ExitOK, r.code)
	for _, want := range []string{"fastdeploy run", "fastdeploy validate", "fastdeploy flush", "Exit status", "FASTDEPLOY_COLLECTOR_URL"} {
		assert.Contains(t, r.stdout, want)
	}
	r = runApp(t, nil, nil, "help", "run")
	assert.Equal(t, ExitOK, r.code)
	assert.Empty(t, r.stderr, "help goes to stdout, like fastdeploy help")
	for _, want := range []string{"-collector-url", "-secret-file", "-var", "-secret-var", "-dry-run", "-log-format", "-delivery-timeout", "-trace-url", "-revision-time", "Plan format", "continue_on_error"} {
		assert.Contains(t, r.stdout, want)
	}
	assert.Equal(t, r.stdout[:200], runApp(t, nil, nil, "run", "--help").stdout[:200])
	r = runApp(t, nil, nil, "help", "validate")
	assert.Equal(t, ExitOK, r.code)
	assert.NotContains(t, r.stdout, "Flags:", "validate has no flags: no empty Flags: section")
	r = runApp(t, nil, nil, "help", "flush")
	assert.Contains(t, r.stdout, "Flags:")
	assert.Contains(t, r.stdout, "-spool-dir")
	r = runApp(t, nil, nil, "help", "deploy")
	assert.Equal(t, ExitUsage, r.code)
	assert.Contains(t, r.stderr, `unknown command "deploy"`)
	assert.Equal(t, ExitUsage, runApp(t, nil, nil).code)
	assert.Equal(t, ExitUsage, runApp(t, nil, nil, "deploy").code)
	assert.Equal(t, ExitUsage, runApp(t, nil, nil, "run").code)
	assert.Equal(t, ExitUsage, runApp(t, nil, nil, "run", "--log-format", "xml", "--offline", filepath.Join(plansDir, "shell.yaml")).code)
	r = runApp(t, nil, nil, "version")
	assert.Equal(t, ExitOK, r.code)
	assert.Regexp(t, `^fastdeploy \S+ \(go1\.`, r.stdout)
	assert.NotContains(t, r.stdout, "dev\n")
}

func TestValidate(t *testing.T) {
	r := runApp(t, nil, nil, "validate", filepath.Join(plansDir, "shell.yaml"), filepath.Join(plansDir, "invalid.yaml"))
	assert.Equal(t, ExitUsage, r.code)
	assert.Contains(t, r.stdout, "shell.yaml: valid, 3 steps")
	one := filepath.Join(t.TempDir(), "one.yaml")
	require.NoError(t, os.WriteFile(one, []byte("service: a\nenvironment: b\nsteps: [{name: x, run: 'true'}]\n"), 0o600))
	assert.Equal(t, one+": valid, 1 step\n", runApp(t, nil, nil, "validate", one).stdout)
	assert.Equal(t, strings.Join([]string{
		plansDir + "/invalid.yaml:5: steps[0]: has run and command: give only one of run, command or ansible",
		plansDir + `/invalid.yaml:9: steps[1].timeout: must be a positive duration such as 90s or 5m, got "soon"`,
		plansDir + "/invalid.yaml:11: steps[2].name: required",
	}, "\n")+"\n", r.stderr)
	assert.Equal(t, ExitUsage, runApp(t, nil, nil, "validate", "/nonexistent.yaml").code)
}

func TestDryRunMasksAndRunsNothing(t *testing.T) {
	rcv := fakereceiver.Start()
	defer rcv.Close()
	r := runApp(t, map[string]string{"FASTDEPLOY_COLLECTOR_URL": rcv.URL()}, nil, "run", "--dry-run", "--var", "release=9.9", filepath.Join(plansDir, "shell.yaml"))
	assert.Equal(t, ExitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "deploy web to staging at 3f2c1ab, 3 steps (dry run")
	assert.Contains(t, r.stdout, "api_token=***")
	assert.Contains(t, r.stdout, "release=9.9")
	assert.Contains(t, r.stdout, "2. build: command: sh -c")
	assert.NotContains(t, r.stdout, "example-token-not-real")
	assert.Zero(t, rcv.Requests())
}

func TestRunDeliversEveryEventAndExitCodes(t *testing.T) {
	rcv := fakereceiver.Start()
	defer rcv.Close()
	rcv.Secret = []byte("sign-me")
	env := map[string]string{"FASTDEPLOY_COLLECTOR_URL": rcv.URL(), "FASTDEPLOY_SECRET": "sign-me"}

	r := runApp(t, env, nil, "run", "--log-format", "json", "--deployment-id", "shell-1", filepath.Join(plansDir, "shell.yaml"))
	assert.Equal(t, ExitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "deployment shell-1: success")
	assert.NotContains(t, r.stdout+r.stderr, "example-token-not-real")
	assert.Contains(t, r.stdout, "calling health endpoint with token ***")
	for _, line := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), line)
		assert.Equal(t, "shell-1", m["labels"].(map[string]any)["deployment_id"], line)
		assert.Contains(t, m, "@timestamp")
		assert.Contains(t, m, "log.level")
	}
	evs := rcv.Events()
	require.Len(t, evs, 8, "started, 3 x (step started, finished), finished")
	assert.Equal(t, deployevent.StatusSuccess, evs[7].Deployment.Status)
	assert.Equal(t, "cli", evs[0].Deployment.Origin)
	assert.Equal(t, "***", evs[0].Deployment.Context["vars"].(map[string]any)["api_token"])

	r = runApp(t, env, nil, "run", "--deployment-id", "fail-1", filepath.Join(plansDir, "failing.yaml"))
	assert.Equal(t, ExitFailed, r.code)
	assert.Contains(t, r.stdout, "[3/4] migrate: failure")
	assert.Contains(t, r.stderr, "level=ERROR", "text logs show failures")
	evs = rcv.Events()
	last := evs[len(evs)-1]
	assert.Equal(t, deployevent.ID("fail-1"), last.Deployment.ID)
	assert.Equal(t, deployevent.StatusFailure, last.Deployment.Status)
}

func TestCollectorDownThenFlush(t *testing.T) {
	spoolDir := t.TempDir()
	rcv := fakereceiver.Start()
	url := rcv.URL()
	rcv.Close() // nobody listens there now
	env := map[string]string{"FASTDEPLOY_COLLECTOR_URL": url, "FASTDEPLOY_SPOOL_DIR": spoolDir}
	start := time.Now()
	r := runApp(t, env, nil, "run", "--delivery-timeout", "300ms", "--deployment-id", "down-1", filepath.Join(plansDir, "shell.yaml"))
	assert.Equal(t, ExitOK, r.code, "the deployment does not fail because the collector is down")
	assert.Less(t, time.Since(start), 3*time.Second, "bounded wait")
	assert.Contains(t, r.stderr, "run fastdeploy flush")

	r = runApp(t, env, nil, "flush", "--delivery-timeout", "100ms")
	assert.Equal(t, ExitFailed, r.code, "still down: events remain")

	rcv2 := fakereceiver.Start()
	defer rcv2.Close()
	env["FASTDEPLOY_COLLECTOR_URL"] = rcv2.URL()
	r = runApp(t, env, nil, "flush")
	assert.Equal(t, ExitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "(8 events)")
	assert.Len(t, rcv2.Events(), 8)
	for id, n := range rcv2.Accepted() {
		assert.Equal(t, 1, n, id)
	}
	entries, err := os.ReadDir(spoolDir)
	require.NoError(t, err)
	assert.Empty(t, entries)
}

func TestNextRunSendsSpooledEvents(t *testing.T) {
	spoolDir := t.TempDir()
	env := map[string]string{"FASTDEPLOY_COLLECTOR_URL": "http://127.0.0.1:1", "FASTDEPLOY_SPOOL_DIR": spoolDir}
	r := runApp(t, env, nil, "run", "--delivery-timeout", "100ms", "--deployment-id", "old", filepath.Join(plansDir, "failing.yaml"))
	require.Equal(t, ExitFailed, r.code)
	rcv := fakereceiver.Start()
	defer rcv.Close()
	env["FASTDEPLOY_COLLECTOR_URL"] = rcv.URL()
	r = runApp(t, env, nil, "run", "--deployment-id", "new", filepath.Join(plansDir, "shell.yaml"))
	require.Equal(t, ExitOK, r.code, r.stderr)
	byDeployment := map[deployevent.ID]int{}
	for _, ev := range rcv.Events() {
		byDeployment[ev.Deployment.ID]++
	}
	assert.Equal(t, map[deployevent.ID]int{"old": 9, "new": 8}, byDeployment)
}

func TestSignalCancels(t *testing.T) {
	rcv := fakereceiver.Start()
	defer rcv.Close()
	dir := t.TempDir()
	marker := filepath.Join(dir, "started")
	planPath := filepath.Join(dir, "plan.yaml")
	require.NoError(t, os.WriteFile(planPath, []byte(`service: web
environment: prod
steps:
  - name: long
    run: touch started; sleep 30
  - name: after
    run: "true"
`), 0o600))
	signals := make(chan os.Signal, 2)
	go func() {
		for {
			if _, err := os.Stat(marker); err == nil {
				signals <- syscall.SIGINT
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	start := time.Now()
	r := runApp(t, map[string]string{"FASTDEPLOY_COLLECTOR_URL": rcv.URL()}, signals, "run", "--kill-grace", "500ms", "--deployment-id", "c1", planPath)
	assert.Equal(t, ExitCancelled, r.code)
	assert.Less(t, time.Since(start), 5*time.Second)
	evs := rcv.Events()
	require.NotEmpty(t, evs)
	last := evs[len(evs)-1]
	assert.Equal(t, deployevent.TypeDeploymentFinished, last.Type)
	assert.Equal(t, deployevent.StatusCancelled, last.Deployment.Status)
	assert.Contains(t, r.stdout, "long: cancelled")
}

// TestAnsiblePlanEndToEnd runs real ansible-playbook against localhost with
// the bundled callback (the default) and checks what reaches the (fake)
// collector: json_cb lines with host, play, zone-aware times within the
// run, items, the handler and an ignored failure.
func TestAnsiblePlanEndToEnd(t *testing.T) {
	if _, err := exec.LookPath("ansible-playbook"); err != nil {
		t.Skip("ansible-playbook not installed (Debian package ansible): skipping the real Ansible run")
	}
	rcv := fakereceiver.Start()
	defer rcv.Close()
	start := time.Now()
	depID := "ansible-" + start.Format("150405.000000")
	r := runApp(t, map[string]string{"FASTDEPLOY_COLLECTOR_URL": rcv.URL()}, nil,
		"run", "--deployment-id", depID, "--var", "release=3.1.4", filepath.Join(plansDir, "ansible.yaml"))
	require.Equal(t, ExitOK, r.code, r.stdout+r.stderr)
	assert.Contains(t, r.stdout, "changed:  [localhost] write version")
	assert.Contains(t, r.stdout, "ok:       [localhost] prepare directories (item shared)")
	assert.Contains(t, r.stdout, "failed:   [localhost] optional probe: non-zero return code (ignored)")
	assert.Contains(t, r.stdout, "ok:       [localhost] reload shop (handler)")
	assert.Contains(t, r.stdout, "RECAP localhost ok=6 changed=2 failed=0 skipped=1 unreachable=0 ignored=1")
	assert.Contains(t, r.stdout, "[3/3] verify | 3.1.4 "+depID)
	assert.NotContains(t, r.stdout+r.stderr, "hunter2-not-real")

	batches := rcv.Ansible()
	require.Len(t, batches, 1)
	b := batches[0]
	assert.Equal(t, depID, b.Header.Get("X-Fastdeploy-Deployment"))
	assert.Equal(t, "configure", b.Header.Get("X-Fastdeploy-Step"))
	assert.Equal(t, "1", b.Header.Get("X-Fastdeploy-Step-Position"))
	assert.Equal(t, "shop", b.Header.Get("X-Fastdeploy-Service"))
	assert.Regexp(t, `^00-[0-9a-f]{32}-[0-9a-f]{16}-01$`, b.Header.Get("traceparent"))
	var got []string
	for _, l := range b.Lines {
		for _, k := range []string{"start", "end"} {
			ts, err := time.Parse(time.RFC3339Nano, l[k].(string))
			require.NoError(t, err, "%s carries its zone", k)
			assert.True(t, ts.After(start.Add(-time.Second)) && ts.Before(time.Now().Add(time.Second)), "times within the run")
		}
		assert.Equal(t, "localhost", l["host"])
		assert.Equal(t, "configure shop", l["play"])
		s := fmt.Sprintf("%v %v %v", l["position"], l["name"], l["state"])
		if idx, ok := l["item_index"]; ok {
			s += fmt.Sprintf(" item %v=%v", idx, l["item"])
		}
		if l["handler"] == true {
			s += " handler"
		}
		if l["ignore_errors"] == true {
			s += " ignored"
		}
		got = append(got, s)
	}
	assert.Equal(t, []string{
		"0 show version success",
		"1 optional probe failure ignored",
		"2 only on debian 3 skipped",
		"3 prepare directories success item 0=releases",
		"3 prepare directories success item 1=shared",
		"3 prepare directories success",
		"4 write version success",
		"5 log in to database success",
		"6 reload shop success handler",
	}, got)
	raw, err := json.Marshal(b.Lines)
	require.NoError(t, err)
	assert.NotContains(t, string(raw), "hunter2-not-real", "secret vars masked in forwarded output")
	assert.Len(t, rcv.Events(), 8)
}

// TestAnsiblePlanJSONL runs the same plan with Ansible's stock
// ansible.posix.jsonl callback, still selectable.
func TestAnsiblePlanJSONL(t *testing.T) {
	if _, err := exec.LookPath("ansible-playbook"); err != nil {
		t.Skip("ansible-playbook not installed (Debian package ansible): skipping the real Ansible run")
	}
	rcv := fakereceiver.Start()
	defer rcv.Close()
	start := time.Now()
	depID := "ansible-jsonl-" + start.Format("150405.000000")
	r := runApp(t, map[string]string{"FASTDEPLOY_COLLECTOR_URL": rcv.URL()}, nil,
		"run", "--deployment-id", depID, "--ansible-callback", "jsonl", filepath.Join(plansDir, "ansible.yaml"))
	require.Equal(t, ExitOK, r.code, r.stdout+r.stderr)
	assert.Contains(t, r.stdout, "changed:  [localhost] write version")

	batches := rcv.Ansible()
	require.Len(t, batches, 1)
	var events []string
	for _, l := range batches[0].Lines {
		events = append(events, l["_event"].(string))
		ts, err := time.Parse(time.RFC3339Nano, l["_timestamp"].(string))
		require.NoError(t, err)
		assert.True(t, ts.After(start.Add(-time.Second)) && ts.Before(time.Now().Add(time.Second)), "times within the run")
	}
	assert.Equal(t, "v2_playbook_on_play_start", events[0])
	assert.Equal(t, "v2_playbook_on_stats", events[len(events)-1])
	assert.Contains(t, events, "v2_runner_on_failed")
	assert.Contains(t, events, "v2_playbook_on_handler_task_start")
	raw, err := json.Marshal(batches[0].Lines)
	require.NoError(t, err)
	assert.NotContains(t, string(raw), "hunter2-not-real", "secret vars masked in forwarded output")

	r = runApp(t, map[string]string{"FASTDEPLOY_COLLECTOR_URL": rcv.URL()}, nil,
		"run", "--ansible-callback", "yaml", filepath.Join(plansDir, "ansible.yaml"))
	assert.Equal(t, ExitUsage, r.code)
	assert.Contains(t, r.stderr, `unknown ansible callback "yaml"`)
}
