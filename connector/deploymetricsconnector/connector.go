package deploymetricsconnector

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/fastdeploy/otelcol-fastdeploy/connector/deploymetricsconnector/internal/metadata"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/claimledger"
)

// deployMetrics is the one aggregation shared by the traces and the logs
// side of a connector configuration: the logs side brings deployment starts
// for active_deployments, the traces side everything else.
type deployMetrics struct {
	id        component.ID
	cfg       *Config
	logger    *zap.Logger
	telemetry *metadata.TelemetryBuilder

	mu     sync.Mutex // guards engine
	engine *engine

	lifecycle    sync.Mutex // guards the fields below
	next         consumer.Metrics
	nextIsTraces bool
	holders      int // sides created and not shut down
	running      bool
	cancel       context.CancelFunc
	done         chan struct{}
	release      func() // removes the instance from the factory's map
	storage      storage.Client
}

func newDeployMetrics(id component.ID, cfg *Config, set component.TelemetrySettings, now func() time.Time) (*deployMetrics, error) {
	e, err := newEngine(cfg, now)
	if err != nil {
		return nil, fmt.Errorf("invalid deploy_metrics configuration: %w", err)
	}
	tb, err := metadata.NewTelemetryBuilder(set)
	if err != nil {
		return nil, fmt.Errorf("failed to create deploy_metrics telemetry: %w", err)
	}
	return &deployMetrics{id: id, cfg: cfg, logger: set.Logger, telemetry: tb, engine: e}, nil
}

// attach registers one side. Metrics go to the traces side's pipelines when
// there is one, else to the logs side's: both sides should feed the same
// metrics pipelines, and emitting to both would count everything twice.
func (d *deployMetrics) attach(next consumer.Metrics, traces bool) {
	d.lifecycle.Lock()
	defer d.lifecycle.Unlock()
	d.holders++
	if d.next == nil || (traces && !d.nextIsTraces) {
		d.next, d.nextIsTraces = next, traces
	}
}

func (d *deployMetrics) start(ctx context.Context, host component.Host) error {
	d.lifecycle.Lock()
	defer d.lifecycle.Unlock()
	if d.running {
		return nil
	}
	if d.cfg.Storage != nil {
		client, err := openStorage(ctx, host, *d.cfg.Storage, d.id)
		if err != nil {
			return err
		}
		d.mu.Lock()
		err = d.engine.attachStorage(ctx, client)
		d.mu.Unlock()
		if err != nil {
			_ = client.Close(ctx)
			return fmt.Errorf("restore deployment metrics from %s: %w", d.cfg.Storage, err)
		}
		d.storage = client
	}
	if l := d.cfg.SharedLedger; l.Directory != "" {
		ledger, err := claimledger.Open(claimledger.Config{Dir: l.Directory, Retention: l.Retention, ClaimTimeout: l.ClaimTimeout, Now: d.engine.now})
		if err != nil {
			if d.storage != nil {
				_ = d.storage.Close(ctx)
				d.storage = nil
			}
			return fmt.Errorf("deploy_metrics shared_ledger: %w", err)
		}
		d.mu.Lock()
		d.engine.ledger = ledger
		d.mu.Unlock()
	}
	d.running = true
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel, d.done = cancel, make(chan struct{})
	go d.flushLoop(ctx, d.done)
	d.logger.Info("deploy_metrics started", zap.Duration("flush_interval", d.cfg.MetricsFlushInterval))
	return nil
}

func openStorage(ctx context.Context, host component.Host, storageID, id component.ID) (storage.Client, error) {
	ext, ok := host.GetExtensions()[storageID]
	if !ok {
		return nil, fmt.Errorf("storage extension %s not found", storageID)
	}
	se, ok := ext.(storage.Extension)
	if !ok {
		return nil, fmt.Errorf("extension %s is not a storage extension", storageID)
	}
	client, err := se.GetClient(ctx, component.KindConnector, id, "")
	if err != nil {
		return nil, fmt.Errorf("open storage %s: %w", storageID, err)
	}
	return client, nil
}

func (d *deployMetrics) flushLoop(ctx context.Context, done chan struct{}) {
	defer close(done)
	ticker := time.NewTicker(d.cfg.MetricsFlushInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			if _, err := d.flush(ctx); err != nil {
				d.logger.Warn("failed to emit deployment metrics", zap.Error(err))
			}
		}
	}
}

