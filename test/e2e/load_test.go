//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/loadgen"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/testutil/collectorproc"
)

// soak is set by `make soak`: the load and fault tests then run for
// minutes instead of seconds, with more senders.
var soak = os.Getenv("FASTDEPLOY_SOAK") != ""

// scaled picks the short figure for make test and the long one for make soak.
func scaled[T any](short, long T) T {
	if soak {
		return long
	}
	return short
}

// loadStack is the built collector running config/loadtest.yaml (the
// production-like pipeline: memory_limiter, secret_redaction,
// deploy_metrics, otlp_http with a persistent queue) against a counting
// OTLP sink.
type loadStack struct {
	t        *testing.T
	bin      string
	config   string
	health   string
	receiver string
	sink     *loadgen.Sink
	proc     *collectorproc.Process
}

var envRef = regexp.MustCompile(`\$\{env:([A-Z0-9_]+):-([^}]*)\}`)

// loadConfig is config/loadtest.yaml with its ${env:NAME:-default}
// references replaced by vars[NAME] or the default, so the tests run the
// shipped file.
func loadConfig(t *testing.T, vars map[string]string) string {
	t.Helper()
	return envRef.ReplaceAllStringFunc(string(repoFile(t, "config/loadtest.yaml")), func(ref string) string {
		m := envRef.FindStringSubmatch(ref)
		if v, ok := vars[m[1]]; ok {
			return v
		}
		return m[2]
	})
}

// startLoadStack starts the sink and the collector; vars override the
// config's defaults (ports, storage and sink address are always set).
func startLoadStack(t *testing.T, vars map[string]string) *loadStack {
	t.Helper()
	bin := collectorproc.Binary(t)
	sink, err := loadgen.StartSink("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = sink.Close() })
	all := map[string]string{
		"FDLOAD_HEALTH_PORT":    strconv.Itoa(collectorproc.FreePort(t)),
		"FDLOAD_RECEIVER_PORT":  strconv.Itoa(collectorproc.FreePort(t)),
		"FDLOAD_TELEMETRY_PORT": strconv.Itoa(collectorproc.FreePort(t)),
		"FDLOAD_STORAGE_DIR":    t.TempDir(),
		"FDLOAD_SINK":           sink.Addr(),
	}
	for k, v := range vars {
		all[k] = v
	}
	s := &loadStack{
		t:        t,
		bin:      bin,
		config:   loadConfig(t, all),
		health:   "http://127.0.0.1:" + all["FDLOAD_HEALTH_PORT"] + "/",
		receiver: "http://127.0.0.1:" + all["FDLOAD_RECEIVER_PORT"],
		sink:     sink,
	}
	s.start()
	return s
}

// start (re)starts the collector on the stack's config and storage.
func (s *loadStack) start() {
	s.proc = collectorproc.Start(s.t, s.bin, s.config, s.health)
}

// memory is the collector's current and peak RSS in MiB.
func (s *loadStack) memory() (rss, peak float64) {
	r, p, err := loadgen.ProcessMemory(s.proc.PID())
	require.NoError(s.t, err)
	return float64(r) / (1 << 20), float64(p) / (1 << 20)
}

// requireAllArrived waits until every span acknowledged in res reached the
// sink and checks the log records too; it returns how many acknowledged
// spans arrived more than once.
func requireAllArrived(t *testing.T, sink *loadgen.Sink, res *loadgen.Result, within time.Duration) int {
	t.Helper()
	acked := res.Acknowledged()
	require.NotEmpty(t, acked, "nothing was acknowledged:\n%s", res)
	sink.WaitFor(within, func() bool {
		missing, _ := sink.Missing(acked)
		return len(missing) == 0 && len(sink.MissingLogs(acked)) == 0
	})
	missing, repeated := sink.Missing(acked)
	require.Empty(t, missing, "acknowledged spans never exported (%d of %d):\n%s", len(missing), res.AcknowledgedSpans(), res)
	require.Empty(t, sink.MissingLogs(acked), "deployments with acknowledged events whose log records were not all exported")
	return repeated
}

// TestLoad is the sustained-load figure of docs/BENCHMARKS.md in small:
// deployments as fast as the collector answers, from 1 and 8 senders (64
// as well under make soak). Every request is answered 2xx, nothing hangs,
// every acknowledged span and log record is exported exactly once, and
// the collector's peak RSS stays under memory_limiter's limit.
func TestLoad(t *testing.T) {
	duration := scaled(4*time.Second, 60*time.Second)
	senders := scaled([]int{1, 8}, []int{1, 8, 64})
	for _, n := range senders {
		t.Run(fmt.Sprintf("%d senders", n), func(t *testing.T) {
			s := startLoadStack(t, nil)
			w, err := loadgen.NewWorkload(t.Name(), 1)
			require.NoError(t, err)
			sampler := loadgen.SampleRSS(s.proc.PID(), 100*time.Millisecond)
			res, err := loadgen.Run(context.Background(), w, loadgen.Options{Target: s.receiver, Senders: n, Duration: duration})
			require.NoError(t, err)
			peak := float64(sampler.Stop()) / (1 << 20)
			t.Logf("%d senders, pipeline of config/loadtest.yaml:\n%speak RSS %.0f MiB", n, res, peak)

			assert.Empty(t, res.Refused, "no refusals at a load the collector sustains")
			assert.Empty(t, res.Errors)
			assert.Positive(t, res.Completed)
			repeated := requireAllArrived(t, s.sink, res, 30*time.Second)
			assert.Zero(t, repeated, "without faults nothing arrives twice")
			// memory_limiter's limit_mib is 512 in config/loadtest.yaml.
			assert.Less(t, peak, 512.0, "peak RSS under memory_limiter's limit")
		})
	}
}
