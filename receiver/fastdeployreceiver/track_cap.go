package fastdeployreceiver

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployevent"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/deploytrace"
)

// The in-flight caps (max_inflight_deployments, max_inflight_steps,
// max_deployment_context_size).
//
// Eviction rule: when a request would take the in-flight deployments past
// the cap, the deployments idle longest (oldest wall-clock news) are
// closed early, with their open steps, as timed out, in the same
// transaction as the request: their spans go to the pipeline with the
// request's own, and if the pipeline refuses, nothing changes. A new
// deployment is therefore never refused for want of room, so a flood of
// deployment.started cannot lock honest clients out; what it can do is
// close honest deployments early, and only those that have sent nothing
// while max_inflight_deployments newer ones arrived. Their later events
// still join their trace (they are remembered as finished).
//
// A request is refused only when it cannot fit however much is evicted:
// it alone starts more deployments than the cap (413, never fits), or
// every deployment it could evict is in use by another request right now
// (503 with Retry-After). State restored from storage beyond the cap (the
// cap was lowered) is evicted by the same rule by the sweep, at most
// maxEvictionsPerSweep at a time, and a request only makes room for
// itself, so it never pays for the backlog.
//
// Open steps (max_inflight_steps, all deployments together) follow the
// same rule: a request that opens steps beyond the cap closes the steps
// idle longest as timed out. Steps restored beyond a lowered cap are left
// to their timeout.

// inflightLimits bound the tracker's in-flight state; zero: unbounded.
type inflightLimits struct {
	deployments int
	contextSize int
	steps       int
}

// maxEvictionsPerSweep bounds the deployments one sweep closes for being
// over the cap, so that one delivery stays small; the sweep runs again at
// once while more remain.
const maxEvictionsPerSweep = 1000

// excess lists the deployments beyond the cap that a sweep should close,
// oldest idle first, skipping those already stale; the caller holds t.mu.
func (t *tracker) excess(stale map[string]bool) []string {
	if t.limits.deployments <= 0 {
		return nil
	}
	over := len(t.deployments) + t.reserved - len(stale) - t.limits.deployments
	if over <= 0 {
		return nil
	}
	return t.idlest(min(over, maxEvictionsPerSweep), func(id string) bool { return stale[id] })
}

// overCap reports whether the sweep left deployments beyond the cap.
func (t *tracker) overCap() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.limits.deployments > 0 && len(t.deployments)+t.reserved > t.limits.deployments
}

