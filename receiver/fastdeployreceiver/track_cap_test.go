package fastdeployreceiver

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/testutil/fakeclock"
	"github.com/fastdeploy/otelcol-fastdeploy/receiver/fastdeployreceiver/internal/metadatatest"
)

// newTelemetryReceiver is newTestReceiver whose self-metrics are read by tt.
func newTelemetryReceiver(t *testing.T, tt *componenttest.Telemetry, mutate func(*Config)) *testReceiver {
	t.Helper()
	cfg := createDefaultConfig()
	if mutate != nil {
		mutate(cfg)
	}
	r, err := newReceiver(metadatatest.NewSettings(tt), cfg, nil)
	require.NoError(t, err)
	tr := &testReceiver{r: r, traces: new(consumertest.TracesSink), logs: new(consumertest.LogsSink), clock: fakeclock.New(testNow)}
	r.now = tr.clock.Now
	r.setTraces(tr.traces)
	r.setLogs(tr.logs)
	tr.srv = httptest.NewServer(r.handler())
	t.Cleanup(tr.srv.Close)
	t.Cleanup(func() { require.NoError(t, r.Shutdown(context.Background())) })
	return tr
}

// depEv is a lifecycle event of deployment dep at second sec after 11:00.
func depEv(typ, dep string, sec int, extra string) string { return depEvCtx(typ, dep, sec, "", extra) }

// depEvCtx is depEv with more fields of the deployment (its context).
func depEvCtx(typ, dep string, sec int, fields, extra string) string {
	at := time.Date(2026, 11, 27, 11, 0, 0, 0, time.UTC).Add(time.Duration(sec) * time.Second).Format(time.RFC3339)
	s := fmt.Sprintf(`{"type":%q,"time":%q,"deployment":{"id":%q,"service":"api"`, typ, at, dep)
	if typ == "deployment.finished" {
		s += `,"status":"success"`
	}
	return s + fields + "}" + extra + "}"
}

func capped(deployments int) func(*Config) {
	return func(cfg *Config) { cfg.MaxInflightDeployments = deployments }
}

// deploymentSpans maps deployment id to its deployment span's status.
func deploymentSpans(sink *consumertest.TracesSink) map[string]ptrace.Span {
	out := map[string]ptrace.Span{}
	for _, s := range allSpans(sink) {
		if strings.HasPrefix(s.Name(), "deploy ") {
			id, _ := s.Attributes().Get("deployment.id")
			out[id.Str()] = s
		}
	}
	return out
}

func (t *tracker) deploymentIDs() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var ids []string
	for id := range t.deployments {
		ids = append(ids, id)
	}
	return ids
}

