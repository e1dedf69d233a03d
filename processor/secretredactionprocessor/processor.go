package secretredactionprocessor

import (
	"context"
	"fmt"
	"sort"
	"strings"

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
	defer r.copiesInSpan(span, t)
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
				if len(t.Found) > 0 {
					if c := r.newCopies(&t); c != nil {
						c.value(lr.Body())
						c.mapValues(lr.Attributes())
					}
				}
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
	if len(t.Found) > 0 {
		if c := r.newCopies(t); c != nil {
			c.mapValues(attrs)
		}
	}
	r.summarize(attrs, t)
}

// attributes redacts a map in place: whole values under secret keys,
// secrets inside the other strings and inside keys, recursively.
func (r *redactor) attributes(m pcommon.Map, t *secrets.Tally) {
	r.mapEntries(m, false, t)
}

func (r *redactor) mapEntries(m pcommon.Map, underSecretKey bool, t *secrets.Tally) {
	publishable := false
	if m.Len() <= secrets.MaxSiblingScan {
		// {name: DB_PASSWORD, value: x} and {key: api_token, value: x}:
		// the value's name is its sibling's value.
		if v, ok := m.Get("value"); ok && r.namedBySibling(m) {
			r.value(v, true, t)
		}
		_, publishable = m.Get("messagingSenderId") // a Firebase web config is public
	}
	var renames []string
	for k, v := range m.All() {
		if k == "value" && r.namedBySibling(m) {
			continue
		}
		if publishable && k == "apiKey" {
			continue
		}
		r.entry(k, v, underSecretKey, t)
		if len(k) >= secrets.MinSecretMapKey {
			if _, ok := r.engine.Redact(k, t); ok {
				renames = append(renames, k)
			}
		}
	}
	// Keys are data too ({"ghp_...": 1}); renamed after the walk, which
	// cannot change the map.
	for _, k := range renames {
		masked, _ := r.engine.Redact(k, &secrets.Tally{})
		v, _ := m.Get(k)
		v.CopyTo(m.PutEmpty(masked))
		m.Remove(k)
	}
}

func (r *redactor) namedBySibling(m pcommon.Map) bool {
	return r.engine.ValueNamedBySibling(m.Len(), func(field string) (string, bool) {
		if n, ok := m.Get(field); ok && n.Type() == pcommon.ValueTypeStr {
			return n.Str(), true
		}
		return "", false
	})
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
	secretKey := underSecretKey || r.engine.IsSecretKey(k)
	if v.Type() == pcommon.ValueTypeSlice && !secretKey {
		r.slice(v.Slice(), argvSeparator(k, v.Slice()), t)
		return
	}
	r.value(v, secretKey, t)
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
		r.mapEntries(v.Map(), secretKey, t)
	case pcommon.ValueTypeSlice:
		if !secretKey {
			r.slice(v.Slice(), argvSeparator("", v.Slice()), t)
			return
		}
		s := v.Slice()
		for i := 0; i < s.Len(); i++ {
			r.value(s.At(i), secretKey, t)
		}
	case pcommon.ValueTypeBool, pcommon.ValueTypeEmpty:
	}
}

// maxJoined bounds the elements of a string slice scanned as one text.
const maxJoined = 4096

// slice redacts a list: a list of strings as the one text it forms (an
// argv as its command line, output lines as the output), others element
// by element.
func (r *redactor) slice(s pcommon.Slice, sep string, t *secrets.Tally) {
	n := s.Len()
	if n >= 2 && n <= maxJoined && allStrings(s) {
		var buf [16]string
		elems := buf[:0]
		for i := 0; i < n; i++ {
			elems = append(elems, s.At(i).Str())
		}
		if out := r.engine.RedactJoined(elems, sep, t); out != nil {
			for i, e := range out {
				if e != elems[i] {
					s.At(i).SetStr(e)
				}
			}
		}
		return
	}
	for i := 0; i < n; i++ {
		r.value(s.At(i), false, t)
	}
}

