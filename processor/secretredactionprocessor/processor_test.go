package secretredactionprocessor

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/fastdeploy/otelcol-fastdeploy/processor/secretredactionprocessor/internal/metadata"
	"github.com/fastdeploy/otelcol-fastdeploy/processor/secretredactionprocessor/internal/metadatatest"
)

var update = flag.Bool("update", false, "rewrite golden files")

// checkGolden compares output JSON with testdata/golden/name, field by field.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		require.NoError(t, os.WriteFile(path, got, 0o600))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.JSONEq(t, string(want), string(got))
}

func assertClean(t *testing.T, out []byte) {
	t.Helper()
	for _, s := range planted {
		assert.NotContains(t, string(out), s)
	}
	assert.NotContains(t, string(out), "VTLw7onLRnrq0")
	for _, s := range keptValues {
		assert.Contains(t, string(out), s)
	}
}

func TestGoldenTraces(t *testing.T) {
	sink := new(consumertest.TracesSink)
	p, err := NewFactory().CreateTraces(context.Background(), processortest.NewNopSettings(metadata.Type), &Config{Summary: true}, sink)
	require.NoError(t, err)
	require.NoError(t, p.ConsumeTraces(context.Background(), deploymentTraces(2, true)))
	require.Len(t, sink.AllTraces(), 1)
	out, err := (&ptrace.JSONMarshaler{}).MarshalTraces(sink.AllTraces()[0])
	require.NoError(t, err)
	assertClean(t, out)
	checkGolden(t, "traces.json", out)
}

func TestGoldenLogs(t *testing.T) {
	sink := new(consumertest.LogsSink)
	p, err := NewFactory().CreateLogs(context.Background(), processortest.NewNopSettings(metadata.Type), &Config{Summary: true}, sink)
	require.NoError(t, err)
	require.NoError(t, p.ConsumeLogs(context.Background(), deploymentLogs(11, true)))
	out, err := (&plog.JSONMarshaler{}).MarshalLogs(sink.AllLogs()[0])
	require.NoError(t, err)
	for _, s := range planted[:10] {
		if strings.Contains(string(out), s) {
			t.Errorf("secret survived: %.6s...", s)
		}
	}
	checkGolden(t, "logs.json", out)
}

func TestGoldenMetrics(t *testing.T) {
	sink := new(consumertest.MetricsSink)
	p, err := NewFactory().CreateMetrics(context.Background(), processortest.NewNopSettings(metadata.Type), &Config{Summary: true}, sink)
	require.NoError(t, err)
	require.NoError(t, p.ConsumeMetrics(context.Background(), deploymentMetrics(true)))
	out, err := (&pmetric.JSONMarshaler{}).MarshalMetrics(sink.AllMetrics()[0])
	require.NoError(t, err)
	assert.NotContains(t, string(out), planted[1])
	assert.NotContains(t, string(out), planted[4])
	checkGolden(t, "metrics.json", out)
}

