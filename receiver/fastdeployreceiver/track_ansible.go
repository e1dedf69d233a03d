package fastdeployreceiver

import (
	"time"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployevent"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/deploytrace"
)

func (in *ansibleInput) track(x *txn) { x.ansible(in.batch, in.target) }

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
		d.Touched = x.now
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
			if d.Info.Service == "" {
				d.Info.Service = target.service
			}
			return d
		}
	}
	d := &deploymentState{Info: deployevent.Deployment{ID: deployevent.ID(target.deployment), Service: target.service}}
	if target.deployment != "" {
		d.Trace = deploytrace.DeploymentTraceID(target.deployment)
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
			d.Trace = trace
			return span, false
		}
	}
	id := string(d.Info.ID)
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
			ranCommand = s.Step.Command != ""
		} else if c, ok := x.closedStep(k); ok {
			k.position, ranCommand = c.position, c.ranCommand
		}
		k.position = max(k.position, 0)
		if ranCommand {
			return deploytrace.SubprocessSpanID(d.Trace, id, k.name, k.position), false
		}
		return deploytrace.StepSpanID(d.Trace, id, k.name, k.position), false
	}
	live := false
	if x.deployments[id] == d {
		// Held open until the deployment ends.
		if d.Playbook == nil {
			d.Playbook = &extent{}
		}
		d.Playbook.add(ext.Start, ext.End)
		live = true
	} else if !ext.Start.IsZero() {
		x.emitPlaybook(d, ext.Start, ext.End)
	}
	return deploytrace.PlaybookStepSpanID(d.Trace, id), live
}

// jsonlRun turns ansible.posix.jsonl events into playbook > play > task >
// host spans under parent, and a log record per host result.
// jsonlTask is what a run's host results say about their task.
type jsonlTask struct {
	ev      *jsonlEvent // the first result
	end     time.Time
	failed  bool
	success bool
	parent  deploytrace.SpanID
}

func (x *txn) jsonlRun(d *deploymentState, parent deploytrace.SpanID, events []jsonlEvent) {
	run := x.ansibleRunState(parent)
	trace := d.Trace
	playbookID := deploytrace.AnsibleSpanID(trace, parent, "playbook")
	ignored := ignoredFailures(events)

	tasks := map[string]*jsonlTask{}
	// Runner events do not say they ran a handler; the start event does.
	handlers := map[string]bool{}
	for _, ev := range events {
		if ev.Handler {
			handlers[ev.TaskID] = true
		}
	}
	var order []string
	currentPlay := func() deploytrace.SpanID {
		if run.PlayID == "" {
			return playbookID
		}
		return deploytrace.AnsibleSpanID(trace, parent, "play", run.PlayID)
	}
	closePlay := func(end time.Time) {
		if run.PlayID == "" {
			return
		}
		x.emitPlay(d, currentPlay(), playbookID, &run, end)
		run.PlayID, run.PlayFail = "", false
	}

	for i := range events {
		ev := &events[i]
		if run.Start.IsZero() || ev.Time.Before(run.Start) {
			run.Start = earlier(ev.Time, ev.PlayStart)
		}
		switch {
		case ev.Event == "v2_playbook_on_play_start":
			closePlay(ev.PlayStart)
			run.PlayID, run.PlayName, run.PlayStart = ev.PlayID, ev.PlayName, ev.PlayStart
		case ev.Stats != nil:
			closePlay(ev.Time)
			x.emitPlaybookRun(d, parent, playbookID, run.Start, ev)
			run = ansibleRun{}
		case len(ev.Hosts) > 0:
			ev.Handler = ev.Handler || handlers[ev.TaskID]
			agg, ok := tasks[ev.TaskID]
			if !ok {
				agg = &jsonlTask{ev: ev, parent: currentPlay()}
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
				run.PlayFail = run.PlayFail || fatal
				x.emitHostResult(d, trace, parent, taskID, ev, &ev.Hosts[h], run.PlayName, state, isIgnored)
			}
		}
	}
	for _, id := range order {
		x.emitJSONLTask(d, deploytrace.AnsibleSpanID(trace, parent, "task", id), tasks[id])
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
