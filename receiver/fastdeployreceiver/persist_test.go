package fastdeployreceiver

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/testutil/memstorage"
)

// memStorage is shared by the components that play a collector before
// and after it is killed.
type memStorage = memstorage.Client

func newMemStorage() *memStorage { return memstorage.New() }

// memStorageWith is a storage holding v under k, as a restart finds it.
func memStorageWith(k string, v []byte) *memStorage {
	s := memstorage.New()
	_ = s.Set(context.Background(), k, v)
	return s
}

func restartable(t *testing.T, store *memStorage, mutate func(*Config)) *testReceiver {
	t.Helper()
	tr := newTestReceiver(t, mutate)
	require.NoError(t, tr.r.tracker.attach(context.Background(), store, tr.r.cfg.DedupWindow))
	return tr
}

func TestRestartCompletesInFlightDeployments(t *testing.T) {
	t.Parallel()
	store := newMemStorage()
	before := restartable(t, store, nil)
	upstream := `,"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"`
	require.Equal(t, 200, before.events(t,
		ev("deployment.started", "a", "2026-11-27T11:00:00Z", upstream),
		stepEv("step.started", "b", "2026-11-27T11:00:01Z", "migrate", 0, ""),
		stepEv("step.finished", "c", "2026-11-27T11:00:05Z", "migrate", 0, "failure"),
		stepEv("step.started", "d", "2026-11-27T11:00:06Z", "rollback", 1, ""),
	).status)
	require.Equal(t, 2, before.r.tracker.inflight())
	// The collector dies here: no shutdown, only what was written through.

	after := restartable(t, store, nil)
	assert.Equal(t, 2, after.r.tracker.inflight(), "in-flight deployment and step restored")
	assert.Equal(t, "migrate", after.r.tracker.deployments["7"].FailedStep, "what happened before the restart counts")
	rep := after.events(t,
		stepEv("step.started", "d", "2026-11-27T11:00:06Z", "rollback", 1, ""),
		stepEv("step.finished", "e", "2026-11-27T11:00:09Z", "rollback", 1, "success"),
		ev("deployment.finished", "f", "2026-11-27T11:00:10Z", ""),
	)
	assert.EqualValues(t, 1, rep.body["duplicates"], "delivery ids survive the restart")
	spans := allSpans(after.traces)
	require.Len(t, spans, 2)
	dep := spans[1]
	assert.Equal(t, "deploy api", dep.Name())
	assert.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", dep.TraceID().String(), "the upstream trace survives")
	assert.Equal(t, "00f067aa0ba902b7", dep.ParentSpanID().String())
	assert.Equal(t, time.Date(2026, 11, 27, 11, 0, 0, 0, time.UTC), dep.StartTimestamp().AsTime(), "original start time")
	assert.Equal(t, time.Date(2026, 11, 27, 11, 0, 6, 0, time.UTC), spans[0].StartTimestamp().AsTime())
	assert.Zero(t, after.r.tracker.inflight())

	// And a third life finds nothing left in flight.
	again := restartable(t, store, nil)
	assert.Zero(t, again.r.tracker.inflight())
}

func TestTimeoutWorksAcrossRestart(t *testing.T) {
	t.Parallel()
	store := newMemStorage()
	before := restartable(t, store, func(c *Config) { c.Timeout = time.Hour })
	before.events(t, ev("deployment.started", "a", "2026-11-27T11:00:00Z", ""))

	after := restartable(t, store, func(c *Config) { c.Timeout = time.Hour })
	after.clock.Advance(61 * time.Minute)
	after.r.sweepOnce(context.Background())
	spans := allSpans(after.traces)
	require.Len(t, spans, 1)
	assert.Equal(t, ptrace.StatusCodeError, spans[0].Status().Code())
	assert.Equal(t, "timeout", spanAttr(spans[0], "fastdeploy.status"))
	assert.Zero(t, restartable(t, store, nil).r.tracker.inflight(), "the timeout was persisted too")
}

func TestDedupWindowPersistsInChunks(t *testing.T) {
	t.Parallel()
	store := newMemStorage()
	before := restartable(t, store, func(c *Config) { c.DedupWindow = 1000 })
	var lines []string
	for i := range 1200 {
		lines = append(lines, ev("deployment.started", "id-"+itoa(i), "2026-11-27T11:00:00Z", ""))
	}
	before.events(t, lines...)
	slots := 0
	for k := range store.Snapshot() {
		if len(k) > len(keyDedupPrefix) && k[:len(keyDedupPrefix)] == keyDedupPrefix {
			slots++
		}
	}
	assert.Equal(t, 3, slots, "1200 ids in chunks of 512")

	after := restartable(t, store, func(c *Config) { c.DedupWindow = 1000 })
	rep := after.events(t, lines[1199], lines[300])
	assert.EqualValues(t, 2, rep.body["duplicates"])
	rep = after.events(t, lines[0])
	assert.EqualValues(t, 1, rep.body["accepted"], "the oldest ids left the window")
}

func itoa(i int) string {
	const digits = "0123456789"
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{digits[i%10]}, b...)
	}
	return string(b)
}