// TestLocations plants one secret in each place a signal can carry a string.
func TestLocations(t *testing.T) {
	const secret = "ghp_0123456789abcdefghijABCDEFGHIJ012345"
	const text = "pushed with " + secret + " ok"
	const want = "pushed with [REDACTED:github_token] ok"
	traces := []struct {
		name  string
		plant func(ptrace.Traces)
		read  func(ptrace.Traces) string
	}{
		{"resource attribute", func(td ptrace.Traces) { td.ResourceSpans().At(0).Resource().Attributes().PutStr("x", text) },
			func(td ptrace.Traces) string {
				v, _ := td.ResourceSpans().At(0).Resource().Attributes().Get("x")
				return v.Str()
			}},
		{"scope attribute", func(td ptrace.Traces) {
			td.ResourceSpans().At(0).ScopeSpans().At(0).Scope().Attributes().PutStr("x", text)
		},
			func(td ptrace.Traces) string {
				v, _ := td.ResourceSpans().At(0).ScopeSpans().At(0).Scope().Attributes().Get("x")
				return v.Str()
			}},
		{"span name", func(td ptrace.Traces) { spanOf(td).SetName(text) }, func(td ptrace.Traces) string { return spanOf(td).Name() }},
		{"status message", func(td ptrace.Traces) { spanOf(td).Status().SetMessage(text) },
			func(td ptrace.Traces) string { return spanOf(td).Status().Message() }},
		{"nested attribute", func(td ptrace.Traces) {
			spanOf(td).Attributes().PutEmptyMap("a").PutEmptySlice("b").AppendEmpty().SetEmptyMap().PutStr("c", text)
		}, func(td ptrace.Traces) string {
			v, _ := spanOf(td).Attributes().Get("a")
			b, _ := v.Map().Get("b")
			c, _ := b.Slice().At(0).Map().Get("c")
			return c.Str()
		}},
		{"event name", func(td ptrace.Traces) { spanOf(td).Events().AppendEmpty().SetName(text) },
			func(td ptrace.Traces) string { return spanOf(td).Events().At(0).Name() }},
		{"event attribute", func(td ptrace.Traces) { spanOf(td).Events().AppendEmpty().Attributes().PutStr("x", text) },
			func(td ptrace.Traces) string { v, _ := spanOf(td).Events().At(0).Attributes().Get("x"); return v.Str() }},
		{"link attribute", func(td ptrace.Traces) { spanOf(td).Links().AppendEmpty().Attributes().PutStr("x", text) },
			func(td ptrace.Traces) string { v, _ := spanOf(td).Links().At(0).Attributes().Get("x"); return v.Str() }},
	}
	for _, tt := range traces {
		t.Run("traces/"+tt.name, func(t *testing.T) {
			td := ptrace.NewTraces()
			td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
			tt.plant(td)
			sink := new(consumertest.TracesSink)
			p, err := NewFactory().CreateTraces(context.Background(), processortest.NewNopSettings(metadata.Type), &Config{}, sink)
			require.NoError(t, err)
			require.NoError(t, p.ConsumeTraces(context.Background(), td))
			assert.Equal(t, want, tt.read(sink.AllTraces()[0]))
		})
	}

	logs := []struct {
		name  string
		plant func(plog.LogRecord)
		read  func(plog.LogRecord) string
	}{
		{"string body", func(lr plog.LogRecord) { lr.Body().SetStr(text) }, func(lr plog.LogRecord) string { return lr.Body().Str() }},
		{"map body", func(lr plog.LogRecord) { lr.Body().SetEmptyMap().PutEmptyMap("m").PutStr("s", text) },
			func(lr plog.LogRecord) string {
				m, _ := lr.Body().Map().Get("m")
				s, _ := m.Map().Get("s")
				return s.Str()
			}},
		{"slice body", func(lr plog.LogRecord) { lr.Body().SetEmptySlice().AppendEmpty().SetStr(text) },
			func(lr plog.LogRecord) string { return lr.Body().Slice().At(0).Str() }},
		{"attribute", func(lr plog.LogRecord) { lr.Attributes().PutStr("x", text) },
			func(lr plog.LogRecord) string { v, _ := lr.Attributes().Get("x"); return v.Str() }},
		{"event name", func(lr plog.LogRecord) { lr.SetEventName(text) }, func(lr plog.LogRecord) string { return lr.EventName() }},
	}
	for _, tt := range logs {
		t.Run("logs/"+tt.name, func(t *testing.T) {
			ld := plog.NewLogs()
			tt.plant(ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty())
			sink := new(consumertest.LogsSink)
			p, err := NewFactory().CreateLogs(context.Background(), processortest.NewNopSettings(metadata.Type), &Config{}, sink)
			require.NoError(t, err)
			require.NoError(t, p.ConsumeLogs(context.Background(), ld))
			assert.Equal(t, want, tt.read(sink.AllLogs()[0].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)))
		})
	}

	for _, typ := range []pmetric.MetricType{pmetric.MetricTypeGauge, pmetric.MetricTypeSum, pmetric.MetricTypeHistogram,
		pmetric.MetricTypeExponentialHistogram, pmetric.MetricTypeSummary} {
		t.Run("metrics/"+typ.String(), func(t *testing.T) {
			md := pmetric.NewMetrics()
			m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
			attrs, exemplar := metricPoint(m, typ)
			attrs.PutStr("x", text)
			if exemplar != nil {
				exemplar.PutStr("x", text)
			}
			sink := new(consumertest.MetricsSink)
			p, err := NewFactory().CreateMetrics(context.Background(), processortest.NewNopSettings(metadata.Type), &Config{}, sink)
			require.NoError(t, err)
			require.NoError(t, p.ConsumeMetrics(context.Background(), md))
			v, _ := attrs.Get("x")
			assert.Equal(t, want, v.Str())
			if exemplar != nil {
				v, _ = exemplar.Get("x")
				assert.Equal(t, want, v.Str())
			}
		})
	}
}

