package deploymetricsconnector

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployattr"
)

func TestActiveDeployments(t *testing.T) {
	started := func(id string, at time.Duration) lifecycleLog {
		return lifecycleLog{action: "deployment.started", id: id, service: "shop", env: "prod", at: t0.Add(at)}
	}
	finished := func(id string, at time.Duration) lifecycleLog {
		return lifecycleLog{action: "deployment.finished", id: id, service: "shop", env: "prod", at: t0.Add(at)}
	}
	span := func(id string) testDeployment {
		return testDeployment{id: id, service: "shop", env: "prod", status: "success", end: t0, took: time.Minute}
	}
	type step struct {
		logs    []lifecycleLog
		spans   []testDeployment
		advance time.Duration
	}
	tests := []struct {
		name       string
		maxTracked int
		steps      []step
		want       int64
		timedOut   int64
	}{
		{name: "started raises", steps: []step{{logs: []lifecycleLog{started("1", -time.Minute), started("2", 0)}}}, want: 2},
		{name: "duplicate start counts once", steps: []step{{logs: []lifecycleLog{started("1", 0), started("1", 0)}}}, want: 1},
		{name: "finish log lowers", steps: []step{{logs: []lifecycleLog{started("1", 0), finished("1", time.Minute)}}}, want: 0},
		{name: "deployment span lowers", steps: []step{{logs: []lifecycleLog{started("1", 0)}}, {spans: []testDeployment{span("1")}}}, want: 0},
		{
			name:  "span and log both finish, lowered once",
			steps: []step{{logs: []lifecycleLog{started("1", 0), started("2", 0)}}, {spans: []testDeployment{span("1")}}, {logs: []lifecycleLog{finished("1", time.Minute)}}},
			want:  1,
		},
		{name: "finish before start never raises", steps: []step{{logs: []lifecycleLog{finished("1", time.Minute)}}, {logs: []lifecycleLog{started("1", 0)}}}, want: 0},
		{name: "timeout lowers", steps: []step{{logs: []lifecycleLog{started("1", 0)}}, {advance: 2*time.Hour + time.Second}}, want: 0, timedOut: 1},
		{name: "start older than the timeout is not counted", steps: []step{{logs: []lifecycleLog{started("1", -3*time.Hour)}}}, want: 0},
		{name: "max tracked", maxTracked: 2, steps: []step{{logs: []lifecycleLog{started("1", 0), started("2", 0), started("3", 0)}}}, want: 2},
		{name: "other actions ignored", steps: []step{{logs: []lifecycleLog{{action: "step.started", id: "1", service: "shop", env: "prod", at: t0}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, clk := newTestEngine(t, func(c *Config) {
				if tt.maxTracked > 0 {
					c.ActiveDeployments.MaxTracked = tt.maxTracked
				}
			})
			var c counts
			for _, s := range tt.steps {
				e.consumeLogs(logs(s.logs...), &c)
				e.consumeTraces(nil, traces(s.spans...), &c)
				clk.advance(s.advance)
			}
			md := e.flush(&c)
			assert.Equal(t, tt.timedOut, c.timedOut)
			if tt.want == 0 && !hasMetric(md, metricActiveDeployments) {
				return
			}
			p := point(t, md, metricActiveDeployments, map[string]any{"service": "shop", "environment": "prod"})
			assert.Equal(t, tt.want, *p.Value)
		})
	}
}

func TestExpiry(t *testing.T) {
	e, clk := newTestEngine(t, func(c *Config) { c.SeriesExpiration = time.Hour })
	var c counts
	e.consumeLogs(logs(lifecycleLog{action: "deployment.started", id: "running", service: "slow", env: "prod", at: t0}), &c)
	e.consumeTraces(nil, traces(testDeployment{id: "1", service: "shop", env: "prod", status: "failure", end: t0, took: time.Minute, steps: threeSteps}), &c)
	flushNew(t, e, clk, &c)
	clk.advance(30 * time.Minute)
	e.consumeTraces(nil, traces(testDeployment{id: "2", service: "api", env: "prod", status: "success", end: clk.t, took: time.Minute}), &c)
	e.flush(&c)
	clk.advance(31 * time.Minute)
	md := e.flush(&c)

	assert.Equal(t, []string{"api"}, servicesOf(md, metricDeployments), "shop idled past the expiration")
	assert.False(t, hasMetric(md, metricStepDuration))
	requireGolden(t, "expiry", md)
	p := point(t, md, metricActiveDeployments, map[string]any{"service": "slow", "environment": "prod"})
	assert.Equal(t, int64(1), *p.Value, "a gauge with deployments in flight never expires")

	// A series that comes back starts afresh, with a new start time and a
	// zero first point, so the failure counts as an increase again.
	e.consumeTraces(nil, traces(testDeployment{id: "3", service: "shop", env: "prod", status: "failure", end: clk.t, took: time.Minute}), &c)
	clk.advance(time.Second)
	md = e.flush(&c)
	p = point(t, md, metricDeployments, map[string]any{"service": "shop", "environment": "prod", "status": "failure"})
	assert.Equal(t, int64(0), *p.Value)
	assert.Equal(t, "2026-03-02T11:01:15Z", p.Start)
	clk.advance(15 * time.Second)
	md = e.flush(&c)
	p = point(t, md, metricDeployments, map[string]any{"service": "shop", "environment": "prod", "status": "failure"})
	assert.Equal(t, int64(1), *p.Value)
	assert.Equal(t, "2026-03-02T11:01:15Z", p.Start)
	// The restore history outlives the series: the failure streak of
	// deployment 1 is still open, so a success closes it.
	e.consumeTraces(nil, traces(testDeployment{id: "4", service: "shop", env: "prod", status: "success", end: clk.t, took: time.Minute}), &c)
	e.flush(&c)
	md = e.flush(&c)
	p = point(t, md, metricTimeToRestore, map[string]any{"service": "shop", "environment": "prod"})
	assert.Equal(t, clk.t.Sub(t0).Seconds(), *p.Sum)
}

// TestUnexportedSeriesDoNotExpire: with an expiration shorter than the
// time between flushes, a series still goes out at zero and then with its
// count before it expires.
func TestUnexportedSeriesDoNotExpire(t *testing.T) {
	e, clk := newTestEngine(t, func(c *Config) { c.SeriesExpiration = time.Minute })
	var c counts
	e.consumeTraces(nil, traces(testDeployment{id: "1", service: "shop", env: "prod", status: "success", end: t0, took: time.Minute}), &c)
	key := map[string]any{"service": "shop", "environment": "prod", "status": "success"}
	clk.advance(2 * time.Minute)
	assert.Equal(t, int64(0), *point(t, e.flush(&c), metricDeployments, key).Value)
	clk.advance(2 * time.Minute)
	assert.Equal(t, int64(1), *point(t, e.flush(&c), metricDeployments, key).Value)
	clk.advance(2 * time.Minute)
	assert.False(t, hasMetric(e.flush(&c), metricDeployments), "exported and idle: expired")
}

func servicesOf(md pmetric.Metrics, metric string) []string {
	var out []string
	for _, m := range dump(md) {
		if m.Name == metric {
			for _, p := range m.Points {
				out = append(out, p.Attributes["service"].(string))
			}
		}
	}
	return out
}

// TestZeroFirstPoint: the first exported point of a new counter or
// histogram series is zero, the next carries the counts, and the start
// time stays fixed; Prometheus's increase() then counts the first
// deployment of each series.
func TestZeroFirstPoint(t *testing.T) {
	e, clk := newTestEngine(t, nil)
	var c counts
	failed := map[string]any{"service": "shop", "environment": "prod", "status": "failure"}
	failures := map[string]any{"service": "shop", "step_name": "restart {host}", "error_type": "exit_code_1"}
	e.consumeTraces(nil, traces(testDeployment{id: "1", service: "shop", env: "prod", status: "failure", end: t0, took: 50 * time.Second, steps: threeSteps}), &c)
	clk.advance(time.Second)

	first := e.flush(&c)
	requireZeroFirst(t, first)
	start := point(t, first, metricDeployments, failed).Start
	assert.Equal(t, "2026-03-02T10:00:00Z", start, "the arrival of the first observation, before the zero point")
	assert.Equal(t, "2026-03-02T10:00:01Z", point(t, first, metricDeployments, failed).Time)
	assert.Equal(t, int64(0), *point(t, first, metricStepFailures, failures).Value)
	assert.Len(t, point(t, first, metricDeploymentDuration, failed).Buckets, 13, "all buckets, at zero")

	// An observation between the two flushes is in the counts too.
	e.consumeTraces(nil, traces(testDeployment{id: "2", service: "shop", env: "prod", status: "failure", end: clk.t, took: 10 * time.Second}), &c)
	clk.advance(15 * time.Second)
	second := e.flush(&c)
	p := point(t, second, metricDeployments, failed)
	assert.Equal(t, int64(2), *p.Value)
	assert.Equal(t, start, p.Start)
	assert.Equal(t, int64(1), *point(t, second, metricStepFailures, failures).Value)
	d := point(t, second, metricDeploymentDuration, failed)
	assert.Equal(t, uint64(2), *d.Count)
	assert.Equal(t, 60.0, *d.Sum)
	assert.Equal(t, start, d.Start)

	// A series that already went out shows its counts at once; a new one
	// beside it starts at zero.
	e.consumeTraces(nil, traces(
		testDeployment{id: "3", service: "shop", env: "prod", status: "failure", end: clk.t, took: time.Second},
		testDeployment{id: "4", service: "shop", env: "prod", status: "success", end: clk.t, took: time.Second},
	), &c)
	clk.advance(15 * time.Second)
	third := e.flush(&c)
	assert.Equal(t, int64(3), *point(t, third, metricDeployments, failed).Value)
	succeeded := map[string]any{"service": "shop", "environment": "prod", "status": "success"}
	assert.Equal(t, int64(0), *point(t, third, metricDeployments, succeeded).Value)
	assert.Equal(t, uint64(0), *point(t, third, metricDeploymentDuration, succeeded).Count)
	clk.advance(15 * time.Second)
	assert.Equal(t, int64(1), *point(t, e.flush(&c), metricDeployments, succeeded).Value)
}

// TestZeroFirstOverflow: the overflow series is a new series like any other.
func TestZeroFirstOverflow(t *testing.T) {
	e, clk := newTestEngine(t, func(c *Config) { c.MaxSeriesPerMetric = 1 })
	var c counts
	e.consumeTraces(nil, traces(
		testDeployment{id: "1", service: "a", env: "prod", status: "success", end: t0, took: time.Second},
		testDeployment{id: "2", service: "b", env: "prod", status: "success", end: t0, took: time.Second},
	), &c)
	overflow := map[string]any{overflowAttribute: true}
	requireZeroFirst(t, e.flush(&c))
	clk.advance(15 * time.Second)
	assert.Equal(t, int64(1), *point(t, e.flush(&c), metricDeployments, overflow).Value)
}

// TestDeltaHasNoZeroFirst: delta points are increases already, so the
// first one carries the counts.
func TestDeltaHasNoZeroFirst(t *testing.T) {
	e, clk := newTestEngine(t, func(c *Config) { c.AggregationTemporality = TemporalityDelta })
	var c counts
	e.consumeTraces(nil, traces(testDeployment{id: "1", service: "shop", env: "prod", status: "success", end: t0, took: time.Second}), &c)
	clk.advance(15 * time.Second)
	md := e.flush(&c)
	assert.Equal(t, int64(1), *point(t, md, metricDeployments, map[string]any{"service": "shop", "environment": "prod", "status": "success"}).Value)
	assert.Zero(t, e.zeroed)
}

// TestExemplarsPersist: an exemplar goes out with every flush until a
// newer one in its bucket replaces it, so a scrape at any time sees it.
func TestExemplarsPersist(t *testing.T) {
	e, clk := newTestEngine(t, nil)
	var c counts
	key := map[string]any{"service": "shop", "environment": "prod", "status": "success"}
	deploy := func(id string, took time.Duration) testDeployment {
		return testDeployment{id: id, service: "shop", env: "prod", status: "success", end: clk.t, took: took}
	}
	traceOf := func(d testDeployment) string {
		td := traces(d)
		return td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).TraceID().String()
	}
	exemplars := func() map[float64]string {
		clk.advance(15 * time.Second)
		out := map[float64]string{}
		for _, ex := range point(t, e.flush(&c), metricDeploymentDuration, key).Exemplars {
			out[ex.Value] = ex.TraceID
		}
		return out
	}

	first := deploy("1", 40*time.Second)
	e.consumeTraces(nil, traces(first), &c)
	assert.Empty(t, exemplars(), "the zero point carries none")
	for range 3 {
		assert.Equal(t, map[float64]string{40: traceOf(first)}, exemplars(), "kept flush after flush")
	}
	second := deploy("2", 50*time.Second) // same bucket (30 s, 60 s]
	e.consumeTraces(nil, traces(second), &c)
	assert.Equal(t, map[float64]string{50: traceOf(second)}, exemplars(), "replaced by the latest of its bucket")
	third := deploy("3", 10*time.Minute)
	e.consumeTraces(nil, traces(third), &c)
	for range 2 {
		assert.Equal(t, map[float64]string{50: traceOf(second), 600: traceOf(third)}, exemplars(), "one per bucket")
	}
}

// TestExponentialExemplarsPersist: an exponential histogram keeps its
// latest few exemplars, flush after flush.
func TestExponentialExemplarsPersist(t *testing.T) {
	e, clk := newTestEngine(t, func(c *Config) { c.Histograms.Type = HistogramExponential })
	var c counts
	key := map[string]any{"service": "shop", "environment": "prod", "status": "success"}
	for i := range exponentialExemplarSlots + 2 {
		e.consumeTraces(nil, traces(testDeployment{id: idOf(i), service: "shop", env: "prod", status: "success", end: t0, took: time.Duration(i+1) * time.Second}), &c)
	}
	requireZeroFirst(t, e.flush(&c))
	for range 3 {
		clk.advance(15 * time.Second)
		var values []float64
		for _, ex := range point(t, e.flush(&c), metricDeploymentDuration, key).Exemplars {
			values = append(values, ex.Value)
		}
		assert.ElementsMatch(t, []float64{3, 4, 5, 6}, values, "the latest four, bounded")
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name  string
		attrs map[string]any
		want  spanClass
	}{
		{"fastdeploy deployment", map[string]any{deployattr.SpanKind: "deployment", deployattr.DeploymentID: "1"}, spanDeployment},
		{"fastdeploy step", map[string]any{deployattr.SpanKind: "step", deployattr.TaskName: "build", deployattr.DeploymentID: "1"}, spanStep},
		{"fastdeploy subprocess", map[string]any{deployattr.SpanKind: "subprocess", deployattr.DeploymentID: "1"}, spanIgnored},
		{"ansible task", map[string]any{deployattr.SpanKind: "ansible.task", deployattr.TaskName: "x"}, spanIgnored},
		{"other source deployment", map[string]any{deployattr.DeploymentID: "1", deployattr.PipelineName: "ci"}, spanDeployment},
		{"other source step", map[string]any{deployattr.TaskName: "test", deployattr.DeploymentID: "1"}, spanStep},
		{"http span", map[string]any{"http.request.method": "GET"}, spanIgnored},
	}
	e, _ := newTestEngine(t, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := pcommon.NewMap()
			require.NoError(t, m.FromRaw(tt.attrs))
			assert.Equal(t, tt.want, e.classify(m))
		})
	}
}

