package deploymetricsconnector

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/fastdeploy/otelcol-fastdeploy/connector/deploymetricsconnector/internal/metadata"
	"github.com/fastdeploy/otelcol-fastdeploy/connector/deploymetricsconnector/internal/metadatatest"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/claimledger"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/testutil/fakeclock"
)

// groupMember is one collector of a group sharing a ledger directory: its
// own storage, its own engine.
type groupMember struct {
	e     *engine
	clk   *clock
	store *memStorage
}

func newGroupMember(t *testing.T, dir string, lclk *fakeclock.Clock, wait func(context.Context) error) *groupMember {
	t.Helper()
	store := newMemStorage()
	e, clk := persistentEngine(t, store, nil)
	l, err := claimledger.Open(claimledger.Config{Dir: dir, Retention: time.Hour, ClaimTimeout: 2 * time.Second, Now: lclk.Now, Wait: wait})
	require.NoError(t, err)
	e.ledger = l
	return &groupMember{e: e, clk: clk, store: store}
}

// consume is one acknowledged batch, as the connector runs it: count,
// write through, commit the claims.
func (m *groupMember) consume(t *testing.T, d testDeployment) counts {
	t.Helper()
	var c counts
	td := traces(d)
	shared := m.e.claimShared(context.Background(), td, &c)
	m.e.consumeTraces(shared, td, &c)
	require.NoError(t, m.e.save(context.Background()))
	m.e.commitShared(shared, &c)
	return c
}

// total is what Prometheus would scrape from the member: its successful
// deployments, 0 when it has no series.
func (m *groupMember) total(t *testing.T) int64 {
	t.Helper()
	var c counts
	md := m.e.flush(&c)
	m.clk.advance(m.e.cfg.MetricsFlushInterval)
	md = m.e.flush(&c)
	if !hasMetric(md, metricDeployments) {
		return 0
	}
	return deploymentsTotal(t, md, "success")
}

func finishing(id string) testDeployment {
	return testDeployment{id: id, service: "shop", env: "prod", status: "success", end: t0, took: time.Minute, steps: threeSteps}
}

// TestSharedLedgerCountsARetryAfterFailoverOnce: collector A counted a
// deployment and its answer was lost; the client's retry lands on B. With
// the ledger the group counts it once; without, twice.
func TestSharedLedgerCountsARetryAfterFailoverOnce(t *testing.T) {
	lclk := fakeclock.New(t0)
	dir := t.TempDir()
	noWait := func(context.Context) error {
		t.Error("nothing here has a claim to wait for")
		return context.Canceled
	}
	a := newGroupMember(t, dir, lclk, noWait)
	b := newGroupMember(t, dir, lclk, noWait)
	ca := a.consume(t, finishing("1"))
	assert.Zero(t, ca.duplicates)
	cb := b.consume(t, finishing("1"))
	assert.EqualValues(t, 1+len(threeSteps), cb.duplicates, "B recognises the deployment and its steps as A's")
	assert.Zero(t, cb.ledgerErrors)
	b.consume(t, finishing("2")) // B's own deployment counts on B

	// A span twice in one batch: asked about once, counted once, no wait
	// for its own claim.
	var c2 counts
	twice := traces(finishing("3"), finishing("3"))
	shared := b.e.claimShared(context.Background(), twice, &c2)
	assert.Len(t, shared.claims, 1+len(threeSteps))
	b.e.consumeTraces(shared, twice, &c2)
	require.NoError(t, b.e.save(context.Background()))
	b.e.commitShared(shared, &c2)
	assert.Zero(t, c2.countedTwice)
	assert.EqualValues(t, 1+len(threeSteps), c2.duplicates)
	assert.EqualValues(t, 1, a.total(t))
	assert.EqualValues(t, 2, b.total(t))

	// The same redelivery without the ledger: counted twice, the problem.
	a2, _ := newTestEngine(t, nil)
	b2, _ := newTestEngine(t, nil)
	var c counts
	a2.consumeTraces(nil, traces(finishing("1")), &c)
	b2.consumeTraces(nil, traces(finishing("1")), &c)
	assert.Zero(t, c.duplicates, "without a shared ledger each collector counts the redelivery")
}