// TestInflightCapEvictsTheIdlest: at the cap a new deployment is admitted
// and the deployment idle longest is closed as timed out, with its open
// steps; its late events still join its trace; the eviction is counted.
func TestInflightCapEvictsTheIdlest(t *testing.T) {
	t.Parallel()
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	tr := newTelemetryReceiver(t, tt, capped(3))
	for i, dep := range []string{"d0", "d1", "d2"} {
		require.Equal(t, http.StatusOK, tr.events(t, depEv("deployment.started", dep, i, "")).status)
		tr.clock.Advance(time.Second)
	}
	// d1 opens a step; d0 then sends news: d1 is idle longest.
	require.Equal(t, http.StatusOK, tr.events(t, depEv("step.started", "d1", 3, `,"step":{"name":"migrate","position":0}`)).status)
	tr.clock.Advance(time.Second)
	require.Equal(t, http.StatusOK, tr.events(t, depEv("step.started", "d0", 4, `,"step":{"name":"build","position":0}`)).status)
	tr.clock.Advance(time.Second)
	require.Equal(t, http.StatusOK, tr.events(t, depEv("step.finished", "d2", 5, `,"step":{"name":"build","position":0,"state":"success"}`)).status)
	tr.clock.Advance(time.Second)

	rep := tr.events(t, depEv("deployment.started", "d3", 6, ""))
	require.Equal(t, http.StatusOK, rep.status, "a new deployment is admitted at the cap")
	assert.ElementsMatch(t, []string{"d0", "d2", "d3"}, tr.r.tracker.deploymentIDs())
	spans := deploymentSpans(tr.traces)
	require.Contains(t, spans, "d1")
	assert.Len(t, spans, 1, "only the idlest is closed")
	assert.Equal(t, ptrace.StatusCodeError, spans["d1"].Status().Code())
	status, _ := spans["d1"].Attributes().Get("fastdeploy.status")
	assert.Equal(t, "timeout", status.Str())
	var migrate ptrace.Span
	for _, s := range allSpans(tr.traces) {
		if s.Name() == "migrate" {
			migrate = s
		}
	}
	require.NotEqual(t, ptrace.Span{}, migrate, "its open step is closed with it")
	assert.Equal(t, spans["d1"].TraceID(), migrate.TraceID())
	assert.Equal(t, 4, tr.r.tracker.inflight(), "three deployments and the open step of d0")

	// A late step.finished of d1 joins d1's trace, and does not revive it.
	require.Equal(t, http.StatusOK, tr.events(t, depEv("step.finished", "d1", 7, `,"step":{"name":"verify","position":1,"state":"success"}`)).status)
	var verify ptrace.Span
	for _, s := range allSpans(tr.traces) {
		if s.Name() == "verify" {
			verify = s
		}
	}
	assert.Equal(t, spans["d1"].TraceID(), verify.TraceID())
	assert.NotContains(t, tr.r.tracker.deploymentIDs(), "d1")

	metadatatest.AssertEqualFastdeployReceiverDeploymentsEvicted(t, tt, []metricdata.DataPoint[int64]{{Value: 1}},
		metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
}

// TestInflightCapRefusals: what never fits is refused with the limit
// named; what just fits passes (near misses).
func TestInflightCapRefusals(t *testing.T) {
	t.Parallel()
	contextOf := func(bytes int) string {
		// {"k":"vvv"}: 2 + len("k")+4 + len(value)+2
		return `,"context":{"k":"` + strings.Repeat("v", bytes-9) + `"}`
	}
	for _, tc := range []struct {
		name   string
		cfg    func(*Config)
		before []string
		lines  []string
		status int
		limit  string
	}{
		{name: "a request starting more deployments than the cap", cfg: capped(3),
			lines:  []string{depEv("deployment.started", "a", 0, ""), depEv("deployment.started", "b", 0, ""), depEv("deployment.started", "c", 0, ""), depEv("deployment.started", "d", 0, "")},
			status: http.StatusRequestEntityTooLarge, limit: "max_inflight_deployments"},
		{name: "near miss: exactly the cap in one request", cfg: capped(3),
			lines:  []string{depEv("deployment.started", "a", 0, ""), depEv("deployment.started", "b", 0, ""), depEv("deployment.started", "c", 0, "")},
			status: http.StatusOK},
		{name: "near miss: more starts than the cap, but as many finish", cfg: capped(2),
			lines: []string{depEv("deployment.started", "a", 0, ""), depEv("deployment.started", "b", 0, ""), depEv("deployment.started", "c", 0, ""),
				depEv("deployment.finished", "a", 1, "")},
			status: http.StatusOK},
		{name: "a context beyond the limit", cfg: func(cfg *Config) { cfg.MaxDeploymentContextSize = 100 },
			lines:  []string{depEvCtx("deployment.started", "a", 0, contextOf(101), "")},
			status: http.StatusRequestEntityTooLarge, limit: "max_deployment_context_size"},
		{name: "near miss: a context of exactly the limit", cfg: func(cfg *Config) { cfg.MaxDeploymentContextSize = 100 },
			lines:  []string{depEvCtx("deployment.started", "a", 0, contextOf(100), "")},
			status: http.StatusOK},
		{name: "contexts merged across requests beyond the limit", cfg: func(cfg *Config) { cfg.MaxDeploymentContextSize = 100 },
			before: []string{depEvCtx("deployment.started", "a", 0, contextOf(60), "")},
			lines:  []string{depEvCtx("step.started", "a", 1, `,"context":{"other":"`+strings.Repeat("w", 40)+`"}`, `,"step":{"name":"s","position":0}`)},
			status: http.StatusRequestEntityTooLarge, limit: "max_deployment_context_size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tr := newTestReceiver(t, tc.cfg)
			for _, line := range tc.before {
				require.Equal(t, http.StatusOK, tr.events(t, line).status)
			}
			inflightBefore := tr.r.tracker.inflight()
			rep := tr.events(t, tc.lines...)
			assert.Equal(t, tc.status, rep.status, rep.body)
			if tc.limit != "" {
				assert.Equal(t, tc.limit, rep.body["limit"])
				assert.Contains(t, rep.body["error"], tc.limit)
				assert.Equal(t, inflightBefore, tr.r.tracker.inflight(), "a refused request changes nothing")
			}
			tr.r.tracker.mu.Lock()
			assert.Zero(t, tr.r.tracker.reserved, "no reservation outlives its request")
			tr.r.tracker.mu.Unlock()
		})
	}
}