func TestSpanStatus(t *testing.T) {
	tests := []struct {
		name  string
		attrs map[string]any
		code  ptrace.StatusCode
		want  string
	}{
		{"fastdeploy word wins", map[string]any{deployattr.Status: "cancelled", deployattr.PipelineResult: "failure"}, ptrace.StatusCodeError, statusCancelled},
		{"pipeline result", map[string]any{deployattr.PipelineResult: "cancellation"}, ptrace.StatusCodeUnset, statusCancelled},
		{"task run result", map[string]any{deployattr.TaskRunResult: "skip"}, ptrace.StatusCodeUnset, statusSkipped},
		{"semconv deployment status", map[string]any{deployattr.DeploymentStatus: "Succeeded"}, ptrace.StatusCodeUnset, statusSuccess},
		{"unknown word falls through", map[string]any{deployattr.Status: "weird"}, ptrace.StatusCodeError, statusFailure},
		{"span status ok", nil, ptrace.StatusCodeOk, statusSuccess},
		{"span status unset", nil, ptrace.StatusCodeUnset, statusUnknown},
	}
	keys := createDefaultConfig().Attributes.Status
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := pcommon.NewMap()
			require.NoError(t, m.FromRaw(tt.attrs))
			st := ptrace.NewStatus()
			st.SetCode(tt.code)
			assert.Equal(t, tt.want, spanStatus(m, keys, st))
		})
	}
}

