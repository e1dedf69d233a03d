package deploymetricsconnector

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/fastdeploy/otelcol-fastdeploy/connector/deploymetricsconnector/internal/metadata"
	"github.com/fastdeploy/otelcol-fastdeploy/connector/deploymetricsconnector/internal/metadatatest"
)

// TestTracesAndLogsShareOneInstance drives both sides of one configuration
// and reads the final flush of Shutdown: the start log raised the gauge of
// the aggregation the traces side emits.
func TestTracesAndLogsShareOneInstance(t *testing.T) {
	ctx := context.Background()
	factory := NewFactory()
	cfg := factory.CreateDefaultConfig()
	cfg.(*Config).MetricsFlushInterval = time.Hour // only the final flush runs
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(ctx)) })
	set := connectortest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = tel.NewTelemetrySettings()

	tracesSink, logsSink := new(consumertest.MetricsSink), new(consumertest.MetricsSink)
	logsConn, err := factory.CreateLogsToMetrics(ctx, set, cfg, logsSink)
	require.NoError(t, err)
	tracesConn, err := factory.CreateTracesToMetrics(ctx, set, cfg, tracesSink)
	require.NoError(t, err)
	assert.Same(t, logsConn.(*logsSide).shared, tracesConn.(*tracesSide).shared)

	other, err := factory.CreateTracesToMetrics(ctx, set, factory.CreateDefaultConfig(), new(consumertest.MetricsSink))
	require.NoError(t, err)
	assert.NotSame(t, other.(*tracesSide).shared, tracesConn.(*tracesSide).shared, "another configuration gets its own instance")
	require.NoError(t, other.Shutdown(ctx))

	host := componenttest.NewNopHost()
	require.NoError(t, logsConn.Start(ctx, host))
	require.NoError(t, tracesConn.Start(ctx, host))

	now := time.Now()
	require.NoError(t, logsConn.ConsumeLogs(ctx, logs(
		lifecycleLog{action: "deployment.started", id: "1", service: "shop", env: "prod", at: now},
		lifecycleLog{action: "deployment.started", id: "2", service: "shop", env: "prod", at: now},
	)))
	d := testDeployment{id: "1", service: "shop", env: "prod", status: "success", end: now, took: time.Minute}
	require.NoError(t, tracesConn.ConsumeTraces(ctx, traces(d, d)))

	require.NoError(t, logsConn.Shutdown(ctx))
	assert.Empty(t, tracesSink.AllMetrics(), "the traces side still holds the instance")
	require.NoError(t, tracesConn.Shutdown(ctx))
	require.NoError(t, tracesConn.Shutdown(ctx), "shutdown twice is harmless")

	require.Len(t, tracesSink.AllMetrics(), 2, "the final flush shows the new series at zero, and one more their counts")
	assert.Empty(t, logsSink.AllMetrics(), "metrics go to the traces side's pipelines only")
	requireZeroFirst(t, tracesSink.AllMetrics()[0])
	md := tracesSink.AllMetrics()[1]
	assert.Equal(t, int64(1), *point(t, md, metricActiveDeployments, map[string]any{"service": "shop", "environment": "prod"}).Value)
	assert.Equal(t, int64(1), *point(t, md, metricDeployments, map[string]any{"service": "shop", "environment": "prod", "status": "success"}).Value)

	metadatatest.AssertEqualDeployMetricsDuplicates(t, tel, []metricdata.DataPoint[int64]{{Value: 1}}, metricdatatest.IgnoreTimestamp())

	// A new pair after shutdown starts from scratch.
	again, err := factory.CreateTracesToMetrics(ctx, set, cfg, tracesSink)
	require.NoError(t, err)
	assert.NotSame(t, again.(*tracesSide).shared, tracesConn.(*tracesSide).shared)
	require.NoError(t, again.Shutdown(ctx))
}

// TestFlushLoopEmits waits for the ticker's flush through the sink, with a
// deadline instead of a sleep.
func TestFlushLoopEmits(t *testing.T) {
	ctx := context.Background()
	factory := NewFactory()
	cfg := factory.CreateDefaultConfig().(*Config)
	cfg.MetricsFlushInterval = 10 * time.Millisecond
	sink := new(consumertest.MetricsSink)
	conn, err := factory.CreateTracesToMetrics(ctx, connectortest.NewNopSettings(metadata.Type), cfg, sink)
	require.NoError(t, err)
	require.NoError(t, conn.Start(ctx, componenttest.NewNopHost()))
	require.NoError(t, conn.ConsumeTraces(ctx, traces(testDeployment{id: "1", service: "shop", env: "prod", status: "success", end: time.Now(), took: time.Second})))
	// Flushes without data send nothing: the first sent shows the new
	// series at zero, the next its count.
	require.Eventually(t, func() bool { return len(sink.AllMetrics()) >= 2 }, 5*time.Second, 5*time.Millisecond)
	require.NoError(t, conn.Shutdown(ctx))
	all := sink.AllMetrics()
	key := map[string]any{"service": "shop", "environment": "prod", "status": "success"}
	assert.Equal(t, int64(0), *point(t, all[0], metricDeployments, key).Value)
	assert.Equal(t, int64(1), *point(t, all[1], metricDeployments, key).Value)
	assert.Equal(t, int64(1), *point(t, all[len(all)-1], metricDeployments, key).Value)
}

func TestOverflowTelemetry(t *testing.T) {
	ctx := context.Background()
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(ctx)) })
	cfg := createDefaultConfig()
	cfg.MaxSeriesPerMetric = 1
	d, err := newDeployMetrics(storageID, cfg, tel.NewTelemetrySettings(), time.Now)
	require.NoError(t, err)
	require.NoError(t, d.consumeTraces(ctx, traces(
		testDeployment{id: "1", service: "a", status: "success", end: time.Now(), took: time.Second},
		testDeployment{id: "2", service: "b", status: "success", end: time.Now(), took: time.Second},
	)))
	metadatatest.AssertEqualDeployMetricsOverflows(t, tel, []metricdata.DataPoint[int64]{
		{Value: 1, Attributes: attribute.NewSet(attribute.String("metric", metricDeployments))},
		{Value: 1, Attributes: attribute.NewSet(attribute.String("metric", metricTimeToRestore))},
	}, metricdatatest.IgnoreTimestamp())
	d.telemetry.Shutdown()
}
