package fastdeployreceiver

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/collector/extension/xextension/storage"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/boundedset"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployevent"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/deploytrace"
	"github.com/fastdeploy/otelcol-fastdeploy/receiver/fastdeployreceiver/internal/keylock"
)

// tracker holds deployments and steps that started and have not finished,
// the delivery ids already accepted, and a bounded memory of finished
// deployments so that late events still join their trace.
//
// Requests are handled as transactions: a txn reads the tracker, records
// its changes in an overlay and produces output; only when the pipeline has
// accepted that output is the overlay committed. A refused request leaves
// no trace in the tracker, so the client's retry is handled as new.
//
// The locking rule: a request holds the locks of every deployment and
// Ansible run it touches (its keys) from begin until commit or discard,
// so that requests for one deployment apply one after the other even
// while the pipeline consumes; requests for other deployments run in
// parallel. mu guards the maps themselves and is held only while a
// request reads them to build its output and while it commits.
type tracker struct {
	keys        keylock.Locks
	mu          sync.Mutex
	timeout     time.Duration
	deployments map[string]*deploymentState
	steps       map[stepKey]*stepState
	finished    *boundedset.Map[string, finishedDeployment]
	closedSteps *boundedset.Map[stepKey, closedStep]
	runs        *boundedset.Map[deploytrace.SpanID, ansibleRun] // streamed jsonl runs, by parent span
	delivered   *boundedset.Set[string]
	version     string
	persist     *persister // nil without a storage extension
	// loadBalanced: deployments may move between collectors (config
	// load_balanced). Only a deployment this collector owns is closed as
	// timed out; the state a moved deployment left is dropped instead, or
	// two collectors would each send its root span.
	loadBalanced bool
	// since is when this collector started: state restored from storage
	// and not heard of since may have finished on another collector.
	since time.Time
	// limits bound what is held in flight (track_cap.go); zero: none.
	limits inflightLimits
	// reserved (reservedSteps) is the net count of deployments (steps)
	// that transactions built and have not committed or discarded yet:
	// the caps count them.
	reserved, reservedSteps int
}

// owns tells whether this collector closes d when it times out: it
// accepted d's deployment.started, and heard of d since it started.
func (t *tracker) owns(d *deploymentState) bool {
	return !t.loadBalanced || (d != nil && d.StartSeen && !d.Touched.Before(t.since))
}

// deploymentState is an in-flight deployment. It is also its stored form
// (persist.go): every field is exported with a json tag, so a restart
// restores it whole (TestInFlightStructsAreStoredByTag).
type deploymentState struct {
	Info       deployevent.Deployment `json:"info"`
	Trace      deploytrace.TraceID    `json:"trace"`
	Parent     deploytrace.SpanID     `json:"parent,omitzero"`    // upstream parent from a traceparent
	Explicit   bool                   `json:"explicit,omitempty"` // trace came from a traceparent
	Started    time.Time              `json:"started"`            // event time
	StartSeen  bool                   `json:"start_seen,omitempty"`
	LastEvent  time.Time              `json:"last_event"`            // latest event time heard of it
	Touched    time.Time              `json:"touched"`               // wall clock of the latest news, drives the timeout
	FailedStep string                 `json:"failed_step,omitempty"` // the failed step that ended last, named in the status message
	FailedAt   time.Time              `json:"failed_at"`
	StepCount  int                    `json:"step_count,omitempty"`       // positions handed out to fastdeploy steps, which have none
	FdSteps    []fdStep               `json:"fastdeploy_steps,omitempty"` // fastdeploy's steps, by position, as stream and calls told
	Playbook   *extent                `json:"playbook,omitempty"`         // synthetic step for Ansible tasks posted without a step
}

// clone is the copy a transaction changes; the tracker's own stays as it
// was until commit. Info.Context is copied on write by mergeDeployment.
func (d *deploymentState) clone() *deploymentState {
	c := *d
	c.FdSteps = slices.Clone(d.FdSteps)
	if d.Playbook != nil {
		pb := *d.Playbook
		c.Playbook = &pb
	}
	return &c
}

// extent is stored as [start, end] (persist.go).
type extent struct{ Start, End time.Time }

func (e *extent) add(start, end time.Time) {
	if e.Start.IsZero() || start.Before(e.Start) {
		e.Start = start
	}
	if end.After(e.End) {
		e.End = end
	}
}

type stepKey struct {
	deployment string
	name       string
	position   int
}

// stepState is an in-flight step and, like deploymentState, its stored form.
type stepState struct {
	Step      deployevent.Step `json:"step"`
	Started   time.Time        `json:"started"`
	LastEvent time.Time        `json:"last_event"`
	Touched   time.Time        `json:"touched"`
}