// detach ends one side; the last one stops the flush loop, emits what is
// left and releases the instance.
func (d *deployMetrics) detach(ctx context.Context) error {
	d.lifecycle.Lock()
	d.holders--
	last := d.holders == 0
	running := d.running
	if last {
		d.running = false
	}
	release := d.release
	d.lifecycle.Unlock()
	if !last {
		return nil
	}
	if release != nil {
		release()
	}
	defer d.telemetry.Shutdown()
	if !running {
		return nil
	}
	d.cancel()
	select {
	case <-d.done:
	case <-ctx.Done():
		return fmt.Errorf("deploy_metrics flush loop did not stop: %w", ctx.Err())
	}
	d.logger.Info("deploy_metrics stopped")
	zeroed, err := d.flush(ctx)
	if err == nil && zeroed {
		// Series created since the last tick went out at zero: one more
		// flush carries their counts, so nothing observed is lost at shutdown.
		_, err = d.flush(ctx)
	}
	if d.storage != nil {
		err = errors.Join(err, d.storage.Close(ctx))
	}
	return err
}

// flush emits the aggregated metrics outside the engine lock; zeroed tells
// whether new series went out at zero, their counts still to follow.
func (d *deployMetrics) flush(ctx context.Context) (zeroed bool, err error) {
	var c counts
	d.mu.Lock()
	md := d.engine.flush(&c)
	zeroed = d.engine.zeroed > 0
	// Series shown for the first time or expired: the next start must know.
	if err := d.engine.save(ctx); err != nil {
		d.logger.Warn("deployment metrics not persisted; retried with the next batch", zap.Error(err))
	}
	d.mu.Unlock()
	d.record(ctx, &c)
	if md.DataPointCount() == 0 {
		return zeroed, nil
	}
	d.lifecycle.Lock()
	next := d.next
	d.lifecycle.Unlock()
	return zeroed, next.ConsumeMetrics(ctx, md)
}

func (d *deployMetrics) consumeTraces(ctx context.Context, td ptrace.Traces) error {
	var c counts
	// The shared ledger first, outside the lock: no batch waits on another
	// one's file system calls.
	shared := d.engine.claimShared(ctx, td, &c)
	d.mu.Lock()
	d.engine.consumeTraces(shared, td, &c)
	// Written through before the receiver acknowledges: a killed collector
	// restarts with every count it acknowledged. On failure the receiver
	// answers 503, the client retries, and the spans counted now are
	// recognised as duplicates while the changes are written again.
	err := d.engine.save(ctx)
	d.mu.Unlock()
	// Then the shared ledger learns they are counted: a collector killed
	// before this leaves its claims pending, and another takes them over.
	d.engine.commitShared(shared, &c)
	d.record(ctx, &c)
	return err
}

func (d *deployMetrics) consumeLogs(ctx context.Context, ld plog.Logs) error {
	var c counts
	d.mu.Lock()
	d.engine.consumeLogs(ld, &c)
	d.mu.Unlock()
	d.record(ctx, &c)
	return nil
}

func (d *deployMetrics) record(ctx context.Context, c *counts) {
	if c.duplicates > 0 {
		d.telemetry.DeployMetricsDuplicates.Add(ctx, c.duplicates)
	}
	if c.timedOut > 0 {
		d.telemetry.DeployMetricsActiveTimedOut.Add(ctx, c.timedOut)
	}
	if c.ledgerErrors > 0 {
		d.telemetry.DeployMetricsSharedLedgerErrors.Add(ctx, c.ledgerErrors)
		d.logger.Warn("deploy_metrics shared ledger failed; the spans concerned were counted without it", zap.Int64("failures", c.ledgerErrors), zap.Error(c.ledgerErr))
	}
	if c.countedTwice > 0 {
		d.telemetry.DeployMetricsCountedTwice.Add(ctx, c.countedTwice)
	}
	for name, n := range c.overflows {
		d.telemetry.DeployMetricsOverflows.Add(ctx, n, metric.WithAttributes(attribute.String("metric", name)))
	}
}

// side is what the collector sees for each of the two pipelines types.
type side struct {
	shared   *deployMetrics
	detached sync.Once
}

func (s *side) Start(ctx context.Context, host component.Host) error {
	return s.shared.start(ctx, host)
}

func (s *side) Shutdown(ctx context.Context) error {
	var err error
	s.detached.Do(func() { err = s.shared.detach(ctx) })
	return err
}

func (*side) Capabilities() consumer.Capabilities {
	return consumer.Capabilities{MutatesData: false}
}

type tracesSide struct{ side }

func (t *tracesSide) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	return t.shared.consumeTraces(ctx, td)
}

type logsSide struct{ side }

func (l *logsSide) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	return l.shared.consumeLogs(ctx, ld)
}
