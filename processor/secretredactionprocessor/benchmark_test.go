package secretredactionprocessor

import (
	"context"
	"fmt"
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/redactionprocessor"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/secrets"
)

// BenchmarkRedaction runs ours and contrib's redaction processor side by
// side on the same deployment telemetry: one trace of 50 Ansible tasks (a
// tenth of them with secrets in commands, stdout and facts) and 100 logs,
// with 10, 30 and all catalogue rules. Compare ns/op and B/op of the
// ours/contrib pairs; an op is one batch.
func BenchmarkRedaction(b *testing.B) {
	traces := deploymentTraces(50, true)
	logs := deploymentLogs(100, true)
	spans := traces.SpanCount()
	ctx := context.Background()
	for _, n := range []int{10, 30, len(secrets.Catalogue())} {
		ourTraces, err := NewFactory().CreateTraces(ctx, processortest.NewNopSettings(NewFactory().Type()), ourConfig(n), consumertest.NewNop())
		require.NoError(b, err)
		ourLogs, err := NewFactory().CreateLogs(ctx, processortest.NewNopSettings(NewFactory().Type()), ourConfig(n), consumertest.NewNop())
		require.NoError(b, err)
		cf := redactionprocessor.NewFactory()
		contribTraces, err := cf.CreateTraces(ctx, processortest.NewNopSettings(cf.Type()), contribConfig(n), consumertest.NewNop())
		require.NoError(b, err)
		contribLogs, err := cf.CreateLogs(ctx, processortest.NewNopSettings(cf.Type()), contribConfig(n), consumertest.NewNop())
		require.NoError(b, err)

		for _, impl := range []struct {
			name   string
			traces consumer.Traces
			logs   consumer.Logs
		}{{"ours", ourTraces, ourLogs}, {"contrib", contribTraces, contribLogs}} {
			b.Run(fmt.Sprintf("traces/rules=%d/%s", n, impl.name), func(b *testing.B) {
				benchTraces(b, impl.traces, traces, spans)
			})
			b.Run(fmt.Sprintf("logs/rules=%d/%s", n, impl.name), func(b *testing.B) {
				benchLogs(b, impl.logs, logs)
			})
		}
	}
}

// benchTraces feeds a fresh copy each time (both processors mutate in
// place); copying is outside the timer and the allocation count.
func benchTraces(b *testing.B, c consumer.Traces, src ptrace.Traces, items int) {
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		td := ptrace.NewTraces()
		src.CopyTo(td)
		b.StartTimer()
		if err := c.ConsumeTraces(ctx, td); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(items)*float64(b.N)/b.Elapsed().Seconds(), "spans/s")
}

func benchLogs(b *testing.B, c consumer.Logs, src plog.Logs) {
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		ld := plog.NewLogs()
		src.CopyTo(ld)
		b.StartTimer()
		if err := c.ConsumeLogs(ctx, ld); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(src.LogRecordCount())*float64(b.N)/b.Elapsed().Seconds(), "logs/s")
}
