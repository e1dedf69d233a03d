package deploymetricsconnector

import (
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/boundedset"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/claimledger"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployevent"
)

// Metric names as OpenTelemetry carries them; the prometheus exporter adds
// the unit and _total suffixes (deployments -> deployments_total,
// deployment.duration -> deployment_duration_seconds).
const (
	metricDeployments        = "deployments"
	metricDeploymentDuration = "deployment.duration"
	metricStepDuration       = "step.duration"
	metricStepFailures       = "step.failures"
	metricActiveDeployments  = "active_deployments"
	metricTimeToRestore      = "deployment.time_to_restore"
	metricLeadTime           = "deployment.lead_time"

	labelService     = "service"
	labelEnvironment = "environment"
	labelStatus      = "status"
	labelStepName    = "step_name"
	labelErrorType   = "error_type"

	unknownService = "unknown_service"
	scopeName      = "github.com/fastdeploy/otelcol-fastdeploy/connector/deploymetricsconnector"
)

// counts gathers what a batch did, for the connector's own telemetry,
// which is recorded after the lock is released.
type counts struct {
	duplicates int64
	overflows  map[string]int64
	timedOut   int64
	// ledgerErrors are shared ledger operations that failed (the span was
	// counted: at least once rather than never); countedTwice are spans
	// this collector counted after another took its stalled claim over.
	ledgerErrors int64
	ledgerErr    error
	countedTwice int64
}

func (c *counts) ledgerError(err error) {
	c.ledgerErrors++
	if c.ledgerErr == nil {
		c.ledgerErr = err
	}
}

func (c *counts) overflow(metric string) {
	if c.overflows == nil {
		c.overflows = make(map[string]int64)
	}
	c.overflows[metric]++
}

// engine aggregates deployment metrics. It is not safe for concurrent use;
// the connector serialises calls.
type engine struct {
	cfg   *Config
	now   func() time.Time
	steps *stepNamer
	delta bool

	deployments   *seriesSet // {service, environment, status}: count and duration
	stepDurations *seriesSet // {service, step_name, status}
	stepFailures  *seriesSet // {service, step_name, error_type}
	active        *seriesSet // {service, environment}
	restore       *seriesSet // {service, environment}
	leadTime      *seriesSet // {service, environment}

	dedup     *boundedset.Set[spanKey]
	inflight  map[string]inflight
	finished  *idRing
	histories map[labelKey]*restoreHistory
	lastFlush pcommon.Timestamp
	// zeroed counts the data points the last flush sent at zero for new
	// series; a final flush follows up with their counts.
	zeroed int
	// persist writes cumulative counts through to storage; nil without.
	persist      *persisted
	rewriteDedup bool
	// ledger is shared with the other collectors of a group; set before
	// the first batch, then only read (claims are made outside the lock).
	ledger    *claimledger.Ledger
	lastPrune time.Time
}

func newEngine(cfg *Config, now func() time.Time) (*engine, error) {
	steps, err := newStepNamer(cfg.StepNames)
	if err != nil {
		return nil, err
	}
	hist := func(buckets []time.Duration) func() *histogram {
		bounds := make([]float64, len(buckets))
		for i, b := range buckets {
			bounds[i] = b.Seconds()
		}
		expo := int32(0)
		if cfg.Histograms.Type == HistogramExponential {
			expo, bounds = cfg.Histograms.ExponentialMaxSize, nil
		}
		return func() *histogram { return newHistogram(bounds, expo, cfg.Exemplars.Enabled) }
	}
	m := cfg.MaxSeriesPerMetric
	return &engine{
		cfg:           cfg,
		now:           now,
		steps:         steps,
		delta:         cfg.AggregationTemporality == TemporalityDelta,
		deployments:   newSeriesSet(metricDeployments, m, hist(cfg.Histograms.DeploymentDurationBuckets), labelService, labelEnvironment, labelStatus),
		stepDurations: newSeriesSet(metricStepDuration, m, hist(cfg.Histograms.StepDurationBuckets), labelService, labelStepName, labelStatus),
		stepFailures:  newSeriesSet(metricStepFailures, m, nil, labelService, labelStepName, labelErrorType),
		active:        newSeriesSet(metricActiveDeployments, m, nil, labelService, labelEnvironment),
		restore:       newSeriesSet(metricTimeToRestore, m, hist(cfg.Histograms.TimeToRestoreBuckets), labelService, labelEnvironment),
		leadTime:      newSeriesSet(metricLeadTime, m, hist(cfg.Histograms.LeadTimeBuckets), labelService, labelEnvironment),
		dedup:         boundedset.NewSet[spanKey](cfg.DeduplicationWindow),
		inflight:      make(map[string]inflight),
		finished:      newIDRing(cfg.ActiveDeployments.MaxTracked),
		histories:     make(map[labelKey]*restoreHistory),
		lastFlush:     pcommon.NewTimestampFromTime(now()),
	}, nil
}

