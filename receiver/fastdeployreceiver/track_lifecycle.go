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
	mergeDeployment(&d.Info, &ev.Deployment)
	d.adoptTraceparent(ev.Traceparent)
	d.LastEvent = later(d.LastEvent, ev.Time)
	d.Touched = x.now
	if !d.StartSeen {
		// Without a start event the deployment began with the earliest
		// thing heard of it, a step's start included: fastdeploy's calls
		// arrive when a step has finished.
		d.Started = earlier(d.Started, ev.Time)
		if ev.Step != nil && ev.Step.Started != nil {
			d.Started = earlier(d.Started, *ev.Step.Started)
		}
	}

	switch ev.Type {
	case deployevent.TypeDeploymentStarted:
		d.StartSeen = true
		d.Started = firstTime(ev.Deployment.Started, &ev.Time)
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
		mergeStep(&s.Step, ev.Step)
		s.Started = firstTime(ev.Step.Started, &ev.Time)
		s.LastEvent = later(s.LastEvent, ev.Time)
		s.Touched = x.now
		x.stepLog(d, ev, &s.Step, 0)

	case deployevent.TypeStepFinished:
		k := stepKey{deployment: id, name: ev.Step.Name, position: ev.Step.Position}
		var step deployevent.Step
		var started time.Time
		if s := x.step(k); s != nil {
			step, started = s.Step, s.Started
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
		if deployevent.IsFailure(step.State) && !step.Ignored && !end.Before(d.FailedAt) {
			d.FailedStep, d.FailedAt = step.Name, end
		}
		x.emitStep(d, &step, start, end)
		x.stepLog(d, ev, &step, end.Sub(start))

	case deployevent.TypeDeploymentFinished:
		start := firstTime(ev.Deployment.Started, startIf(d))
		if start.IsZero() {
			start = d.Started
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
		x.finished[id] = finishedDeployment{trace: d.Trace, service: d.Info.Service, environment: d.Info.Environment, user: d.Info.User,
			start: start, end: end, fdSteps: d.FdSteps}
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
	if d.StartSeen {
		return &d.Started
	}
	return nil
}
