package fastdeployreceiver

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployevent"
)

// Compatibility with existing fastdeploy installs: its deploy process posts
// steps to {API_URL}/steps/ and finishes with PUT {API_URL}/deployments/finish/,
// authenticated with the deployment's JWT, and its server publishes domain
// events. Pointing API_URL at the collector is enough.
const (
	pathCompatSteps  = "/steps/"
	pathCompatFinish = "/deployments/finish/"
	pathCompatEvents = "/v1/fastdeploy/events"
)

// compatStep is the body of POST /steps/.
type compatStep struct {
	Name     string     `json:"name"`
	Started  *time.Time `json:"started"`
	Finished *time.Time `json:"finished"`
	State    string     `json:"state"`
	Message  string     `json:"message"`
}

// domainEvent is one fastdeploy domain event: a deployment or a step.
type domainEvent struct {
	Type         string         `json:"type"`
	ID           json.Number    `json:"id"`
	ServiceID    json.Number    `json:"service_id"`
	Origin       string         `json:"origin"`
	User         string         `json:"user"`
	Started      *time.Time     `json:"started"`
	Finished     *time.Time     `json:"finished"`
	Context      map[string]any `json:"context"`
	Name         string         `json:"name"`
	State        string         `json:"state"`
	DeploymentID json.Number    `json:"deployment_id"`
	Message      string         `json:"message"`
	Deleted      bool           `json:"deleted"`
}

func (r *fastdeployReceiver) deploymentFromToken(req *http.Request) (string, *requestError) {
	id, err := verifyDeploymentToken([]byte(r.cfg.FastdeployJWTSecret), req.Header.Get("Authorization"), r.now())
	if err != nil {
		return "", &requestError{status: http.StatusUnauthorized, reason: "unauthorized", msg: err.Error(), field: "Authorization", index: -1}
	}
	return id, nil
}

// compatState maps fastdeploy step states onto ours.
func compatState(s string) string {
	switch s {
	case "success", "failure", "running", "cancelled", "skipped":
		return s
	case "failed":
		return deployevent.StatusFailure
	}
	return ""
}

func (r *fastdeployReceiver) handleCompatStep(_ context.Context, req *http.Request, body []byte) (*txn, *requestError) {
	id, rerr := r.deploymentFromToken(req)
	if rerr != nil {
		return nil, rerr
	}
	var s compatStep
	if err := json.Unmarshal(body, &s); err != nil {
		return nil, typeError(body, err, 1, -1, []string{"started", "finished"})
	}
	if s.Name == "" {
		return nil, invalid(1, -1, "name", "required")
	}
	state := compatState(s.State)
	if state == "" && s.State != "pending" {
		return nil, invalid(1, -1, "state", "unknown state, want pending, running, success or failure")
	}
	x := r.tracker.begin(r.now())
	x.compatStep(id, "", s.Name, state, s.Started, s.Finished, s.Message)
	x.reply = map[string]any{"detail": "step processed"}
	return x, nil
}

func (r *fastdeployReceiver) handleCompatFinish(_ context.Context, req *http.Request, _ []byte) (*txn, *requestError) {
	id, rerr := r.deploymentFromToken(req)
	if rerr != nil {
		return nil, rerr
	}
	x := r.tracker.begin(r.now())
	x.compatFinish(id, "", r.now())
	x.reply = map[string]any{"detail": "Deployment " + id + " finished"}
	return x, nil
}

func (r *fastdeployReceiver) handleCompatEvents(_ context.Context, _ *http.Request, body []byte) (*txn, *requestError) {
	var events []domainEvent
	rerr := jsonItems(body, func(raw []byte, line, index int) *requestError {
		var ev domainEvent
		if err := json.Unmarshal(raw, &ev); err != nil {
			return typeError(raw, err, line, index, []string{"started", "finished"})
		}
		switch ev.Type {
		case "deployment":
			if ev.ID == "" {
				return invalid(line, index, "id", "required")
			}
		case "step":
			if ev.DeploymentID == "" {
				return invalid(line, index, "deployment_id", "required")
			}
			if ev.Name == "" {
				return invalid(line, index, "name", "required")
			}
			if compatState(ev.State) == "" && ev.State != "pending" && !ev.Deleted {
				return invalid(line, index, "state", "unknown state, want pending, running, success or failure")
			}
		case "":
			return invalid(line, index, "type", "required")
		default:
			return invalid(line, index, "type", "unknown type, want deployment or step")
		}
		events = append(events, ev)
		return nil
	})
	if rerr != nil {
		return nil, rerr
	}
	x := r.tracker.begin(r.now())
	for _, ev := range events {
		switch ev.Type {
		case "deployment":
			service := r.cfg.FastdeployServices[ev.ServiceID.String()]
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
	x.reply = map[string]any{"accepted": x.accepted, "duplicates": x.duplicates}
	return x, nil
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

var errNoCompat = errors.New("fastdeploy compatibility is off: set fastdeploy_jwt_secret")

func (r *fastdeployReceiver) compatOff(w http.ResponseWriter, req *http.Request) {
	r.fail(w, req, &requestError{status: http.StatusNotFound, msg: errNoCompat.Error(), index: -1})
}