func TestStepNames(t *testing.T) {
	tests := []struct{ in, want string }{
		{"build", "build"},
		{"restart web-01.prod.example.com", "restart {host}"},
		{"push to 10.0.3.17:5000", "push to {ip}"},
		{"run job 5f0c8d2e-1a2b-4c3d-9e8f-0123456789ab", "run job {uuid}"},
		{"checkout 4f2c9e1b7a", "checkout {hex}"},
		{"migrate 20260301", "migrate {n}"},
		{"python3 setup step 2", "python3 setup step 2"},
		{"login --password=hunter2 to registry", "login --password=[REDACTED] to registry"},
		{"curl -H Authorization: Bearer abc.def", "curl -H Authorization=[REDACTED]"},
		{"call api with Bearer eyJhbGciOi", "call api with Bearer [REDACTED]"},
		{"set API_KEY=sk-live-123", "set API_KEY=[REDACTED]"},
	}
	n, err := newStepNamer(createDefaultConfig().StepNames)
	require.NoError(t, err)
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := n.normalize(tt.in)
			assert.Equal(t, tt.want, got)
			assert.LessOrEqual(t, len(got), 64)
			assert.Equal(t, got, n.normalize(tt.in), "cached result is the same")
		})
	}
}

func TestStepNameTruncatesOnRuneBoundary(t *testing.T) {
	n, err := newStepNamer(StepNamesConfig{MaxLength: 5})
	require.NoError(t, err)
	assert.Equal(t, "abé", n.normalize("abééé"), "5 bytes would split the second é")
}

