package fastdeployreceiver

import (
	"context"
	"fmt"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployattr"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployevent"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/deploytrace"
)

// tracker holds deployments and steps that started and have not finished,
// the delivery ids already accepted, and a bounded memory of finished
// deployments so that late events still join their trace.
//
// Requests are handled as transactions: a txn reads the tracker, records
// its changes in an overlay and produces output; only when the pipeline has
// accepted that output is the overlay committed. A refused request leaves
// no trace in the tracker, so the client's retry is handled as new.
type tracker struct {
	mu          sync.Mutex
	timeout     time.Duration
	deployments map[string]*deploymentState
	steps       map[stepKey]*stepState
	finished    *boundedSet[string, finishedDeployment]
	closedSteps *boundedSet[stepKey, closedStep]
	runs        *boundedSet[deploytrace.SpanID, ansibleRun] // streamed jsonl runs, by parent span
	delivered   *boundedSet[string, struct{}]
	version     string
	persist     *persister // nil without a storage extension
}

type deploymentState struct {
	info       deployevent.Deployment
	trace      deploytrace.TraceID
	parent     deploytrace.SpanID // upstream parent from a traceparent
	explicit   bool               // trace came from a traceparent
	started    time.Time          // event time
	startSeen  bool
	lastEvent  time.Time // latest event time heard of it
	touched    time.Time // wall clock of the latest news, drives the timeout
	failedStep string    // the failed step that ended last, named in the status message
	failedAt   time.Time
	stepCount  int     // positions handed out to fastdeploy steps, which have none
	playbook   *extent // synthetic step for Ansible tasks posted without a step
}

type extent struct{ start, end time.Time }

func (e *extent) add(start, end time.Time) {
	if e.start.IsZero() || start.Before(e.start) {
		e.start = start
	}
	if end.After(e.end) {
		e.end = end
	}
}

type stepKey struct {
	deployment string
	name       string
	position   int
}

type stepState struct {
	step      deployevent.Step
	started   time.Time
	lastEvent time.Time
	touched   time.Time
}

// finishedDeployment is what late events need of a finished deployment.
type finishedDeployment struct {
	trace       deploytrace.TraceID
	service     string
	environment string
	user        string
}

