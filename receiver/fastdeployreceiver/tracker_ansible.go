package fastdeployreceiver

import (
	"fmt"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployattr"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployevent"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/deploytrace"
)

// ansibleTarget says where a request's Ansible tasks hang in the trace:
// from the X-Fastdeploy-* headers or from a traceparent.
type ansibleTarget struct {
	deployment   string
	service      string
	step         string
	stepPosition *int
	traceparent  string
}

// ansible adds a request's Ansible spans and log records.
func (x *txn) ansible(batch *ansibleBatch, target ansibleTarget) {
	d := x.ansibleDeployment(target)
	extentOf := batch.extent()
	parent, live := x.ansibleParent(d, target, extentOf)
	switch batch.format {
	case formatJSONCB:
		x.accepted += len(batch.tasks)
		for i := range batch.tasks {
			x.emitTask(d, parent, &batch.tasks[i])
		}
	case formatJSONL:
		x.accepted += len(batch.events)
		x.jsonlRun(d, parent, batch.events)
	}
	if live && target.deployment != "" {
		d.touched = x.now
	}
}

// extent is the time span a batch covers.
func (b *ansibleBatch) extent() extent {
	var e extent
	for _, t := range b.tasks {
		e.add(t.Start, t.End)
	}
	for _, ev := range b.events {
		e.add(earlier(ev.Time, ev.TaskStart), ev.Time)
	}
	return e
}

func (x *txn) ansibleDeployment(target ansibleTarget) *deploymentState {
	if target.deployment != "" {
		if d, _ := x.deployment(target.deployment, false); d != nil {
			if d.info.Service == "" {
				d.info.Service = target.service
			}
			return d
		}
	}
	d := &deploymentState{info: deployevent.Deployment{ID: deployevent.ID(target.deployment), Service: target.service}}
	if target.deployment != "" {
		d.trace = deploytrace.DeploymentTraceID(target.deployment)
	}
	return d
}

// ansibleParent picks the span the tasks hang under: the traceparent's span;
// else the named step's subprocess (or the step, when it ran no command);
// else a synthetic step for the playbook run.
func (x *txn) ansibleParent(d *deploymentState, target ansibleTarget, ext extent) (deploytrace.SpanID, bool) {
	if target.traceparent != "" {
		trace, span, err := deploytrace.ParseTraceparent(target.traceparent)
		if err == nil {
			d.trace = trace
			return span, false
		}
	}
	id := string(d.info.ID)
	if target.step != "" {
		k := stepKey{deployment: id, name: target.step, position: -1}
		if target.stepPosition != nil {
			k.position = *target.stepPosition
		} else {
			for _, open := range x.openSteps(id) {
				if open.name == target.step {
					k.position = open.position
					break
				}
			}
		}
		ranCommand := false
		if s := x.step(k); s != nil {
			ranCommand = s.step.Command != ""
		} else if c, ok := x.closedStep(k); ok {
			k.position, ranCommand = c.position, c.ranCommand
		}
		k.position = max(k.position, 0)
		if ranCommand {
			return deploytrace.SubprocessSpanID(d.trace, id, k.name, k.position), false
		}
		return deploytrace.StepSpanID(d.trace, id, k.name, k.position), false
	}
	live := false
	if x.deployments[id] == d {
		// Held open until the deployment ends.
		if d.playbook == nil {
			d.playbook = &extent{}
		}
		d.playbook.add(ext.start, ext.end)
		live = true
	} else if !ext.start.IsZero() {
		x.emitPlaybook(d, ext.start, ext.end)
	}
	return deploytrace.PlaybookStepSpanID(d.trace, id), live
}