// finishedDeployment is what late events need of a finished deployment.
type finishedDeployment struct {
	trace       deploytrace.TraceID
	service     string
	environment string
	user        string
	// the deployment span's extent: fastdeploy deletes unfinished steps
	// after the finish, and they belong inside it
	start, end time.Time
	fdSteps    []fdStep
}

type closedStep struct {
	position   int
	ranCommand bool
}

// ansibleRun is what later requests of a streamed ansible.posix.jsonl run
// need from earlier ones: when the run began and which play is current.
// It is also its stored form, like deploymentState.
type ansibleRun struct {
	Start     time.Time `json:"start"`
	PlayID    string    `json:"play_id,omitempty"`
	PlayName  string    `json:"play_name,omitempty"`
	PlayStart time.Time `json:"play_start"`
	PlayFail  bool      `json:"play_fail,omitempty"`
}

func newTracker(timeout time.Duration, dedupWindow int, version string) *tracker {
	remember := max(dedupWindow, 1024)
	return &tracker{
		timeout:     timeout,
		deployments: map[string]*deploymentState{},
		steps:       map[stepKey]*stepState{},
		finished:    boundedset.New[string, finishedDeployment](remember),
		closedSteps: boundedset.New[stepKey, closedStep](remember),
		runs:        boundedset.New[deploytrace.SpanID, ansibleRun](remember),
		delivered:   boundedset.NewSet[string](dedupWindow),
		version:     version,
	}
}

// inflight counts the spans held open.
func (t *tracker) inflight() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.deployments) + len(t.steps)
}

// txn is one request's view of the tracker and its pending changes.
type txn struct {
	t            *tracker
	keys         []string // held from begin until commit or discard
	now          time.Time
	out          *output
	deployments  map[string]*deploymentState // nil value: removed
	steps        map[stepKey]*stepState      // nil value: removed
	finished     map[string]finishedDeployment
	closedSteps  map[stepKey]closedStep
	runs         map[deploytrace.SpanID]ansibleRun
	delivered    []string
	duplicates   int
	accepted     int
	abandoned    int // deployments whose state a sweep dropped unsent (loadBalanced)
	evicted      int // deployments closed early to stay within max_inflight_deployments
	evictedSteps int // steps closed early to stay within max_inflight_steps
	reserved     int // this txn's share of t.reserved
	stepsHeld    int // this txn's share of t.reservedSteps
}

// Keys name what a request touches, for the locking rule.
func deploymentKey(id string) string { return "deployment " + id }

// runKey names an Ansible run hung under a span given by traceparent,
// which may belong to no deployment we track.
func runKey(parent deploytrace.SpanID) string { return "run " + parent.String() }

// begin starts a transaction on the given keys (see lockKeys); it waits
// for other transactions on them to end, then holds t.mu while the
// request reads the tracker and builds its output, which is CPU-only and
// short.
func (t *tracker) begin(now time.Time, keys []string) *txn {
	t.keys.Lock(keys)
	t.mu.Lock()
	return t.newTxn(now, keys)
}

func (t *tracker) newTxn(now time.Time, keys []string) *txn {
	return &txn{
		t:           t,
		keys:        keys,
		now:         now,
		out:         newOutput(t.version),
		deployments: map[string]*deploymentState{},
		steps:       map[stepKey]*stepState{},
		finished:    map[string]finishedDeployment{},
		closedSteps: map[stepKey]closedStep{},
		runs:        map[deploytrace.SpanID]ansibleRun{},
	}
}

// release ends the build phase; the pipeline is called without t.mu, with
// the keys still held.
func (x *txn) release() { x.t.mu.Unlock() }

// discard ends a transaction whose output the pipeline refused: nothing
// changes, and the keys are free for the client's retry.
func (x *txn) discard() {
	if x.reserved != 0 || x.stepsHeld != 0 {
		x.t.mu.Lock()
		x.t.reserved -= x.reserved
		x.t.reservedSteps -= x.stepsHeld
		x.reserved, x.stepsHeld = 0, 0
		x.t.mu.Unlock()
	}
	x.t.keys.Unlock(x.keys)
	x.keys = nil
}