func TestRestoreHistoryEviction(t *testing.T) {
	// With room for two outcomes, a long streak's first failure is evicted
	// but still ends up as the streak start.
	var h restoreHistory
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	for m := 0; m < 5; m++ {
		rec, _ := h.insert(outcome{end: at(m), failing: true}, 2)
		assert.Nil(t, rec)
	}
	rec, start := h.insert(outcome{end: at(10)}, 2)
	require.NotNil(t, rec)
	assert.Equal(t, at(0), start)
	assert.Len(t, h.outcomes, 2)
	// After a success is evicted the carried streak is forgotten.
	rec, _ = h.insert(outcome{end: at(11)}, 2)
	assert.Nil(t, rec)
	h.insert(outcome{end: at(12), failing: true}, 2)
	rec, start = h.insert(outcome{end: at(13)}, 2)
	require.NotNil(t, rec)
	assert.Equal(t, at(12), start)
}

func TestDedupWindowIsBounded(t *testing.T) {
	e, _ := newTestEngine(t, func(c *Config) { c.DeduplicationWindow = 3 })
	ids := make([]pcommon.SpanID, 5)
	for i := range ids {
		ids[i] = pcommon.SpanID{byte(i + 1)}
		assert.False(t, e.seen(newSpanKey(pcommon.TraceID{1}, ids[i])))
	}
	assert.Equal(t, 3, e.dedup.Len())
	assert.True(t, e.seen(newSpanKey(pcommon.TraceID{1}, ids[4])))
	assert.False(t, e.seen(newSpanKey(pcommon.TraceID{2}, ids[4])), "same span id, other trace")
	assert.False(t, e.seen(newSpanKey(pcommon.TraceID{1}, ids[0])), "fell out of the window")
}