func spanOf(td ptrace.Traces) ptrace.Span {
	return td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
}

func metricPoint(m pmetric.Metric, typ pmetric.MetricType) (pcommon.Map, *pcommon.Map) {
	switch typ {
	case pmetric.MetricTypeGauge:
		dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
		ex := dp.Exemplars().AppendEmpty().FilteredAttributes()
		return dp.Attributes(), &ex
	case pmetric.MetricTypeSum:
		dp := m.SetEmptySum().DataPoints().AppendEmpty()
		ex := dp.Exemplars().AppendEmpty().FilteredAttributes()
		return dp.Attributes(), &ex
	case pmetric.MetricTypeHistogram:
		dp := m.SetEmptyHistogram().DataPoints().AppendEmpty()
		ex := dp.Exemplars().AppendEmpty().FilteredAttributes()
		return dp.Attributes(), &ex
	case pmetric.MetricTypeExponentialHistogram:
		dp := m.SetEmptyExponentialHistogram().DataPoints().AppendEmpty()
		ex := dp.Exemplars().AppendEmpty().FilteredAttributes()
		return dp.Attributes(), &ex
	default:
		return m.SetEmptySummary().DataPoints().AppendEmpty().Attributes(), nil
	}
}

func TestSecretKeysAndOptions(t *testing.T) {
	tests := []struct {
		name string
		cfg  *Config
		key  string
		in   func(pcommon.Value)
		want func(t *testing.T, v pcommon.Value)
	}{
		{"string under secret key", &Config{}, "db_password", func(v pcommon.Value) { v.SetStr("hunter2") },
			func(t *testing.T, v pcommon.Value) { assert.Equal(t, "[REDACTED:secret_key]", v.Str()) }},
		{"int under secret key", &Config{}, "pin_password", func(v pcommon.Value) { v.SetInt(123456) },
			func(t *testing.T, v pcommon.Value) { assert.Equal(t, "[REDACTED:secret_key]", v.Str()) }},
		{"bool under secret key kept", &Config{}, "password", func(v pcommon.Value) { v.SetBool(true) },
			func(t *testing.T, v pcommon.Value) { assert.True(t, v.Bool()) }},
		{"number under ttl key kept", &Config{}, "token_ttl", func(v pcommon.Value) { v.SetInt(3600) },
			func(t *testing.T, v pcommon.Value) { assert.Equal(t, int64(3600), v.Int()) }},
		{"map under secret key masked at depth", &Config{}, "credentials", func(v pcommon.Value) {
			m := v.SetEmptyMap()
			m.PutStr("username", "deploy")
			m.PutEmptySlice("keys").AppendEmpty().SetStr("k1")
		}, func(t *testing.T, v pcommon.Value) {
			u, _ := v.Map().Get("username")
			k, _ := v.Map().Get("keys")
			assert.Equal(t, "[REDACTED:secret_key]", u.Str())
			assert.Equal(t, "[REDACTED:secret_key]", k.Slice().At(0).Str())
		}},
		{"template under secret key kept", &Config{}, "password", func(v pcommon.Value) { v.SetStr("{{ vault_db_password }}") },
			func(t *testing.T, v pcommon.Value) { assert.Equal(t, "{{ vault_db_password }}", v.Str()) }},
		{"allowed key", &Config{AllowedKeys: []string{"password"}}, "password", func(v pcommon.Value) { v.SetStr("hunter2") },
			func(t *testing.T, v pcommon.Value) { assert.Equal(t, "hunter2", v.Str()) }},
		{"user secret key", &Config{SecretKeys: []string{"x-acme-signature"}}, "X-Acme-Signature", func(v pcommon.Value) { v.SetStr("abc") },
			func(t *testing.T, v pcommon.Value) { assert.Equal(t, "[REDACTED:secret_key]", v.Str()) }},
		{"allowed value", &Config{AllowedValues: []string{`^hunter2$`}}, "password", func(v pcommon.Value) { v.SetStr("hunter2") },
			func(t *testing.T, v pcommon.Value) { assert.Equal(t, "hunter2", v.Str()) }},
		{"user rule", &Config{Rules: []RuleConfig{{Name: "acme", Pattern: `acme_[0-9a-f]{8}`, Keywords: []string{"acme_"}}}}, "msg",
			func(v pcommon.Value) { v.SetStr("got acme_0123abcd.") },
			func(t *testing.T, v pcommon.Value) { assert.Equal(t, "got [REDACTED:acme].", v.Str()) }},
		{"disabled rule", &Config{DisabledRules: []string{"github_token"}}, "msg",
			func(v pcommon.Value) { v.SetStr("ghp_0123456789abcdefghijABCDEFGHIJ012345") },
			func(t *testing.T, v pcommon.Value) {
				assert.Equal(t, "ghp_0123456789abcdefghijABCDEFGHIJ012345", v.Str())
			}},
		{"keyed hash", &Config{HashKey: "0123456789abcdef0123456789abcdef"}, "password", func(v pcommon.Value) { v.SetStr("hunter2") },
			func(t *testing.T, v pcommon.Value) {
				assert.Regexp(t, `^\[REDACTED:secret_key:[0-9a-f]{12}\]$`, v.Str())
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ld := plog.NewLogs()
			lr := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
			tt.in(lr.Attributes().PutEmpty(tt.key))
			sink := new(consumertest.LogsSink)
			p, err := NewFactory().CreateLogs(context.Background(), processortest.NewNopSettings(metadata.Type), tt.cfg, sink)
			require.NoError(t, err)
			require.NoError(t, p.ConsumeLogs(context.Background(), ld))
			v, ok := sink.AllLogs()[0].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Attributes().Get(tt.key)
			require.True(t, ok)
			tt.want(t, v)
		})
	}
}

