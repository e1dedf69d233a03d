package deploymetricsconnector

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployattr"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/deploytrace"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// t0 is the fixed wall clock of the tests; events are placed around it.
var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// clock is a manual clock for the engine.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

// step describes one step span of a test deployment.
type testStep struct {
	name      string
	status    string // fastdeploy.status
	took      time.Duration
	errorType string
	// ignored sets fastdeploy.step.ignored to this value when not nil.
	ignored *bool
}

// testDeployment describes a deployment trace as the fastdeploy receiver
// emits it.
type testDeployment struct {
	id, service, env, status string
	end                      time.Time
	took                     time.Duration
	commitTime               string
	steps                    []testStep
	withSubprocess           bool
}

func (d testDeployment) appendTo(td ptrace.Traces) {
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr(deployattr.ServiceName, d.service)
	if d.env != "" {
		rs.Resource().Attributes().PutStr(deployattr.DeploymentEnvironment, d.env)
	}
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	trace := deploytrace.DeploymentTraceID(d.id)
	root := deploytrace.DeploymentSpanID(trace, d.id)
	start := d.end.Add(-d.took)

	s := spans.AppendEmpty()
	s.SetName("deploy " + d.service)
	s.SetTraceID(pcommon.TraceID(trace))
	s.SetSpanID(pcommon.SpanID(root))
	s.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
	s.SetEndTimestamp(pcommon.NewTimestampFromTime(d.end))
	a := s.Attributes()
	a.PutStr(deployattr.SpanKind, deployattr.SpanKindDeployment)
	a.PutStr(deployattr.DeploymentID, d.id)
	a.PutStr(deployattr.DeploymentName, d.service)
	a.PutStr(deployattr.DeploymentStatus, deployattr.DeploymentStatusOf(d.status))
	if d.env != "" {
		a.PutStr(deployattr.DeploymentEnvironment, d.env)
	}
	a.PutStr(deployattr.PipelineName, d.service)
	a.PutStr(deployattr.PipelineRunID, d.id)
	a.PutStr(deployattr.PipelineResult, deployattr.PipelineResultOf(d.status))
	a.PutStr(deployattr.Status, d.status)
	a.PutStr(deployattr.VCSRevision, "4f2c9e1b7a")
	a.PutStr(deployattr.UserName, "alice")
	a.PutEmptyMap(deployattr.Context).PutStr("api_token", "fake-secret-not-in-output")
	if d.commitTime != "" {
		a.PutStr(deployattr.VCSRevisionTime, d.commitTime)
	}
	if d.status == "success" {
		s.Status().SetCode(ptrace.StatusCodeOk)
	} else {
		s.Status().SetCode(ptrace.StatusCodeError)
		s.Status().SetMessage("deployment " + d.status)
	}

	stepStart := start
	for i, st := range d.steps {
		sp := spans.AppendEmpty()
		sp.SetName(st.name)
		sp.SetTraceID(pcommon.TraceID(trace))
		sp.SetSpanID(pcommon.SpanID(deploytrace.StepSpanID(trace, d.id, st.name, i)))
		sp.SetParentSpanID(pcommon.SpanID(root))
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(stepStart))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(stepStart.Add(st.took)))
		sa := sp.Attributes()
		sa.PutStr(deployattr.SpanKind, deployattr.SpanKindStep)
		sa.PutStr(deployattr.TaskName, st.name)
		sa.PutStr(deployattr.TaskRunResult, deployattr.PipelineResultOf(st.status))
		sa.PutStr(deployattr.Status, st.status)
		sa.PutInt(deployattr.StepPosition, int64(i))
		sa.PutStr(deployattr.DeploymentID, d.id)
		if d.env != "" {
			sa.PutStr(deployattr.DeploymentEnvironment, d.env)
		}
		if st.errorType != "" {
			sa.PutStr(deployattr.ErrorType, st.errorType)
		}
		if st.ignored != nil {
			sa.PutBool(deployattr.StepIgnored, *st.ignored)
		}
		if d.withSubprocess {
			sub := spans.AppendEmpty()
			sub.SetName(st.name)
			sub.SetTraceID(pcommon.TraceID(trace))
			sub.SetSpanID(pcommon.SpanID(deploytrace.SubprocessSpanID(trace, d.id, st.name, i)))
			sub.SetParentSpanID(sp.SpanID())
			sub.SetStartTimestamp(sp.StartTimestamp())
			sub.SetEndTimestamp(sp.EndTimestamp())
			suba := sub.Attributes()
			suba.PutStr(deployattr.SpanKind, deployattr.SpanKindSubprocess)
			suba.PutStr(deployattr.DeploymentID, d.id)
			suba.PutStr(deployattr.ProcessCommand, "ansible-playbook deploy.yml")
			suba.PutInt(deployattr.ProcessExitCode, 0)
		}
		stepStart = stepStart.Add(st.took)
	}
}

