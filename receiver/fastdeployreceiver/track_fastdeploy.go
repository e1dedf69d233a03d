package fastdeployreceiver

import (
	"strconv"
	"time"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployevent"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/fastdeployapi"
)

func (in *fastdeployStepInput) track(x *txn) {
	s := &in.step
	x.compatStep(in.deployment, "", s.Name, compatState(s.State), s.Started, s.Finished, s.Message)
}

func (in *fastdeployFinishInput) track(x *txn) {
	x.compatFinish(in.deployment, "", in.at, tokenStart(x, in))
}

// tokenStart is the deployment's start told by its token's issue time, for
// a deployment whose start event this collector did not hear (fastdeploy's
// deploy process sends none; the stream's DeploymentStarted is better).
// Every collector reads the same from the same token, so a deployment that
// moved between collectors gets the same root span on either, beginning
// before the steps the first collector took. Ignored when it lies after
// the earliest thing heard of the deployment: the token then does not come
// from fastdeploy's start (another lifetime, or clocks apart).
func tokenStart(x *txn, in *fastdeployFinishInput) *deployevent.Deployment {
	if in.issued.IsZero() {
		return nil
	}
	heard := in.at
	if d, _ := x.deployment(in.deployment, false); d != nil {
		if d.StartSeen {
			return nil
		}
		if !d.Started.IsZero() {
			heard = d.Started
		}
	}
	if in.issued.After(heard) {
		return nil
	}
	started := in.issued
	return &deployevent.Deployment{Started: &started}
}

// track applies posted domain events as the followed stream's: the same
// events make the same spans whichever way they come.
func (in *domainInput) track(x *txn) {
	for i := range in.events {
		ev := in.events[i].toEvent(x.now)
		service := ""
		if ev.Deployment != nil {
			service = in.serviceName(in.events[i].ServiceID.String())
		}
		x.streamEvent(ev, service)
	}
}

// serviceName: the configured fastdeploy_services, else the name looked up
// at decode, else "service-<id>".
func (in *domainInput) serviceName(id string) string {
	if id == "" {
		return ""
	}
	if name := in.services[id]; name != "" {
		return name
	}
	if name := in.names[id]; name != "" {
		return name
	}
	return "service-" + id
}

// toEvent makes a validated posted event the value the stream delivers;
// validate has checked the ids are integers.
func (ev *domainEvent) toEvent(now time.Time) fastdeployapi.Event {
	at := func(t *time.Time) time.Time {
		if t == nil {
			return time.Time{}
		}
		return *t
	}
	num := func(n string) int64 {
		v, _ := strconv.ParseInt(n, 10, 64)
		return v
	}
	if ev.Type == "deployment" {
		return fastdeployapi.Event{Deployment: &fastdeployapi.Deployment{ID: num(ev.ID.String()), ServiceID: num(ev.ServiceID.String()),
			Origin: ev.Origin, User: ev.User, Started: firstTime(ev.Started, &now), Finished: at(ev.Finished), Context: ev.Context}}
	}
	return fastdeployapi.Event{Step: &fastdeployapi.Step{ID: num(ev.ID.String()), DeploymentID: num(ev.DeploymentID.String()), Name: ev.Name,
		State: ev.State, Message: ev.Message, Started: at(ev.Started), Finished: at(ev.Finished), Deleted: ev.Deleted}}
}

// streamInput is one event of fastdeploy's followed stream.
type streamInput struct {
	event   fastdeployapi.Event
	service string
}

func (in *streamInput) validate(now time.Time) *requestError {
	at := itemAt{index: -1}
	if d := in.event.Deployment; d != nil {
		return firstError(checkWindow(at, "started", &d.Started, now), optionalWindow(at, "finished", d.Finished, now))
	}
	if s := in.event.Step; s != nil {
		return firstError(checkLength(at, "name", s.Name), optionalWindow(at, "started", s.Started, now), optionalWindow(at, "finished", s.Finished, now))
	}
	return nil
}

func optionalWindow(at itemAt, field string, t time.Time, now time.Time) *requestError {
	if t.IsZero() {
		return nil
	}
	return checkWindow(at, field, &t, now)
}

