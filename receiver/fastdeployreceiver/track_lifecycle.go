package fastdeployreceiver

import (
	"maps"
	"time"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployevent"
)

func (in *lifecycleInput) track(x *txn) {
	for i := range in.events {
		x.lifecycle(&in.events[i])
	}
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
		// Without a start event the deployment began with the earliest
		// thing heard of it, a step's start included: fastdeploy's calls
		// arrive when a step has finished.
		d.started = earlier(d.started, ev.Time)
		if ev.Step != nil && ev.Step.Started != nil {
			d.started = earlier(d.started, *ev.Step.Started)
		}
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
		if deployevent.IsFailure(step.State) && !step.Ignored && !end.Before(d.failedAt) {
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
		x.finished[id] = finishedDeployment{trace: d.trace, service: d.info.Service, environment: d.info.Environment, user: d.info.User,
			start: start, end: end, fdSteps: d.fdSteps}
	}
	if !live {
		// A late event of a finished deployment must not revive it.
		delete(x.deployments, id)
	}
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
	if src.ExitSignal != "" {
		dst.ExitSignal = src.ExitSignal
	}
	if src.Ignored {
		dst.Ignored = true
	}
	if src.StderrTail != "" {
		dst.StderrTail = src.StderrTail
	}
}

func startIf(d *deploymentState) *time.Time {
	if d.startSeen {
		return &d.started
	}
	return nil
}