// commit applies the overlay after the pipeline accepted the output and,
// with storage configured, writes it through before the client is answered.
func (x *txn) commit(ctx context.Context) error {
	t := x.t
	defer x.discard()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.reserved -= x.reserved
	t.reservedSteps -= x.stepsHeld
	x.reserved, x.stepsHeld = 0, 0
	for id, d := range x.deployments {
		if d == nil {
			delete(t.deployments, id)
		} else {
			t.deployments[id] = d
		}
	}
	for k, s := range x.steps {
		if s == nil {
			delete(t.steps, k)
		} else {
			t.steps[k] = s
		}
	}
	for id, f := range x.finished {
		t.finished.Put(id, f)
	}
	for k, c := range x.closedSteps {
		t.closedSteps.Put(k, c)
	}
	for parent, run := range x.runs {
		t.runs.Put(parent, run)
	}
	for _, id := range x.delivered {
		t.delivered.Add(id)
	}
	if t.persist == nil {
		return nil
	}
	changed := len(x.deployments) > 0 || len(x.steps) > 0 || len(x.runs) > 0
	if err := t.persist.save(ctx, t, changed, x.delivered); err != nil {
		return fmt.Errorf("persist state: %w", err)
	}
	return nil
}

// attach restores state from storage and writes through to it from now on.
func (t *tracker) attach(ctx context.Context, client storage.Client, dedupWindow int) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, err := newPersister(client, dedupWindow)
	if err != nil {
		return err
	}
	if err := p.load(ctx, t); err != nil {
		return err
	}
	t.persist = p
	return nil
}

// sweep closes deployments and steps without news for longer than the
// timeout, with status timeout. The returned txn carries their spans; the
// caller commits it once the pipeline accepted them, so nothing is lost if
// the pipeline is refusing data at the time. A deployment a request is
// working on right now is not stale: the sweep skips it rather than wait.
func (t *tracker) sweep(now time.Time) *txn {
	t.mu.Lock()
	stale := map[string]bool{}
	for k, s := range t.steps {
		if now.Sub(s.Touched) >= t.timeout {
			stale[k.deployment] = true
		}
	}
	for id, d := range t.deployments {
		if now.Sub(d.Touched) >= t.timeout {
			stale[id] = true
		}
	}
	excess := t.excess(stale)
	t.mu.Unlock()
	var keys []string
	for _, id := range slices.Sorted(maps.Keys(stale)) {
		if k := deploymentKey(id); t.keys.TryLock(k) {
			keys = append(keys, k)
		} else {
			delete(stale, id)
		}
	}
	var evict []string
	for _, id := range excess {
		if k := deploymentKey(id); t.keys.TryLock(k) {
			keys = append(keys, k)
			evict = append(evict, id)
		}
	}
	t.mu.Lock()
	x := t.newTxn(now, keys)
	x.evict(evict)
	for k, s := range t.steps {
		if !stale[k.deployment] || now.Sub(s.Touched) < t.timeout {
			continue
		}
		if !t.owns(t.deployments[k.deployment]) {
			x.steps[k] = nil // its step.finished went to the collector that owns it
			continue
		}
		d, _ := x.deployment(k.deployment, false)
		if d == nil {
			d = &deploymentState{Info: deployevent.Deployment{ID: deployevent.ID(k.deployment)}, Trace: deploytrace.DeploymentTraceID(k.deployment)}
		}
		step := s.Step
		step.State = deployevent.StatusTimeout
		step.Message = "no step.finished within " + t.timeout.String()
		end := later(s.LastEvent, s.Started.Add(t.timeout))
		x.emitStep(d, &step, s.Started, end)
		x.steps[k] = nil
	}
	for id, base := range t.deployments {
		if !stale[id] || now.Sub(base.Touched) < t.timeout {
			continue
		}
		if !t.owns(base) {
			x.deployments[id] = nil
			x.abandoned++
			continue
		}
		d, _ := x.deployment(id, false)
		end := later(d.LastEvent, d.Started.Add(t.timeout))
		x.emitDeployment(d, deployevent.StatusTimeout, d.Started, end)
		x.deployments[id] = nil
		x.finished[id] = finishedDeployment{trace: d.Trace, service: d.Info.Service, environment: d.Info.Environment, user: d.Info.User,
			start: d.Started, end: end, fdSteps: d.FdSteps}
	}
	x.accepted = x.out.spanCount
	return x
}

func (x *txn) isDuplicate(id string) bool {
	if id == "" {
		return false
	}
	if x.t.delivered.Contains(id) {
		return true
	}
	return slices.Contains(x.delivered, id)
}

// deployment returns the live state of a deployment, creating it when
// create is set. A deployment that already finished is returned as a
// detached state that is never stored, with ok false.
func (x *txn) deployment(id string, create bool) (d *deploymentState, live bool) {
	if d, ok := x.deployments[id]; ok {
		if d != nil {
			return d, true
		}
	} else if base, ok := x.t.deployments[id]; ok {
		c := base.clone()
		x.deployments[id] = c
		return c, true
	}
	if f, ok := x.finishedDeployment(id); ok {
		return &deploymentState{
			Info:    deployevent.Deployment{ID: deployevent.ID(id), Service: f.service, Environment: f.environment, User: f.user},
			Trace:   f.trace,
			FdSteps: slices.Clone(f.fdSteps),
		}, false
	}
	if !create {
		return nil, false
	}
	d = &deploymentState{Info: deployevent.Deployment{ID: deployevent.ID(id)}, Trace: deploytrace.DeploymentTraceID(id)}
	x.deployments[id] = d
	return d, true
}