func (in *streamInput) lockKeys() []string {
	if d := in.event.Deployment; d != nil {
		return []string{deploymentKey(strconv.FormatInt(d.ID, 10))}
	}
	if s := in.event.Step; s != nil {
		return []string{deploymentKey(strconv.FormatInt(s.DeploymentID, 10))}
	}
	return nil
}

func (in *streamInput) track(x *txn) { x.streamEvent(in.event, in.service) }

// fdStep is one step of a fastdeploy deployment as two sources see it: the
// event stream, which names steps by fastdeploy's step id, and the deploy
// process's /steps/ calls, which name them by name, in order. Its position,
// and with it its span id, is fixed when either source first tells of it,
// so a step heard from both is one span whichever arrives first.
type fdStep struct {
	Name     string    `json:"name"`
	ID       int64     `json:"id,omitempty"` // fastdeploy's step id, 0 until the stream names it
	Position int       `json:"position"`
	Posted   bool      `json:"posted,omitempty"`  // the deploy process's call for it arrived
	Emitted  bool      `json:"emitted,omitempty"` // its span is out
	Started  time.Time `json:"started,omitzero"`  // from the stream, for a step deleted while running
}

// fdStepByID finds the step fastdeploy knows by id, else the first one of
// that name no stream event has claimed yet.
func (d *deploymentState) fdStepByID(id int64, name string) *fdStep {
	if id == 0 {
		// posted events may name no step id: the first of that name not yet
		// emitted
		for i := range d.FdSteps {
			if d.FdSteps[i].Name == name && !d.FdSteps[i].Emitted {
				return &d.FdSteps[i]
			}
		}
		return d.addFdStep(name, 0)
	}
	for i := range d.FdSteps {
		if d.FdSteps[i].ID == id {
			return &d.FdSteps[i]
		}
	}
	for i := range d.FdSteps {
		if d.FdSteps[i].ID == 0 && d.FdSteps[i].Name == name {
			d.FdSteps[i].ID = id
			return &d.FdSteps[i]
		}
	}
	return d.addFdStep(name, id)
}

// fdStepPosted finds the step a /steps/ call reports: the first of that
// name no call has reported yet. fastdeploy matches by name the same way.
func (d *deploymentState) fdStepPosted(name string) *fdStep {
	for i := range d.FdSteps {
		if d.FdSteps[i].Name == name && !d.FdSteps[i].Posted {
			d.FdSteps[i].Posted = true
			return &d.FdSteps[i]
		}
	}
	s := d.addFdStep(name, 0)
	s.Posted = true
	return s
}

func (d *deploymentState) addFdStep(name string, id int64) *fdStep {
	d.FdSteps = append(d.FdSteps, fdStep{Name: name, ID: id, Position: len(d.FdSteps)})
	return &d.FdSteps[len(d.FdSteps)-1]
}

// fdDeployment returns the state a fastdeploy event applies to: the live
// deployment, or for one that finished the detached copy from the finished
// set, whose step registry is written back by keepFinished.
func (x *txn) fdDeployment(id string) (*deploymentState, bool) {
	return x.deployment(id, true)
}

// keepFinished writes a finished deployment's step registry back, so a
// late stream event finds the steps already emitted.
func (x *txn) keepFinished(id string, d *deploymentState) {
	if f, ok := x.finishedDeployment(id); ok {
		f.fdSteps = d.FdSteps
		x.finished[id] = f
	}
}

func withDefaultService(service string, d *deploymentState) string {
	if service == "" {
		service = d.Info.Service
	}
	if service == "" {
		service = "unknown_service"
	}
	return service
}

// compatStep is a step result of the deploy process (POST /steps/).
func (x *txn) compatStep(deployment, service, name, state string, started, finished *time.Time, message string) {
	d, live := x.fdDeployment(deployment)
	service = withDefaultService(service, d)
	var s *fdStep
	if state == "" || state == deployevent.StateRunning {
		// a step reported running is not yet its result: the result posted
		// later is the call that claims it
		s = d.fdStepUnposted(name)
	} else {
		s = d.fdStepPosted(name)
	}
	emitted := s.Emitted
	position := s.Position
	if state != "" && state != deployevent.StateRunning {
		s.Emitted = true
	}
	if !live {
		x.keepFinished(deployment, d)
	}
	if emitted {
		x.duplicates++
		return
	}
	x.fdStepEvent(d, deployment, service, name, position, state, started, finished, message)
}

