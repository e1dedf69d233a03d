package deploymetricsconnector

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

func newTestEngine(t *testing.T, mutate func(*Config)) (*engine, *clock) {
	t.Helper()
	cfg := createDefaultConfig()
	if mutate != nil {
		mutate(cfg)
	}
	require.NoError(t, cfg.Validate())
	clk := &clock{t: t0}
	e, err := newEngine(cfg, clk.now)
	require.NoError(t, err)
	return e, clk
}

var threeSteps = []testStep{
	{name: "build", status: "success", took: 40 * time.Second},
	{name: "migrate db 20260301", status: "success", took: 3 * time.Second},
	{name: "restart web-01.prod.example.com", status: "failure", took: 2 * time.Second, errorType: "exit_code_1"},
}

// TestGoldenMetrics renders each scenario and compares it, field by field,
// with its golden file; the assertions beside each name what the golden
// must show, so a wrong golden cannot pass unnoticed.
func TestGoldenMetrics(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		run    func(t *testing.T, e *engine, clk *clock) pmetric.Metrics
		check  func(t *testing.T, md pmetric.Metrics)
	}{
		{
			name: "one_deployment",
			run: func(t *testing.T, e *engine, clk *clock) pmetric.Metrics {
				var c counts
				e.consumeLogs(logs(lifecycleLog{action: "deployment.started", id: "42", service: "shop", env: "prod", at: t0.Add(-50 * time.Second)}), &c)
				e.consumeLogs(logs(lifecycleLog{action: "deployment.started", id: "43", service: "shop", env: "prod", at: t0.Add(-5 * time.Second)}), &c)
				clk.advance(time.Second)
				e.consumeTraces(nil, traces(testDeployment{
					id: "42", service: "shop", env: "prod", status: "failure", end: t0, took: 50 * time.Second,
					steps: threeSteps, withSubprocess: true,
				}), &c)
				clk.advance(time.Second)
				return flushNew(t, e, clk, &c)
			},
			check: func(t *testing.T, md pmetric.Metrics) {
				p := point(t, md, metricDeployments, map[string]any{"service": "shop", "environment": "prod", "status": "failure"})
				assert.Equal(t, int64(1), *p.Value)
				p = point(t, md, metricDeploymentDuration, map[string]any{"service": "shop", "environment": "prod", "status": "failure"})
				assert.Equal(t, 50.0, *p.Sum)
				require.Len(t, p.Exemplars, 1)
				p = point(t, md, metricStepDuration, map[string]any{"service": "shop", "step_name": "restart {host}", "status": "failure"})
				assert.Equal(t, 2.0, *p.Sum)
				point(t, md, metricStepDuration, map[string]any{"service": "shop", "step_name": "migrate db {n}", "status": "success"})
				p = point(t, md, metricStepFailures, map[string]any{"service": "shop", "step_name": "restart {host}", "error_type": "exit_code_1"})
				assert.Equal(t, int64(1), *p.Value)
				p = point(t, md, metricActiveDeployments, map[string]any{"service": "shop", "environment": "prod"})
				assert.Equal(t, int64(1), *p.Value, "42 finished, 43 still runs")
				assert.False(t, hasMetric(md, metricTimeToRestore), "a failure alone restores nothing")
			},
		},
		{
			name: "duplicates_count_once",
			run: func(t *testing.T, e *engine, clk *clock) pmetric.Metrics {
				var c counts
				d := testDeployment{id: "7", service: "api", env: "staging", status: "success", end: t0, took: 90 * time.Second, steps: threeSteps[:1]}
				e.consumeTraces(nil, traces(d), &c)
				e.consumeTraces(nil, traces(d, d), &c)
				assert.Equal(t, int64(4), c.duplicates)
				clk.advance(time.Second)
				return flushNew(t, e, clk, &c)
			},
			check: func(t *testing.T, md pmetric.Metrics) {
				p := point(t, md, metricDeployments, map[string]any{"service": "api", "environment": "staging", "status": "success"})
				assert.Equal(t, int64(1), *p.Value)
				p = point(t, md, metricStepDuration, map[string]any{"service": "api", "step_name": "build", "status": "success"})
				assert.Equal(t, uint64(1), *p.Count)
			},
		},
		{
			name: "late_and_out_of_order",
			run: func(t *testing.T, e *engine, clk *clock) pmetric.Metrics {
				var c counts
				// A deployment that ended three hours before it arrived, after
				// a newer one: counted, with its own event-time duration.
				e.consumeTraces(nil, traces(testDeployment{id: "new", service: "api", env: "prod", status: "success", end: t0, took: 10 * time.Second}), &c)
				e.consumeTraces(nil, traces(testDeployment{id: "old", service: "api", env: "prod", status: "success", end: t0.Add(-3 * time.Hour), took: 20 * time.Minute}), &c)
				clk.advance(time.Second)
				return flushNew(t, e, clk, &c)
			},
			check: func(t *testing.T, md pmetric.Metrics) {
				p := point(t, md, metricDeploymentDuration, map[string]any{"service": "api", "environment": "prod", "status": "success"})
				assert.Equal(t, uint64(2), *p.Count)
				assert.Equal(t, 1210.0, *p.Sum)
				require.Len(t, p.Exemplars, 2, "one exemplar per bucket hit")
				assert.Equal(t, "2026-03-02T07:00:00Z", p.Exemplars[1].Time, "exemplars carry the event time")
			},
		},
		{
			name: "time_to_restore_streaks",
			run: func(t *testing.T, e *engine, clk *clock) pmetric.Metrics {
				var c counts
				dep := func(id, status string, end time.Time) ptrace.Traces {
					return traces(testDeployment{id: id, service: "shop", env: "prod", status: status, end: end, took: time.Minute})
				}
				// In order: failure, timeout, success -> 30 min from the first failure.
				e.consumeTraces(nil, dep("1", "failure", t0.Add(-60*time.Minute)), &c)
				e.consumeTraces(nil, dep("2", "timeout", t0.Add(-45*time.Minute)), &c)
				e.consumeTraces(nil, dep("3", "success", t0.Add(-30*time.Minute)), &c)
				// A cancelled one neither breaks nor opens a streak.
				e.consumeTraces(nil, dep("4", "cancelled", t0.Add(-25*time.Minute)), &c)
				// Out of order: the success arrives before the failure it recovers.
				e.consumeTraces(nil, dep("6", "success", t0.Add(-5*time.Minute)), &c)
				e.consumeTraces(nil, dep("5", "failure", t0.Add(-20*time.Minute)), &c)
				// Redelivery of the recovering success adds nothing.
				e.consumeTraces(nil, dep("6", "success", t0.Add(-5*time.Minute)), &c)
				clk.advance(time.Second)
				return flushNew(t, e, clk, &c)
			},
			check: func(t *testing.T, md pmetric.Metrics) {
				p := point(t, md, metricTimeToRestore, map[string]any{"service": "shop", "environment": "prod"})
				assert.Equal(t, uint64(2), *p.Count)
				assert.Equal(t, float64(30*60+15*60), *p.Sum)
			},
		},
		{
			name: "lead_time",
			run: func(t *testing.T, e *engine, clk *clock) pmetric.Metrics {
				var c counts
				e.consumeTraces(nil, traces(
					testDeployment{id: "1", service: "shop", env: "prod", status: "success", end: t0, took: time.Minute, commitTime: t0.Add(-2 * time.Hour).Format(time.RFC3339)},
					testDeployment{id: "2", service: "shop", env: "prod", status: "failure", end: t0, took: time.Minute, commitTime: t0.Add(-time.Hour).Format(time.RFC3339)},
					testDeployment{id: "3", service: "shop", env: "prod", status: "success", end: t0, took: time.Minute, commitTime: "not a time"},
				), &c)
				clk.advance(time.Second)
				return flushNew(t, e, clk, &c)
			},
			check: func(t *testing.T, md pmetric.Metrics) {
				p := point(t, md, metricLeadTime, map[string]any{"service": "shop", "environment": "prod"})
				assert.Equal(t, uint64(1), *p.Count, "failed deployments and unreadable commit times do not count")
				assert.Equal(t, 7200.0, *p.Sum)
			},
		},
		{
			name:   "overflow",
			mutate: func(c *Config) { c.MaxSeriesPerMetric = 2 },
			run: func(t *testing.T, e *engine, clk *clock) pmetric.Metrics {
				var c counts
				for i, svc := range []string{"a", "b", "c", "d"} {
					e.consumeTraces(nil, traces(testDeployment{id: idOf(i), service: svc, env: "prod", status: "success", end: t0, took: time.Second}), &c)
				}
				assert.Equal(t, int64(2), c.overflows[metricDeployments])
				clk.advance(time.Second)
				return flushNew(t, e, clk, &c)
			},
			check: func(t *testing.T, md pmetric.Metrics) {
				p := point(t, md, metricDeployments, map[string]any{"otel.metric.overflow": true})
				assert.Equal(t, int64(2), *p.Value)
				point(t, md, metricDeployments, map[string]any{"service": "a", "environment": "prod", "status": "success"})
			},
		},
		{
			name:   "delta",
			mutate: func(c *Config) { c.AggregationTemporality = TemporalityDelta },
			run: func(t *testing.T, e *engine, clk *clock) pmetric.Metrics {
				var c counts
				e.consumeTraces(nil, traces(testDeployment{id: "1", service: "shop", env: "prod", status: "success", end: t0, took: time.Second}), &c)
				clk.advance(15 * time.Second)
				first := e.flush(&c)
				assert.Equal(t, int64(1), *point(t, first, metricDeployments, map[string]any{"service": "shop", "environment": "prod", "status": "success"}).Value)
				e.consumeTraces(nil, traces(testDeployment{id: "2", service: "shop", env: "prod", status: "success", end: t0, took: 3 * time.Second}), &c)
				clk.advance(15 * time.Second)
				return e.flush(&c)
			},
			check: func(t *testing.T, md pmetric.Metrics) {
				p := point(t, md, metricDeployments, map[string]any{"service": "shop", "environment": "prod", "status": "success"})
				assert.Equal(t, int64(1), *p.Value, "only the second interval")
				assert.Equal(t, "2026-03-02T10:00:15Z", p.Start)
			},
		},
		{
			name:   "exponential",
			mutate: func(c *Config) { c.Histograms.Type = HistogramExponential; c.Histograms.ExponentialMaxSize = 20 },
			run: func(t *testing.T, e *engine, clk *clock) pmetric.Metrics {
				var c counts
				for i, took := range []time.Duration{time.Second, 10 * time.Second, 100 * time.Second} {
					e.consumeTraces(nil, traces(testDeployment{id: idOf(i), service: "shop", env: "prod", status: "success", end: t0, took: took}), &c)
				}
				clk.advance(time.Second)
				return flushNew(t, e, clk, &c)
			},
			check: func(t *testing.T, md pmetric.Metrics) {
				p := point(t, md, metricDeploymentDuration, map[string]any{"service": "shop", "environment": "prod", "status": "success"})
				assert.Equal(t, uint64(3), *p.Count)
				var total uint64
				for _, n := range p.Positive.Counts {
					total += n
				}
				assert.Equal(t, uint64(3), total)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, clk := newTestEngine(t, tt.mutate)
			md := tt.run(t, e, clk)
			tt.check(t, md)
			requireGolden(t, tt.name, md)
		})
	}
}
