package deploymetricsconnector

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/consumer"

	"github.com/fastdeploy/otelcol-fastdeploy/connector/deploymetricsconnector/internal/metadata"
)

// NewFactory returns the deploy_metrics connector factory. The traces and
// logs sides of one configuration share one aggregation; the map that
// pairs them lives in this factory, not in package state.
func NewFactory() connector.Factory {
	f := &instances{byConfig: make(map[*Config]*deployMetrics)}
	return connector.NewFactory(
		metadata.Type,
		func() component.Config { return createDefaultConfig() },
		connector.WithTracesToMetrics(f.createTracesToMetrics, metadata.TracesToMetricsStability),
		connector.WithLogsToMetrics(f.createLogsToMetrics, metadata.LogsToMetricsStability),
	)
}

type instances struct {
	mu       sync.Mutex
	byConfig map[*Config]*deployMetrics
}

// get returns the instance for cfg, creating it on first use. The
// collector hands both sides of a connector the same config value.
func (f *instances) get(set connector.Settings, cfg component.Config, next consumer.Metrics, traces bool) (*deployMetrics, error) {
	c := cfg.(*Config)
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.byConfig[c]
	if !ok {
		var err error
		d, err = newDeployMetrics(set.ID, c, set.TelemetrySettings, time.Now)
		if err != nil {
			return nil, err
		}
		d.release = func() {
			// Lock order is always f.mu, then d.lifecycle.
			f.mu.Lock()
			defer f.mu.Unlock()
			d.lifecycle.Lock()
			defer d.lifecycle.Unlock()
			if f.byConfig[c] == d && d.holders == 0 {
				delete(f.byConfig, c)
			}
		}
		f.byConfig[c] = d
	}
	d.attach(next, traces)
	return d, nil
}

func (f *instances) createTracesToMetrics(_ context.Context, set connector.Settings, cfg component.Config, next consumer.Metrics) (connector.Traces, error) {
	d, err := f.get(set, cfg, next, true)
	if err != nil {
		return nil, err
	}
	return &tracesSide{side{shared: d}}, nil
}

func (f *instances) createLogsToMetrics(_ context.Context, set connector.Settings, cfg component.Config, next consumer.Metrics) (connector.Logs, error) {
	d, err := f.get(set, cfg, next, false)
	if err != nil {
		return nil, err
	}
	return &logsSide{side{shared: d}}, nil
}