func traces(ds ...testDeployment) ptrace.Traces {
	td := ptrace.NewTraces()
	for _, d := range ds {
		d.appendTo(td)
	}
	return td
}

// lifecycleLog is a deployment.started or deployment.finished log record.
type lifecycleLog struct {
	action, id, service, env string
	at                       time.Time
}

func logs(records ...lifecycleLog) plog.Logs {
	ld := plog.NewLogs()
	for _, r := range records {
		rl := ld.ResourceLogs().AppendEmpty()
		rl.Resource().Attributes().PutStr(deployattr.ServiceName, r.service)
		lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
		lr.SetTimestamp(pcommon.NewTimestampFromTime(r.at))
		lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(t0))
		a := lr.Attributes()
		a.PutStr(deployattr.LogEventAction, r.action)
		a.PutStr(deployattr.DeploymentID, r.id)
		if r.env != "" {
			a.PutStr(deployattr.DeploymentEnvironment, r.env)
		}
		lr.Body().SetStr("deployment " + r.id + " " + r.action)
	}
	return ld
}

// Golden dump: a readable, order-independent rendering of the metrics.
type dumpMetric struct {
	Name        string      `json:"name"`
	Unit        string      `json:"unit"`
	Type        string      `json:"type"`
	Temporality string      `json:"temporality,omitempty"`
	Monotonic   bool        `json:"monotonic,omitempty"`
	Points      []dumpPoint `json:"points"`
}

type dumpPoint struct {
	Attributes map[string]any  `json:"attributes"`
	Start      string          `json:"start,omitempty"`
	Time       string          `json:"time"`
	Value      *int64          `json:"value,omitempty"`
	Count      *uint64         `json:"count,omitempty"`
	Sum        *float64        `json:"sum,omitempty"`
	Bounds     []float64       `json:"bounds,omitempty"`
	Buckets    []uint64        `json:"buckets,omitempty"`
	Scale      *int32          `json:"scale,omitempty"`
	Exemplars  []dumpExemplar  `json:"exemplars,omitempty"`
	Positive   *dumpExpBuckets `json:"positive,omitempty"`
}

type dumpExpBuckets struct {
	Offset int32    `json:"offset"`
	Counts []uint64 `json:"counts"`
}

type dumpExemplar struct {
	Value   float64 `json:"value"`
	Time    string  `json:"time"`
	TraceID string  `json:"trace_id"`
	SpanID  string  `json:"span_id"`
}

func ts(t pcommon.Timestamp) string {
	if t == 0 {
		return ""
	}
	return t.AsTime().UTC().Format(time.RFC3339Nano)
}

func dumpExemplars(es pmetric.ExemplarSlice) []dumpExemplar {
	var out []dumpExemplar
	for _, e := range es.All() {
		out = append(out, dumpExemplar{Value: e.DoubleValue(), Time: ts(e.Timestamp()), TraceID: e.TraceID().String(), SpanID: e.SpanID().String()})
	}
	return out
}

func ptr[T any](v T) *T { return &v }