func newTracker(timeout time.Duration, dedupWindow int, version string) *tracker {
	remember := max(dedupWindow, 1024)
	return &tracker{
		timeout:     timeout,
		deployments: map[string]*deploymentState{},
		steps:       map[stepKey]*stepState{},
		finished:    newBoundedSet[string, finishedDeployment](remember),
		closedSteps: newBoundedSet[stepKey, closedStep](remember),
		runs:        newBoundedSet[deploytrace.SpanID, ansibleRun](remember),
		delivered:   newBoundedSet[string, struct{}](dedupWindow),
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
	t           *tracker
	now         time.Time
	out         *output
	deployments map[string]*deploymentState // nil value: removed
	steps       map[stepKey]*stepState      // nil value: removed
	finished    map[string]finishedDeployment
	closedSteps map[stepKey]closedStep
	runs        map[deploytrace.SpanID]ansibleRun
	delivered   []string
	duplicates  int
	accepted    int
	reply       any // the 200 body, when a path answers in its own shape
}

// begin starts a transaction; the caller holds t.mu until commit or
// discard. Building output is CPU-only and short.
func (t *tracker) begin(now time.Time) *txn {
	t.mu.Lock()
	return &txn{
		t:           t,
		now:         now,
		out:         newOutput(t.version),
		deployments: map[string]*deploymentState{},
		steps:       map[stepKey]*stepState{},
		finished:    map[string]finishedDeployment{},
		closedSteps: map[stepKey]closedStep{},
		runs:        map[deploytrace.SpanID]ansibleRun{},
	}
}

// release ends the build phase; the pipeline is called without the lock.
func (x *txn) release() { x.t.mu.Unlock() }

// commit applies the overlay after the pipeline accepted the output and,
// with storage configured, writes it through before the client is answered.
func (x *txn) commit(ctx context.Context) error {
	t := x.t
	t.mu.Lock()
	defer t.mu.Unlock()
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
		t.finished.put(id, f)
	}
	for k, c := range x.closedSteps {
		t.closedSteps.put(k, c)
	}
	for parent, run := range x.runs {
		t.runs.put(parent, run)
	}
	for _, id := range x.delivered {
		t.delivered.put(id, struct{}{})
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
	p := newPersister(client, dedupWindow)
	if err := p.load(ctx, t); err != nil {
		return err
	}
	t.persist = p
	return nil
}

func (x *txn) isDuplicate(id string) bool {
	if id == "" {
		return false
	}
	if _, ok := x.t.delivered.get(id); ok {
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
		c := *base
		if base.playbook != nil {
			pb := *base.playbook
			c.playbook = &pb
		}
		x.deployments[id] = &c
		return &c, true
	}
	if f, ok := x.finishedDeployment(id); ok {
		return &deploymentState{
			info:  deployevent.Deployment{ID: deployevent.ID(id), Service: f.service, Environment: f.environment, User: f.user},
			trace: f.trace,
		}, false
	}
	if !create {
		return nil, false
	}
	d = &deploymentState{info: deployevent.Deployment{ID: deployevent.ID(id)}, trace: deploytrace.DeploymentTraceID(id)}
	x.deployments[id] = d
	return d, true
}

func (x *txn) finishedDeployment(id string) (finishedDeployment, bool) {
	if f, ok := x.finished[id]; ok {
		return f, true
	}
	return x.t.finished.get(id)
}

type closedStep struct {
	position   int
	ranCommand bool
}

// closedStep finds a recently finished step; position -1 looks it up by
// name alone.
func (x *txn) closedStep(k stepKey) (closedStep, bool) {
	if c, ok := x.closedSteps[k]; ok {
		return c, true
	}
	return x.t.closedSteps.get(k)
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

func mergeDeployment(dst *deployevent.Deployment, src *deployevent.Deployment) {
	setIfEmpty := func(d *string, s string) {
		if s != "" {
			*d = s
		}
	}
	setIfEmpty(&dst.Service, src.Service)
	setIfEmpty(&dst.Environment, src.Environment)
	setIfEmpty(&dst.User, src.User)
	setIfEmpty(&dst.Origin, src.Origin)
	setIfEmpty(&dst.Revision, src.Revision)
	if src.RevisionTime != nil {
		dst.RevisionTime = src.RevisionTime
	}
	setIfEmpty(&dst.Status, src.Status)
	if src.Started != nil {
		dst.Started = src.Started
	}
	if src.Finished != nil {
		dst.Finished = src.Finished
	}
	if len(src.Context) > 0 {
		if dst.Context == nil {
			dst.Context = map[string]any{}
		} else {
			dst.Context = maps.Clone(dst.Context)
		}
		maps.Copy(dst.Context, src.Context)
	}
}

func mergeStep(dst *deployevent.Step, src *deployevent.Step) {
	dst.Name, dst.Position = src.Name, src.Position
	if src.State != "" {
		dst.State = src.State
	}
	if src.Started != nil {
		dst.Started = src.Started
	}
	if src.Finished != nil {
		dst.Finished = src.Finished
	}
	if src.Message != "" {
		dst.Message = src.Message
	}
	if src.Command != "" {
		dst.Command = src.Command
	}
	if src.ExitCode != nil {
		dst.ExitCode = src.ExitCode
	}
	if src.PID != nil {
		dst.PID = src.PID
	}
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

// adoptTraceparent lets an event's traceparent name the trace. The first
// traceparent wins; its span becomes the deployment's parent when it comes
// from upstream (a CI job that triggered the deployment).
func (d *deploymentState) adoptTraceparent(tp string) {
	if tp == "" || d.explicit {
		return
	}
	trace, span, err := deploytrace.ParseTraceparent(tp)
	if err != nil {
		return // validated on decode
	}
	d.trace, d.explicit = trace, true
	// A trace derived from this deployment's id means the client computed
	// our ids itself (the bundled deployer does): its span is one of ours,
	// not an upstream parent.
	if trace != deploytrace.DeploymentTraceID(string(d.info.ID)) && span != deploytrace.DeploymentSpanID(trace, string(d.info.ID)) {
		d.parent = span
	}
}

func (d *deploymentState) key() resourceKey {
	return resourceKey{service: d.info.Service, environment: d.info.Environment}
}

func (d *deploymentState) spanID() deploytrace.SpanID {
	return deploytrace.DeploymentSpanID(d.trace, string(d.info.ID))
}

// lifecycle applies one lifecycle event.
func (x *txn) lifecycle(ev *deployevent.Event) {
	if x.isDuplicate(ev.ID) {
		x.duplicates++
		return
	}
	if ev.ID != "" {
		x.delivered = append(x.delivered, ev.ID)
	}
	x.accepted++
	id := string(ev.Deployment.ID)
	d, live := x.deployment(id, true)
	mergeDeployment(&d.info, &ev.Deployment)
	d.adoptTraceparent(ev.Traceparent)
	d.lastEvent = later(d.lastEvent, ev.Time)
	d.touched = x.now
	if !d.startSeen {
		d.started = earlier(d.started, ev.Time)
	}

	switch ev.Type {
	case deployevent.TypeDeploymentStarted:
		d.startSeen = true
		d.started = firstTime(ev.Deployment.Started, &ev.Time)
		x.deploymentLog(d, ev, d.spanID(), 0)

	case deployevent.TypeStepStarted:
		k := stepKey{deployment: id, name: ev.Step.Name, position: ev.Step.Position}
		s := x.step(k)
		if s == nil {
			s = &stepState{}
			// A start that arrives after its step finished must not reopen it.
			if _, closed := x.closedStep(k); live && !closed {
				x.steps[k] = s
			}
		}
		mergeStep(&s.step, ev.Step)
		s.started = firstTime(ev.Step.Started, &ev.Time)
		s.lastEvent = later(s.lastEvent, ev.Time)
		s.touched = x.now
		x.stepLog(d, ev, &s.step, 0)

	case deployevent.TypeStepFinished:
		k := stepKey{deployment: id, name: ev.Step.Name, position: ev.Step.Position}
		var step deployevent.Step
		var started time.Time
		if s := x.step(k); s != nil {
			step, started = s.step, s.started
		}
		mergeStep(&step, ev.Step)
		start := firstTime(ev.Step.Started, &started, &ev.Time)
		end := firstTime(ev.Step.Finished, &ev.Time)
		if end.Before(start) {
			end = start
		}
		x.steps[k] = nil
		closed := closedStep{position: step.Position, ranCommand: step.Command != ""}
		x.closedSteps[k] = closed
		// Also findable by name alone, for Ansible posts that name no position.
		x.closedSteps[stepKey{deployment: id, name: step.Name, position: -1}] = closed
		// Earlier failures may have been allowed (continue_on_error); the one
		// that ended last is what stopped the deployment.
		if deployevent.IsFailure(step.State) && !end.Before(d.failedAt) {
			d.failedStep, d.failedAt = step.Name, end
		}
		x.emitStep(d, &step, start, end)
		x.stepLog(d, ev, &step, end.Sub(start))

	case deployevent.TypeDeploymentFinished:
		start := firstTime(ev.Deployment.Started, startIf(d))
		if start.IsZero() {
			start = d.started
		}
		end := firstTime(ev.Deployment.Finished, &ev.Time)
		if end.Before(start) {
			end = start
		}
		x.emitDeployment(d, ev.Deployment.Status, start, end)
		x.deploymentLog(d, ev, d.spanID(), end.Sub(start))
		if live {
			x.deployments[id] = nil
		}
		x.finished[id] = finishedDeployment{trace: d.trace, service: d.info.Service, environment: d.info.Environment, user: d.info.User}
	}
	if !live {
		// A late event of a finished deployment must not revive it.
		delete(x.deployments, id)
	}
}

func sortedStrings(s []string) []string {
	slices.Sort(s)
	return s
}

func startIf(d *deploymentState) *time.Time {
	if d.startSeen {
		return &d.started
	}
	return nil
}

func (x *txn) emitDeployment(d *deploymentState, status string, start, end time.Time) {
	span := x.out.newSpan(d.key())
	setIDs(span, d.trace, d.spanID(), d.parent)
	span.SetName("deploy " + d.info.Service)
	span.SetKind(ptrace.SpanKindInternal)
	setTimes(span, start, end)
	a := span.Attributes()
	a.PutStr(deployattr.SpanKind, deployattr.SpanKindDeployment)
	a.PutStr(deployattr.DeploymentID, string(d.info.ID))
	a.PutStr(deployattr.DeploymentName, d.info.Service)
	putStrIf(a, deployattr.DeploymentEnvironment, d.info.Environment)
	a.PutStr(deployattr.DeploymentStatus, deployattr.DeploymentStatusOf(status))
	a.PutStr(deployattr.Status, status)
	a.PutStr(deployattr.PipelineName, d.info.Service)
	a.PutStr(deployattr.PipelineRunID, string(d.info.ID))
	a.PutStr(deployattr.PipelineResult, deployattr.PipelineResultOf(status))
	putStrIf(a, deployattr.VCSRevision, d.info.Revision)
	if d.info.RevisionTime != nil {
		a.PutStr(deployattr.VCSRevisionTime, d.info.RevisionTime.UTC().Format(time.RFC3339Nano))
	}
	putStrIf(a, deployattr.UserName, d.info.User)
	putStrIf(a, deployattr.Origin, d.info.Origin)
	if len(d.info.Context) > 0 {
		putMap(a.PutEmptyMap(deployattr.Context), d.info.Context)
	}
	switch {
	case status == deployevent.StatusTimeout:
		a.PutStr(deployattr.ErrorType, "timeout")
		span.Status().SetCode(ptrace.StatusCodeError)
		span.Status().SetMessage("deployment timed out")
	case deployevent.IsFailure(status):
		msg := "deployment failed"
		errType := "failure"
		if d.failedStep != "" {
			msg = "deployment failed at step " + d.failedStep
			errType = "step_failure"
		}
		a.PutStr(deployattr.ErrorType, errType)
		span.Status().SetCode(ptrace.StatusCodeError)
		span.Status().SetMessage(msg)
	case status == deployevent.StatusSuccess:
		span.Status().SetCode(ptrace.StatusCodeOk)
	}
	if d.playbook != nil {
		x.emitPlaybook(d, d.playbook.start, d.playbook.end)
		d.playbook = nil
	}
}

// stepErrorType gives step failures a low-cardinality error.type.
func stepErrorType(step *deployevent.Step) string {
	switch {
	case step.State == deployevent.StatusTimeout:
		return "timeout"
	case step.ExitCode != nil && *step.ExitCode != 0:
		return "exit_code_" + strconv.Itoa(*step.ExitCode)
	}
	return "failure"
}

func (x *txn) emitStep(d *deploymentState, step *deployevent.Step, start, end time.Time) {
	span := x.out.newSpan(d.key())
	stepID := deploytrace.StepSpanID(d.trace, string(d.info.ID), step.Name, step.Position)
	setIDs(span, d.trace, stepID, d.spanID())
	span.SetName(step.Name)
	span.SetKind(ptrace.SpanKindInternal)
	setTimes(span, start, end)
	a := span.Attributes()
	a.PutStr(deployattr.SpanKind, deployattr.SpanKindStep)
	a.PutStr(deployattr.DeploymentID, string(d.info.ID))
	putStrIf(a, deployattr.DeploymentEnvironment, d.info.Environment)
	a.PutStr(deployattr.TaskName, step.Name)
	a.PutStr(deployattr.TaskRunResult, deployattr.PipelineResultOf(step.State))
	a.PutStr(deployattr.Status, step.State)
	a.PutInt(deployattr.StepPosition, int64(step.Position))
	putStrIf(a, deployattr.StepMessage, step.Message)
	if deployevent.IsFailure(step.State) {
		a.PutStr(deployattr.ErrorType, stepErrorType(step))
		span.Status().SetCode(ptrace.StatusCodeError)
		msg := step.Message
		if msg == "" {
			msg = "step " + step.State
		}
		span.Status().SetMessage(msg)
	} else if step.State == deployevent.StatusSuccess {
		span.Status().SetCode(ptrace.StatusCodeOk)
	}
	if step.Command == "" {
		return
	}
	sub := x.out.newSpan(d.key())
	setIDs(sub, d.trace, deploytrace.SubprocessSpanID(d.trace, string(d.info.ID), step.Name, step.Position), stepID)
	sub.SetName(commandName(step.Command))
	sub.SetKind(ptrace.SpanKindInternal)
	setTimes(sub, start, end)
	sa := sub.Attributes()
	sa.PutStr(deployattr.SpanKind, deployattr.SpanKindSubprocess)
	sa.PutStr(deployattr.DeploymentID, string(d.info.ID))
	sa.PutStr(deployattr.ProcessCommand, step.Command)
	if step.PID != nil {
		sa.PutInt(deployattr.ProcessPID, int64(*step.PID))
	}
	if step.ExitCode != nil {
		sa.PutInt(deployattr.ProcessExitCode, int64(*step.ExitCode))
		if *step.ExitCode != 0 {
			sub.Status().SetCode(ptrace.StatusCodeError)
			sub.Status().SetMessage("exit code " + strconv.Itoa(*step.ExitCode))
		} else {
			sub.Status().SetCode(ptrace.StatusCodeOk)
		}
	}
}

// commandName names a subprocess span after its program, without
// arguments, which may carry secrets and would explode span names.
func commandName(cmd string) string {
	fields := strings.Fields(cmd)
	for _, f := range fields {
		if strings.Contains(f, "=") && !strings.HasPrefix(f, "-") && !strings.Contains(f, "/") {
			continue // leading VAR=value assignments
		}
		return path.Base(f)
	}
	return "subprocess"
}

const playbookStepName = "ansible-playbook"

func (x *txn) emitPlaybook(d *deploymentState, start, end time.Time) {
	span := x.out.newSpan(d.key())
	setIDs(span, d.trace, deploytrace.PlaybookStepSpanID(d.trace, string(d.info.ID)), d.spanID())
	span.SetName(playbookStepName)
	span.SetKind(ptrace.SpanKindInternal)
	setTimes(span, start, end)
	a := span.Attributes()
	a.PutStr(deployattr.SpanKind, deployattr.SpanKindStep)
	a.PutStr(deployattr.DeploymentID, string(d.info.ID))
	putStrIf(a, deployattr.DeploymentEnvironment, d.info.Environment)
	a.PutStr(deployattr.TaskName, playbookStepName)
}

func severity(failed bool) (plog.SeverityNumber, string) {
	if failed {
		return plog.SeverityNumberError, "ERROR"
	}
	return plog.SeverityNumberInfo, "INFO"
}

func (x *txn) newLog(d *deploymentState, ev *deployevent.Event, span deploytrace.SpanID, failed bool) plog.LogRecord {
	lr := x.out.newLogRecord(d.key())
	lr.SetTimestamp(pcommon.NewTimestampFromTime(ev.Time))
	lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(x.now))
	lr.SetTraceID(pcommon.TraceID(d.trace))
	lr.SetSpanID(pcommon.SpanID(span))
	lr.SetEventName("fastdeploy." + ev.Type)
	num, text := severity(failed)
	lr.SetSeverityNumber(num)
	lr.SetSeverityText(text)
	a := lr.Attributes()
	a.PutStr(deployattr.LogEventAction, ev.Type)
	putStrIf(a, "event.id", ev.ID)
	a.PutStr(deployattr.DeploymentID, string(d.info.ID))
	putStrIf(a, deployattr.DeploymentEnvironment, d.info.Environment)
	putStrIf(a, deployattr.UserName, d.info.User)
	return lr
}

func (x *txn) deploymentLog(d *deploymentState, ev *deployevent.Event, span deploytrace.SpanID, took time.Duration) {
	failed := deployevent.IsFailure(ev.Deployment.Status)
	lr := x.newLog(d, ev, span, failed)
	a := lr.Attributes()
	subject := fmt.Sprintf("deployment %s of %s", d.info.ID, d.info.Service)
	if d.info.Environment != "" {
		subject += " to " + d.info.Environment
	}
	if ev.Type == deployevent.TypeDeploymentStarted {
		putStrIf(a, deployattr.VCSRevision, d.info.Revision)
		lr.Body().SetStr(subject + " started")
		return
	}
	a.PutStr(deployattr.Status, ev.Deployment.Status)
	a.PutInt(deployattr.LogDurationMS, took.Milliseconds())
	lr.Body().SetStr(fmt.Sprintf("%s finished: %s after %s", subject, ev.Deployment.Status, took.Round(time.Millisecond)))
}

func (x *txn) stepLog(d *deploymentState, ev *deployevent.Event, step *deployevent.Step, took time.Duration) {
	stepID := deploytrace.StepSpanID(d.trace, string(d.info.ID), step.Name, step.Position)
	state := step.State
	if ev.Type == deployevent.TypeStepStarted {
		state = deployevent.StateRunning
	}
	lr := x.newLog(d, ev, stepID, deployevent.IsFailure(state))
	a := lr.Attributes()
	a.PutStr(deployattr.LogStepName, step.Name)
	a.PutStr(deployattr.LogStepState, state)
	a.PutInt(deployattr.StepPosition, int64(step.Position))
	if ev.Type == deployevent.TypeStepStarted {
		lr.Body().SetStr(fmt.Sprintf("step %d %s of deployment %s started", step.Position, step.Name, d.info.ID))
		return
	}
	a.PutInt(deployattr.LogDurationMS, took.Milliseconds())
	body := fmt.Sprintf("step %d %s of deployment %s finished: %s after %s", step.Position, step.Name, d.info.ID, state, took.Round(time.Millisecond))
	if step.Message != "" {
		body += ": " + step.Message
	}
	lr.Body().SetStr(body)
}