// TestInflightCapFloodDoesNotLockOut: a flood of deployment.started ten
// times the cap is admitted; an honest deployment that reports more often
// than the cap's worth of flood arrives survives it and ends as success;
// the in-flight count never passes the cap; every deployment started is
// either in flight or was emitted.
func TestInflightCapFloodDoesNotLockOut(t *testing.T) {
	t.Parallel()
	const cap, flood = 20, 200
	tr := newTestReceiver(t, capped(cap))
	require.Equal(t, http.StatusOK, tr.events(t, depEv("deployment.started", "honest", 0, "")).status)
	for i := range flood {
		tr.clock.Advance(time.Millisecond)
		require.Equal(t, http.StatusOK, tr.events(t, depEv("deployment.started", fmt.Sprintf("flood-%d", i), 1, "")).status, "flood %d", i)
		if i%(cap/2) == 0 {
			step := fmt.Sprintf(`,"step":{"name":"s%d","position":%d,"state":"success"}`, i, i)
			require.Equal(t, http.StatusOK, tr.events(t, depEv("step.finished", "honest", 2, step)).status)
		}
		assert.LessOrEqual(t, len(tr.r.tracker.deploymentIDs()), cap)
	}
	require.Equal(t, http.StatusOK, tr.events(t, depEv("deployment.finished", "honest", 3, "")).status)
	spans := deploymentSpans(tr.traces)
	require.Contains(t, spans, "honest")
	assert.Equal(t, ptrace.StatusCodeOk, spans["honest"].Status().Code(), "the honest deployment was not evicted")
	assert.Equal(t, flood+1, len(spans)+len(tr.r.tracker.deploymentIDs()), "every deployment is in flight or emitted")
}

// TestInflightCapRestartBeyondTheCap: state restored beyond a lowered cap
// is evicted by the sweep, idlest first, and a request after the restart
// evicts only what it needs itself.
func TestInflightCapRestartBeyondTheCap(t *testing.T) {
	t.Parallel()
	store := newMemStorage()
	before := restartable(t, store, nil)
	for i := range 10 {
		require.Equal(t, http.StatusOK, before.events(t, depEv("deployment.started", fmt.Sprintf("d%d", i), i, "")).status)
		before.clock.Advance(time.Second)
	}
	after := restartable(t, store, capped(4))
	after.clock.Set(before.clock.Now())
	require.Len(t, after.r.tracker.deploymentIDs(), 10, "all restored")
	require.True(t, after.r.tracker.overCap())

	rep := after.events(t, depEv("deployment.started", "new", 11, ""))
	require.Equal(t, http.StatusOK, rep.status, "not locked out by the backlog")
	assert.Len(t, deploymentSpans(after.traces), 1, "the request evicted one, for itself")
	assert.NotContains(t, after.r.tracker.deploymentIDs(), "d0", "the idlest")

	for after.r.tracker.overCap() {
		require.True(t, after.r.sweepOnce(context.Background()))
	}
	assert.ElementsMatch(t, []string{"d7", "d8", "d9", "new"}, after.r.tracker.deploymentIDs())
	assert.Len(t, deploymentSpans(after.traces), 7)
	again := restartable(t, store, capped(4))
	assert.Len(t, again.r.tracker.deploymentIDs(), 4, "the evictions were persisted")
}

// TestInflightCapConcurrent: concurrent clients start deployments while
// the pipeline is slow; the cap holds, nothing is lost, no reservation
// is left over. Run with -race.
func TestInflightCapConcurrent(t *testing.T) {
	t.Parallel()
	const cap, clients, each = 16, 4, 40
	tr := newTestReceiver(t, capped(cap))
	slow := &slowTraces{delay: 200 * time.Microsecond}
	tr.r.setTraces(slow)
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				st := tr.events(t, depEv("deployment.started", fmt.Sprintf("c%d-%d", c, i), 0, "")).status
				mu.Lock()
				statuses[st]++
				mu.Unlock()
				assert.LessOrEqual(t, len(tr.r.tracker.deploymentIDs()), cap)
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, clients*each, statuses[http.StatusOK], "every start admitted: %v", statuses)
	tr.r.tracker.mu.Lock()
	assert.Zero(t, tr.r.tracker.reserved)
	tr.r.tracker.mu.Unlock()
	assert.Equal(t, clients*each, len(deploymentSpans(&slow.TracesSink))+len(tr.r.tracker.deploymentIDs()))
}

// slowTraces delays each delivery so that requests overlap.
type slowTraces struct {
	consumertest.TracesSink
	delay time.Duration
}

func (s *slowTraces) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	time.Sleep(s.delay)
	return s.TracesSink.ConsumeTraces(ctx, td)
}

func stepCapped(steps int) func(*Config) {
	return func(cfg *Config) { cfg.MaxInflightSteps = steps }
}

func openStep(name string, pos int) string {
	return fmt.Sprintf(`,"step":{"name":%q,"position":%d}`, name, pos)
}

// stepSpans maps step name to its span.
func stepSpans(sink *consumertest.TracesSink) map[string]ptrace.Span {
	out := map[string]ptrace.Span{}
	for _, s := range allSpans(sink) {
		if !strings.HasPrefix(s.Name(), "deploy ") {
			out[s.Name()] = s
		}
	}
	return out
}

