// Package fastdeployapi follows a fastdeploy server's event stream: it logs
// in with a user's name and password (POST /token), subscribes to the
// websocket /deployments/ws/{client_id}, re-authenticates on the same socket
// before the token expires, reconnects with backoff, and keeps the service
// names of GET /services/. Events come out as plain values.
package fastdeployapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Deployment is DeploymentStarted or DeploymentFinished (Finished set).
type Deployment struct {
	ID        int64
	ServiceID int64
	Origin    string
	User      string
	Started   time.Time
	// Finished is zero while the deployment runs.
	Finished time.Time
	Context  map[string]any
}

// Step is StepProcessed or StepDeleted. A step's Finished, when fastdeploy
// processed it, is the server's clock at that moment, not the deploy
// process's.
type Step struct {
	ID           int64
	DeploymentID int64
	Name         string
	State        string
	Message      string
	Started      time.Time
	Finished     time.Time
	// Deleted marks a step fastdeploy removed when the deployment finished
	// while it was still pending or running.
	Deleted bool
}

// Service is ServiceUpdated or ServiceDeleted.
type Service struct {
	ID      int64
	Name    string
	Deleted bool
}

// Event is one domain event; exactly one field is set.
type Event struct {
	Deployment *Deployment
	Step       *Step
	Service    *Service
}

// wireEvent is the JSON of fastdeploy's events (domain/events.py).
type wireEvent struct {
	Type         string          `json:"type"`
	ID           json.RawMessage `json:"id"`
	ServiceID    json.RawMessage `json:"service_id"`
	DeploymentID json.RawMessage `json:"deployment_id"`
	Origin       string          `json:"origin"`
	User         string          `json:"user"`
	Name         string          `json:"name"`
	State        string          `json:"state"`
	Message      string          `json:"message"`
	Started      json.RawMessage `json:"started"`
	Finished     json.RawMessage `json:"finished"`
	Context      map[string]any  `json:"context"`
	Deleted      bool            `json:"deleted"`
	Status       string          `json:"status"`
	Detail       string          `json:"detail"`
}

// ErrNotDomainEvent marks a frame that is valid but carries no domain event
// (authentication results, warnings, "Client left").
var ErrNotDomainEvent = errors.New("not a domain event")

// ParseTime reads a time as fastdeploy writes it: ISO 8601, UTC as "Z" or
// "+00:00"; a time without a zone (a naive datetime from its database) is
// taken as UTC, which is what fastdeploy stores.
func ParseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999", "2006-01-02 15:04:05.999999999Z07:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("not an ISO 8601 time: %q", s)
}

func optionalTime(raw json.RawMessage, field string, required bool) (time.Time, error) {
	if len(raw) == 0 || string(raw) == "null" {
		if required {
			return time.Time{}, fmt.Errorf("%s: required", field)
		}
		return time.Time{}, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return time.Time{}, fmt.Errorf("%s: must be a string", field)
	}
	t, err := ParseTime(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %w", field, err)
	}
	return t, nil
}

// intField reads an id, which fastdeploy always writes as a bare integer.
func intField(raw json.RawMessage, field string) (int64, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, fmt.Errorf("%s: required", field)
	}
	v, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: must be an integer", field)
	}
	return v, nil
}

// DecodeEvent decodes one websocket frame. Frames that are not domain events
// return ErrNotDomainEvent; malformed ones an error naming the field.
func DecodeEvent(frame []byte) (Event, error) {
	var w wireEvent
	if err := json.Unmarshal(frame, &w); err != nil {
		return Event{}, fmt.Errorf("event: %w", err)
	}
	switch w.Type {
	case "deployment":
		id, err := intField(w.ID, "id")
		if err != nil {
			return Event{}, err
		}
		svc, err := intField(w.ServiceID, "service_id")
		if err != nil {
			return Event{}, err
		}
		started, err := optionalTime(w.Started, "started", true)
		if err != nil {
			return Event{}, err
		}
		finished, err := optionalTime(w.Finished, "finished", false)
		if err != nil {
			return Event{}, err
		}
		return Event{Deployment: &Deployment{ID: id, ServiceID: svc, Origin: w.Origin, User: w.User, Started: started, Finished: finished, Context: w.Context}}, nil
	case "step":
		id, err := intField(w.ID, "id")
		if err != nil {
			return Event{}, err
		}
		dep, err := intField(w.DeploymentID, "deployment_id")
		if err != nil {
			return Event{}, err
		}
		if w.Name == "" {
			return Event{}, errors.New("name: required")
		}
		started, err := optionalTime(w.Started, "started", false)
		if err != nil {
			return Event{}, err
		}
		finished, err := optionalTime(w.Finished, "finished", false)
		if err != nil {
			return Event{}, err
		}
		return Event{Step: &Step{ID: id, DeploymentID: dep, Name: w.Name, State: w.State, Message: w.Message, Started: started, Finished: finished, Deleted: w.Deleted}}, nil
	case "service":
		id, err := intField(w.ID, "id")
		if err != nil {
			return Event{}, err
		}
		return Event{Service: &Service{ID: id, Name: w.Name, Deleted: w.Deleted}}, nil
	}
	return Event{}, ErrNotDomainEvent
}