// idlest returns up to n deployment ids, idle longest first, that skip
// does not exclude; the caller holds t.mu.
func (t *tracker) idlest(n int, skip func(string) bool) []string {
	type candidate struct {
		id string
		d  *deploymentState
	}
	all := make([]candidate, 0, len(t.deployments))
	for id, d := range t.deployments {
		if !skip(id) {
			all = append(all, candidate{id, d})
		}
	}
	slices.SortFunc(all, func(a, b candidate) int {
		if c := a.d.Touched.Compare(b.d.Touched); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	ids := make([]string, 0, min(n, len(all)))
	for _, c := range all[:min(n, len(all))] {
		ids = append(ids, c.id)
	}
	return ids
}

// admit enforces the limits on what the transaction built, before its
// output goes to the pipeline: it evicts deployments to make room for the
// ones the request starts, or refuses the request. The caller holds t.mu
// (between track and release).
func (x *txn) admit() *requestError {
	t := x.t
	if t.limits.contextSize > 0 {
		for id, d := range x.deployments {
			if d == nil || len(d.Info.Context) == 0 {
				continue
			}
			if base, ok := t.deployments[id]; ok && sameMap(base.Info.Context, d.Info.Context) {
				continue // unchanged, checked when it was set
			}
			if n := contextSize(d.Info.Context); n > t.limits.contextSize {
				return &requestError{status: http.StatusRequestEntityTooLarge, reason: "too_large", field: "context", index: -1,
					limit: "max_deployment_context_size",
					msg:   fmt.Sprintf("deployment context would hold %d bytes, more than max_deployment_context_size (%d)", n, t.limits.contextSize)}
			}
		}
	}
	if t.limits.deployments <= 0 {
		return x.admitSteps()
	}
	starts := 0
	for id, d := range x.deployments {
		_, had := t.deployments[id]
		switch {
		case d != nil && !had:
			starts++
		case d == nil && had:
			starts--
		}
	}
	if starts > t.limits.deployments {
		return &requestError{status: http.StatusRequestEntityTooLarge, reason: "inflight_limit", index: -1, limit: "max_inflight_deployments",
			msg: fmt.Sprintf("the request starts %d deployments, more than max_inflight_deployments (%d); send fewer at a time", starts, t.limits.deployments)}
	}
	// Only room for this request's own deployments: a backlog beyond the
	// cap (restored from storage) is the sweep's.
	need := min(len(t.deployments)+t.reserved+starts-t.limits.deployments, starts)
	var victims []string
	if need > 0 {
		for _, id := range t.idlest(len(t.deployments), func(id string) bool { _, mine := x.deployments[id]; return mine }) {
			if len(victims) == need {
				break
			}
			if k := deploymentKey(id); t.keys.TryLock(k) {
				x.keys = append(x.keys, k)
				victims = append(victims, id)
			}
		}
		if len(victims) < need {
			return &requestError{status: http.StatusServiceUnavailable, reason: "inflight_limit", index: -1, limit: "max_inflight_deployments",
				retry: true,
				msg: fmt.Sprintf("max_inflight_deployments (%d) reached and the deployments that could be closed to make room are in use by other requests; retry later",
					t.limits.deployments)}
		}
		x.evict(victims)
	}
	x.reserved = starts - len(victims)
	t.reserved += x.reserved
	return x.admitSteps()
}

// admitSteps is admit for open steps (max_inflight_steps), by the same
// rule: the steps idle longest are closed early as timed out to make room
// for the ones the request opens. The caller holds t.mu.
func (x *txn) admitSteps() *requestError {
	t := x.t
	if t.limits.steps <= 0 {
		return nil
	}
	opens := 0
	for k, s := range x.steps {
		_, had := t.steps[k]
		switch {
		case s != nil && !had:
			opens++
		case s == nil && had:
			opens--
		}
	}
	if opens > t.limits.steps {
		return &requestError{status: http.StatusRequestEntityTooLarge, reason: "inflight_limit", index: -1, limit: "max_inflight_steps",
			msg: fmt.Sprintf("the request opens %d steps, more than max_inflight_steps (%d); send fewer at a time", opens, t.limits.steps)}
	}
	need := min(len(t.steps)+t.reservedSteps+opens-t.limits.steps, opens)
	var victims []stepKey
	if need > 0 {
		type candidate struct {
			k stepKey
			s *stepState
		}
		all := make([]candidate, 0, len(t.steps))
		for k, s := range t.steps {
			if _, mine := x.steps[k]; !mine {
				all = append(all, candidate{k, s})
			}
		}
		slices.SortFunc(all, func(a, b candidate) int {
			if c := a.s.Touched.Compare(b.s.Touched); c != 0 {
				return c
			}
			if c := strings.Compare(a.k.deployment, b.k.deployment); c != 0 {
				return c
			}
			if a.k.position != b.k.position {
				return a.k.position - b.k.position
			}
			return strings.Compare(a.k.name, b.k.name)
		})
		for _, c := range all {
			if len(victims) == need {
				break
			}
			// The step's deployment must be ours to change: a key this
			// request holds, or one free now.
			key := deploymentKey(c.k.deployment)
			if !slices.Contains(x.keys, key) {
				if !t.keys.TryLock(key) {
					continue
				}
				x.keys = append(x.keys, key)
			}
			victims = append(victims, c.k)
		}
		if len(victims) < need {
			return &requestError{status: http.StatusServiceUnavailable, reason: "inflight_limit", index: -1, limit: "max_inflight_steps",
				retry: true,
				msg: fmt.Sprintf("max_inflight_steps (%d) reached and the steps that could be closed to make room are in use by other requests; retry later",
					t.limits.steps)}
		}
		for _, k := range victims {
			x.evictStep(k)
		}
	}
	x.stepsHeld = opens - len(victims)
	t.reservedSteps += x.stepsHeld
	return nil
}

// evictStep closes an open step early as timed out; the txn holds its
// deployment's key and t.mu.
func (x *txn) evictStep(k stepKey) {
	t := x.t
	s := t.steps[k]
	x.steps[k] = nil
	if !t.owns(t.deployments[k.deployment]) {
		return
	}
	x.evictedSteps++
	d, _ := x.deployment(k.deployment, false)
	if d == nil {
		d = &deploymentState{Info: deployevent.Deployment{ID: deployevent.ID(k.deployment)}, Trace: deploytrace.DeploymentTraceID(k.deployment)}
	}
	step := s.Step
	step.State = deployevent.StatusTimeout
	step.Message = "closed early: max_inflight_steps reached"
	x.emitStep(d, &step, s.Started, later(s.LastEvent, s.Started))
}

// evict closes deployments (whose keys the txn holds) early, with their
// open steps, as timed out; the caller holds t.mu.
func (x *txn) evict(ids []string) {
	if len(ids) == 0 {
		return
	}
	t := x.t
	evicted := make(map[string]bool, len(ids))
	for _, id := range ids {
		evicted[id] = true
	}
	for k, s := range t.steps {
		if !evicted[k.deployment] {
			continue
		}
		x.steps[k] = nil
		if !t.owns(t.deployments[k.deployment]) {
			continue // its step.finished went to the collector that owns it
		}
		d, _ := x.deployment(k.deployment, false)
		step := s.Step
		step.State = deployevent.StatusTimeout
		step.Message = "closed early: max_inflight_deployments reached"
		x.emitStep(d, &step, s.Started, later(s.LastEvent, s.Started))
	}
	for _, id := range ids {
		if !t.owns(t.deployments[id]) {
			x.deployments[id] = nil
			x.abandoned++
			continue
		}
		d, _ := x.deployment(id, false)
		x.deployments[id] = nil
		end := later(d.LastEvent, d.Started)
		x.emitDeployment(d, deployevent.StatusTimeout, d.Started, end)
		x.finished[id] = finishedDeployment{trace: d.Trace, service: d.Info.Service, environment: d.Info.Environment, user: d.Info.User,
			start: d.Started, end: end, fdSteps: d.FdSteps}
		x.evicted++
	}
}

func sameMap(a, b map[string]any) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

// contextSize is the size of a context as JSON, near enough: what it
// costs in memory and in the state file.
func contextSize(v any) int {
	switch v := v.(type) {
	case map[string]any:
		n := 2
		for k, e := range v {
			n += len(k) + 4 + contextSize(e)
		}
		return n
	case []any:
		n := 2
		for _, e := range v {
			n += 1 + contextSize(e)
		}
		return n
	case string:
		return len(v) + 2
	case json.Number:
		return len(v)
	case nil:
		return 4
	case bool:
		return 5
	default:
		return len(fmt.Sprint(v))
	}
}