func dump(md pmetric.Metrics) []dumpMetric {
	var out []dumpMetric
	for _, rm := range md.ResourceMetrics().All() {
		for _, sm := range rm.ScopeMetrics().All() {
			for _, m := range sm.Metrics().All() {
				d := dumpMetric{Name: m.Name(), Unit: m.Unit(), Type: m.Type().String()}
				switch m.Type() {
				case pmetric.MetricTypeSum:
					d.Temporality = m.Sum().AggregationTemporality().String()
					d.Monotonic = m.Sum().IsMonotonic()
					for _, dp := range m.Sum().DataPoints().All() {
						d.Points = append(d.Points, dumpPoint{Attributes: dp.Attributes().AsRaw(), Start: ts(dp.StartTimestamp()), Time: ts(dp.Timestamp()), Value: ptr(dp.IntValue())})
					}
				case pmetric.MetricTypeGauge:
					for _, dp := range m.Gauge().DataPoints().All() {
						d.Points = append(d.Points, dumpPoint{Attributes: dp.Attributes().AsRaw(), Time: ts(dp.Timestamp()), Value: ptr(dp.IntValue())})
					}
				case pmetric.MetricTypeHistogram:
					d.Temporality = m.Histogram().AggregationTemporality().String()
					for _, dp := range m.Histogram().DataPoints().All() {
						d.Points = append(d.Points, dumpPoint{
							Attributes: dp.Attributes().AsRaw(), Start: ts(dp.StartTimestamp()), Time: ts(dp.Timestamp()),
							Count: ptr(dp.Count()), Sum: ptr(dp.Sum()), Bounds: dp.ExplicitBounds().AsRaw(), Buckets: dp.BucketCounts().AsRaw(),
							Exemplars: dumpExemplars(dp.Exemplars()),
						})
					}
				case pmetric.MetricTypeExponentialHistogram:
					d.Temporality = m.ExponentialHistogram().AggregationTemporality().String()
					for _, dp := range m.ExponentialHistogram().DataPoints().All() {
						d.Points = append(d.Points, dumpPoint{
							Attributes: dp.Attributes().AsRaw(), Start: ts(dp.StartTimestamp()), Time: ts(dp.Timestamp()),
							Count: ptr(dp.Count()), Sum: ptr(dp.Sum()), Scale: ptr(dp.Scale()),
							Positive:  &dumpExpBuckets{Offset: dp.Positive().Offset(), Counts: dp.Positive().BucketCounts().AsRaw()},
							Exemplars: dumpExemplars(dp.Exemplars()),
						})
					}
				}
				out = append(out, d)
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// requireGolden compares the metrics with testdata/golden/<name>.json field
// by field; go test -update rewrites the file.
func requireGolden(t *testing.T, name string, md pmetric.Metrics) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name+".json")
	got := dump(md)
	if *update {
		b, err := json.MarshalIndent(got, "", "  ")
		require.NoError(t, err)
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, append(b, '\n'), 0o600))
	}
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var want []dumpMetric
	require.NoError(t, json.Unmarshal(b, &want))
	// Round-trip what we got so number types compare alike.
	gb, err := json.Marshal(got)
	require.NoError(t, err)
	var gotRT []dumpMetric
	require.NoError(t, json.Unmarshal(gb, &gotRT))
	require.Equal(t, want, gotRT)
}

// point finds the data point of a metric with the given attributes.
func point(t *testing.T, md pmetric.Metrics, metric string, attrs map[string]any) dumpPoint {
	t.Helper()
	for _, m := range dump(md) {
		if m.Name != metric {
			continue
		}
		for _, p := range m.Points {
			if len(p.Attributes) != len(attrs) {
				continue
			}
			match := true
			for k, v := range attrs {
				if p.Attributes[k] != v {
					match = false
				}
			}
			if match {
				return p
			}
		}
	}
	t.Fatalf("no point of %s with %v", metric, attrs)
	return dumpPoint{}
}

func hasMetric(md pmetric.Metrics, metric string) bool {
	for _, m := range dump(md) {
		if m.Name == metric {
			return true
		}
	}
	return false
}

func idOf(i int) string { return "dep-" + strconv.Itoa(i) }

// flushNew flushes twice, as the flush loop would: the first flush must
// show every counter and histogram series at zero, since all are new; the
// second, returned, carries their counts.
func flushNew(t *testing.T, e *engine, clk *clock, c *counts) pmetric.Metrics {
	t.Helper()
	requireZeroFirst(t, e.flush(c))
	clk.advance(e.cfg.MetricsFlushInterval)
	return e.flush(c)
}

// requireZeroFirst asserts that every counter and histogram point is zero,
// with no exemplars: what a scraper must see before a series' first count.
func requireZeroFirst(t *testing.T, md pmetric.Metrics) {
	t.Helper()
	for _, m := range dump(md) {
		if m.Type == pmetric.MetricTypeGauge.String() {
			continue
		}
		for _, p := range m.Points {
			if p.Value != nil {
				require.Zero(t, *p.Value, "%s %v", m.Name, p.Attributes)
				continue
			}
			require.Zero(t, *p.Count, "%s %v", m.Name, p.Attributes)
			require.Zero(t, *p.Sum, "%s %v", m.Name, p.Attributes)
			require.Empty(t, p.Exemplars, "%s %v", m.Name, p.Attributes)
			for _, n := range p.Buckets {
				require.Zero(t, n, "%s %v", m.Name, p.Attributes)
			}
			if p.Positive != nil {
				require.Empty(t, p.Positive.Counts, "%s %v", m.Name, p.Attributes)
			}
			if m.Type == pmetric.MetricTypeHistogram.String() {
				require.Len(t, p.Buckets, len(p.Bounds)+1, "%s %v: all buckets present", m.Name, p.Attributes)
			}
		}
	}
}