func TestSummaryAttributes(t *testing.T) {
	ld := plog.NewLogs()
	lr := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.Body().SetStr("password=hunter2 and ghp_0123456789abcdefghijABCDEFGHIJ012345")
	lr.Attributes().PutStr("api_key", "abc")
	clean := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().AppendEmpty()
	clean.Body().SetStr("nothing here")
	sink := new(consumertest.LogsSink)
	p, err := NewFactory().CreateLogs(context.Background(), processortest.NewNopSettings(metadata.Type), &Config{Summary: true}, sink)
	require.NoError(t, err)
	require.NoError(t, p.ConsumeLogs(context.Background(), ld))
	out := sink.AllLogs()[0].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	count, _ := out.At(0).Attributes().Get(summaryCountKey)
	rules, _ := out.At(0).Attributes().Get(summaryRulesKey)
	assert.Equal(t, int64(3), count.Int())
	assert.Equal(t, []any{"secret_key", "github_token", "generic_secret"}, rules.Slice().AsRaw())
	assert.Equal(t, 0, out.At(1).Attributes().Len())
}

func TestTelemetryCountsByRuleAndSignal(t *testing.T) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	set := metadatatest.NewSettings(tel)
	p, err := NewFactory().CreateLogs(context.Background(), set, &Config{}, consumertest.NewNop())
	require.NoError(t, err)
	ld := plog.NewLogs()
	records := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	records.AppendEmpty().Body().SetStr("a ghp_0123456789abcdefghijABCDEFGHIJ012345 b ghp_0123456789abcdefghijABCDEFGHIJ0123ZZ")
	records.AppendEmpty().Attributes().PutStr("password", "hunter2")
	require.NoError(t, p.ConsumeLogs(context.Background(), ld))
	metadatatest.AssertEqualSecretRedactionProcessorRedactions(t, tel, []metricdata.DataPoint[int64]{
		{Value: 2, Attributes: attribute.NewSet(attribute.String("rule", "github_token"), attribute.String("signal", "logs"))},
		{Value: 1, Attributes: attribute.NewSet(attribute.String("rule", "secret_key"), attribute.String("signal", "logs"))},
	}, metricdatatest.IgnoreTimestamp())
}

func TestCleanBatchUnchangedAndAllocationFree(t *testing.T) {
	r, err := newRedactor(componenttest.NewNopTelemetrySettings(), &Config{})
	require.NoError(t, err)
	td := deploymentTraces(5, false)
	before, err := (&ptrace.JSONMarshaler{}).MarshalTraces(td)
	require.NoError(t, err)
	allocs := testing.AllocsPerRun(20, func() { _, _ = r.processTraces(context.Background(), td) })
	after, err := (&ptrace.JSONMarshaler{}).MarshalTraces(td)
	require.NoError(t, err)
	assert.Equal(t, string(before), string(after))
	if !raceEnabled {
		assert.Zero(t, allocs)
	}
}