type spanClass int

const (
	spanIgnored spanClass = iota
	spanDeployment
	spanStep
)

// classify reads at most three attributes, so unrelated spans cost little.
func (e *engine) classify(attrs pcommon.Map) spanClass {
	sc := &e.cfg.Spans
	if sc.KindAttribute != "" {
		if v, ok := attrs.Get(sc.KindAttribute); ok {
			switch v.Str() {
			case sc.DeploymentKind:
				return spanDeployment
			case sc.StepKind:
				return spanStep
			}
			return spanIgnored
		}
	}
	if sc.StepAttribute != "" {
		if _, ok := attrs.Get(sc.StepAttribute); ok {
			return spanStep
		}
	}
	if sc.DeploymentAttribute != "" {
		if _, ok := attrs.Get(sc.DeploymentAttribute); ok {
			return spanDeployment
		}
	}
	return spanIgnored
}

// ignored reports whether a step's failure was carried on past.
func ignored(attrs pcommon.Map, key string) bool {
	if key == "" {
		return false
	}
	v, ok := attrs.Get(key)
	return ok && v.Type() == pcommon.ValueTypeBool && v.Bool()
}

func strAttr(attrs pcommon.Map, key string) string {
	if key == "" {
		return ""
	}
	v, ok := attrs.Get(key)
	if !ok {
		return ""
	}
	if v.Type() == pcommon.ValueTypeStr {
		return v.Str()
	}
	return v.AsString()
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// consumeTraces counts td's deployment and step spans; shared is what the
// shared ledger said of them (nil without one).
func (e *engine) consumeTraces(shared *sharedClaims, td ptrace.Traces, c *counts) {
	now := e.now()
	nowNanos := now.UnixNano()
	start := pcommon.NewTimestampFromTime(now)
	attrs := &e.cfg.Attributes
	for _, rs := range td.ResourceSpans().All() {
		res := rs.Resource().Attributes()
		service := strAttr(res, attrs.Service)
		resEnv := strAttr(res, attrs.Environment)
		for _, ss := range rs.ScopeSpans().All() {
			for _, span := range ss.Spans().All() {
				sa := span.Attributes()
				class := e.classify(sa)
				if class == spanIgnored {
					continue
				}
				k := newSpanKey(span.TraceID(), span.SpanID())
				if e.seen(k) || shared.elsewhere(k) {
					c.duplicates++
					continue
				}
				svc := service
				if svc == "" {
					svc = firstNonEmpty(strAttr(sa, attrs.Service), unknownService)
				}
				status := spanStatus(sa, attrs.Status, span.Status())
				end := span.EndTimestamp()
				if end == 0 {
					end = span.StartTimestamp()
				}
				duration := 0.0
				if end > span.StartTimestamp() {
					duration = time.Duration(end - span.StartTimestamp()).Seconds()
				}
				ex := exemplar{time: end, trace: span.TraceID(), span: span.SpanID()}
				if class == spanStep {
					e.step(sa, span.Name(), svc, status, duration, &ex, nowNanos, start, c)
					continue
				}
				env := firstNonEmpty(strAttr(sa, attrs.Environment), resEnv)
				sr, over := e.deployments.get(labelKey{svc, env, status}, nowNanos, start)
				if over {
					c.overflow(metricDeployments)
				}
				sr.hist.observe(duration, &ex)
				if id := strAttr(sa, attrs.DeploymentID); id != "" {
					e.finish(id)
				}
				e.dora(sa, labelKey{a: svc, b: env}, status, end.AsTime(), &ex, nowNanos, start, c)
			}
		}
	}
}

// seen records the span and reports whether it was recorded already; the
// slot it took is written with the next save.
func (e *engine) seen(k spanKey) bool {
	seen, slot := e.dedup.AddSlot(k)
	if slot >= 0 && e.persist != nil {
		e.persist.dedupSlots = append(e.persist.dedupSlots, slot)
	}
	return seen
}

// pruneLedger drops the shared ledger's expired buckets, once a minute.
func (e *engine) pruneLedger(now time.Time, c *counts) {
	if e.ledger == nil || now.Sub(e.lastPrune) < time.Minute {
		return
	}
	e.lastPrune = now
	if err := e.ledger.Prune(); err != nil {
		c.ledgerError(err)
	}
}

func (e *engine) step(sa pcommon.Map, spanName, svc, status string, duration float64, ex *exemplar, nowNanos int64, start pcommon.Timestamp, c *counts) {
	name := e.steps.normalize(firstNonEmpty(strAttr(sa, e.cfg.Attributes.StepName), spanName))
	sr, over := e.stepDurations.get(labelKey{svc, name, status}, nowNanos, start)
	if over {
		c.overflow(metricStepDuration)
	}
	sr.hist.observe(duration, ex)
	if !failing(status) || ignored(sa, e.cfg.Attributes.Ignored) {
		return
	}
	errType := firstNonEmpty(strAttr(sa, e.cfg.Attributes.ErrorType), status)
	sr, over = e.stepFailures.get(labelKey{svc, name, errType}, nowNanos, start)
	if over {
		c.overflow(metricStepFailures)
	}
	sr.value++
}

// dora records time to restore and lead time for one finished deployment.
func (e *engine) dora(sa pcommon.Map, key labelKey, status string, end time.Time, ex *exemplar, nowNanos int64, start pcommon.Timestamp, c *counts) {
	if status == statusSuccess {
		if commit, ok := commitTime(sa, e.cfg.Attributes.CommitTime); ok && !commit.After(end) {
			sr, over := e.leadTime.get(key, nowNanos, start)
			if over {
				c.overflow(metricLeadTime)
			}
			sr.hist.observe(end.Sub(commit).Seconds(), ex)
		}
	}
	if status != statusSuccess && !failing(status) {
		return
	}
	h, ok := e.histories[key]
	if !ok {
		if len(e.histories) >= e.cfg.MaxSeriesPerMetric {
			c.overflow(metricTimeToRestore)
			return
		}
		h = &restoreHistory{}
		e.histories[key.clone()] = h
	}
	h.updated = nowNanos
	recovery, streakStart := h.insert(outcome{end: end, failing: failing(status), trace: ex.trace, span: ex.span}, e.cfg.TimeToRestoreHistory)
	if recovery == nil {
		return
	}
	sr, over := e.restore.get(key, nowNanos, start)
	if over {
		c.overflow(metricTimeToRestore)
	}
	sr.hist.observe(recovery.end.Sub(streakStart).Seconds(), &exemplar{
		time: pcommon.NewTimestampFromTime(recovery.end), trace: recovery.trace, span: recovery.span,
	})
}

// commitTime reads an RFC 3339 string or Unix seconds (integer or double).
func commitTime(attrs pcommon.Map, key string) (time.Time, bool) {
	if key == "" {
		return time.Time{}, false
	}
	v, ok := attrs.Get(key)
	if !ok {
		return time.Time{}, false
	}
	switch v.Type() {
	case pcommon.ValueTypeInt:
		return time.Unix(v.Int(), 0), true
	case pcommon.ValueTypeDouble:
		sec := v.Double()
		return time.Unix(0, int64(sec*float64(time.Second))), true
	case pcommon.ValueTypeStr:
		s := v.Str()
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t, true
		}
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return time.Unix(n, 0), true
		}
	}
	return time.Time{}, false
}