func (x *txn) finishedDeployment(id string) (finishedDeployment, bool) {
	if f, ok := x.finished[id]; ok {
		return f, true
	}
	return x.t.finished.Get(id)
}

// closedStep finds a recently finished step; position -1 looks it up by
// name alone.
func (x *txn) closedStep(k stepKey) (closedStep, bool) {
	if c, ok := x.closedSteps[k]; ok {
		return c, true
	}
	return x.t.closedSteps.Get(k)
}

func (x *txn) step(k stepKey) *stepState {
	if s, ok := x.steps[k]; ok {
		return s
	}
	if base, ok := x.t.steps[k]; ok {
		c := *base
		x.steps[k] = &c
		return &c
	}
	return nil
}

// openSteps lists the open steps of a deployment, overlay included.
func (x *txn) openSteps(deployment string) []stepKey {
	var keys []stepKey
	for k := range x.t.steps {
		if k.deployment == deployment {
			if s, ok := x.steps[k]; !ok || s != nil {
				keys = append(keys, k)
			}
		}
	}
	for k, s := range x.steps {
		if k.deployment == deployment && s != nil && x.t.steps[k] == nil {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b stepKey) int { return a.position - b.position })
	return keys
}

func (x *txn) ansibleRunState(parent deploytrace.SpanID) ansibleRun {
	if r, ok := x.runs[parent]; ok {
		return r
	}
	r, _ := x.t.runs.Get(parent)
	return r
}

// adoptTraceparent lets an event's traceparent name the trace. The first
// traceparent wins; its span becomes the deployment's parent when it comes
// from upstream (a CI job that triggered the deployment).
func (d *deploymentState) adoptTraceparent(tp string) {
	if tp == "" || d.Explicit {
		return
	}
	trace, span, err := deploytrace.ParseTraceparent(tp)
	if err != nil {
		return // validated on decode
	}
	d.Trace, d.Explicit = trace, true
	// A trace derived from this deployment's id means the client computed
	// our ids itself (the bundled deployer does): its span is one of ours,
	// not an upstream parent.
	if trace != deploytrace.DeploymentTraceID(string(d.Info.ID)) && span != deploytrace.DeploymentSpanID(trace, string(d.Info.ID)) {
		d.Parent = span
	}
}

func (d *deploymentState) key() resourceKey {
	return resourceKey{service: d.Info.Service, environment: d.Info.Environment}
}

func (d *deploymentState) spanID() deploytrace.SpanID {
	return deploytrace.DeploymentSpanID(d.Trace, string(d.Info.ID))
}

func firstTime(ts ...*time.Time) time.Time {
	for _, t := range ts {
		if t != nil && !t.IsZero() {
			return *t
		}
	}
	return time.Time{}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func earlier(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

func earlierNonZero(a, b time.Time) time.Time {
	if a.IsZero() {
		return b
	}
	return earlier(a, b)
}

// lockKeys of each input: the deployments it names, and an Ansible run
// hung under a foreign traceparent.

func (in *lifecycleInput) lockKeys() []string {
	keys := make([]string, 0, len(in.events))
	for i := range in.events {
		keys = append(keys, deploymentKey(string(in.events[i].Deployment.ID)))
	}
	return keylock.Sorted(keys)
}

func (in *ansibleInput) lockKeys() []string {
	var keys []string
	if in.target.deployment != "" {
		keys = append(keys, deploymentKey(in.target.deployment))
	}
	if in.target.traceparent != "" {
		if _, span, err := deploytrace.ParseTraceparent(in.target.traceparent); err == nil {
			keys = append(keys, runKey(span))
		}
	}
	return keylock.Sorted(keys)
}

func (in *fastdeployStepInput) lockKeys() []string { return []string{deploymentKey(in.deployment)} }

func (in *fastdeployFinishInput) lockKeys() []string { return []string{deploymentKey(in.deployment)} }

func (in *domainInput) lockKeys() []string {
	keys := make([]string, 0, len(in.events))
	for i := range in.events {
		id := in.events[i].ID
		if in.events[i].Type == "step" {
			id = in.events[i].DeploymentID
		}
		keys = append(keys, deploymentKey(id.String()))
	}
	return keylock.Sorted(keys)
}
