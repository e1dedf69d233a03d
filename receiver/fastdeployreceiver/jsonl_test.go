package fastdeployreceiver

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deploytrace"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/testclock"
)

// postAnsibleRun posts an ansible.posix.jsonl run as the output of step
// "configure" (position 1, run as ansible-playbook) of deployment 7, while
// the step is running, and returns the exported spans by kind.
func postAnsibleRun(t *testing.T, tr *testReceiver, run []byte) map[string][]ptrace.Span {
	t.Helper()
	return postAnsibleRunAt(t, tr, run, time.Date(2026, 11, 27, 11, 0, 0, 0, time.UTC))
}

// postAnsibleRunAt is postAnsibleRun with the deployment started at start.
func postAnsibleRunAt(t *testing.T, tr *testReceiver, run []byte, start time.Time) map[string][]ptrace.Span {
	t.Helper()
	require.Equal(t, 200, tr.events(t,
		ev("deployment.started", "a", start.Format(time.RFC3339Nano), ""),
		ev("step.started", "b", start.Add(time.Second).Format(time.RFC3339Nano), `,"step":{"name":"configure","position":1,"command":"ansible-playbook -i inventory.ini site.yml"}`),
	).status)
	rep := tr.post(t, pathAnsible, "application/x-ndjson", string(run),
		headerDeployment, "7", headerStep, "configure")
	require.Equal(t, 200, rep.status, rep.body)
	byKind := map[string][]ptrace.Span{}
	for _, s := range allSpans(tr.traces) {
		k := spanAttr(s, "fastdeploy.span.kind")
		byKind[k] = append(byKind[k], s)
	}
	return byKind
}

// checkAnsibleRunShape asserts what the site.yml run must yield whatever
// its times and uuids: playbook > 2 plays > tasks > one span per host, with
// ignored failures recorded but not failing, and the unreachable host and
// the host that failed for good failing their task, play and playbook.
func checkAnsibleRunShape(t *testing.T, byKind map[string][]ptrace.Span) {
	t.Helper()
	require.Len(t, byKind["ansible.playbook"], 1)
	require.Len(t, byKind["ansible.play"], 2)
	require.Len(t, byKind["ansible.task"], 9, "7 web tasks, the handler, the db ping")
	require.Len(t, byKind["ansible.host"], 15, "one per host result")

	trace := deploytrace.DeploymentTraceID("7")
	sub := deploytrace.SubprocessSpanID(trace, "7", "configure", 1)
	playbook := byKind["ansible.playbook"][0]
	assert.Equal(t, pcommonSpan(sub), playbook.ParentSpanID(), "the run hangs under the step's subprocess")
	assert.Equal(t, ptrace.StatusCodeError, playbook.Status().Code())
	assert.Equal(t, "failed or unreachable: db1, web2", playbook.Status().Message())

	spans := map[string]ptrace.Span{}
	for _, kind := range []string{"ansible.play", "ansible.task", "ansible.host"} {
		for _, s := range byKind[kind] {
			spans[s.Name()] = s
		}
	}
	for _, p := range byKind["ansible.play"] {
		assert.Equal(t, playbook.SpanID(), p.ParentSpanID())
		assert.Equal(t, ptrace.StatusCodeError, p.Status().Code(), p.Name())
	}
	ignored := spans["optional cleanup @ web1"]
	assert.Equal(t, ptrace.StatusCodeError, ignored.Status().Code(), "an ignored failure is recorded")
	assert.Equal(t, "ignored", spanAttr(ignored, "ansible.task.host.status"), "as community.general.opentelemetry says ignore_errors")
	assert.Equal(t, ptrace.StatusCodeUnset, spans["optional cleanup"].Status().Code(), "but does not fail its task")
	assert.Equal(t, ptrace.StatusCodeError, spans["migrate on web2 only"].Status().Code())
	migrate := spans["migrate on web2 only @ web2"]
	assert.Equal(t, "failed", spanAttr(migrate, "ansible.task.host.status"), "a failure that stopped its host is not ignored")
	// community.general.opentelemetry's names and value formats.
	assert.Equal(t, "[web2] configure web: migrate on web2 only", spanAttr(migrate, "ansible.task.name"))
	assert.Equal(t, "web2", spanAttr(migrate, "ansible.task.host.name"))
	assert.Equal(t, "3", spanAttr(migrate, "ansible.task.result"), "the module's rc")
	assert.Equal(t, "ansible.builtin.command", spanAttr(migrate, "ansible.task.module"))
	assert.Equal(t, "non-zero return code", spanAttr(migrate, "ansible.task.message"))
	args := map[string]string{}
	names, _ := migrate.Attributes().Get("ansible.task.args.name")
	values, _ := migrate.Attributes().Get("ansible.task.args.value")
	require.Equal(t, names.Slice().Len(), values.Slice().Len(), "parallel arrays")
	for i := range names.Slice().Len() {
		args[names.Slice().At(i).Str()] = values.Slice().At(i).Str()
	}
	assert.Equal(t, `/bin/sh -c "exit 3"`, args["_raw_params"])
	assert.NotContains(t, args, "chdir", "options left unset are no arguments")
	assert.Equal(t, "0", spanAttr(spans["check uptime @ web1"], "ansible.task.result"), "rc 0 on success")
	assert.Equal(t, "success", spanAttr(spans["check uptime @ web1"], "ansible.task.message"))
	assert.Equal(t, "ok", spanAttr(spans["check uptime @ web1"], "ansible.task.host.status"))
	assert.Equal(t, "unreachable", spanAttr(spans["ping database host @ db1"], "ansible.task.host.status"))
	assert.Equal(t, ptrace.StatusCodeError, spans["ping database host"].Status().Code())
	assert.Equal(t, "skipped", spanAttr(spans["only on staging @ web1"], "ansible.task.host.status"))
	assert.Equal(t, "Conditional result was False", spanAttr(spans["only on staging @ web1"], "ansible.task.message"), "the skip reason")
	_, named := spans["only on staging"].Attributes().Get("ansible.task.name")
	assert.False(t, named, "ansible.task.name is one task on one host, as the callback's spans")
	assert.Equal(t, ptrace.StatusCodeUnset, spans["only on staging"].Status().Code())
	assert.Equal(t, "true", spanAttr(spans["reload app @ web1"], "fastdeploy.ansible.handler"))
	assert.Equal(t, spans["check uptime"].SpanID(), spans["check uptime @ web2"].ParentSpanID())
	assert.Equal(t, spans["play configure web"].SpanID(), spans["check uptime"].ParentSpanID())
	loop, _ := spans["install packages @ web1"].Attributes().Get("fastdeploy.ansible.result")
	results, _ := loop.Map().Get("results")
	assert.Equal(t, 2, results.Slice().Len(), "loop results kept")
	for _, s := range byKind["ansible.host"] {
		assert.False(t, s.EndTimestamp().AsTime().Before(s.StartTimestamp().AsTime()), s.Name())
	}
}

