package deploymetricsconnector

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/fastdeploy/otelcol-fastdeploy/connector/deploymetricsconnector/internal/metadata"
)

// deployMetrics is the one aggregation shared by the traces and the logs
// side of a connector configuration: the logs side brings deployment starts
// for active_deployments, the traces side everything else.
type deployMetrics struct {
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
}

func newDeployMetrics(cfg *Config, set component.TelemetrySettings, now func() time.Time) (*deployMetrics, error) {
	e, err := newEngine(cfg, now)
	if err != nil {
		return nil, fmt.Errorf("invalid deploy_metrics configuration: %w", err)
	}
	tb, err := metadata.NewTelemetryBuilder(set)
	if err != nil {
		return nil, fmt.Errorf("failed to create deploy_metrics telemetry: %w", err)
	}
	return &deployMetrics{cfg: cfg, logger: set.Logger, telemetry: tb, engine: e}, nil
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

func (d *deployMetrics) start() {
	d.lifecycle.Lock()
	defer d.lifecycle.Unlock()
	if d.running {
		return
	}
	d.running = true
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel, d.done = cancel, make(chan struct{})
	go d.flushLoop(ctx, d.done)
	d.logger.Info("deploy_metrics started", zap.Duration("flush_interval", d.cfg.MetricsFlushInterval))
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
	if err != nil || !zeroed {
		return err
	}
	// Series created since the last tick went out at zero: one more flush
	// carries their counts, so nothing observed is lost at shutdown.
	_, err = d.flush(ctx)
	return err
}

// flush emits the aggregated metrics outside the engine lock; zeroed tells
// whether new series went out at zero, their counts still to follow.
func (d *deployMetrics) flush(ctx context.Context) (zeroed bool, err error) {
	var c counts
	d.mu.Lock()
	md := d.engine.flush(&c)
	zeroed = d.engine.zeroed > 0
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
	d.mu.Lock()
	d.engine.consumeTraces(td, &c)
	d.mu.Unlock()
	d.record(ctx, &c)
	return nil
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
	for name, n := range c.overflows {
		d.telemetry.DeployMetricsOverflows.Add(ctx, n, metric.WithAttributes(attribute.String("metric", name)))
	}
}

// side is what the collector sees for each of the two pipelines types.
type side struct {
	shared   *deployMetrics
	detached sync.Once
}

func (s *side) Start(context.Context, component.Host) error {
	s.shared.start()
	return nil
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
