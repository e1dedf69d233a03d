package deploymetricsconnector

import (
	"slices"
	"sort"
	"strings"

	"github.com/lightstep/go-expohisto/structure"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// overflowAttribute marks the series that takes every label set beyond
// the cap, as the OpenTelemetry SDKs do.
const overflowAttribute = "otel.metric.overflow"

// labelKey holds up to three label values; map lookups with it do not
// allocate, and stored keys are cloned so they do not pin pdata buffers.
type labelKey struct{ a, b, c string }

func (k labelKey) clone() labelKey {
	return labelKey{strings.Clone(k.a), strings.Clone(k.b), strings.Clone(k.c)}
}

func (k labelKey) less(o labelKey) bool {
	if k.a != o.a {
		return k.a < o.a
	}
	if k.b != o.b {
		return k.b < o.b
	}
	return k.c < o.c
}

type exemplar struct {
	value float64
	time  pcommon.Timestamp
	trace pcommon.TraceID
	span  pcommon.SpanID
}

// histogram aggregates durations in seconds, explicit or exponential.
type histogram struct {
	bounds []float64 // shared with every series of the metric
	counts []uint64
	expo   *structure.Histogram[float64]
	count  uint64
	sum    float64
	min    float64
	max    float64
	// exemplars keeps the latest exemplar of each explicit bucket, or the
	// latest few of an exponential histogram. They go out with every flush
	// until a newer one replaces them, so a scrape at any time sees them.
	exemplars []exemplar
	filled    []bool
	nextSlot  int
}

// exponentialExemplarSlots bounds the exemplars of an exponential histogram.
const exponentialExemplarSlots = 4

func newHistogram(bounds []float64, expoSize int32, exemplars bool) *histogram {
	h := &histogram{bounds: bounds}
	slots := len(bounds) + 1
	if expoSize > 0 {
		h.expo = new(structure.Histogram[float64])
		h.expo.Init(structure.NewConfig(structure.WithMaxSize(expoSize)))
		slots = exponentialExemplarSlots
	} else {
		h.counts = make([]uint64, len(bounds)+1)
	}
	if exemplars {
		h.exemplars = make([]exemplar, slots)
		h.filled = make([]bool, slots)
	}
	return h
}

func (h *histogram) observe(v float64, ex *exemplar) {
	if h.count == 0 || v < h.min {
		h.min = v
	}
	if h.count == 0 || v > h.max {
		h.max = v
	}
	h.count++
	h.sum += v
	slot := 0
	if h.expo != nil {
		h.expo.Update(v)
		slot = h.nextSlot
		h.nextSlot = (h.nextSlot + 1) % exponentialExemplarSlots
	} else {
		slot = sort.SearchFloat64s(h.bounds, v)
		h.counts[slot]++
	}
	if ex != nil && h.exemplars != nil {
		ex.value = v
		h.exemplars[slot] = *ex
		h.filled[slot] = true
	}
}

func (h *histogram) appendExemplars(dst pmetric.ExemplarSlice) {
	for i, ok := range h.filled {
		if !ok {
			continue
		}
		ex := h.exemplars[i]
		e := dst.AppendEmpty()
		e.SetDoubleValue(ex.value)
		e.SetTimestamp(ex.time)
		e.SetTraceID(ex.trace)
		e.SetSpanID(ex.span)
	}
}

func (h *histogram) copyExplicit(dp pmetric.HistogramDataPoint) {
	dp.SetCount(h.count)
	dp.SetSum(h.sum)
	if h.count > 0 {
		dp.SetMin(h.min)
		dp.SetMax(h.max)
	}
	dp.ExplicitBounds().FromRaw(h.bounds)
	dp.BucketCounts().FromRaw(h.counts)
	h.appendExemplars(dp.Exemplars())
}

func (h *histogram) copyExponential(dp pmetric.ExponentialHistogramDataPoint) {
	dp.SetCount(h.count)
	dp.SetSum(h.sum)
	if h.count > 0 {
		dp.SetMin(h.min)
		dp.SetMax(h.max)
	}
	dp.SetScale(h.expo.Scale())
	dp.SetZeroCount(h.expo.ZeroCount())
	copyBuckets(h.expo.Positive(), dp.Positive())
	copyBuckets(h.expo.Negative(), dp.Negative())
	h.appendExemplars(dp.Exemplars())
}

// copyZeroExplicit writes the point a new cumulative series starts with:
// nothing counted yet, in the same buckets as the points that follow.
func (h *histogram) copyZeroExplicit(dp pmetric.HistogramDataPoint) {
	dp.ExplicitBounds().FromRaw(h.bounds)
	dp.BucketCounts().FromRaw(make([]uint64, len(h.bounds)+1))
}

// copyZeroExponential is copyZeroExplicit for exponential histograms; the
// scale is the current one, so the next point never needs a finer scale.
func (h *histogram) copyZeroExponential(dp pmetric.ExponentialHistogramDataPoint) {
	dp.SetScale(h.expo.Scale())
}

func copyBuckets(src *structure.Buckets, dst pmetric.ExponentialHistogramDataPointBuckets) {
	dst.SetOffset(src.Offset())
	counts := dst.BucketCounts()
	counts.EnsureCapacity(int(src.Len()))
	for i := uint32(0); i < src.Len(); i++ {
		counts.Append(src.At(i))
	}
}

// series is one label set of one metric: a histogram or a number.
type series struct {
	key     labelKey
	start   pcommon.Timestamp // fixed for the series' life (cumulative)
	updated int64             // wall-clock Unix nanoseconds of the last observation
	hist    *histogram
	value   int64
	// shown is set once a flush has carried the series. A new cumulative
	// series goes out at zero first, so that Prometheus sees its rise from
	// nothing (see "Zero first point" in the README).
	shown bool
	// unexported is set while the series holds observations no flush has
	// carried yet; such a series does not expire.
	unexported bool
}

// seriesSet holds the series of one metric under a cap, with the overflow
// series taking label sets beyond it.
type seriesSet struct {
	name     string
	labels   [3]string // label names; "" ends the list
	max      int
	m        map[labelKey]*series
	overflow *series
	newHist  func() *histogram
	// track and untrack, set with storage, hear of series that changed
	// (created: new) and of series dropped.
	track   func(sr *series, created bool)
	untrack func(sr *series)
}

func newSeriesSet(name string, maxSeries int, newHist func() *histogram, labels ...string) *seriesSet {
	s := &seriesSet{name: name, max: maxSeries, m: make(map[labelKey]*series), newHist: newHist}
	copy(s.labels[:], labels)
	return s
}

// get returns the series for k, creating it or falling back to the
// overflow series; overflowed tells the caller to count that.
func (s *seriesSet) get(k labelKey, now int64, start pcommon.Timestamp) (sr *series, overflowed bool) {
	if sr, ok := s.m[k]; ok {
		sr.updated, sr.unexported = now, true
		s.changed(sr, false)
		return sr, false
	}
	if len(s.m) >= s.max {
		created := s.overflow == nil
		if created {
			s.overflow = s.newSeries(labelKey{}, start)
		}
		s.overflow.updated, s.overflow.unexported = now, true
		s.changed(s.overflow, created)
		return s.overflow, true
	}
	k = k.clone()
	sr = s.newSeries(k, start)
	sr.updated, sr.unexported = now, true
	s.m[k] = sr
	s.changed(sr, true)
	return sr, false
}

func (s *seriesSet) changed(sr *series, created bool) {
	if s.track != nil {
		s.track(sr, created)
	}
}

func (s *seriesSet) newSeries(k labelKey, start pcommon.Timestamp) *series {
	sr := &series{key: k, start: start}
	if s.newHist != nil {
		sr.hist = s.newHist()
	}
	return sr
}

// sorted returns the series in label order, the overflow series last, so
// that output is deterministic.
func (s *seriesSet) sorted() []*series {
	out := make([]*series, 0, len(s.m)+1)
	for _, sr := range s.m {
		out = append(out, sr)
	}
	slices.SortFunc(out, func(x, y *series) int {
		switch {
		case x.key.less(y.key):
			return -1
		case y.key.less(x.key):
			return 1
		}
		return 0
	})
	if s.overflow != nil {
		out = append(out, s.overflow)
	}
	return out
}

func (s *seriesSet) putAttributes(sr *series, dst pcommon.Map) {
	if sr == s.overflow {
		dst.PutBool(overflowAttribute, true)
		return
	}
	values := [3]string{sr.key.a, sr.key.b, sr.key.c}
	dst.EnsureCapacity(3)
	for i, name := range s.labels {
		if name == "" {
			break
		}
		dst.PutStr(name, values[i])
	}
}

// expire drops series idle since before cutoff whose observations have all
// been exported; keep can veto.
func (s *seriesSet) expire(cutoff int64, keep func(*series) bool) {
	idle := func(sr *series) bool {
		return sr.updated < cutoff && !sr.unexported && (keep == nil || !keep(sr))
	}
	for k, sr := range s.m {
		if idle(sr) {
			if s.untrack != nil {
				s.untrack(sr)
			}
			delete(s.m, k)
		}
	}
	if s.overflow != nil && idle(s.overflow) {
		if s.untrack != nil {
			s.untrack(s.overflow)
		}
		s.overflow = nil
	}
}

// exported records that a flush carried every series; with zeroFirst,
// those that went out at zero carry their counts from the next flush on.
func (s *seriesSet) exported(zeroFirst bool) {
	mark := func(sr *series) {
		if sr.shown || !zeroFirst {
			sr.unexported = false
		}
		if !sr.shown {
			sr.shown = true
			s.changed(sr, false)
		}
	}
	for _, sr := range s.m {
		mark(sr)
	}
	if s.overflow != nil {
		mark(s.overflow)
	}
}

func (s *seriesSet) clear() {
	clear(s.m)
	s.overflow = nil
}
