package fastdeployreceiver

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// refusingLogs refuses the next n deliveries, then accepts.
type refusingLogs struct {
	consumertest.LogsSink
	mu      sync.Mutex
	refuses int
}

func (r *refusingLogs) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	r.mu.Lock()
	refuse := r.refuses > 0
	if refuse {
		r.refuses--
	}
	r.mu.Unlock()
	if refuse {
		return errors.New("data refused due to high memory usage")
	}
	return r.LogsSink.ConsumeLogs(ctx, ld)
}

// TestRefusalAtomicity decides what a 503 means, per the pipeline that
// refused (issue 17 item 7).
//
// The traces pipeline refusing: nothing was exported and nothing kept;
// the retry is handled as new. The logs pipeline refusing after the
// traces pipeline accepted: the spans were exported, and the pipeline
// cannot take them back, so the 503 is not atomic across the two signals.
// What holds instead: nothing was kept, and the retry exports spans
// identical to the first ones (same trace and span ids, times,
// attributes), so a backend keyed by span id holds one of each; the log
// records are exported once, with the retry.
func TestRefusalAtomicity(t *testing.T) {
	t.Parallel()
	body := []string{
		ev("deployment.started", "a", "2026-11-27T11:00:00Z", ""),
		stepEv("step.started", "b", "2026-11-27T11:00:01Z", "migrate", 0, ""),
		stepEv("step.finished", "c", "2026-11-27T11:00:05Z", "migrate", 0, "success"),
		ev("deployment.finished", "d", "2026-11-27T11:00:10Z", ""),
	}

	t.Run("traces pipeline refuses", func(t *testing.T) {
		t.Parallel()
		tr := newTestReceiver(t, nil)
		refusing := &refusingTraces{}
		tr.r.setTraces(refusing)
		refusing.set(errors.New("data refused due to high memory usage"))
		rep := tr.events(t, body...)
		require.Equal(t, http.StatusServiceUnavailable, rep.status)
		assert.Zero(t, refusing.SpanCount(), "nothing exported")
		assert.Zero(t, tr.logs.LogRecordCount(), "the logs pipeline was not called")
		assert.False(t, tr.r.tracker.delivered.Contains("a"), "nothing kept")
		refusing.set(nil)
		rep = tr.events(t, body...)
		require.Equal(t, http.StatusOK, rep.status)
		assert.EqualValues(t, 4, rep.body["accepted"])
		assert.Equal(t, 2, refusing.SpanCount(), "each span once")
	})

	t.Run("logs pipeline refuses after traces accepted", func(t *testing.T) {
		t.Parallel()
		tr := newTestReceiver(t, nil)
		logs := &refusingLogs{refuses: 1}
		tr.r.setLogs(logs)
		rep := tr.events(t, body...)
		require.Equal(t, http.StatusServiceUnavailable, rep.status)
		require.Len(t, tr.traces.AllTraces(), 1, "the spans were exported before the logs pipeline refused")
		assert.Zero(t, logs.LogRecordCount())
		assert.False(t, tr.r.tracker.delivered.Contains("a"), "nothing kept: the retry is not a duplicate")
		assert.Zero(t, tr.r.tracker.inflight())

		rep = tr.events(t, body...)
		require.Equal(t, http.StatusOK, rep.status)
		assert.EqualValues(t, 4, rep.body["accepted"])
		require.Len(t, tr.traces.AllTraces(), 2)
		first, second := tr.traces.AllTraces()[0], tr.traces.AllTraces()[1]
		assert.Equal(t, spanJSON(t, first), spanJSON(t, second), "the retry's spans are the first ones again: same ids, times and attributes")
		assert.Equal(t, 4, logs.LogRecordCount(), "the log records once, with the retry")

		// A third copy is a duplicate: nothing more is exported.
		rep = tr.events(t, body...)
		require.Equal(t, http.StatusOK, rep.status)
		assert.EqualValues(t, 4, rep.body["duplicates"])
		assert.Len(t, tr.traces.AllTraces(), 2)
	})
}

func spanJSON(t *testing.T, td ptrace.Traces) string {
	t.Helper()
	raw, err := (&ptrace.JSONMarshaler{}).MarshalTraces(td)
	require.NoError(t, err)
	return string(raw)
}