func (e *engine) consumeLogs(ld plog.Logs, c *counts) {
	now := e.now()
	nowNanos := now.UnixNano()
	start := pcommon.NewTimestampFromTime(now)
	attrs := &e.cfg.Attributes
	for _, rl := range ld.ResourceLogs().All() {
		res := rl.Resource().Attributes()
		service := strAttr(res, attrs.Service)
		resEnv := strAttr(res, attrs.Environment)
		for _, sl := range rl.ScopeLogs().All() {
			for _, lr := range sl.LogRecords().All() {
				la := lr.Attributes()
				action := strAttr(la, attrs.EventAction)
				if action != deployevent.TypeDeploymentStarted && action != deployevent.TypeDeploymentFinished {
					continue
				}
				id := strAttr(la, attrs.DeploymentID)
				if id == "" {
					continue
				}
				if action == deployevent.TypeDeploymentFinished {
					e.finish(id)
					continue
				}
				ts := lr.Timestamp()
				if ts == 0 {
					ts = lr.ObservedTimestamp()
				}
				started := ts.AsTime()
				if ts == 0 {
					started = now
				}
				svc := firstNonEmpty(service, firstNonEmpty(strAttr(la, attrs.Service), unknownService))
				env := firstNonEmpty(strAttr(la, attrs.Environment), resEnv)
				e.start(id, labelKey{a: svc, b: env}, started, now, nowNanos, start, c)
			}
		}
	}
}

