package secretredactionprocessor

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/redactionprocessor"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/secrets"
)

// addedRules are the catalogue rules added for the leak categories of
// issue 14 (tool arguments, connect strings, printed config files,
// encodings, ...); the rest is the catalogue as it was before.
var addedRules = []string{
	"aws_secret_access_key_split", "url_credentials_slash", "tool_password", "oracle_connect_password",
	"openssl_pass_argument", "base64_piped_literal", "base64_here_string", "private_key_der_base64",
	"encoded_secret", "url_path_token", "xml_secret_element", "named_value",
}

// pair is two ways of doing the same job, run in alternation.
type pair struct {
	a, b         string
	aTraces      consumer.Traces
	bTraces      consumer.Traces
	aLogs, bLogs consumer.Logs
}

// BenchmarkRedactionVsContrib runs ours and contrib's redaction processor
// (at equal rules, as in BenchmarkRedaction) on the same batches in
// alternation, and reports the process CPU time per batch of each and
// contrib's over ours ("x-faster"). A loaded machine slows both alike, and
// time other processes ran is not counted, so the ratio holds where ns/op
// figures of runs seconds apart do not. "strings-only" runs contrib as
// configured by default, reading string attributes only: it skips the
// nested ansible.result map (most of a trace's text), so it does less
// than the job and its ratio is the lower bound.
func BenchmarkRedactionVsContrib(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{10, 30, len(secrets.Catalogue())} {
		for _, allTypes := range []bool{true, false} {
			p := pair{a: "ours", b: "contrib"}
			var err error
			p.aTraces, err = NewFactory().CreateTraces(ctx, processortest.NewNopSettings(NewFactory().Type()), ourConfig(n), consumertest.NewNop())
			require.NoError(b, err)
			p.aLogs, err = NewFactory().CreateLogs(ctx, processortest.NewNopSettings(NewFactory().Type()), ourConfig(n), consumertest.NewNop())
			require.NoError(b, err)
			cfg := contribConfig(n)
			name := fmt.Sprintf("rules=%d", n)
			if !allTypes {
				cfg.RedactAllTypes = false
				name += "/strings-only"
			}
			cf := redactionprocessor.NewFactory()
			p.bTraces, err = cf.CreateTraces(ctx, processortest.NewNopSettings(cf.Type()), cfg, consumertest.NewNop())
			require.NoError(b, err)
			p.bLogs, err = cf.CreateLogs(ctx, processortest.NewNopSettings(cf.Type()), cfg, consumertest.NewNop())
			require.NoError(b, err)
			benchPair(b, name, p, "x-faster")
		}
	}
}

// BenchmarkAddedRules measures what the rules added for issue 14 cost:
// ours with the catalogue as it was before them and with the full
// catalogue, in alternation on the same batches; "x-slower" is the full
// catalogue's CPU time over the original's (1.25 means 20% less
// throughput).
func BenchmarkAddedRules(b *testing.B) {
	ctx := context.Background()
	orig := &Config{DisabledRules: addedRules}
	full := &Config{}
	p := pair{a: "full", b: "original"}
	var err error
	p.aTraces, err = NewFactory().CreateTraces(ctx, processortest.NewNopSettings(NewFactory().Type()), full, consumertest.NewNop())
	require.NoError(b, err)
	p.aLogs, err = NewFactory().CreateLogs(ctx, processortest.NewNopSettings(NewFactory().Type()), full, consumertest.NewNop())
	require.NoError(b, err)
	p.bTraces, err = NewFactory().CreateTraces(ctx, processortest.NewNopSettings(NewFactory().Type()), orig, consumertest.NewNop())
	require.NoError(b, err)
	p.bLogs, err = NewFactory().CreateLogs(ctx, processortest.NewNopSettings(NewFactory().Type()), orig, consumertest.NewNop())
	require.NoError(b, err)
	benchPair(b, "catalogue", p, "x-slower")
}

// benchPair runs the two sides of p on copies of the same trace and log
// batches; ratioName reports b's CPU time over a's ("x-faster") or a's
// over b's ("x-slower").
func benchPair(b *testing.B, name string, p pair, ratioName string) {
	traces := deploymentTraces(50, true)
	logs := deploymentLogs(100, true)
	ctx := context.Background()
	// Each iteration copies the batch for both sides, collects the garbage
	// (so that neither side pays for collecting the other's or the
	// copies'), then runs the sides, the first one first on even
	// iterations and last on odd ones.
	run := func(b *testing.B, prepare func(), consume func(side int) error) {
		var used [2]time.Duration
		// One untimed round first: with contrib at hundreds of ms a batch,
		// b.N can be 1, and a cold first run (caches, the key verdicts)
		// would be all that is measured.
		prepare()
		for side := range 2 {
			if err := consume(side); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			prepare()
			runtime.GC()
			b.StartTimer()
			for k := range 2 {
				side := k ^ i&1
				start := processCPUTime()
				if err := consume(side); err != nil {
					b.Fatal(err)
				}
				used[side] += processCPUTime() - start
			}
		}
		b.ReportMetric(float64(used[0])/float64(b.N), p.a+"-cpu-ns/op")
		b.ReportMetric(float64(used[1])/float64(b.N), p.b+"-cpu-ns/op")
		ratio := float64(used[1]) / float64(used[0])
		if ratioName == "x-slower" {
			ratio = 1 / ratio
		}
		b.ReportMetric(ratio, ratioName)
	}
	b.Run("traces/"+name, func(b *testing.B) {
		var copies [2]ptrace.Traces
		run(b, func() {
			for i := range copies {
				copies[i] = ptrace.NewTraces()
				traces.CopyTo(copies[i])
			}
		}, func(side int) error {
			if side == 0 {
				return p.aTraces.ConsumeTraces(ctx, copies[0])
			}
			return p.bTraces.ConsumeTraces(ctx, copies[1])
		})
	})
	b.Run("logs/"+name, func(b *testing.B) {
		var copies [2]plog.Logs
		run(b, func() {
			for i := range copies {
				copies[i] = plog.NewLogs()
				logs.CopyTo(copies[i])
			}
		}, func(side int) error {
			if side == 0 {
				return p.aLogs.ConsumeLogs(ctx, copies[0])
			}
			return p.bLogs.ConsumeLogs(ctx, copies[1])
		})
	})
}