func (x *txn) emitTask(d *deploymentState, parent deploytrace.SpanID, t *ansibleTask) {
	span := x.out.newSpan(d.key())
	id := deploytrace.TaskSpanID(d.trace, parent, t.Position, t.Host)
	name := t.Name
	if name == "" {
		name = fmt.Sprintf("ansible task %d", t.Position)
	}
	if t.ItemIndex >= 0 {
		// One item of a loop: its own span beside the task's result.
		id = deploytrace.AnsibleSpanID(d.trace, parent, "json_cb-item", strconv.Itoa(t.Position), t.Host, strconv.Itoa(t.ItemIndex))
		name += " (item " + strconv.Itoa(t.ItemIndex) + ")"
	}
	setIDs(span, d.trace, id, parent)
	span.SetName(name)
	span.SetKind(ptrace.SpanKindInternal)
	setTimes(span, t.Start, t.End)
	a := span.Attributes()
	a.PutStr(deployattr.SpanKind, deployattr.SpanKindAnsibleTask)
	putStrIf(a, deployattr.DeploymentID, string(d.info.ID))
	a.PutStr(deployattr.AnsibleTaskName, t.Name)
	a.PutInt(deployattr.AnsibleTaskPosition, int64(t.Position))
	a.PutStr(deployattr.Status, t.State)
	putStrIf(a, deployattr.AnsibleHost, t.Host)
	putStrIf(a, deployattr.AnsiblePlayName, t.Play)
	if t.Handler {
		a.PutBool(deployattr.AnsibleHandler, true)
	}
	if t.ItemIndex >= 0 {
		a.PutInt(deployattr.AnsibleItemIndex, int64(t.ItemIndex))
		putStrIf(a, deployattr.AnsibleItem, t.Item)
	}
	if t.Changed != nil {
		a.PutBool(deployattr.AnsibleChanged, *t.Changed)
	}
	if t.Result.Len() > 0 {
		t.Result.MoveTo(a.PutEmptyMap(deployattr.AnsibleResult))
	}
	failed := t.State == "failure" || t.State == "unreachable"
	if failed && t.IgnoreErrors {
		a.PutBool(deployattr.AnsibleIgnoreErrors, true)
	}
	switch {
	case failed:
		span.Status().SetCode(ptrace.StatusCodeError)
		msg := t.ErrorMessage
		if msg == "" {
			msg = "task " + t.State
		}
		span.Status().SetMessage(msg)
		a.PutStr(deployattr.ErrorType, t.State)
	case t.State == "success":
		span.Status().SetCode(ptrace.StatusCodeOk)
	}

	lr := x.ansibleLog(d, d.trace, id, t.Name, t.Host, t.State, t.Start, t.End, failed, failed && t.IgnoreErrors)
	body := fmt.Sprintf("ansible task %d %s: %s after %s", t.Position, name, t.State, t.End.Sub(t.Start).Round(time.Millisecond))
	if t.Host != "" {
		body += " on " + t.Host
	}
	if failed && t.ErrorMessage != "" {
		body += ": " + t.ErrorMessage
	}
	lr.Body().SetStr(body)
}

// sweep closes deployments and steps without news for longer than the
// timeout, with status timeout. The returned txn carries their spans; the
// caller commits it once the pipeline accepted them, so nothing is lost if
// the pipeline is refusing data at the time.
func (t *tracker) sweep(now time.Time) *txn {
	x := t.begin(now)
	for k, s := range t.steps {
		if now.Sub(s.touched) < t.timeout {
			continue
		}
		d, _ := x.deployment(k.deployment, false)
		if d == nil {
			d = &deploymentState{info: deployevent.Deployment{ID: deployevent.ID(k.deployment)}, trace: deploytrace.DeploymentTraceID(k.deployment)}
		}
		step := s.step
		step.State = deployevent.StatusTimeout
		step.Message = "no step.finished within " + t.timeout.String()
		end := later(s.lastEvent, s.started.Add(t.timeout))
		x.emitStep(d, &step, s.started, end)
		x.steps[k] = nil
	}
	for id, base := range t.deployments {
		if now.Sub(base.touched) < t.timeout {
			continue
		}
		d, _ := x.deployment(id, false)
		end := later(d.lastEvent, d.started.Add(t.timeout))
		x.emitDeployment(d, deployevent.StatusTimeout, d.started, end)
		x.deployments[id] = nil
		x.finished[id] = finishedDeployment{trace: d.trace, service: d.info.Service, environment: d.info.Environment, user: d.info.User}
	}
	x.accepted = x.out.spanCount
	return x
}

// ansibleLog starts the log record of one Ansible result; the caller sets
// the body. An ignored failure is a warning, not an error.
func (x *txn) ansibleLog(d *deploymentState, trace deploytrace.TraceID, span deploytrace.SpanID, task, host, state string, start, end time.Time, failed, ignored bool) plog.LogRecord {
	lr := x.out.newLogRecord(d.key())
	lr.SetTimestamp(pcommon.NewTimestampFromTime(end))
	lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(x.now))
	lr.SetTraceID(pcommon.TraceID(trace))
	lr.SetSpanID(pcommon.SpanID(span))
	lr.SetEventName("fastdeploy.ansible.task")
	num, text := severity(failed)
	if failed && ignored {
		num, text = plog.SeverityNumberWarn, "WARN"
	}
	lr.SetSeverityNumber(num)
	lr.SetSeverityText(text)
	la := lr.Attributes()
	la.PutStr(deployattr.LogEventAction, "ansible.task")
	putStrIf(la, deployattr.DeploymentID, string(d.info.ID))
	la.PutStr(deployattr.AnsibleTaskName, task)
	putStrIf(la, deployattr.AnsibleHost, host)
	la.PutStr(deployattr.LogStepState, state)
	la.PutInt(deployattr.LogDurationMS, end.Sub(start).Milliseconds())
	return lr
}
