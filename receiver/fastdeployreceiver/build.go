package fastdeployreceiver

import (
	"fmt"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployattr"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployevent"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/deploytrace"
)

// spanAttributes is about the number of attributes of an Ansible task's
// span, the most numerous kind.
const spanAttributes = 12

// startSpan starts every span the receiver builds: its identity in the
// deployment's trace, name, times, fastdeploy.span.kind and the deployment
// id. The caller adds what is particular to its kind.
func (x *txn) startSpan(d *deploymentState, id, parent deploytrace.SpanID, name, kind string, start, end time.Time) (ptrace.Span, pcommon.Map) {
	span := x.out.newSpan(d.key())
	setIDs(span, d.Trace, id, parent)
	span.SetName(name)
	setTimes(span, start, end)
	a := span.Attributes()
	// Room for what most kinds add, so the map grows once, not four times.
	a.EnsureCapacity(spanAttributes)
	a.PutStr(deployattr.SpanKind, kind)
	putStrIf(a, deployattr.DeploymentID, string(d.Info.ID))
	return span, a
}

func (x *txn) emitDeployment(d *deploymentState, status string, start, end time.Time) {
	span, a := x.startSpan(d, d.spanID(), d.Parent, "deploy "+d.Info.Service, deployattr.SpanKindDeployment, start, end)
	// SERVER: the CICD convention's kind for a pipeline run.
	span.SetKind(ptrace.SpanKindServer)
	a.PutStr(deployattr.DeploymentName, d.Info.Service)
	putStrIf(a, deployattr.DeploymentEnvironment, d.Info.Environment)
	a.PutStr(deployattr.DeploymentStatus, deployattr.DeploymentStatusOf(status))
	a.PutStr(deployattr.Status, status)
	a.PutStr(deployattr.PipelineName, d.Info.Service)
	a.PutStr(deployattr.PipelineRunID, string(d.Info.ID))
	a.PutStr(deployattr.PipelineResult, deployattr.PipelineResultOf(status))
	putStrIf(a, deployattr.VCSRevision, d.Info.Revision)
	if d.Info.RevisionTime != nil {
		a.PutStr(deployattr.VCSRevisionTime, d.Info.RevisionTime.UTC().Format(time.RFC3339Nano))
	}
	putStrIf(a, deployattr.UserName, d.Info.User)
	putStrIf(a, deployattr.Origin, d.Info.Origin)
	if len(d.Info.Context) > 0 {
		putMap(a.PutEmptyMap(deployattr.Context), d.Info.Context)
	}
	switch {
	case status == deployevent.StatusTimeout:
		a.PutStr(deployattr.ErrorType, "timeout")
		setError(span, "deployment timed out")
	case deployevent.IsFailure(status):
		msg := "deployment failed"
		errType := "failure"
		if d.FailedStep != "" {
			msg = "deployment failed at step " + d.FailedStep
			errType = "step_failure"
		}
		a.PutStr(deployattr.ErrorType, errType)
		setError(span, msg)
	case status == deployevent.StatusSuccess:
		span.Status().SetCode(ptrace.StatusCodeOk)
	}
	if d.Playbook != nil {
		x.emitPlaybook(d, d.Playbook.Start, d.Playbook.End)
		d.Playbook = nil
	}
}

// stepErrorType gives step failures a low-cardinality error.type.
func stepErrorType(step *deployevent.Step) string {
	switch {
	case step.State == deployevent.StatusTimeout:
		return "timeout"
	case step.ExitCode != nil && *step.ExitCode != 0:
		return "exit_code_" + strconv.Itoa(*step.ExitCode)
	case step.ExitSignal != "":
		return "signal_" + step.ExitSignal
	}
	return "failure"
}

// maxStatusMessage bounds a step span's status description: the message
// and the last line of the stderr tail; the whole tail is on the
// exception event.
const maxStatusMessage = 512

