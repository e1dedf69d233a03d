package fastdeployreceiver

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

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
// traces pipeline accepted: the spans cannot be taken back, but nothing
// is kept and the receiver remembers that those spans are in, so the
// retry (which builds the same spans) hands over only its log records:
// across the 503 and the retry, each span and each log record once. A
// retry later than partialRetention, or after a restart, exports spans
// identical to the first ones (same ids, times and attributes).
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
		require.Len(t, tr.traces.AllTraces(), 1, "the spans were taken before the logs pipeline refused")
		assert.Zero(t, logs.LogRecordCount())
		assert.False(t, tr.r.tracker.delivered.Contains("a"), "nothing kept: the retry is not a duplicate")
		assert.Zero(t, tr.r.tracker.inflight())

		// Another request meanwhile: its spans are its own, delivered.
		require.Equal(t, http.StatusOK, tr.post(t, pathEvents, "application/json",
			depEv("deployment.started", "other", 0, "")).status)
		require.Len(t, tr.traces.AllTraces(), 1, "deployment.started emits no span")
		require.Equal(t, http.StatusOK, tr.post(t, pathEvents, "application/json",
			depEv("deployment.finished", "other", 1, "")).status)
		require.Len(t, tr.traces.AllTraces(), 2, "a request whose spans differ delivers them")

		rep = tr.events(t, body...)
		require.Equal(t, http.StatusOK, rep.status)
		assert.EqualValues(t, 4, rep.body["accepted"])
		assert.Len(t, tr.traces.AllTraces(), 2, "the retry does not hand the spans over again")
		assert.Equal(t, 4+2, logs.LogRecordCount(), "its log records once, with the retry (and the other request's)")

		// A third copy is a duplicate: nothing more.
		rep = tr.events(t, body...)
		require.Equal(t, http.StatusOK, rep.status)
		assert.EqualValues(t, 4, rep.body["duplicates"])
		assert.Len(t, tr.traces.AllTraces(), 2)
		assert.Equal(t, 6, logs.LogRecordCount())
	})

	t.Run("retry after the memory of delivered spans expired", func(t *testing.T) {
		t.Parallel()
		tr := newTestReceiver(t, nil)
		logs := &refusingLogs{refuses: 1}
		tr.r.setLogs(logs)
		require.Equal(t, http.StatusServiceUnavailable, tr.events(t, body...).status)
		tr.clock.Advance(partialRetention)
		require.Equal(t, http.StatusOK, tr.events(t, body...).status)
		require.Len(t, tr.traces.AllTraces(), 2, "forgotten: the spans are handed over again")
		first, second := tr.traces.AllTraces()[0], tr.traces.AllTraces()[1]
		assert.Equal(t, spanJSON(t, first), spanJSON(t, second), "and are the first ones again: same ids, times and attributes")
		assert.Equal(t, 4, logs.LogRecordCount())
	})
}

func spanJSON(t *testing.T, td ptrace.Traces) string {
	t.Helper()
	raw, err := (&ptrace.JSONMarshaler{}).MarshalTraces(td)
	require.NoError(t, err)
	return string(raw)
}

// TestDeliveredSpansIsBounded: the memory keeps the newest
// partialEntries sums and forgets them after partialRetention.
func TestDeliveredSpansIsBounded(t *testing.T) {
	t.Parallel()
	var p deliveredSpans
	sum := func(i int) (s [32]byte) {
		s[0], s[1] = byte(i), byte(i>>8)
		return s
	}
	for i := range partialEntries + 44 {
		p.add(sum(i), testNow)
	}
	assert.Len(t, p.sums, partialEntries)
	assert.False(t, p.has(sum(43)), "the oldest are forgotten")
	assert.True(t, p.has(sum(44)))
	assert.True(t, p.has(sum(partialEntries+43)))
	p.forget(sum(44))
	assert.False(t, p.has(sum(44)))
	assert.False(t, p.empty(testNow.Add(partialRetention-time.Second)))
	assert.True(t, p.empty(testNow.Add(partialRetention)), "forgotten after partialRetention")
}
