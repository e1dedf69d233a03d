package deploymetricsconnector

import (
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/boundedset"
)

// spanKey is a span's identity for de-duplication: the connector
// remembers the last deduplication_window of them (internal/boundedset),
// so a span delivered twice within that window counts once.
type spanKey [24]byte

func newSpanKey(trace pcommon.TraceID, span pcommon.SpanID) spanKey {
	var k spanKey
	copy(k[:16], trace[:])
	copy(k[16:], span[:])
	return k
}

// idRing remembers the last `size` deployment ids that finished, so a
// duplicate finish does not lower the gauge twice and a start that arrives
// after its finish does not raise it.
type idRing struct{ set *boundedset.Set[string] }

func newIDRing(size int) *idRing {
	return &idRing{set: boundedset.NewSet[string](size)}
}

func (r *idRing) contains(id string) bool { return r.set.Contains(id) }

func (r *idRing) add(id string) {
	if !r.set.Contains(id) {
		// The id may point into a pdata buffer that is reused.
		r.set.Add(strings.Clone(id))
	}
}

// inflight is a deployment counted in active_deployments.
type inflight struct {
	series  *series
	started time.Time // event time
}

// outcome is one deployment's result in a restore history.
type outcome struct {
	end      time.Time
	failing  bool
	restored bool // a time to restore was observed for this success
	trace    pcommon.TraceID
	span     pcommon.SpanID
}

// restoreHistory keeps the latest outcomes of one service and environment
// in event-time order, so late and out-of-order outcomes land in place.
type restoreHistory struct {
	outcomes []outcome
	// carriedStreak is the first failure of a streak whose start was
	// evicted from outcomes; zero when the evicted tail ended in a success.
	carriedStreak time.Time
	updated       int64
}

// insert places o and returns the recovery it completes, if any: the
// success that now ends a failure streak and the streak's first failure.
// A time to restore already observed is never retracted, so an outcome
// arriving after the success it precedes only adds what was missing.
func (h *restoreHistory) insert(o outcome, limit int) (recovery *outcome, streakStart time.Time) {
	i, _ := slices.BinarySearchFunc(h.outcomes, o.end, func(x outcome, t time.Time) int { return x.end.Compare(t) })
	h.outcomes = slices.Insert(h.outcomes, i, o)
	candidate := i
	if o.failing {
		candidate = i + 1
		if candidate >= len(h.outcomes) {
			candidate = -1
		}
	}
	if candidate >= 0 {
		c := &h.outcomes[candidate]
		if !c.failing && !c.restored {
			if start, ok := h.streakBefore(candidate); ok {
				c.restored = true
				cp := *c
				recovery, streakStart = &cp, start
			}
		}
	}
	for len(h.outcomes) > limit {
		first := h.outcomes[0]
		if first.failing {
			if h.carriedStreak.IsZero() {
				h.carriedStreak = first.end
			}
		} else {
			h.carriedStreak = time.Time{}
		}
		h.outcomes = slices.Delete(h.outcomes, 0, 1)
	}
	return recovery, streakStart
}

// streakBefore returns the first failure of the streak just before index i.
func (h *restoreHistory) streakBefore(i int) (time.Time, bool) {
	j := i - 1
	if j < 0 || !h.outcomes[j].failing {
		return time.Time{}, false
	}
	for j > 0 && h.outcomes[j-1].failing {
		j--
	}
	if j == 0 && !h.carriedStreak.IsZero() {
		return h.carriedStreak, true
	}
	return h.outcomes[j].end, true
}