func allStrings(s pcommon.Slice) bool {
	for i := 0; i < s.Len(); i++ {
		if s.At(i).Type() != pcommon.ValueTypeStr {
			return false
		}
	}
	return true
}

// argvSeparator joins a list by the shared rule (secrets.ListSeparator);
// a list that is not all strings is scanned element by element, so its
// separator is never used.
func argvSeparator(key string, s pcommon.Slice) string {
	first := ""
	if s.Len() >= 2 && s.At(0).Type() == pcommon.ValueTypeStr {
		first = s.At(0).Str()
	}
	return secrets.ListSeparator(key, first)
}

// copies masks, in the rest of an item, other copies of the secrets found
// in it: the lines of a key printed in stdout reach stdout_lines too.
type copies struct {
	needles []copyNeedle
}

type copyNeedle struct{ text, mask string }

// minCopyLen keeps short secrets (found under a key) from masking common
// words elsewhere; lines of multi-line secrets must be longer still.
const (
	minCopyLen     = 8
	minCopyLineLen = 16
)

func (r *redactor) newCopies(t *secrets.Tally) *copies {
	c := &copies{}
	add := func(s string, rule int) {
		if strings.Contains(s, "[REDACTED") {
			return
		}
		for _, n := range c.needles {
			if n.text == s {
				return
			}
		}
		c.needles = append(c.needles, copyNeedle{s, r.engine.Mask(rule, s)})
	}
	for _, f := range t.Found {
		if len(f.Text) >= minCopyLen {
			add(f.Text, f.Rule)
		}
		if strings.IndexByte(f.Text, '\n') >= 0 || strings.Contains(f.Text, `\n`) {
			for _, line := range strings.FieldsFunc(strings.ReplaceAll(f.Text, `\n`, "\n"), func(c rune) bool { return c == '\n' || c == '\r' }) {
				if line = strings.TrimSpace(line); len(line) >= minCopyLineLen {
					add(line, f.Rule)
				}
			}
		}
	}
	if len(c.needles) == 0 {
		return nil
	}
	// Longest first, so a secret holding another is masked whole.
	sort.Slice(c.needles, func(i, j int) bool { return len(c.needles[i].text) > len(c.needles[j].text) })
	return c
}

// str masks the copies in s; a string without any costs a substring
// search per secret and no allocation.
func (c *copies) str(s string) (string, bool) {
	changed := false
	for _, n := range c.needles {
		if len(s) >= len(n.text) && strings.Contains(s, n.text) {
			s = strings.ReplaceAll(s, n.text, n.mask)
			changed = true
		}
	}
	return s, changed
}

func (c *copies) value(v pcommon.Value) {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		if s, ok := c.str(v.Str()); ok {
			v.SetStr(s)
		}
	case pcommon.ValueTypeMap:
		c.mapValues(v.Map())
	case pcommon.ValueTypeSlice:
		s := v.Slice()
		for i := 0; i < s.Len(); i++ {
			c.value(s.At(i))
		}
	default:
	}
}

func (c *copies) mapValues(m pcommon.Map) {
	for _, v := range m.All() {
		c.value(v)
	}
}

func (r *redactor) copiesInSpan(span ptrace.Span, t *secrets.Tally) {
	if len(t.Found) == 0 {
		return
	}
	c := r.newCopies(t)
	if c == nil {
		return
	}
	if s, ok := c.str(span.Name()); ok {
		span.SetName(s)
	}
	if s, ok := c.str(span.Status().Message()); ok {
		span.Status().SetMessage(s)
	}
	c.mapValues(span.Attributes())
	for i := 0; i < span.Events().Len(); i++ {
		ev := span.Events().At(i)
		if s, ok := c.str(ev.Name()); ok {
			ev.SetName(s)
		}
		c.mapValues(ev.Attributes())
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