// fdStepUnposted finds the step of that name no result has been posted
// for, without claiming it.
func (d *deploymentState) fdStepUnposted(name string) *fdStep {
	for i := range d.FdSteps {
		if d.FdSteps[i].Name == name && !d.FdSteps[i].Posted {
			return &d.FdSteps[i]
		}
	}
	return d.addFdStep(name, 0)
}

func (x *txn) fdStepEvent(d *deploymentState, deployment, service, name string, position int, state string, started, finished *time.Time, message string) {
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
// a deployment with a failed step failed. A deployment already finished is
// not finished again: fastdeploy answers a repeated finish 200 and changes
// nothing, and the stream's DeploymentFinished and the deploy process's
// call tell of the same end.
func (x *txn) compatFinish(deployment, service string, at time.Time, info *deployevent.Deployment) {
	if _, done := x.finishedDeployment(deployment); done {
		x.duplicates++
		return
	}
	d, _ := x.fdDeployment(deployment)
	service = withDefaultService(service, d)
	status := deployevent.StatusSuccess
	if d.FailedStep != "" {
		status = deployevent.StatusFailure
	}
	// A deployment never ends before a step it heard of: the deploy
	// host's clock may run ahead of ours.
	at = later(at, d.LastEvent)
	finished := at
	dep := deployevent.Deployment{ID: deployevent.ID(deployment), Service: service, Finished: &finished, Status: status}
	if info != nil {
		dep.User, dep.Origin, dep.Context, dep.Started = info.User, info.Origin, info.Context, info.Started
	}
	x.lifecycle(&deployevent.Event{Type: deployevent.TypeDeploymentFinished, Time: at, Deployment: dep})
}

// streamEvent applies one of fastdeploy's domain events; service is the
// name of a deployment's service, looked up by the caller.
func (x *txn) streamEvent(ev fastdeployapi.Event, service string) {
	switch {
	case ev.Deployment != nil:
		dep := ev.Deployment
		id := strconv.FormatInt(dep.ID, 10)
		started := dep.Started
		info := deployevent.Deployment{ID: deployevent.ID(id), Service: service, User: dep.User, Origin: dep.Origin, Started: &started, Context: dep.Context}
		if dep.Finished.IsZero() {
			x.lifecycle(&deployevent.Event{Type: deployevent.TypeDeploymentStarted, Time: started, Deployment: info})
			return
		}
		x.compatFinish(id, service, dep.Finished, &info)
	case ev.Step != nil:
		x.streamStep(ev.Step)
	}
}

func (x *txn) streamStep(s *fastdeployapi.Step) {
	id := strconv.FormatInt(s.DeploymentID, 10)
	d, live := x.fdDeployment(id)
	step := d.fdStepByID(s.ID, s.Name)
	if !s.Started.IsZero() {
		step.Started = s.Started
	}
	position, emitted := step.Position, step.Emitted
	state := compatState(s.State)
	switch {
	case s.Deleted:
		state = deployevent.StateSkipped
		step.Emitted = true
	case state == deployevent.StatusSuccess || deployevent.IsFailure(state):
		step.Emitted = true
	default:
		// planned (pending) or running: its place is kept, nothing to emit
		if !live {
			x.keepFinished(id, d)
		}
		return
	}
	var started, finished *time.Time
	if !s.Started.IsZero() {
		t := s.Started
		started = &t
	}
	if !s.Finished.IsZero() {
		t := s.Finished
		finished = &t
	}
	if s.Deleted {
		// fastdeploy deletes a step still pending or running when the
		// deployment finishes, and tells so after the finish: the step ends
		// with its deployment, inside its span.
		end := x.now
		if f, ok := x.finishedDeployment(id); ok && !f.end.IsZero() {
			end = f.end
		}
		if started == nil || started.After(end) {
			started = &end
		}
		finished = &end
	}
	if !live {
		x.keepFinished(id, d)
	}
	if emitted {
		x.duplicates++
		return
	}
	x.fdStepEvent(d, id, withDefaultService("", d), s.Name, position, state, started, finished, s.Message)
	if !live {
		x.keepFinished(id, d)
	}
}