func TestJSONLGoldenRun(t *testing.T) {
	t.Parallel()
	tr := newTestReceiver(t, nil)
	tr.clock.Set(goldenRecorded)
	run, err := os.ReadFile(filepath.Join("testdata", "ansible", "run.jsonl"))
	require.NoError(t, err)
	checkAnsibleRunShape(t, postAnsibleRun(t, tr, run))
	traces, logs := exported(t, tr)
	compareGolden(t, filepath.Join("testdata", "golden", "jsonl-traces.json"), traces)
	compareGolden(t, filepath.Join("testdata", "golden", "jsonl-logs.json"), logs)

	// Replaying the same output yields the same span ids, not new spans.
	before := map[string]bool{}
	for _, s := range allSpans(tr.traces) {
		before[s.SpanID().String()] = true
	}
	tr.post(t, pathAnsible, "application/x-ndjson", string(run), headerDeployment, "7", headerStep, "configure")
	for _, s := range allSpans(tr.traces) {
		assert.True(t, before[s.SpanID().String()], "replay created new span %s", s.Name())
	}
}

func TestJSONLStreamedInChunks(t *testing.T) {
	t.Parallel()
	run, err := os.ReadFile(filepath.Join("testdata", "ansible", "run.jsonl"))
	require.NoError(t, err)
	whole := newTestReceiver(t, nil)
	postAnsibleRun(t, whole, run)

	chunked := newTestReceiver(t, nil)
	lines := bytes.SplitAfter(run, []byte("\n"))
	postAnsibleRun(t, chunked, bytes.Join(lines[:9], nil))
	rep := chunked.post(t, pathAnsible, "application/x-ndjson", string(bytes.Join(lines[9:], nil)), headerDeployment, "7", headerStep, "configure")
	require.Equal(t, 200, rep.status)

	ids := func(tr *testReceiver) map[string]string {
		out := map[string]string{}
		for _, s := range allSpans(tr.traces) {
			out[s.SpanID().String()] = s.ParentSpanID().String()
		}
		return out
	}
	// The same spans with the same parents (a task split across chunks may
	// be exported twice with the same id).
	assert.Equal(t, ids(whole), ids(chunked))
}

// TestRealAnsiblePlaybook runs the real ansible-playbook with the stock
// ansible.posix.jsonl callback and checks the receiver reads its output.
func TestRealAnsiblePlaybook(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("ansible-playbook")
	if err != nil {
		t.Skip("ansible-playbook not installed (Debian package ansible); make test installs it")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-i", "inventory.ini", "site.yml", "-e", "workdir="+t.TempDir())
	cmd.Dir = filepath.Join("testdata", "ansible")
	cmd.Env = append(os.Environ(), "ANSIBLE_STDOUT_CALLBACK=ansible.posix.jsonl", "ANSIBLE_HOST_KEY_CHECKING=False",
		"ANSIBLE_LOCAL_TEMP="+t.TempDir(), "ANSIBLE_NOCOLOR=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "the playbook has failing hosts: %s", stderr.String())
	assert.Equal(t, 4, exit.ExitCode(), "ansible-playbook's exit code for failed and unreachable hosts")

	// Live data, so the test clock comes from the data: the run's first
	// timestamp, never the fixed testNow (which would refuse the output of
	// any day after the one the test was written on).
	first := testclock.DerivedFrom(firstJSONLTimestamp(t, out))
	tr := newTestReceiver(t, nil)
	tr.clock.Set(first.Add(time.Minute))
	checkAnsibleRunShape(t, postAnsibleRunAt(t, tr, out, first.Add(-time.Minute)))
}

// firstJSONLTimestamp is the _timestamp of the first line of an
// ansible.posix.jsonl run.
func firstJSONLTimestamp(t *testing.T, run []byte) time.Time {
	t.Helper()
	line, _, _ := bytes.Cut(run, []byte("\n"))
	var head struct {
		Timestamp string `json:"_timestamp"`
	}
	require.NoError(t, json.Unmarshal(line, &head))
	at, err := time.Parse(time.RFC3339Nano, head.Timestamp)
	require.NoError(t, err, "first line of the run has no RFC 3339 _timestamp")
	return at
}
