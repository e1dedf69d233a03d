package fastdeployreceiver

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/valyala/fastjson"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployevent"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/deploytrace"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/jsoncb"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/jsonkeys"
)

// The one gate between decoding and the tracker. Every input, whatever
// its endpoint and format, passes validate before it may touch the
// tracker, and the rules live here once: required fields, known values,
// the time window, id and name lengths (deployevent.MaxIDLength), and
// (applied by both item walkers) keys that appear twice. Reasons name the
// field, never its value.
type input interface {
	validate(now time.Time) *requestError
	// lockKeys names the deployments and Ansible runs the input touches;
	// see the tracker's locking rule.
	lockKeys() []string
	// track applies the input to a transaction.
	track(x *txn)
}

var (
	_ input = (*lifecycleInput)(nil)
	_ input = (*ansibleInput)(nil)
	_ input = (*fastdeployStepInput)(nil)
	_ input = (*fastdeployFinishInput)(nil)
	_ input = (*domainInput)(nil)
)

const traceparentReason = "want 00-<32 hex trace id>-<16 hex span id>-<2 hex flags>"

func required(at itemAt, field string) *requestError {
	return invalid(at.line, at.index, field, "required")
}

// checkLength bounds ids and names that become span identity and
// attribute values.
func checkLength(at itemAt, field, value string) *requestError {
	if len(value) > deployevent.MaxIDLength {
		return invalid(at.line, at.index, field, "longer than 256 bytes")
	}
	return nil
}

func checkWindow(at itemAt, field string, t *time.Time, now time.Time) *requestError {
	if t != nil && !t.IsZero() && outsideWindow(*t, now) {
		return invalid(at.line, at.index, field, windowReason)
	}
	return nil
}