// TestInflightStepCap: at max_inflight_steps a new step is admitted and
// the open step idle longest, of any deployment, is closed as timed out;
// a request that alone opens more than the cap is refused with the limit
// named, one that opens exactly the cap is not.
func TestInflightStepCap(t *testing.T) {
	t.Parallel()
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	tr := newTelemetryReceiver(t, tt, stepCapped(3))
	for i, open := range []struct{ dep, step string }{{"a", "s0"}, {"a", "s1"}, {"b", "s2"}} {
		require.Equal(t, http.StatusOK, tr.events(t, depEv("step.started", open.dep, i, openStep(open.step, i))).status)
		tr.clock.Advance(time.Second)
	}
	// s0 hears news: s1 is now the idlest.
	require.Equal(t, http.StatusOK, tr.events(t, depEv("step.started", "a", 3, openStep("s0", 0))).status)
	tr.clock.Advance(time.Second)
	require.Equal(t, http.StatusOK, tr.events(t, depEv("step.started", "c", 4, openStep("s3", 3))).status)
	spans := stepSpans(tr.traces)
	require.Contains(t, spans, "s1")
	assert.Len(t, spans, 1, "only the idlest step is closed")
	status, _ := spans["s1"].Attributes().Get("fastdeploy.status")
	assert.Equal(t, "timeout", status.Str())
	assert.Equal(t, ptrace.StatusCodeError, spans["s1"].Status().Code())
	tr.r.tracker.mu.Lock()
	assert.Len(t, tr.r.tracker.steps, 3)
	assert.Zero(t, tr.r.tracker.reservedSteps)
	tr.r.tracker.mu.Unlock()
	metadatatest.AssertEqualFastdeployReceiverStepsEvicted(t, tt, []metricdata.DataPoint[int64]{{Value: 1}},
		metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())

	for _, tc := range []struct {
		name   string
		steps  int
		status int
	}{
		{"more steps than the cap in one request", 4, http.StatusRequestEntityTooLarge},
		{"near miss: exactly the cap in one request", 3, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTestReceiver(t, stepCapped(3))
			var lines []string
			for i := range tc.steps {
				lines = append(lines, depEv("step.started", "d", i, openStep(fmt.Sprintf("t%d", i), i)))
			}
			rep := tr.events(t, lines...)
			assert.Equal(t, tc.status, rep.status, rep.body)
			if tc.status != http.StatusOK {
				assert.Equal(t, "max_inflight_steps", rep.body["limit"])
				assert.Zero(t, tr.r.tracker.inflight(), "a refused request changes nothing")
			}
		})
	}
}

// TestInflightStepCapFloodDoesNotLockOut: one deployment opens ten times
// max_inflight_steps; an honest deployment whose steps open and finish
// meanwhile has every step end as success, and the open steps never pass
// the cap.
func TestInflightStepCapFloodDoesNotLockOut(t *testing.T) {
	t.Parallel()
	const cap, flood = 20, 200
	tr := newTestReceiver(t, stepCapped(cap))
	honestSteps := 0
	for i := range flood {
		tr.clock.Advance(time.Millisecond)
		require.Equal(t, http.StatusOK, tr.events(t, depEv("step.started", "flood", 0, openStep(fmt.Sprintf("flood-%d", i), i))).status)
		if i%(cap/4) == 0 {
			name := fmt.Sprintf("honest-%d", honestSteps)
			require.Equal(t, http.StatusOK, tr.events(t, depEv("step.started", "honest", 1, openStep(name, honestSteps))).status)
			tr.clock.Advance(time.Millisecond)
			require.Equal(t, http.StatusOK, tr.events(t, depEv("step.finished", "honest", 2,
				fmt.Sprintf(`,"step":{"name":%q,"position":%d,"state":"success"}`, name, honestSteps))).status)
			honestSteps++
		}
		tr.r.tracker.mu.Lock()
		n := len(tr.r.tracker.steps)
		tr.r.tracker.mu.Unlock()
		require.LessOrEqual(t, n, cap)
	}
	spans := stepSpans(tr.traces)
	for i := range honestSteps {
		name := fmt.Sprintf("honest-%d", i)
		require.Contains(t, spans, name)
		assert.Equal(t, ptrace.StatusCodeOk, spans[name].Status().Code(), "%s ended as sent, not closed early", name)
	}
	evicted := 0
	for name, s := range spans {
		if strings.HasPrefix(name, "flood-") && s.Status().Code() == ptrace.StatusCodeError {
			evicted++
		}
	}
	assert.Equal(t, flood-cap, evicted, "every flood step beyond the cap was closed early")
}