// TestOtherSourceSpans reads a CI pipeline trace the way contrib's CI/CD
// receivers shape it: no fastdeploy.span.kind, the run id on the root span,
// results in cicd.* attributes or only in the span status.
func TestOtherSourceSpans(t *testing.T) {
	e, clk := newTestEngine(t, func(c *Config) {
		c.Spans.KindAttribute = ""
		c.Spans.DeploymentAttribute = deployattr.PipelineRunID
		c.Attributes.DeploymentID = deployattr.PipelineRunID
	})
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr(deployattr.ServiceName, "web")
	rs.Resource().Attributes().PutStr(deployattr.DeploymentEnvironment, "prod")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	add := func(id byte, attrs map[string]any, took time.Duration, code ptrace.StatusCode) {
		s := spans.AppendEmpty()
		s.SetTraceID(pcommon.TraceID{9})
		s.SetSpanID(pcommon.SpanID{id})
		s.SetName("job")
		s.SetStartTimestamp(pcommon.NewTimestampFromTime(t0.Add(-took)))
		s.SetEndTimestamp(pcommon.NewTimestampFromTime(t0))
		require.NoError(t, s.Attributes().FromRaw(attrs))
		s.Status().SetCode(code)
	}
	add(1, map[string]any{deployattr.PipelineRunID: "run-77", deployattr.PipelineResult: "failure"}, 5*time.Minute, ptrace.StatusCodeError)
	add(2, map[string]any{deployattr.PipelineRunID: "run-77", deployattr.TaskName: "test"}, 2*time.Minute, ptrace.StatusCodeError)
	add(3, map[string]any{deployattr.PipelineRunID: "run-77", deployattr.TaskName: "lint", deployattr.TaskRunResult: "success"}, time.Minute, ptrace.StatusCodeUnset)
	add(4, map[string]any{"http.request.method": "GET"}, time.Second, ptrace.StatusCodeOk)
	var c counts
	e.consumeTraces(nil, td, &c)
	clk.advance(time.Second)
	md := flushNew(t, e, clk, &c)

	assert.Equal(t, int64(1), *point(t, md, metricDeployments, map[string]any{"service": "web", "environment": "prod", "status": "failure"}).Value)
	assert.Equal(t, 120.0, *point(t, md, metricStepDuration, map[string]any{"service": "web", "step_name": "test", "status": "failure"}).Sum)
	assert.Equal(t, int64(1), *point(t, md, metricStepFailures, map[string]any{"service": "web", "step_name": "test", "error_type": "failure"}).Value)
	point(t, md, metricStepDuration, map[string]any{"service": "web", "step_name": "lint", "status": "success"})
	// deployments, deployment.duration, two step.duration and one step.failures.
	assert.Equal(t, 5, md.DataPointCount(), "the HTTP span adds nothing")
}