// start raises active_deployments once per deployment id, unless the
// deployment already finished, timed out by its own start time, or too
// many are in flight.
func (e *engine) start(id string, key labelKey, started, now time.Time, nowNanos int64, start pcommon.Timestamp, c *counts) {
	if _, ok := e.inflight[id]; ok || e.finished.contains(id) {
		return
	}
	if now.Sub(started) > e.cfg.ActiveDeployments.Timeout {
		e.finished.add(id)
		return
	}
	if len(e.inflight) >= e.cfg.ActiveDeployments.MaxTracked {
		c.overflow(metricActiveDeployments)
		return
	}
	sr, over := e.active.get(key, nowNanos, start)
	if over {
		c.overflow(metricActiveDeployments)
	}
	sr.value++
	e.inflight[strings.Clone(id)] = inflight{series: sr, started: started}
}

// finish lowers active_deployments for a deployment that was counted; the
// first of its finish log and its span wins.
func (e *engine) finish(id string) {
	if f, ok := e.inflight[id]; ok {
		f.series.value--
		f.series.updated = e.now().UnixNano()
		delete(e.inflight, id)
	}
	e.finished.add(id)
}

// flush builds the metrics to emit, times out deployments in flight,
// expires idle series and, for delta temporality, starts new intervals.
func (e *engine) flush(c *counts) pmetric.Metrics {
	now := e.now()
	nowNanos := now.UnixNano()
	ts := pcommon.NewTimestampFromTime(now)

	for id, f := range e.inflight {
		if now.Sub(f.started) > e.cfg.ActiveDeployments.Timeout {
			f.series.value--
			f.series.updated = nowNanos
			delete(e.inflight, id)
			e.finished.add(id)
			c.timedOut++
		}
	}

	e.expire(nowNanos)
	e.pruneLedger(now, c)

	md := pmetric.NewMetrics()
	sm := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty()
	sm.Scope().SetName(scopeName)
	ms := sm.Metrics()

	temporality := pmetric.AggregationTemporalityCumulative
	if e.delta {
		temporality = pmetric.AggregationTemporalityDelta
	}
	e.zeroed = 0
	p := pointWriter{e: e, temporality: temporality, ts: ts}

	if all := e.deployments.sorted(); len(all) > 0 {
		m := ms.AppendEmpty()
		m.SetName(metricDeployments)
		m.SetDescription("Finished deployments, by service, environment and status.")
		m.SetUnit("{deployment}")
		p.appendCounter(m, e.deployments, all, func(sr *series) int64 { return int64(sr.hist.count) })
	}
	e.appendHistogram(ms, e.deployments, "Deployment durations from start to end, by service, environment and status.", &p)
	e.appendHistogram(ms, e.stepDurations, "Step durations, by service, normalised step name and status.", &p)
	if all := e.stepFailures.sorted(); len(all) > 0 {
		m := ms.AppendEmpty()
		m.SetName(metricStepFailures)
		m.SetDescription("Failed or timed-out steps, by service, normalised step name and error type.")
		m.SetUnit("{failure}")
		p.appendCounter(m, e.stepFailures, all, func(sr *series) int64 { return sr.value })
	}
	if all := e.active.sorted(); len(all) > 0 {
		m := ms.AppendEmpty()
		m.SetName(metricActiveDeployments)
		m.SetDescription("Deployments started and not yet finished nor timed out, by service and environment.")
		m.SetUnit("{deployment}")
		g := m.SetEmptyGauge()
		for _, sr := range all {
			dp := g.DataPoints().AppendEmpty()
			e.active.putAttributes(sr, dp.Attributes())
			dp.SetTimestamp(ts)
			dp.SetIntValue(sr.value)
		}
	}
	e.appendHistogram(ms, e.restore, "DORA time to restore: from the first failed deployment of a streak to the next successful one.", &p)
	e.appendHistogram(ms, e.leadTime, "DORA lead time for changes: from the commit time to the end of its successful deployment.", &p)

	e.lastFlush = ts
	counted := []*seriesSet{e.deployments, e.stepDurations, e.stepFailures, e.restore, e.leadTime}
	for _, s := range counted {
		s.exported(!e.delta)
	}
	e.active.exported(false)
	if e.delta {
		for _, s := range counted {
			s.clear()
		}
	}
	return md
}