// TestSharedLedgerWaitsForAClaimInFlight forces the interleaving where B
// gets the span while A is between counting it and committing: B waits
// and, once A commits, does not count.
func TestSharedLedgerWaitsForAClaimInFlight(t *testing.T) {
	lclk := fakeclock.New(t0)
	dir := t.TempDir()
	a := newGroupMember(t, dir, lclk, nil)
	waiting, proceed := make(chan struct{}), make(chan struct{})
	var once sync.Once
	b := newGroupMember(t, dir, lclk, func(context.Context) error {
		once.Do(func() {
			close(waiting)
			<-proceed
		})
		return nil
	})

	var ca counts
	tdA := traces(finishing("1"))
	sharedA := a.e.claimShared(context.Background(), tdA, &ca)
	a.e.consumeTraces(sharedA, tdA, &ca) // counted, not yet written nor committed
	done := make(chan counts)
	go func() {
		var cb counts
		td := traces(finishing("1"))
		b.e.consumeTraces(b.e.claimShared(context.Background(), td, &cb), td, &cb)
		done <- cb
	}()
	<-waiting
	require.NoError(t, a.e.save(context.Background()))
	a.e.commitShared(sharedA, &ca)
	close(proceed)
	cb := <-done
	assert.EqualValues(t, 1+len(threeSteps), cb.duplicates)
	assert.EqualValues(t, 1, a.total(t))
	assert.EqualValues(t, 0, b.total(t))
}

// TestSharedLedgerTakesOverTheClaimOfACollectorKilledMidBatch: A claimed
// and was SIGKILLed before writing its counts (so before answering). The
// retry on B waits out the claim timeout, takes the claim over and counts:
// the deployment is counted once, by B, and A restarted has nothing.
func TestSharedLedgerTakesOverTheClaimOfACollectorKilledMidBatch(t *testing.T) {
	lclk := fakeclock.New(t0)
	dir := t.TempDir()
	a := newGroupMember(t, dir, lclk, nil)
	var ca counts
	tdA := traces(finishing("1"))
	sharedA := a.e.claimShared(context.Background(), tdA, &ca)
	a.e.consumeTraces(sharedA, tdA, &ca) // killed here

	b := newGroupMember(t, dir, lclk, func(context.Context) error {
		lclk.Advance(250 * time.Millisecond)
		return nil
	})
	cb := b.consume(t, finishing("1"))
	assert.Zero(t, cb.duplicates, "B counts what A never wrote")
	assert.Zero(t, cb.countedTwice)
	assert.EqualValues(t, 1, b.total(t))

	restarted, clk := persistentEngine(t, a.store, nil)
	var c counts
	restarted.flush(&c)
	clk.advance(time.Second)
	assert.False(t, hasMetric(restarted.flush(&c), metricDeployments), "A restarted did not keep what it never acknowledged")

	// Had A only stalled, its late commit is reported, not hidden.
	a.e.commitShared(sharedA, &ca)
	assert.EqualValues(t, 1+len(threeSteps), ca.countedTwice)
}

// TestSharedLedgerFailureCountsAtLeastOnce: a ledger that cannot be
// written costs exactness across collectors, never a count.
func TestSharedLedgerFailureCountsAtLeastOnce(t *testing.T) {
	lclk := fakeclock.New(t0)
	dir := t.TempDir()
	a := newGroupMember(t, dir, lclk, nil)
	require.NoError(t, os.RemoveAll(dir))
	require.NoError(t, os.WriteFile(dir, nil, 0o600)) // the mount went away: a file where the directory was
	c := a.consume(t, finishing("1"))
	assert.EqualValues(t, 1+len(threeSteps), c.ledgerErrors)
	assert.Error(t, c.ledgerErr)
	assert.EqualValues(t, 1, a.total(t))
	again := a.consume(t, finishing("1"))
	assert.EqualValues(t, 1+len(threeSteps), again.duplicates, "its own redeliveries are still recognised")
}