func TestIgnoredSpansEmitNothing(t *testing.T) {
	e, clk := newTestEngine(t, nil)
	td := ptrace.NewTraces()
	s := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	s.Attributes().PutStr(deployattr.SpanKind, deployattr.SpanKindSubprocess)
	s.Attributes().PutStr(deployattr.DeploymentID, "1")
	var c counts
	e.consumeTraces(nil, td, &c)
	clk.advance(time.Second)
	assert.Equal(t, 0, e.flush(&c).DataPointCount())
	assert.Zero(t, e.dedup.Len(), "ignored spans do not take de-duplication room")
}

// TestIgnoredStepFailuresAreNotCounted: a failed step the deployment
// carried on past (continue_on_error) keeps its duration but is no step
// failure; near misses (false, or a string "true") still count.
func TestIgnoredStepFailuresAreNotCounted(t *testing.T) {
	e, clk := newTestEngine(t, nil)
	var c counts
	yes, no := true, false
	steps := []testStep{
		{name: "warm cache", status: "failure", took: time.Second, errorType: "exit_code_3", ignored: &yes},
		{name: "lint", status: "failure", took: time.Second, errorType: "exit_code_3", ignored: &no},
		{name: "migrate", status: "failure", took: time.Second, errorType: "exit_code_1"},
	}
	d := testDeployment{id: "1", service: "shop", env: "prod", status: "failure", end: t0, took: 10 * time.Second, steps: steps}
	td := traces(d)
	// A string is no boolean: the near miss counts.
	stringy := testDeployment{id: "2", service: "shop", env: "prod", status: "failure", end: t0, took: 10 * time.Second,
		steps: []testStep{{name: "smoke", status: "failure", took: time.Second, errorType: "exit_code_2"}}}
	stringy.appendTo(td)
	spans := td.ResourceSpans().At(1).ScopeSpans().At(0).Spans()
	spans.At(1).Attributes().PutStr(deployattr.StepIgnored, "true")
	e.consumeTraces(nil, td, &c)
	md := flushNew(t, e, clk, &c)
	failures := func(step, errType string) map[string]any {
		return map[string]any{"service": "shop", "step_name": step, "error_type": errType}
	}
	assert.Equal(t, int64(1), *point(t, md, metricStepFailures, failures("migrate", "exit_code_1")).Value)
	assert.Equal(t, int64(1), *point(t, md, metricStepFailures, failures("lint", "exit_code_3")).Value)
	assert.Equal(t, int64(1), *point(t, md, metricStepFailures, failures("smoke", "exit_code_2")).Value)
	for _, p := range dump(md) {
		if p.Name != metricStepFailures {
			continue
		}
		for _, pt := range p.Points {
			assert.NotEqual(t, "warm cache", pt.Attributes["step_name"], "an ignored failure is no step failure")
		}
	}
	dur := point(t, md, metricStepDuration, map[string]any{"service": "shop", "step_name": "warm cache", "status": "failure"})
	assert.Equal(t, uint64(1), *dur.Count, "its duration is still recorded")
}