// firstError returns the first refusal of a list of checks.
func firstError(errs ...*requestError) *requestError {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// uniqueKeys refuses an item with a key twice in one object: encoding/json
// would keep the last silently, fastjson the first.
func uniqueKeys(v *fastjson.Value, line, index int) *requestError {
	// Linear in the body: a megabyte of keys must not cost seconds.
	if key := jsonkeys.Duplicate(v); key != "" {
		return malformed(line, index, key, "key appears twice in one object")
	}
	return nil
}

func (in *lifecycleInput) validate(now time.Time) *requestError {
	for i := range in.events {
		ev, at := &in.events[i], in.at[i]
		if err := ev.Validate(); err != nil {
			var fe *deployevent.FieldError
			if errors.As(err, &fe) {
				return invalid(at.line, at.index, fe.Field, fe.Reason)
			}
			return invalid(at.line, at.index, "", err.Error())
		}
		if rerr := firstError(
			checkWindow(at, "time", &ev.Time, now),
			checkWindow(at, "deployment.started", ev.Deployment.Started, now),
			checkWindow(at, "deployment.finished", ev.Deployment.Finished, now),
			checkWindow(at, "deployment.revision_time", ev.Deployment.RevisionTime, now),
			checkWindow(at, "step.started", stepTime(ev.Step, true), now),
			checkWindow(at, "step.finished", stepTime(ev.Step, false), now),
		); rerr != nil {
			return rerr
		}
		if ev.Traceparent != "" {
			if _, _, err := deploytrace.ParseTraceparent(ev.Traceparent); err != nil {
				return invalid(at.line, at.index, "traceparent", traceparentReason)
			}
		}
	}
	return nil
}

func (in *ansibleInput) validate(now time.Time) *requestError {
	t := in.target
	if t.traceparent == "" && t.deployment == "" {
		return &requestError{status: http.StatusBadRequest, reason: "invalid",
			msg: "name the deployment with the " + headerDeployment + " header or a traceparent header", field: headerDeployment, index: -1}
	}
	header := itemAt{index: -1}
	if rerr := firstError(checkLength(header, headerDeployment, t.deployment), checkLength(header, headerStep, t.step),
		checkLength(header, headerService, t.service)); rerr != nil {
		return rerr
	}
	for i := range in.batch.tasks {
		task := &in.batch.tasks[i]
		at := task.at
		switch {
		case task.Missing != "":
			return required(at, task.Missing)
		case task.Position < 0:
			return invalid(at.line, at.index, "position", "must not be negative")
		case !jsoncb.KnownState(task.State):
			return invalid(at.line, at.index, "state", "unknown state, want success, failure, skipped or unreachable")
		}
		if rerr := firstError(checkWindow(at, "start", &task.Start, now), checkWindow(at, "end", &task.End, now)); rerr != nil {
			return rerr
		}
		if task.End.Before(task.Start) {
			return invalid(at.line, at.index, "end", "before start")
		}
	}
	for i := range in.batch.events {
		ev := &in.batch.events[i]
		at := ev.at
		if ev.missing == "hosts" {
			return invalid(at.line, at.index, "hosts", "required on runner events")
		}
		if ev.missing != "" {
			return required(at, ev.missing)
		}
		if rerr := firstError(
			checkWindow(at, "_timestamp", &ev.Time, now),
			checkLength(at, "task.id", ev.TaskID),
			checkLength(at, "play.id", ev.PlayID),
		); rerr != nil {
			return rerr
		}
		if ev.TaskEnd.Before(ev.TaskStart) {
			return invalid(at.line, at.index, "task.duration.end", "before start")
		}
	}
	return nil
}

// compatStepRules are the rules of a fastdeploy step, from /steps/ or a
// domain event.
func compatStepRules(at itemAt, name, state string, deleted bool, started, finished *time.Time, now time.Time) *requestError {
	if name == "" {
		return required(at, "name")
	}
	if rerr := checkLength(at, "name", name); rerr != nil {
		return rerr
	}
	if compatState(state) == "" && state != "pending" && !deleted {
		return invalid(at.line, at.index, "state", "unknown state, want pending, running, success or failure")
	}
	return firstError(checkWindow(at, "started", started, now), checkWindow(at, "finished", finished, now))
}

func (in *fastdeployStepInput) validate(now time.Time) *requestError {
	at := itemAt{line: 1, index: -1}
	if rerr := checkLength(itemAt{index: -1}, "Authorization", in.deployment); rerr != nil {
		return rerr
	}
	s := &in.step
	return compatStepRules(at, s.Name, s.State, false, s.Started, s.Finished, now)
}

// validate checks the one input a finish has, the token's deployment id
// (an integer by fastdeploy's construction, checked all the same).
func (in *fastdeployFinishInput) validate(time.Time) *requestError {
	return checkLength(itemAt{index: -1}, "Authorization", in.deployment)
}

func (in *domainInput) validate(now time.Time) *requestError {
	for i := range in.events {
		ev, at := &in.events[i], in.at[i]
		switch ev.Type {
		case "deployment":
			if ev.ID == "" {
				return required(at, "id")
			}
			if rerr := firstError(
				checkLength(at, "id", ev.ID.String()),
				checkInteger(at, "id", ev.ID),
				checkInteger(at, "service_id", ev.ServiceID),
				checkWindow(at, "started", ev.Started, now),
				checkWindow(at, "finished", ev.Finished, now),
			); rerr != nil {
				return rerr
			}
		case "step":
			if ev.DeploymentID == "" {
				return required(at, "deployment_id")
			}
			if rerr := firstError(checkLength(at, "deployment_id", ev.DeploymentID.String()),
				checkInteger(at, "deployment_id", ev.DeploymentID), checkInteger(at, "id", ev.ID)); rerr != nil {
				return rerr
			}
			if rerr := compatStepRules(at, ev.Name, ev.State, ev.Deleted, ev.Started, ev.Finished, now); rerr != nil {
				return rerr
			}
		case "":
			return required(at, "type")
		default:
			return invalid(at.line, at.index, "type", "unknown type, want deployment or step")
		}
	}
	return nil
}

// Event times outside this window are refused: far-past times are bugs or
// zero values, and future times beyond clock skew would distort durations
// and event-time metrics.
const (
	maxEventAge   = 5 * 365 * 24 * time.Hour
	maxFutureSkew = 24 * time.Hour
	windowReason  = "time outside the accepted window (5 years ago to 24 hours ahead)"
)

func outsideWindow(t, now time.Time) bool {
	return t.Before(now.Add(-maxEventAge)) || t.After(now.Add(maxFutureSkew))
}

func stepTime(s *deployevent.Step, started bool) *time.Time {
	if s == nil {
		return nil
	}
	if started {
		return s.Started
	}
	return s.Finished
}

// checkInteger: fastdeploy's ids are integers; an absent one passes.
func checkInteger(at itemAt, field string, n json.Number) *requestError {
	if n == "" {
		return nil
	}
	if _, err := strconv.ParseInt(string(n), 10, 64); err != nil {
		return invalid(at.line, at.index, field, "must be an integer")
	}
	return nil
}
