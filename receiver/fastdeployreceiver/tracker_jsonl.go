package fastdeployreceiver

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployattr"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/deploytrace"
)

// ansibleRun is what later requests of a streamed ansible.posix.jsonl run
// need from earlier ones: when the run began and which play is current.
type ansibleRun struct {
	start     time.Time
	playID    string
	playName  string
	playStart time.Time
	playFail  bool
}

func (x *txn) ansibleRunState(parent deploytrace.SpanID) ansibleRun {
	if r, ok := x.runs[parent]; ok {
		return r
	}
	r, _ := x.t.runs.get(parent)
	return r
}

// jsonlRun turns ansible.posix.jsonl events into playbook > play > task >
// host spans under parent, and a log record per host result.
func (x *txn) jsonlRun(d *deploymentState, parent deploytrace.SpanID, events []jsonlEvent) {
	run := x.ansibleRunState(parent)
	trace := d.trace
	playbookID := deploytrace.AnsibleSpanID(trace, parent, "playbook")
	ignored := ignoredFailures(events)

	type taskAgg struct {
		ev      *jsonlEvent
		end     time.Time
		failed  bool
		success bool
		parent  deploytrace.SpanID
		order   int
	}
	tasks := map[string]*taskAgg{}
	// Runner events do not say they ran a handler; the start event does.
	handlers := map[string]bool{}
	for _, ev := range events {
		if ev.Handler {
			handlers[ev.TaskID] = true
		}
	}
	var order []string
	currentPlay := func() deploytrace.SpanID {
		if run.playID == "" {
			return playbookID
		}
		return deploytrace.AnsibleSpanID(trace, parent, "play", run.playID)
	}
	closePlay := func(end time.Time) {
		if run.playID == "" {
			return
		}
		span := x.out.newSpan(d.key())
		setIDs(span, trace, currentPlay(), playbookID)
		span.SetName("play " + run.playName)
		setTimes(span, run.playStart, later(end, run.playStart))
		a := span.Attributes()
		a.PutStr(deployattr.SpanKind, deployattr.SpanKindAnsiblePlay)
		putStrIf(a, deployattr.DeploymentID, string(d.info.ID))
		a.PutStr(deployattr.AnsiblePlayName, run.playName)
		setOutcome(span, run.playFail, "a task failed")
		run.playID, run.playFail = "", false
	}

	for i := range events {
		ev := &events[i]
		if run.start.IsZero() || ev.Time.Before(run.start) {
			run.start = earlier(ev.Time, ev.PlayStart)
		}
		switch {
		case ev.Event == "v2_playbook_on_play_start":
			closePlay(ev.PlayStart)
			run.playID, run.playName, run.playStart = ev.PlayID, ev.PlayName, ev.PlayStart
		case ev.Stats != nil:
			closePlay(ev.Time)
			x.emitPlaybookRun(d, parent, playbookID, run.start, ev)
			run = ansibleRun{}
		case len(ev.Hosts) > 0:
			ev.Handler = ev.Handler || handlers[ev.TaskID]
			agg, ok := tasks[ev.TaskID]
			if !ok {
				agg = &taskAgg{ev: ev, parent: currentPlay(), order: len(order)}
				tasks[ev.TaskID] = agg
				order = append(order, ev.TaskID)
			}
			agg.end = later(agg.end, ev.TaskEnd)
			taskID := deploytrace.AnsibleSpanID(trace, parent, "task", ev.TaskID)
			for h := range ev.Hosts {
				state := jsonlRunnerStates[ev.Event]
				isIgnored := state == "failure" && ignored[i]
				fatal := (state == "failure" && !isIgnored) || state == "unreachable"
				agg.failed = agg.failed || fatal
				agg.success = agg.success || state == "success"
				run.playFail = run.playFail || fatal
				x.emitHostResult(d, trace, parent, taskID, ev, &ev.Hosts[h], state, isIgnored)
			}
		}
	}
	for _, id := range order {
		agg := tasks[id]
		span := x.out.newSpan(d.key())
		setIDs(span, trace, deploytrace.AnsibleSpanID(trace, parent, "task", id), agg.parent)
		span.SetName(nonEmpty(agg.ev.TaskName, "ansible task"))
		setTimes(span, agg.ev.TaskStart, later(agg.end, agg.ev.TaskStart))
		a := span.Attributes()
		a.PutStr(deployattr.SpanKind, deployattr.SpanKindAnsibleTask)
		putStrIf(a, deployattr.DeploymentID, string(d.info.ID))
		a.PutStr(deployattr.AnsibleTaskName, agg.ev.TaskName)
		putStrIf(a, deployattr.AnsibleTaskPath, agg.ev.TaskPath)
		switch {
		case agg.failed:
			span.Status().SetCode(ptrace.StatusCodeError)
			span.Status().SetMessage("failed on a host")
		case agg.success:
			span.Status().SetCode(ptrace.StatusCodeOk)
		}
	}
	x.runs[parent] = run
}

