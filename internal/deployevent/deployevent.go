// Package deployevent defines schema v1 of the deployment lifecycle events
// that deployers post to the fastdeploy receiver, and their validation.
// The receiver decodes with it and the bundled deployer encodes with it, so
// the two cannot drift apart.
package deployevent

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"time"
)

// Event types of schema v1.
const (
	TypeDeploymentStarted  = "deployment.started"
	TypeDeploymentFinished = "deployment.finished"
	TypeStepStarted        = "step.started"
	TypeStepFinished       = "step.finished"
)

// Outcomes shared by deployments and steps.
const (
	StatusSuccess   = "success"
	StatusFailure   = "failure"
	StatusCancelled = "cancelled"
	StatusTimeout   = "timeout"
	// Steps only.
	StateRunning = "running"
	StateSkipped = "skipped"
)

// Event is one lifecycle event.
type Event struct {
	Type        string     `json:"type"`
	ID          string     `json:"id,omitempty"`
	Time        time.Time  `json:"time"`
	Deployment  Deployment `json:"deployment"`
	Step        *Step      `json:"step,omitempty"`
	Traceparent string     `json:"traceparent,omitempty"`
}

// Deployment describes the deployment an event belongs to.
type Deployment struct {
	ID          ID     `json:"id"`
	Service     string `json:"service"`
	Environment string `json:"environment,omitempty"`
	User        string `json:"user,omitempty"`
	Origin      string `json:"origin,omitempty"`
	Revision    string `json:"revision,omitempty"`
	// RevisionTime is the commit time of Revision; DORA lead time runs from
	// it to the deployment's end.
	RevisionTime *time.Time     `json:"revision_time,omitempty"`
	Started      *time.Time     `json:"started,omitempty"`
	Finished     *time.Time     `json:"finished,omitempty"`
	Status       string         `json:"status,omitempty"`
	Context      map[string]any `json:"context,omitempty"`
}

// Step describes one step of a deployment.
type Step struct {
	Name     string     `json:"name"`
	Position int        `json:"position"`
	State    string     `json:"state,omitempty"`
	Started  *time.Time `json:"started,omitempty"`
	Finished *time.Time `json:"finished,omitempty"`
	Message  string     `json:"message,omitempty"`
	Command  string     `json:"command,omitempty"`
	ExitCode *int       `json:"exit_code,omitempty"`
	// ExitSignal names the signal that ended the step's process (SIGKILL,
	// SIGTERM, ...); a killed process has no exit code.
	ExitSignal string `json:"exit_signal,omitempty"`
	PID        *int   `json:"pid,omitempty"`
	// Ignored marks a failure the plan carries on past (continue_on_error):
	// it does not fail the deployment and is no step failure to count.
	Ignored bool `json:"ignored,omitempty"`
	// StderrTail holds the last lines of a step's stderr (and the failed
	// Ansible task's message), redacted by the deployer, for steps that did
	// not succeed: the cause, next to the failure.
	StderrTail string `json:"stderr_tail,omitempty"`
}

// MaxStderrTail bounds Step.StderrTail in bytes.
const MaxStderrTail = 4096

// ID is a deployment id. Deployers that number deployments send integers,
// others strings; both mean the same id.
type ID string

// UnmarshalJSON accepts a JSON string or an integer.
func (id *ID) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*id = ID(s)
		return nil
	}
	if _, err := strconv.ParseInt(string(b), 10, 64); err != nil {
		return &json.UnmarshalTypeError{Value: "non-integer", Type: reflect.TypeFor[ID]()}
	}
	*id = ID(b)
	return nil
}

// FieldError names the field that makes an event invalid.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// MaxIDLength bounds ids and names used as span identity and attribute values.
const MaxIDLength = 256

// Validate checks what schema v1 requires of each event type. Reasons
// name the field, never its value, which may be a secret.
func (e *Event) Validate() error {
	switch e.Type {
	case TypeDeploymentStarted, TypeDeploymentFinished, TypeStepStarted, TypeStepFinished:
	case "":
		return &FieldError{Field: "type", Reason: "required"}
	default:
		return &FieldError{Field: "type", Reason: "unknown event type, want deployment.started, deployment.finished, step.started or step.finished"}
	}
	if e.Time.IsZero() {
		return &FieldError{Field: "time", Reason: "required"}
	}
	if e.Deployment.ID == "" {
		return &FieldError{Field: "deployment.id", Reason: "required"}
	}
	if len(e.Deployment.ID) > MaxIDLength {
		return &FieldError{Field: "deployment.id", Reason: "longer than 256 bytes"}
	}
	if e.Deployment.Service == "" {
		return &FieldError{Field: "deployment.service", Reason: "required"}
	}
	// Service and environment become metric labels: the same bound as ids.
	if len(e.Deployment.Service) > MaxIDLength {
		return &FieldError{Field: "deployment.service", Reason: "longer than 256 bytes"}
	}
	if len(e.Deployment.Environment) > MaxIDLength {
		return &FieldError{Field: "deployment.environment", Reason: "longer than 256 bytes"}
	}
	if len(e.ID) > MaxIDLength {
		return &FieldError{Field: "id", Reason: "longer than 256 bytes"}
	}
	switch e.Type {
	case TypeDeploymentFinished:
		switch e.Deployment.Status {
		case StatusSuccess, StatusFailure, StatusCancelled, StatusTimeout:
		case "":
			return &FieldError{Field: "deployment.status", Reason: "required on deployment.finished"}
		default:
			return &FieldError{Field: "deployment.status", Reason: "unknown status, want success, failure, cancelled or timeout"}
		}
	case TypeStepStarted, TypeStepFinished:
		if e.Step == nil {
			return &FieldError{Field: "step", Reason: "required on " + e.Type}
		}
		if e.Step.Name == "" {
			return &FieldError{Field: "step.name", Reason: "required"}
		}
		if len(e.Step.Name) > MaxIDLength {
			return &FieldError{Field: "step.name", Reason: "longer than 256 bytes"}
		}
		if len(e.Step.StderrTail) > MaxStderrTail {
			return &FieldError{Field: "step.stderr_tail", Reason: "longer than 4096 bytes"}
		}
		if len(e.Step.ExitSignal) > 32 {
			return &FieldError{Field: "step.exit_signal", Reason: "longer than 32 bytes"}
		}
		if e.Step.Position < 0 {
			return &FieldError{Field: "step.position", Reason: "must not be negative"}
		}
		if e.Type == TypeStepFinished {
			switch e.Step.State {
			case StatusSuccess, StatusFailure, StatusCancelled, StatusTimeout, StateSkipped:
			case "":
				return &FieldError{Field: "step.state", Reason: "required on step.finished"}
			default:
				return &FieldError{Field: "step.state", Reason: "unknown final state, want success, failure, skipped, cancelled or timeout"}
			}
		}
	}
	return nil
}

// IsFailure reports whether a final status or state counts as a failure.
// Skipped and cancelled work is not a failure.
func IsFailure(status string) bool {
	return status == StatusFailure || status == StatusTimeout
}
