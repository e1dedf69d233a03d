package deploymetricsconnector

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/connector/spanmetricsconnector"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/fastdeploy/otelcol-fastdeploy/connector/deploymetricsconnector/internal/metadata"
)

// The benchmarks feed deploy_metrics and contrib's span_metrics the same
// batches of deployment traces as the fastdeploy receiver emits them: per
// deployment one deployment span, five step spans and five subprocess
// spans. span_metrics is configured with the nearest equivalent labels
// (service, environment, status, step name) and the same explicit buckets.
// Run with: go test -run '^$' -bench . -benchmem ./connector/deploymetricsconnector/

const (
	deploymentsPerBatch = 100
	spansPerDeployment  = 11
	// batchPool distinct batches are cycled; they hold more spans than the
	// de-duplication window, so every span takes the full counting path.
	batchPool = 64
)

var benchSteps = []testStep{
	{name: "fetch artifacts", status: "success", took: 12 * time.Second},
	{name: "migrate database", status: "success", took: 40 * time.Second},
	{name: "render config", status: "success", took: time.Second},
	{name: "restart service", status: "failure", took: 3 * time.Second, errorType: "exit_code_1"},
	{name: "smoke test", status: "skipped", took: 0},
}

// benchBatch builds batch n of deployments spread over `services` services.
func benchBatch(n, services int) ptrace.Traces {
	td := ptrace.NewTraces()
	statuses := []string{"success", "success", "success", "failure", "timeout", "cancelled"}
	envs := []string{"prod", "staging"}
	for i := range deploymentsPerBatch {
		k := n*deploymentsPerBatch + i
		testDeployment{
			id:             fmt.Sprintf("bench-%d", k),
			service:        fmt.Sprintf("service-%d", k%services),
			env:            envs[k%len(envs)],
			status:         statuses[k%len(statuses)],
			end:            t0.Add(time.Duration(k) * time.Second),
			took:           time.Duration(30+k%600) * time.Second,
			commitTime:     t0.Add(-time.Hour).Format(time.RFC3339),
			steps:          benchSteps,
			withSubprocess: true,
		}.appendTo(td)
	}
	return td
}

func spanMetricsConfig(tb testing.TB) component.Config {
	factory := spanmetricsconnector.NewFactory()
	cfg := factory.CreateDefaultConfig()
	buckets := make([]any, 0, len(createDefaultConfig().Histograms.DeploymentDurationBuckets))
	for _, b := range createDefaultConfig().Histograms.DeploymentDurationBuckets {
		buckets = append(buckets, b.String())
	}
	require.NoError(tb, confmap.NewFromStringMap(map[string]any{
		"metrics_flush_interval": "1h",
		"dimensions": []any{
			map[string]any{"name": "deployment.environment.name"},
			map[string]any{"name": "fastdeploy.status"},
			map[string]any{"name": "cicd.pipeline.task.name"},
		},
		"histogram": map[string]any{"unit": "s", "explicit": map[string]any{"buckets": buckets}},
		"exemplars": map[string]any{"enabled": true},
	}).Unmarshal(cfg))
	return cfg
}

type contender struct {
	name   string
	create func(tb testing.TB, next consumer.Metrics) connector.Traces
}

var contenders = []contender{
	{"deploy_metrics", func(tb testing.TB, next consumer.Metrics) connector.Traces {
		cfg := createDefaultConfig()
		cfg.MetricsFlushInterval = time.Hour
		c, err := NewFactory().CreateTracesToMetrics(context.Background(), connectortest.NewNopSettings(metadata.Type), cfg, next)
		require.NoError(tb, err)
		return c
	}},
	{"span_metrics", func(tb testing.TB, next consumer.Metrics) connector.Traces {
		f := spanmetricsconnector.NewFactory()
		c, err := f.CreateTracesToMetrics(context.Background(), connectortest.NewNopSettings(f.Type()), spanMetricsConfig(tb), next)
		require.NoError(tb, err)
		return c
	}},
}

func BenchmarkConsumeTraces(b *testing.B) {
	batches := make([]ptrace.Traces, batchPool)
	for i := range batches {
		batches[i] = benchBatch(i, 200)
	}
	ctx := context.Background()
	for _, c := range contenders {
		b.Run(c.name, func(b *testing.B) {
			conn := c.create(b, consumertest.NewNop())
			require.NoError(b, conn.Start(ctx, componenttest.NewNopHost()))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if err := conn.ConsumeTraces(ctx, batches[i%batchPool]); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			spans := float64(b.N * deploymentsPerBatch * spansPerDeployment)
			b.ReportMetric(spans/b.Elapsed().Seconds(), "spans/s")
			require.NoError(b, conn.Shutdown(ctx))
		})
	}
}

// BenchmarkMemoryHeld reports the heap each connector holds after
// aggregating distinct deployments (11 spans each) over 10,000 services;
// the iteration count is irrelevant, one pass is measured.
func BenchmarkMemoryHeld(b *testing.B) {
	for _, deployments := range []int{1000, 10000, 91000} {
		for _, c := range contenders {
			b.Run(fmt.Sprintf("%s/deployments=%d", c.name, deployments), func(b *testing.B) {
				for b.Loop() {
					held := heldAfter(b, c, deployments, 10000)
					b.ReportMetric(float64(held), "B-held")
					b.ReportMetric(float64(held)/float64(deployments), "B-held/deployment")
				}
			})
		}
	}
}

func heldAfter(tb testing.TB, c contender, deployments, services int) uint64 {
	ctx := context.Background()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	conn := c.create(tb, consumertest.NewNop())
	require.NoError(tb, conn.Start(ctx, componenttest.NewNopHost()))
	for n := 0; n*deploymentsPerBatch < deployments; n++ {
		require.NoError(tb, conn.ConsumeTraces(ctx, benchBatch(n, services)))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(conn)
	require.NoError(tb, conn.Shutdown(ctx))
	if after.HeapAlloc < before.HeapAlloc {
		return 0
	}
	return after.HeapAlloc - before.HeapAlloc
}

// TestMemoryStaysBoundedByTheCap is the bound the issue asks for, kept
// small enough for the unit test run: with a cap of 100 series per metric,
// 20,000 distinct deployments over 10,000 services hold about what 2,000 do.
func TestMemoryStaysBoundedByTheCap(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates a few hundred MB of traces")
	}
	capped := contender{"deploy_metrics", func(tb testing.TB, next consumer.Metrics) connector.Traces {
		cfg := createDefaultConfig()
		cfg.MaxSeriesPerMetric = 100
		cfg.DeduplicationWindow = 1000
		cfg.ActiveDeployments.MaxTracked = 1000
		c, err := NewFactory().CreateTracesToMetrics(context.Background(), connectortest.NewNopSettings(metadata.Type), cfg, next)
		require.NoError(tb, err)
		return c
	}}
	small := heldAfter(t, capped, 2000, 10000)
	large := heldAfter(t, capped, 20000, 10000)
	t.Logf("held after 2,000 deployments: %d B, after 20,000: %d B", small, large)
	require.Less(t, large, small*2+256<<10, "memory grew with the number of deployments beyond the cap")
}
