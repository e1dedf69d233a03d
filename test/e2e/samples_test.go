//go:build e2e

package e2e

import (
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
	"github.com/fastdeploy/otelcol-fastdeploy/internal/timeshift"
)

// presentSamples reads samples from testdata/ moved to the present by one
// common offset, which it returns too. The samples carry fixed times; a
// running collector refuses events more than five years old or a day ahead,
// so anything posted to the built binary is moved to now first (times in
// assertions are the sample's plus the offset).
func presentSamples(t *testing.T, names ...string) ([][]byte, time.Duration) {
	t.Helper()
	texts := make([][]byte, len(names))
	for i, name := range names {
		texts[i] = repoFile(t, name)
	}
	return timeshift.ToNow(time.Now(), texts...)
}

// presentSample is presentSamples for one file.
func presentSample(t *testing.T, name string) ([]byte, time.Duration) {
	t.Helper()
	moved, shift := presentSamples(t, name)
	return moved[0], shift
}

// nowRFC3339 is the current time as events carry it.
func nowRFC3339() string { return time.Now().UTC().Format(time.RFC3339) }

// TestDemo runs the README's "Try it" (make demo's script) against the built
// collector: it must work on any date, so its samples are moved to now.
func TestDemo(t *testing.T) {
	s := startStack(t, basicConfig)
	_, here, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(here), "..", "..")
	cmd := exec.Command("bash", filepath.Join(root, "scripts", "demo.sh"), s.receiver)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)

	roots := map[string]otlpsink.Span{}
	require.True(t, s.sink.WaitFor(30*time.Second, func() bool {
		for _, sp := range s.sink.Spans() {
			if sp.Span.ParentSpanID().IsEmpty() {
				roots[sp.Span.TraceID().String()] = sp
			}
		}
		return len(roots) == 2
	}), "the sample deployment and the failing one, got %d root spans", len(roots))
	ok := roots[deploytrace.DeploymentTraceID("42").String()]
	failed := roots[deploytrace.DeploymentTraceID("43").String()]
	assert.Equal(t, ptrace.StatusCodeOk, ok.Span.Status().Code())
	assert.Equal(t, ptrace.StatusCodeError, failed.Span.Status().Code())
	for _, sp := range roots {
		assert.WithinDuration(t, time.Now(), sp.Span.EndTimestamp().AsTime(), 10*time.Minute, "moved to the present")
	}
}