// ignoredFailures marks failed results that did not stop their host: the
// host ran more tasks later in the same play, or the run's stats count no
// failure for it. ansible.posix.jsonl does not say ignore_errors itself.
func ignoredFailures(events []jsonlEvent) map[int]bool {
	out := map[int]bool{}
	var stats map[string]hostStats
	for _, ev := range events {
		if ev.Stats != nil {
			stats = ev.Stats
		}
	}
	for i, ev := range events {
		if ev.Event != "v2_runner_on_failed" {
			continue
		}
		for _, h := range ev.Hosts {
			if s, ok := stats[h.Host]; ok && s.Failures == 0 {
				out[i] = true
				continue
			}
		later:
			for _, next := range events[i+1:] {
				if next.Event == "v2_playbook_on_play_start" || next.Stats != nil {
					break
				}
				if jsonlRunnerStates[next.Event] == "" {
					continue
				}
				for _, nh := range next.Hosts {
					if nh.Host == h.Host {
						out[i] = true
						break later
					}
				}
			}
		}
	}
	return out
}

func setOutcome(span ptrace.Span, failed bool, msg string) {
	if failed {
		span.Status().SetCode(ptrace.StatusCodeError)
		span.Status().SetMessage(msg)
		return
	}
	span.Status().SetCode(ptrace.StatusCodeOk)
}

func nonEmpty(s, fallback string) string {
	if s == "" {
		return fallback
	}
	return s
}

func (x *txn) emitHostResult(d *deploymentState, trace deploytrace.TraceID, parent, taskID deploytrace.SpanID, ev *jsonlEvent, h *hostResult, state string, ignored bool) {
	span := x.out.newSpan(d.key())
	id := deploytrace.AnsibleSpanID(trace, parent, "host", ev.TaskID, h.Host)
	setIDs(span, trace, id, taskID)
	name := nonEmpty(ev.TaskName, "ansible task")
	span.SetName(name + " @ " + h.Host)
	setTimes(span, ev.TaskStart, ev.TaskEnd)
	a := span.Attributes()
	a.PutStr(deployattr.SpanKind, deployattr.SpanKindAnsibleHost)
	putStrIf(a, deployattr.DeploymentID, string(d.info.ID))
	a.PutStr(deployattr.AnsibleTaskName, ev.TaskName)
	a.PutStr(deployattr.AnsibleHost, h.Host)
	a.PutStr(deployattr.Status, state)
	if ev.Handler {
		a.PutBool(deployattr.AnsibleHandler, true)
	}
	if h.Changed != nil {
		a.PutBool(deployattr.AnsibleChanged, *h.Changed)
	}
	failed := state == "failure" || state == "unreachable"
	switch {
	case failed:
		span.Status().SetCode(ptrace.StatusCodeError)
		span.Status().SetMessage(nonEmpty(h.Msg, "task "+state))
		a.PutStr(deployattr.ErrorType, state)
		if ignored {
			a.PutBool(deployattr.AnsibleIgnoreErrors, true)
		}
	case state == "success":
		span.Status().SetCode(ptrace.StatusCodeOk)
	}

	lr := x.ansibleLog(d, trace, id, ev.TaskName, h.Host, state, ev.TaskStart, ev.TaskEnd, failed, ignored)
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
	span := x.out.newSpan(d.key())
	setIDs(span, d.trace, id, parent)
	span.SetName("ansible-playbook run")
	setTimes(span, earlierNonZero(start, ev.Time), ev.Time)
	a := span.Attributes()
	a.PutStr(deployattr.SpanKind, deployattr.SpanKindAnsiblePlaybook)
	putStrIf(a, deployattr.DeploymentID, string(d.info.ID))
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

func earlierNonZero(a, b time.Time) time.Time {
	if a.IsZero() {
		return b
	}
	return earlier(a, b)
}