// pointWriter fills the data points of one flush.
type pointWriter struct {
	e           *engine
	temporality pmetric.AggregationTemporality
	ts          pcommon.Timestamp
}

// zeroFirst tells whether the series goes out at zero this flush: a new
// cumulative series does, once, so that a scraper sees its first counts
// as an increase (delta points are increases already).
func (p *pointWriter) zeroFirst(sr *series) bool {
	if p.e.delta || sr.shown {
		return false
	}
	p.e.zeroed++
	return true
}

func (p *pointWriter) start(sr *series) pcommon.Timestamp {
	if p.e.delta && sr.start < p.e.lastFlush {
		return p.e.lastFlush
	}
	return sr.start
}

func (p *pointWriter) appendCounter(m pmetric.Metric, s *seriesSet, all []*series, value func(*series) int64) {
	sum := m.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(p.temporality)
	for _, sr := range all {
		dp := sum.DataPoints().AppendEmpty()
		s.putAttributes(sr, dp.Attributes())
		dp.SetStartTimestamp(p.start(sr))
		dp.SetTimestamp(p.ts)
		if p.zeroFirst(sr) {
			dp.SetIntValue(0)
			continue
		}
		dp.SetIntValue(value(sr))
	}
}

// appendHistogram writes the histogram of a series set. The deployments
// set holds both deployments and their durations, so zeroFirst is asked
// again for each series: it only counts, and shown changes after the flush.
func (e *engine) appendHistogram(ms pmetric.MetricSlice, s *seriesSet, description string, p *pointWriter) {
	all := s.sorted()
	if len(all) == 0 {
		return
	}
	m := ms.AppendEmpty()
	name := s.name
	if s == e.deployments {
		name = metricDeploymentDuration
	}
	m.SetName(name)
	m.SetDescription(description)
	m.SetUnit("s")
	if e.cfg.Histograms.Type == HistogramExponential {
		h := m.SetEmptyExponentialHistogram()
		h.SetAggregationTemporality(p.temporality)
		for _, sr := range all {
			dp := h.DataPoints().AppendEmpty()
			s.putAttributes(sr, dp.Attributes())
			dp.SetStartTimestamp(p.start(sr))
			dp.SetTimestamp(p.ts)
			if p.zeroFirst(sr) {
				sr.hist.copyZeroExponential(dp)
				continue
			}
			sr.hist.copyExponential(dp)
		}
		return
	}
	h := m.SetEmptyHistogram()
	h.SetAggregationTemporality(p.temporality)
	for _, sr := range all {
		dp := h.DataPoints().AppendEmpty()
		s.putAttributes(sr, dp.Attributes())
		dp.SetStartTimestamp(p.start(sr))
		dp.SetTimestamp(p.ts)
		if p.zeroFirst(sr) {
			sr.hist.copyZeroExplicit(dp)
			continue
		}
		sr.hist.copyExplicit(dp)
	}
}

// expire drops idle series and restore histories. A gauge series with
// deployments still in flight is kept however old.
func (e *engine) expire(nowNanos int64) {
	if e.cfg.SeriesExpiration <= 0 {
		return
	}
	cutoff := nowNanos - int64(e.cfg.SeriesExpiration)
	for _, s := range []*seriesSet{e.deployments, e.stepDurations, e.stepFailures, e.restore, e.leadTime} {
		s.expire(cutoff, nil)
	}
	e.active.expire(cutoff, func(sr *series) bool { return sr.value != 0 })
	// A failure streak can outlast the series expiry (a weekend), so
	// histories live as long as the longest restore bucket if that is longer.
	keep := e.cfg.SeriesExpiration
	if b := e.cfg.Histograms.TimeToRestoreBuckets; len(b) > 0 && b[len(b)-1] > keep {
		keep = b[len(b)-1]
	}
	historyCutoff := nowNanos - int64(keep)
	for k, h := range e.histories {
		if h.updated < historyCutoff {
			delete(e.histories, k)
		}
	}
}
