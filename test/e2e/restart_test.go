//go:build e2e

package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deploytrace"
)

// TestSIGKILLMidDeploymentLosesNothing starts a deployment, kills the
// collector with SIGKILL, restarts it on the same storage, finishes the
// deployment and expects one complete trace with every span exactly once.
func TestSIGKILLMidDeploymentLosesNothing(t *testing.T) {
	c := newStorageCollector(t, "")
	sink := c.sink
	url := fmt.Sprintf("http://127.0.0.1:%d/v1/deployments/events", c.receiverPort)

	sample, shift := presentSample(t, "testdata/deployment-events.ndjson")
	events := lines(sample)
	first := c.Start(t)
	// Started, build started and finished, migrate started.
	r := post(t, url, "application/x-ndjson", joinLines(events[:4]), nil)
	require.Equal(t, http.StatusOK, r.status, r.body)
	trace := deploytrace.DeploymentTraceID("42").String()
	require.True(t, sink.WaitFor(20*time.Second, func() bool { return len(sink.Spans()) == 2 }), "build and its subprocess exported")
	first.Kill()

	c.Start(t)
	// The deployer retries what it is unsure of: a repeat is harmless.
	r = post(t, url, "application/x-ndjson", joinLines(events[3:]), nil)
	require.Equal(t, http.StatusOK, r.status, r.body)
	assert.EqualValues(t, 1, r.body["duplicates"], "the delivery ids survived the kill")

	const want = 1 + 3 + 3
	require.True(t, sink.WaitFor(20*time.Second, func() bool { return len(sink.Spans()) >= want }))
	seen := map[string]int{}
	for _, s := range sink.Spans() {
		assert.Equal(t, trace, s.Span.TraceID().String())
		seen[s.Span.SpanID().String()]++
		if attr(s.Span, "fastdeploy.span.kind") == "deployment" {
			assert.Equal(t, time.Date(2026, 11, 27, 11, 0, 20, 0, time.UTC).Add(shift), s.Span.StartTimestamp().AsTime())
		}
	}
	assert.Len(t, seen, want, "every span of the deployment")
	for id, n := range seen {
		assert.Equal(t, 1, n, "span %s exported once", id)
	}
}

func joinLines(ls [][]byte) []byte {
	var b strings.Builder
	for _, l := range ls {
		b.Write(l)
		b.WriteByte('\n')
	}
	return []byte(b.String())
}
