package secretredactionprocessor

import (
	"context"
	"fmt"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/secrets"
	"github.com/fastdeploy/otelcol-fastdeploy/processor/secretredactionprocessor/internal/metadata"
)

// Summary attributes, added to items when Config.Summary is on.
const (
	summaryCountKey = "redaction.count"
	summaryRulesKey = "redaction.rules"
)

type signal int

const (
	signalTraces signal = iota
	signalLogs
	signalMetrics
	numSignals
)

var signalNames = [numSignals]string{"traces", "logs", "metrics"}

type redactor struct {
	engine      *secrets.Engine
	ruleNames   []string
	allowedKeys map[string]struct{}
	summary     bool
	telemetry   *metadata.TelemetryBuilder
	// Attribute sets by signal and rule id, built once so counting allocates nothing.
	counterAttrs [numSignals][]metric.AddOption
}

func newRedactor(set component.TelemetrySettings, cfg *Config) (*redactor, error) {
	opts, err := cfg.engineOptions()
	if err != nil {
		return nil, err
	}
	engine, err := secrets.New(opts)
	if err != nil {
		return nil, fmt.Errorf("building secret rules: %w", err)
	}
	tb, err := metadata.NewTelemetryBuilder(set)
	if err != nil {
		return nil, fmt.Errorf("creating telemetry: %w", err)
	}
	r := &redactor{
		engine:    engine,
		ruleNames: engine.RuleNames(),
		summary:   cfg.Summary,
		telemetry: tb,
	}
	if len(cfg.AllowedKeys) > 0 {
		r.allowedKeys = make(map[string]struct{}, len(cfg.AllowedKeys))
		for _, k := range cfg.AllowedKeys {
			r.allowedKeys[k] = struct{}{}
		}
	}
	for sig := range numSignals {
		for _, name := range r.ruleNames {
			r.counterAttrs[sig] = append(r.counterAttrs[sig], metric.WithAttributeSet(attribute.NewSet(
				attribute.String("rule", name), attribute.String("signal", signalNames[sig]))))
		}
	}
	set.Logger.Info("Secret redaction rules loaded", zap.Int("rules", len(r.ruleNames)), zap.Bool("keyed_hash", opts.HashKey != nil))
	return r, nil
}

func (r *redactor) shutdown(context.Context) error {
	r.telemetry.Shutdown()
	return nil
}

// record adds the batch's redactions to the counter, by rule.
func (r *redactor) record(ctx context.Context, sig signal, t *secrets.Tally) {
	for id, n := range t.Counts[:len(r.ruleNames)] {
		if n > 0 {
			r.telemetry.SecretRedactionProcessorRedactions.Add(ctx, n, r.counterAttrs[sig][id])
		}
	}
}

func (r *redactor) processTraces(ctx context.Context, td ptrace.Traces) (ptrace.Traces, error) {
	var t secrets.Tally
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		r.attributes(rs.Resource().Attributes(), &t)
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			ss := sss.At(j)
			r.attributes(ss.Scope().Attributes(), &t)
			spans := ss.Spans()
			for k := 0; k < spans.Len(); k++ {
				r.span(spans.At(k), &t)
			}
		}
	}
	r.record(ctx, signalTraces, &t)
	return td, nil
}

func (r *redactor) span(span ptrace.Span, t *secrets.Tally) {
	t.StartItem()
	if s, ok := r.engine.Redact(span.Name(), t); ok {
		span.SetName(s)
	}
	if s, ok := r.engine.Redact(span.Status().Message(), t); ok {
		span.Status().SetMessage(s)
	}
	r.attributes(span.Attributes(), t)
	events := span.Events()
	for i := 0; i < events.Len(); i++ {
		ev := events.At(i)
		if s, ok := r.engine.Redact(ev.Name(), t); ok {
			ev.SetName(s)
		}
		r.attributes(ev.Attributes(), t)
	}
	links := span.Links()
	for i := 0; i < links.Len(); i++ {
		r.attributes(links.At(i).Attributes(), t)
	}
	r.summarize(span.Attributes(), t)
}

func (r *redactor) processLogs(ctx context.Context, ld plog.Logs) (plog.Logs, error) {
	var t secrets.Tally
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		r.attributes(rl.Resource().Attributes(), &t)
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			sl := sls.At(j)
			r.attributes(sl.Scope().Attributes(), &t)
			records := sl.LogRecords()
			for k := 0; k < records.Len(); k++ {
				lr := records.At(k)
				t.StartItem()
				r.value(lr.Body(), false, &t)
				if s, ok := r.engine.Redact(lr.EventName(), &t); ok {
					lr.SetEventName(s)
				}
				r.attributes(lr.Attributes(), &t)
				r.summarize(lr.Attributes(), &t)
			}
		}
	}
	r.record(ctx, signalLogs, &t)
	return ld, nil
}

