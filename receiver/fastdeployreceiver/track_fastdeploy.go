package fastdeployreceiver

import (
	"time"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployevent"
)

func (in *fastdeployStepInput) track(x *txn) {
	s := &in.step
	x.compatStep(in.deployment, "", s.Name, compatState(s.State), s.Started, s.Finished, s.Message)
}

func (in *fastdeployFinishInput) track(x *txn) { x.compatFinish(in.deployment, "", in.at) }

func (in *domainInput) track(x *txn) {
	for _, ev := range in.events {
		switch ev.Type {
		case "deployment":
			service := in.services[ev.ServiceID.String()]
			if service == "" && ev.ServiceID != "" {
				service = "service-" + ev.ServiceID.String()
			}
			dep := deployevent.Deployment{ID: deployevent.ID(ev.ID.String()), Service: service, User: ev.User, Origin: ev.Origin, Started: ev.Started, Context: ev.Context}
			if ev.Finished == nil {
				at := firstTime(ev.Started, &x.now)
				x.lifecycle(&deployevent.Event{Type: deployevent.TypeDeploymentStarted, Time: at, Deployment: dep})
			} else {
				x.compatFinish(ev.ID.String(), service, *ev.Finished)
			}
		case "step":
			state := compatState(ev.State)
			if ev.Deleted {
				state = deployevent.StateSkipped
			}
			x.compatStep(ev.DeploymentID.String(), "", ev.Name, state, ev.Started, ev.Finished, ev.Message)
		}
	}
}

// compatStep turns a fastdeploy step into our lifecycle events. fastdeploy
// matches steps by name: the open step of that name, else a new step.
func (x *txn) compatStep(deployment, service, name, state string, started, finished *time.Time, message string) {
	d, _ := x.deployment(deployment, true)
	if service == "" {
		service = d.info.Service
	}
	if service == "" {
		service = "unknown_service"
	}
	position := -1
	for _, k := range x.openSteps(deployment) {
		if k.name == name {
			position = k.position
			break
		}
	}
	if position < 0 {
		if state == "" {
			return // a planned step that has not started: nothing to trace yet
		}
		position = d.stepCount
		d.stepCount++
	}
	dep := deployevent.Deployment{ID: deployevent.ID(deployment), Service: service}
	step := &deployevent.Step{Name: name, Position: position, Started: started, Finished: finished, Message: message}
	switch state {
	case "", deployevent.StateRunning:
		step.State = deployevent.StateRunning
		x.lifecycle(&deployevent.Event{Type: deployevent.TypeStepStarted, Time: firstTime(started, &x.now), Deployment: dep, Step: step})
	default:
		step.State = state
		x.lifecycle(&deployevent.Event{Type: deployevent.TypeStepFinished, Time: firstTime(finished, started, &x.now), Deployment: dep, Step: step})
	}
}

// compatFinish ends a fastdeploy deployment; fastdeploy sends no status, so
// a deployment with a failed step failed.
func (x *txn) compatFinish(deployment, service string, at time.Time) {
	d, _ := x.deployment(deployment, true)
	if service == "" {
		service = d.info.Service
	}
	if service == "" {
		service = "unknown_service"
	}
	status := deployevent.StatusSuccess
	if d.failedStep != "" {
		status = deployevent.StatusFailure
	}
	finished := at
	x.lifecycle(&deployevent.Event{Type: deployevent.TypeDeploymentFinished, Time: at,
		Deployment: deployevent.Deployment{ID: deployevent.ID(deployment), Service: service, Finished: &finished, Status: status}})
}