// stepCause is what a failed step's status says: its message and the last
// line of its stderr tail, the line most often naming the cause.
func stepCause(step *deployevent.Step) string {
	msg := step.Message
	if msg == "" {
		msg = "step " + step.State
	}
	if tail := strings.TrimSpace(step.StderrTail); tail != "" {
		last := tail[strings.LastIndexByte(tail, '\n')+1:]
		if !strings.Contains(msg, last) {
			msg += ": " + last
		}
	}
	if len(msg) > maxStatusMessage {
		cut := maxStatusMessage
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut] + "…"
	}
	return msg
}

func (x *txn) emitStep(d *deploymentState, step *deployevent.Step, start, end time.Time) {
	stepID := deploytrace.StepSpanID(d.Trace, string(d.Info.ID), step.Name, step.Position)
	span, a := x.startSpan(d, stepID, d.spanID(), step.Name, deployattr.SpanKindStep, start, end)
	span.SetKind(ptrace.SpanKindInternal)
	putStrIf(a, deployattr.DeploymentEnvironment, d.Info.Environment)
	a.PutStr(deployattr.TaskName, step.Name)
	a.PutStr(deployattr.TaskRunID, string(d.Info.ID)+"/"+strconv.Itoa(step.Position))
	a.PutStr(deployattr.TaskRunResult, deployattr.PipelineResultOf(step.State))
	a.PutStr(deployattr.Status, step.State)
	a.PutInt(deployattr.StepPosition, int64(step.Position))
	putStrIf(a, deployattr.StepMessage, step.Message)
	if step.Ignored {
		a.PutBool(deployattr.StepIgnored, true)
	}
	if deployevent.IsFailure(step.State) {
		errType := stepErrorType(step)
		a.PutStr(deployattr.ErrorType, errType)
		setError(span, stepCause(step))
		if step.StderrTail != "" {
			// The cause where trace UIs show errors: an exception event
			// with the step's stderr tail (redacted by the deployer, and
			// by secret_redaction after this receiver).
			ev := span.Events().AppendEmpty()
			ev.SetName("exception")
			ev.SetTimestamp(pcommon.NewTimestampFromTime(end))
			ev.Attributes().PutStr(deployattr.ExceptionType, errType)
			ev.Attributes().PutStr(deployattr.ExceptionMessage, step.StderrTail)
		}
	} else if step.State == deployevent.StatusSuccess {
		span.Status().SetCode(ptrace.StatusCodeOk)
	}
	if step.Command == "" {
		return
	}
	sub, sa := x.startSpan(d, deploytrace.SubprocessSpanID(d.Trace, string(d.Info.ID), step.Name, step.Position), stepID, commandName(step.Command), deployattr.SpanKindSubprocess, start, end)
	sub.SetKind(ptrace.SpanKindInternal)
	sa.PutStr(deployattr.ProcessCommand, step.Command)
	if step.PID != nil {
		sa.PutInt(deployattr.ProcessPID, int64(*step.PID))
	}
	if step.ExitSignal != "" {
		sa.PutStr(deployattr.ProcessExitSignal, step.ExitSignal)
		setError(sub, "killed by "+step.ExitSignal)
	}
	if step.ExitCode != nil {
		sa.PutInt(deployattr.ProcessExitCode, int64(*step.ExitCode))
		if *step.ExitCode != 0 {
			setError(sub, "exit code "+strconv.Itoa(*step.ExitCode))
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
	span, a := x.startSpan(d, deploytrace.PlaybookStepSpanID(d.Trace, string(d.Info.ID)), d.spanID(), playbookStepName, deployattr.SpanKindStep, start, end)
	span.SetKind(ptrace.SpanKindInternal)
	putStrIf(a, deployattr.DeploymentEnvironment, d.Info.Environment)
	a.PutStr(deployattr.TaskName, playbookStepName)
}

func (x *txn) emitTask(d *deploymentState, parent deploytrace.SpanID, t *ansibleTask) {
	id := deploytrace.TaskSpanID(d.Trace, parent, t.Position, t.Host)
	name := t.Name
	if name == "" {
		name = fmt.Sprintf("ansible task %d", t.Position)
	}
	spanParent := parent
	if t.ItemIndex >= 0 {
		// One item of a loop: a child of the task's span on its host,
		// named by its label as the terminal shows it.
		spanParent = id
		id = deploytrace.AnsibleSpanID(d.Trace, parent, "json_cb-item", strconv.Itoa(t.Position), t.Host, strconv.Itoa(t.ItemIndex))
		label := t.Item
		if label == "" {
			label = strconv.Itoa(t.ItemIndex)
		}
		name += " (item " + label + ")"
	}
	span, a := x.startSpan(d, id, spanParent, name, deployattr.SpanKindAnsibleTask, t.Start, t.End)
	span.SetKind(ptrace.SpanKindInternal)
	failed := t.State == "failure" || t.State == "unreachable"
	label := deployattr.AnsibleTaskLabel(t.Host, t.Play, t.Name)
	hostStatus := deployattr.AnsibleHostStatusOf(t.State, failed && t.IgnoreErrors)
	putAnsibleTask(a, label, t.Host, hostStatus, t.ErrorMessage, t.Result)
	a.PutInt(deployattr.AnsibleTaskPosition, int64(t.Position))
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
	switch {
	case failed:
		msg := t.ErrorMessage
		if msg == "" {
			msg = "task " + t.State
		}
		setError(span, msg)
		a.PutStr(deployattr.ErrorType, t.State)
	case t.State == "success":
		span.Status().SetCode(ptrace.StatusCodeOk)
	}

	lr := x.ansibleLog(d, d.Trace, id, label, t.Host, hostStatus, t.Start, t.End, failed, failed && t.IgnoreErrors)
	body := fmt.Sprintf("ansible task %d %s: %s after %s", t.Position, name, t.State, t.End.Sub(t.Start).Round(time.Millisecond))
	if t.Host != "" {
		body += " on " + t.Host
	}
	if failed && t.ErrorMessage != "" {
		body += ": " + t.ErrorMessage
	}
	lr.Body().SetStr(body)
}

func (x *txn) emitHostResult(d *deploymentState, trace deploytrace.TraceID, parent, taskID deploytrace.SpanID, ev *jsonlEvent, h *hostResult, play, state string, ignored bool) {
	id := deploytrace.AnsibleSpanID(trace, parent, "host", ev.TaskID, h.Host)
	name := nonEmpty(ev.TaskName, "ansible task")
	span, a := x.startSpan(d, id, taskID, name+" @ "+h.Host, deployattr.SpanKindAnsibleHost, ev.TaskStart, ev.TaskEnd)
	label := deployattr.AnsibleTaskLabel(h.Host, play, ev.TaskName)
	hostStatus := deployattr.AnsibleHostStatusOf(state, ignored)
	putAnsibleTask(a, label, h.Host, hostStatus, h.Msg, h.Result)
	if ev.Handler {
		a.PutBool(deployattr.AnsibleHandler, true)
	}
	if h.Changed != nil {
		a.PutBool(deployattr.AnsibleChanged, *h.Changed)
	}
	failed := state == "failure" || state == "unreachable"
	switch {
	case failed:
		setError(span, nonEmpty(h.Msg, "task "+state))
		a.PutStr(deployattr.ErrorType, state)
	case state == "success":
		span.Status().SetCode(ptrace.StatusCodeOk)
	}

	lr := x.ansibleLog(d, trace, id, label, h.Host, hostStatus, ev.TaskStart, ev.TaskEnd, failed, ignored)
	body := fmt.Sprintf("ansible task %s on %s: %s after %s", name, h.Host, state, ev.TaskEnd.Sub(ev.TaskStart).Round(time.Millisecond))
	if ignored {
		body += " (ignored)"
	}
	if failed && h.Msg != "" {
		body += ": " + h.Msg
	}
	lr.Body().SetStr(body)
	// The result goes on the span only; the log tells what happened.
	if h.Result.Len() > 0 {
		h.Result.MoveTo(a.PutEmptyMap(deployattr.AnsibleResult))
	}
}

func (x *txn) emitPlaybookRun(d *deploymentState, parent, id deploytrace.SpanID, start time.Time, ev *jsonlEvent) {
	span, a := x.startSpan(d, id, parent, "ansible-playbook run", deployattr.SpanKindAnsiblePlaybook, earlierNonZero(start, ev.Time), ev.Time)
	stats := a.PutEmptyMap(deployattr.AnsibleStats)
	var failedHosts []string
	for _, host := range slices.Sorted(maps.Keys(ev.Stats)) {
		s := ev.Stats[host]
		m := stats.PutEmptyMap(host)
		m.PutInt("failures", s.Failures)
		m.PutInt("unreachable", s.Unreachable)
		m.PutInt("ignored", s.Ignored)
		m.PutInt("rescued", s.Rescued)
		if s.Failures > 0 || s.Unreachable > 0 {
			failedHosts = append(failedHosts, host)
		}
	}
	setOutcome(span, len(failedHosts) > 0, "failed or unreachable: "+strings.Join(sortedStrings(failedHosts), ", "))
}

func setOutcome(span ptrace.Span, failed bool, msg string) {
	if failed {
		setError(span, msg)
		return
	}
	span.Status().SetCode(ptrace.StatusCodeOk)
}

// setError is where every span the receiver builds gets its error status.
func setError(span ptrace.Span, msg string) {
	span.Status().SetCode(ptrace.StatusCodeError)
	span.Status().SetMessage(msg)
}

func nonEmpty(s, fallback string) string {
	if s == "" {
		return fallback
	}
	return s
}

func sortedStrings(s []string) []string {
	slices.Sort(s)
	return s
}

func severity(failed bool) (plog.SeverityNumber, string) {
	if failed {
		return plog.SeverityNumberError, "ERROR"
	}
	return plog.SeverityNumberInfo, "INFO"
}

// startLog starts every log record the receiver builds: its resource,
// times, trace context, event name (fastdeploy.<action>), severity and
// event.action, with room for size attributes. The caller adds what is
// particular to its kind.
func (x *txn) startLog(d *deploymentState, trace deploytrace.TraceID, span deploytrace.SpanID, action string, at time.Time, num plog.SeverityNumber, text string, size int) (plog.LogRecord, pcommon.Map) {
	lr := x.out.newLogRecord(d.key())
	lr.SetTimestamp(pcommon.NewTimestampFromTime(at))
	lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(x.now))
	lr.SetTraceID(pcommon.TraceID(trace))
	lr.SetSpanID(pcommon.SpanID(span))
	lr.SetEventName("fastdeploy." + action)
	lr.SetSeverityNumber(num)
	lr.SetSeverityText(text)
	a := lr.Attributes()
	a.EnsureCapacity(size)
	a.PutStr(deployattr.LogEventAction, action)
	return lr, a
}

func (x *txn) newLog(d *deploymentState, ev *deployevent.Event, span deploytrace.SpanID, failed bool) plog.LogRecord {
	num, text := severity(failed)
	lr, a := x.startLog(d, d.Trace, span, ev.Type, ev.Time, num, text, 8)
	putStrIf(a, deployattr.LogEventID, ev.ID)
	a.PutStr(deployattr.DeploymentID, string(d.Info.ID))
	putStrIf(a, deployattr.DeploymentEnvironment, d.Info.Environment)
	putStrIf(a, deployattr.UserName, d.Info.User)
	return lr
}

func (x *txn) deploymentLog(d *deploymentState, ev *deployevent.Event, span deploytrace.SpanID, took time.Duration) {
	failed := deployevent.IsFailure(ev.Deployment.Status)
	lr := x.newLog(d, ev, span, failed)
	a := lr.Attributes()
	subject := fmt.Sprintf("deployment %s of %s", d.Info.ID, d.Info.Service)
	if d.Info.Environment != "" {
		subject += " to " + d.Info.Environment
	}
	if ev.Type == deployevent.TypeDeploymentStarted {
		putStrIf(a, deployattr.VCSRevision, d.Info.Revision)
		lr.Body().SetStr(subject + " started")
		return
	}
	a.PutStr(deployattr.Status, ev.Deployment.Status)
	a.PutInt(deployattr.LogDurationMS, took.Milliseconds())
	lr.Body().SetStr(fmt.Sprintf("%s finished: %s after %s", subject, ev.Deployment.Status, took.Round(time.Millisecond)))
}

func (x *txn) stepLog(d *deploymentState, ev *deployevent.Event, step *deployevent.Step, took time.Duration) {
	stepID := deploytrace.StepSpanID(d.Trace, string(d.Info.ID), step.Name, step.Position)
	state := step.State
	if ev.Type == deployevent.TypeStepStarted {
		state = deployevent.StateRunning
	}
	failed := deployevent.IsFailure(state)
	lr := x.newLog(d, ev, stepID, failed)
	if failed && step.Ignored {
		// Carried on past (continue_on_error): a warning, not an error.
		lr.SetSeverityNumber(plog.SeverityNumberWarn)
		lr.SetSeverityText("WARN")
	}
	a := lr.Attributes()
	a.PutStr(deployattr.LogStepName, step.Name)
	a.PutStr(deployattr.LogStepState, state)
	a.PutInt(deployattr.StepPosition, int64(step.Position))
	// Bodies count steps from 1, as the deployer's console does; the
	// position attribute stays 0-based, as in the events.
	if ev.Type == deployevent.TypeStepStarted {
		lr.Body().SetStr(fmt.Sprintf("step %d %s of deployment %s started", step.Position+1, step.Name, d.Info.ID))
		return
	}
	a.PutInt(deployattr.LogDurationMS, took.Milliseconds())
	if step.Ignored {
		a.PutBool(deployattr.StepIgnored, true)
	}
	if step.ExitCode != nil {
		a.PutInt(deployattr.ProcessExitCode, int64(*step.ExitCode))
	}
	putStrIf(a, deployattr.ProcessExitSignal, step.ExitSignal)
	body := fmt.Sprintf("step %d %s of deployment %s finished: %s after %s", step.Position+1, step.Name, d.Info.ID, state, took.Round(time.Millisecond))
	if step.Ignored {
		body += " (ignored: continue_on_error)"
	}
	if failed {
		a.PutStr(deployattr.ErrorType, stepErrorType(step))
		if step.StderrTail != "" {
			a.PutStr(deployattr.ExceptionMessage, step.StderrTail)
		}
		body += ": " + stepCause(step)
	} else if step.Message != "" {
		body += ": " + step.Message
	}
	lr.Body().SetStr(body)
}

// ansibleLog starts the log record of one Ansible result; the caller sets
// the body. An ignored failure is a warning, not an error.
func (x *txn) ansibleLog(d *deploymentState, trace deploytrace.TraceID, span deploytrace.SpanID, label, host, hostStatus string, start, end time.Time, failed, ignored bool) plog.LogRecord {
	num, text := severity(failed)
	if failed && ignored {
		num, text = plog.SeverityNumberWarn, "WARN"
	}
	lr, la := x.startLog(d, trace, span, "ansible.task", end, num, text, 6)
	putStrIf(la, deployattr.DeploymentID, string(d.Info.ID))
	la.PutStr(deployattr.AnsibleTaskName, label)
	putStrIf(la, deployattr.AnsibleHost, host)
	la.PutStr(deployattr.AnsibleHostStatus, hostStatus)
	la.PutInt(deployattr.LogDurationMS, end.Sub(start).Milliseconds())
	return lr
}

func (x *txn) emitPlay(d *deploymentState, id, parent deploytrace.SpanID, run *ansibleRun, end time.Time) {
	span, a := x.startSpan(d, id, parent, "play "+run.PlayName, deployattr.SpanKindAnsiblePlay, run.PlayStart, later(end, run.PlayStart))
	a.PutStr(deployattr.AnsiblePlayName, run.PlayName)
	setOutcome(span, run.PlayFail, "a task failed")
}

func (x *txn) emitJSONLTask(d *deploymentState, id deploytrace.SpanID, t *jsonlTask) {
	span, a := x.startSpan(d, id, t.parent, nonEmpty(t.ev.TaskName, "ansible task"), deployattr.SpanKindAnsibleTask, t.ev.TaskStart, later(t.end, t.ev.TaskStart))
	// No ansible.task.name: the callback's name is one task on one host
	// (the host spans below); the span name is the task's.
	putStrIf(a, deployattr.AnsibleTaskPath, t.ev.TaskPath)
	switch {
	case t.failed:
		setError(span, "failed on a host")
	case t.success:
		span.Status().SetCode(ptrace.StatusCodeOk)
	}
}