func (r *redactor) processMetrics(ctx context.Context, md pmetric.Metrics) (pmetric.Metrics, error) {
	var t secrets.Tally
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		rm := rms.At(i)
		r.attributes(rm.Resource().Attributes(), &t)
		sms := rm.ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			sm := sms.At(j)
			r.attributes(sm.Scope().Attributes(), &t)
			metrics := sm.Metrics()
			for k := 0; k < metrics.Len(); k++ {
				r.metric(metrics.At(k), &t)
			}
		}
	}
	r.record(ctx, signalMetrics, &t)
	return md, nil
}

func (r *redactor) metric(m pmetric.Metric, t *secrets.Tally) {
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		numberPoints(r, m.Gauge().DataPoints(), t)
	case pmetric.MetricTypeSum:
		numberPoints(r, m.Sum().DataPoints(), t)
	case pmetric.MetricTypeHistogram:
		dps := m.Histogram().DataPoints()
		for i := 0; i < dps.Len(); i++ {
			r.dataPoint(dps.At(i).Attributes(), dps.At(i).Exemplars(), t)
		}
	case pmetric.MetricTypeExponentialHistogram:
		dps := m.ExponentialHistogram().DataPoints()
		for i := 0; i < dps.Len(); i++ {
			r.dataPoint(dps.At(i).Attributes(), dps.At(i).Exemplars(), t)
		}
	case pmetric.MetricTypeSummary:
		dps := m.Summary().DataPoints()
		for i := 0; i < dps.Len(); i++ {
			r.dataPoint(dps.At(i).Attributes(), pmetric.NewExemplarSlice(), t)
		}
	case pmetric.MetricTypeEmpty:
	}
}

func numberPoints(r *redactor, dps pmetric.NumberDataPointSlice, t *secrets.Tally) {
	for i := 0; i < dps.Len(); i++ {
		r.dataPoint(dps.At(i).Attributes(), dps.At(i).Exemplars(), t)
	}
}

func (r *redactor) dataPoint(attrs pcommon.Map, exemplars pmetric.ExemplarSlice, t *secrets.Tally) {
	t.StartItem()
	r.attributes(attrs, t)
	for i := 0; i < exemplars.Len(); i++ {
		r.attributes(exemplars.At(i).FilteredAttributes(), t)
	}
	r.summarize(attrs, t)
}

// attributes redacts a map in place: whole values under secret keys,
// secrets inside the other strings, recursively.
func (r *redactor) attributes(m pcommon.Map, t *secrets.Tally) {
	for k, v := range m.All() {
		r.entry(k, v, false, t)
	}
}

func (r *redactor) entry(k string, v pcommon.Value, underSecretKey bool, t *secrets.Tally) {
	if r.allowedKeys != nil {
		if _, ok := r.allowedKeys[k]; ok {
			return
		}
	}
	if k == summaryCountKey || k == summaryRulesKey {
		return
	}
	r.value(v, underSecretKey || r.engine.IsSecretKey(k), t)
}

// value redacts v; under a secret key every scalar except a boolean is
// masked whole, at any depth.
func (r *redactor) value(v pcommon.Value, secretKey bool, t *secrets.Tally) {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		if secretKey {
			if s, ok := r.engine.MaskKeyValue(v.Str(), t); ok {
				v.SetStr(s)
			}
			return
		}
		if s, ok := r.engine.Redact(v.Str(), t); ok {
			v.SetStr(s)
		}
	case pcommon.ValueTypeInt, pcommon.ValueTypeDouble, pcommon.ValueTypeBytes:
		if secretKey {
			if s, ok := r.engine.MaskKeyValue(v.AsString(), t); ok {
				v.SetStr(s)
			}
		}
	case pcommon.ValueTypeMap:
		for k, child := range v.Map().All() {
			r.entry(k, child, secretKey, t)
		}
	case pcommon.ValueTypeSlice:
		s := v.Slice()
		for i := 0; i < s.Len(); i++ {
			r.value(s.At(i), secretKey, t)
		}
	case pcommon.ValueTypeBool, pcommon.ValueTypeEmpty:
	}
}

// summarize adds the item's redaction count and rule names (never values).
func (r *redactor) summarize(attrs pcommon.Map, t *secrets.Tally) {
	if !r.summary || t.Item == 0 {
		return
	}
	count := int64(t.Item)
	if prev, ok := attrs.Get(summaryCountKey); ok && prev.Type() == pcommon.ValueTypeInt {
		count += prev.Int() // an upstream redactor counted too
	}
	attrs.PutInt(summaryCountKey, count)
	rules := attrs.PutEmptySlice(summaryRulesKey)
	for id, name := range r.ruleNames {
		if t.ItemRules.Has(id) {
			rules.AppendEmpty().SetStr(name)
		}
	}
}