func TestSharedLedgerConfig(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*SharedLedgerConfig)
		wantErr string
	}{
		{"off", func(*SharedLedgerConfig) {}, ""},
		{"on with the defaults", func(l *SharedLedgerConfig) { l.Directory = "/shared/ledger" }, ""},
		{"short retention", func(l *SharedLedgerConfig) { l.Directory, l.Retention = "/shared/ledger", 30*time.Second }, "retention"},
		{"no claim timeout", func(l *SharedLedgerConfig) { l.Directory, l.ClaimTimeout = "/shared/ledger", 0 }, "claim_timeout"},
		{"claim timeout past the retention", func(l *SharedLedgerConfig) { l.Directory, l.ClaimTimeout = "/shared/ledger", 7*time.Hour }, "claim_timeout"},
		{"off ignores the rest", func(l *SharedLedgerConfig) { l.Retention, l.ClaimTimeout = 0, 0 }, ""},
	}
	for _, tt := range tests {
		cfg := createDefaultConfig()
		tt.mutate(&cfg.SharedLedger)
		err := cfg.Validate()
		if tt.wantErr == "" {
			assert.NoError(t, err, tt.name)
			continue
		}
		assert.ErrorContains(t, err, "shared_ledger: "+tt.wantErr, tt.name)
	}
}

// TestSharedLedgerThroughTheConnector: two collectors' connectors on one
// ledger directory, driven as pipelines drive them, with their own
// telemetry; and a directory that cannot be one stops the start.
func TestSharedLedgerThroughTheConnector(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	type member struct {
		conn interface {
			Start(context.Context, component.Host) error
			Shutdown(context.Context) error
			ConsumeTraces(context.Context, ptrace.Traces) error
		}
		sink *consumertest.MetricsSink
		tel  *componenttest.Telemetry
	}
	start := func() member {
		factory := NewFactory() // one factory per collector
		cfg := factory.CreateDefaultConfig().(*Config)
		cfg.MetricsFlushInterval = time.Hour
		cfg.SharedLedger.Directory = dir
		tel := componenttest.NewTelemetry()
		t.Cleanup(func() { require.NoError(t, tel.Shutdown(ctx)) })
		set := connectortest.NewNopSettings(metadata.Type)
		set.TelemetrySettings = tel.NewTelemetrySettings()
		sink := new(consumertest.MetricsSink)
		conn, err := factory.CreateTracesToMetrics(ctx, set, cfg, sink)
		require.NoError(t, err)
		require.NoError(t, conn.Start(ctx, componenttest.NewNopHost()))
		return member{conn: conn, sink: sink, tel: tel}
	}
	a, b := start(), start()
	d := testDeployment{id: "7", service: "shop", env: "prod", status: "success", end: time.Now(), took: time.Minute, steps: threeSteps}
	require.NoError(t, a.conn.ConsumeTraces(ctx, traces(d)))
	require.NoError(t, b.conn.ConsumeTraces(ctx, traces(d)))
	require.NoError(t, a.conn.Shutdown(ctx))
	require.NoError(t, b.conn.Shutdown(ctx))
	counted := func(m member) int64 {
		var n int64
		for _, md := range m.sink.AllMetrics() {
			if hasMetric(md, metricDeployments) {
				n = deploymentsTotal(t, md, "success")
			}
		}
		return n
	}
	assert.EqualValues(t, 1, counted(a))
	assert.EqualValues(t, 0, counted(b), "B's redelivery was A's")
	metadatatest.AssertEqualDeployMetricsDuplicates(t, b.tel, []metricdata.DataPoint[int64]{{Value: int64(1 + len(threeSteps))}}, metricdatatest.IgnoreTimestamp())

	factory := NewFactory()
	cfg := factory.CreateDefaultConfig().(*Config)
	file := filepath.Join(t.TempDir(), "not-a-directory")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	cfg.SharedLedger.Directory = file
	conn, err := factory.CreateTracesToMetrics(ctx, connectortest.NewNopSettings(metadata.Type), cfg, new(consumertest.MetricsSink))
	require.NoError(t, err)
	err = conn.Start(ctx, componenttest.NewNopHost())
	require.ErrorContains(t, err, "shared_ledger")
	require.NoError(t, conn.Shutdown(ctx))
}
