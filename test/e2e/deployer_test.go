//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deploytrace"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/testutil/otlpsink"
)

func deployerBinary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("FASTDEPLOY_DEPLOYER")
	if bin == "" {
		t.Skip("FASTDEPLOY_DEPLOYER is not set: run `make e2e-test`, which builds the deployer first")
	}
	_, err := os.Stat(bin)
	require.NoError(t, err)
	return bin
}

func plansDir() string {
	_, here, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(here), "..", "..", "testdata", "plans")
}

// runPlan runs the bundled deployer on a plan and returns its exit code and
// combined output.
func runPlan(t *testing.T, collectorURL, plan, deploymentID string, extra ...string) (int, string) {
	t.Helper()
	args := append([]string{"run", "--collector-url", collectorURL, "--deployment-id", deploymentID,
		"--spool-dir", filepath.Join(t.TempDir(), "spool"), "--progress", "plain"}, extra...)
	return deployer(t, append(args, filepath.Join(plansDir(), plan))...)
}

func spansOf(sink *otlpsink.Sink, deploymentID string) map[string][]ptrace.Span {
	trace := deploytrace.DeploymentTraceID(deploymentID).String()
	out := map[string][]ptrace.Span{}
	for _, s := range sink.Spans() {
		if s.Span.TraceID().String() == trace {
			k := attr(s.Span, "fastdeploy.span.kind")
			out[k] = append(out[k], s.Span)
		}
	}
	return out
}

// TestDeployerShellPlan runs the bundled deployer on a plan of shell and
// argv steps against the built collector.
func TestDeployerShellPlan(t *testing.T) {
	s := startStack(t, basicConfig)
	code, out := runPlan(t, s.receiver, "shell.yaml", "e2e-shell-1")
	require.Equal(t, 0, code, out)
	require.True(t, s.sink.WaitFor(30*time.Second, func() bool { return len(spansOf(s.sink, "e2e-shell-1")["deployment"]) == 1 }), out)
	spans := spansOf(s.sink, "e2e-shell-1")
	dep := spans["deployment"][0]
	assert.Equal(t, ptrace.StatusCodeOk, dep.Status().Code())
	assert.Equal(t, "success", attr(dep, "cicd.pipeline.result"))
	assert.NotEmpty(t, spans["step"])
	assert.Len(t, spans["subprocess"], len(spans["step"]), "every step ran a subprocess")
	for _, st := range spans["step"] {
		assert.Equal(t, dep.SpanID(), st.ParentSpanID(), st.Name())
	}
	assert.NotContains(t, s.sink.ExportedJSON(t), "example-token-not-real", "a secret var never leaves")
}

// TestDeployerFailingPlan checks a failing step fails the deployment, in
// the exit code and in the trace.
func TestDeployerFailingPlan(t *testing.T) {
	s := startStack(t, basicConfig)
	code, out := runPlan(t, s.receiver, "failing.yaml", "e2e-fail-1")
	require.Equal(t, 1, code, out)
	require.True(t, s.sink.WaitFor(30*time.Second, func() bool { return len(spansOf(s.sink, "e2e-fail-1")["deployment"]) == 1 }), out)
	spans := spansOf(s.sink, "e2e-fail-1")
	dep := spans["deployment"][0]
	assert.Equal(t, ptrace.StatusCodeError, dep.Status().Code())
	assert.Equal(t, "deployment failed at step migrate", dep.Status().Message())
	states := map[string]string{}
	for _, st := range spans["step"] {
		states[st.Name()] = attr(st, "fastdeploy.status")
	}
	assert.Equal(t, map[string]string{"lint": "success", "optional cache warm-up": "failure", "migrate": "failure", "switch traffic": "skipped"}, states)
}

// TestDeployerSpoolsWhileCollectorIsDown runs a plan with no collector,
// then flushes the spool once one is up: nothing is lost.
func TestDeployerSpoolsWhileCollectorIsDown(t *testing.T) {
	bin := deployerBinary(t)
	spool := filepath.Join(t.TempDir(), "spool")
	deadURL := "http://127.0.0.1:1"
	cmd := exec.Command(bin, "run", "--collector-url", deadURL, "--deployment-id", "e2e-spool-1",
		"--spool-dir", spool, "--delivery-timeout", "500ms", "--progress", "plain", filepath.Join(plansDir(), "shell.yaml"))
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "the deployment itself succeeds without a collector: %s", out)
	entries, err := os.ReadDir(spool)
	require.NoError(t, err)
	require.NotEmpty(t, entries, "events were spooled")

	s := startStack(t, basicConfig)
	flush := exec.Command(bin, "flush", "--collector-url", s.receiver, "--spool-dir", spool)
	out, err = flush.CombinedOutput()
	require.NoError(t, err, string(out))
	require.True(t, s.sink.WaitFor(30*time.Second, func() bool { return len(spansOf(s.sink, "e2e-spool-1")["deployment"]) == 1 }), string(out))
	assert.NotEmpty(t, spansOf(s.sink, "e2e-spool-1")["step"])
}
