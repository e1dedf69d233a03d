package deploymetricsconnector

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/testutil/memstorage"
)

// memStorage is shared by the components that play a collector before
// and after it is killed.
type memStorage = memstorage.Client

func newMemStorage() *memStorage { return memstorage.New() }

// persistentEngine is an engine on store, as a collector starting with
// storage configured builds it.
func persistentEngine(t *testing.T, store *memStorage, mutate func(*Config)) (*engine, *clock) {
	t.Helper()
	e, clk := newTestEngine(t, mutate)
	require.NoError(t, e.attachStorage(context.Background(), store))
	return e, clk
}

func deploymentsTotal(t *testing.T, md pmetric.Metrics, status string) int64 {
	t.Helper()
	return *point(t, md, metricDeployments, map[string]any{"service": "shop", "environment": "prod", "status": status}).Value
}

// A collector killed between two scrapes restarts with every count it
// acknowledged, under the series' original start time, so Prometheus sees
// the counter continue rather than reset; and it still recognises the
// spans it counted, so a client's retry after the kill counts once.
func TestStorageKeepsCountsAcrossAKill(t *testing.T) {
	store := newMemStorage()
	e, clk := persistentEngine(t, store, nil)
	var c counts
	d := func(id, status string) testDeployment {
		return testDeployment{id: id, service: "shop", env: "prod", status: status, end: t0, took: time.Minute, steps: threeSteps}
	}
	e.consumeTraces(nil, traces(d("1", "success"), d("2", "failure")), &c)
	require.NoError(t, e.save(context.Background()))
	before := flushNew(t, e, clk, &c)
	require.NoError(t, e.save(context.Background()))
	startBefore := point(t, before, metricDeployments, map[string]any{"service": "shop", "environment": "prod", "status": "success"}).Start
	// Counted and acknowledged after the last flush: only storage has it.
	e.consumeTraces(nil, traces(d("3", "success")), &c)
	require.NoError(t, e.save(context.Background()))

	// Killed: a new engine on the same storage.
	restarted, clk2 := persistentEngine(t, store, nil)
	clk2.advance(time.Hour)
	var c2 counts
	// The client did not hear the answer for deployment 3 and retries it.
	restarted.consumeTraces(nil, traces(d("3", "success")), &c2)
	assert.EqualValues(t, 1+len(threeSteps), c2.duplicates, "the retried deployment and its steps count once")
	md := restarted.flush(&c2)
	assert.EqualValues(t, 2, deploymentsTotal(t, md, "success"), "no zero point, no lost count: the series continues")
	assert.EqualValues(t, 1, deploymentsTotal(t, md, "failure"))
	after := point(t, md, metricDeployments, map[string]any{"service": "shop", "environment": "prod", "status": "success"})
	assert.Equal(t, startBefore, after.Start, "same start time: no counter reset")
	h := point(t, md, metricDeploymentDuration, map[string]any{"service": "shop", "environment": "prod", "status": "success"})
	assert.EqualValues(t, 2, *h.Count)
	assert.InDelta(t, 120.0, *h.Sum, 1e-9)
	f := point(t, md, metricStepFailures, map[string]any{"service": "shop", "step_name": "restart {host}", "error_type": "exit_code_1"})
	assert.EqualValues(t, 3, *f.Value)

	// A new deployment after the restart counts on top.
	restarted.consumeTraces(nil, traces(d("4", "success")), &c2)
	require.NoError(t, restarted.save(context.Background()))
	assert.EqualValues(t, 3, deploymentsTotal(t, restarted.flush(&c2), "success"))
}

// A series created and counted but never flushed before the kill has not
// shown its zero yet: after the restart it still goes out at zero first.
func TestStorageKeepsZeroFirstForUnshownSeries(t *testing.T) {
	store := newMemStorage()
	e, _ := persistentEngine(t, store, nil)
	var c counts
	e.consumeTraces(nil, traces(testDeployment{id: "1", service: "shop", env: "prod", status: "success", end: t0, took: time.Minute}), &c)
	require.NoError(t, e.save(context.Background()))

	restarted, clk := persistentEngine(t, store, nil)
	md := flushNew(t, restarted, clk, &c)
	assert.EqualValues(t, 1, deploymentsTotal(t, md, "success"))
}

// Expired series leave storage too, and a failed write is retried with
// the next one instead of being lost.
func TestStorageExpiryAndFailedWrites(t *testing.T) {
	store := newMemStorage()
	e, clk := persistentEngine(t, store, func(c *Config) { c.SeriesExpiration = time.Hour })
	var c counts
	e.consumeTraces(nil, traces(testDeployment{id: "1", service: "shop", env: "prod", status: "success", end: t0, took: time.Minute}), &c)
	store.SetFailing(true)
	require.Error(t, e.save(context.Background()))
	store.SetFailing(false)
	require.NoError(t, e.save(context.Background()))
	restarted, _ := persistentEngine(t, store, func(c *Config) { c.SeriesExpiration = time.Hour })
	assert.Len(t, restarted.deployments.m, 1, "the write that failed went out with the next")

	flushNew(t, e, clk, &c)
	clk.advance(2 * time.Hour)
	e.flush(&c)
	require.NoError(t, e.save(context.Background()))
	assert.Empty(t, e.deployments.m)
	restarted, _ = persistentEngine(t, store, nil)
	assert.Empty(t, restarted.deployments.m, "expired series are gone from storage")
	assert.Empty(t, restarted.stepDurations.m)
}

// The de-duplication ring survives in place; a smaller window after the
// restart keeps the latest entries.
func TestStorageDedupRing(t *testing.T) {
	store := newMemStorage()
	small := func(c *Config) { c.DeduplicationWindow = 4 }
	e, _ := persistentEngine(t, store, small)
	var c counts
	for i := range 6 { // wraps the ring of 4
		e.consumeTraces(nil, traces(testDeployment{id: idOf(i), service: "shop", env: "prod", status: "success", end: t0, took: time.Second}), &c)
	}
	require.NoError(t, e.save(context.Background()))

	restarted, _ := persistentEngine(t, store, small)
	var c2 counts
	restarted.consumeTraces(nil, traces(testDeployment{id: idOf(5), service: "shop", env: "prod", status: "success", end: t0, took: time.Second}), &c2)
	restarted.consumeTraces(nil, traces(testDeployment{id: idOf(0), service: "shop", env: "prod", status: "success", end: t0, took: time.Second}), &c2)
	assert.EqualValues(t, 1, c2.duplicates, "the latest span is remembered; the evicted oldest is not")

	smaller, _ := persistentEngine(t, store, func(c *Config) { c.DeduplicationWindow = 2 })
	var c3 counts
	smaller.consumeTraces(nil, traces(testDeployment{id: idOf(5), service: "shop", env: "prod", status: "success", end: t0, took: time.Second}), &c3)
	assert.EqualValues(t, 1, c3.duplicates)
	assert.Equal(t, 2, smaller.dedup.Slots())
}

func TestStorageConfigValidation(t *testing.T) {
	for name, mutate := range map[string]func(*Config){
		"delta":       func(c *Config) { c.AggregationTemporality = TemporalityDelta },
		"exponential": func(c *Config) { c.Histograms.Type = HistogramExponential },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := createDefaultConfig()
			id := storageID
			cfg.Storage = &id
			require.NoError(t, cfg.Validate(), "storage with the defaults")
			mutate(cfg)
			require.Error(t, cfg.Validate())
		})
	}
}

var storageID = component.MustNewID("file_storage")
