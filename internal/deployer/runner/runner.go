// Package runner executes a deployment plan: each step as a subprocess in
// its own process group, with the step's trace context in TRACEPARENT,
// reporting lifecycle events to the collector, logs and progress.
package runner

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployer/ansible"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployer/delivery"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployer/mask"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployer/plan"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployevent"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/deploytrace"
)

// Sink receives the requests to send to the collector.
type Sink interface {
	Enqueue(*delivery.Request)
}

// Progress shows a deployment to a person. Calls may come from several
// goroutines (a step's stdout and stderr).
type Progress interface {
	StepStarted(position, total int, name string)
	Output(position int, stream, line string)
	StepFinished(r StepResult, total int)
	Finished(r Result)
}

// ActivityReporter is a Progress that also shows what a step is doing
// right now (the running Ansible task and host).
type ActivityReporter interface {
	Activity(position int, text string)
}

// Options configure one run.
type Options struct {
	Plan         *plan.Plan
	PlanPath     string
	Vars         map[string]string
	DeploymentID string
	User         string
	Origin       string
	// Parent is the deployer's own incoming traceparent (from a CI job),
	// empty when none: the deployment then starts its own trace.
	Parent string
	// Context is the deployment's free-form context sent with events.
	Context map[string]any
	// Revision is the deployed VCS revision; empty means the plan's.
	// RevisionTime is its commit time, from which DORA lead time runs.
	Revision     string
	RevisionTime *time.Time

	Sink     Sink
	Logger   *slog.Logger
	Progress Progress
	Masker   *mask.Masker
	// KillGrace is how long a cancelled step gets between SIGTERM and
	// SIGKILL of its process group.
	KillGrace time.Duration
	// AnsiblePlaybook is the ansible-playbook binary.
	AnsiblePlaybook string
	// AnsibleCallback is the stdout callback of ansible steps; empty means
	// the bundled fastdeploy_json_cb plugin.
	AnsibleCallback ansible.Callback
	// Environ is the base environment of steps; nil means os.Environ().
	Environ []string
}

// StepResult is the outcome of one step.
type StepResult struct {
	Position int
	Name     string
	State    string
	Started  time.Time
	Duration time.Duration
	ExitCode *int
	// Signal names the signal that ended the process (SIGKILL, ...).
	Signal  string
	PID     *int
	Command string
	Message string
	// Ignored is set on a failure the plan carries on past
	// (continue_on_error).
	Ignored bool
	// NotRun is set on steps that never started (skipped, or cancelled
	// before their turn).
	NotRun bool
	// StderrTail is the last lines of the step's stderr, masked, kept for
	// steps that did not succeed.
	StderrTail []string
}

// Failed reports whether the step failed the deployment (an ignored
// failure does not).
func (s StepResult) Failed() bool { return deployevent.IsFailure(s.State) && !s.Ignored }

// Result is the outcome of a deployment.
type Result struct {
	DeploymentID string
	TraceID      string
	Status       string
	Started      time.Time
	Finished     time.Time
	Steps        []StepResult
}

// FailedStep is the step that ended the deployment: the first that failed
// it, or the one cancelled while running; nil when none did.
func (r Result) FailedStep() *StepResult {
	for i := range r.Steps {
		s := &r.Steps[i]
		if s.Failed() || (s.State == deployevent.StatusCancelled && !s.NotRun) {
			return s
		}
	}
	return nil
}

// Run executes the plan. Cancelling ctx (Ctrl-C) stops the running step's
// process group and marks it and the deployment cancelled; the plan's
// timeout marks them timed out. Steps after a failure are skipped.
func Run(ctx context.Context, o Options) Result {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.KillGrace <= 0 {
		o.KillGrace = 5 * time.Second
	}
	if o.AnsiblePlaybook == "" {
		o.AnsiblePlaybook = "ansible-playbook"
	}
	if o.AnsibleCallback == "" {
		o.AnsibleCallback = ansible.CallbackBundled
	}
	if o.Environ == nil {
		o.Environ = os.Environ()
	}
	if o.Revision == "" {
		o.Revision = o.Plan.Revision
	}
	r := &run{o: o, p: o.Plan}
	if o.Parent != "" {
		if _, _, err := deploytrace.ParseTraceparent(o.Parent); err != nil {
			o.Logger.Warn("ignoring invalid TRACEPARENT", "error.message", err.Error())
			r.o.Parent = ""
		}
	}
	r.trace, r.depSpan = TraceOf(o.DeploymentID, r.o.Parent)
	r.log = o.Logger.With("deployment.id", o.DeploymentID, "trace.id", r.trace.String())
	if o.RevisionTime != nil {
		r.revisionTime = o.RevisionTime
	}
	return r.run(ctx)
}

type run struct {
	o       Options
	p       *plan.Plan
	trace   deploytrace.TraceID
	depSpan deploytrace.SpanID
	log     *slog.Logger
	started time.Time
	// revisionTime is the commit time of the plan's revision, when known.
	revisionTime *time.Time
}

func (r *run) run(ctx context.Context) Result {
	r.started = time.Now()
	res := Result{DeploymentID: r.o.DeploymentID, TraceID: r.trace.String(), Started: r.started}
	depCtx := ctx
	if r.p.Timeout > 0 {
		var cancel context.CancelFunc
		depCtx, cancel = context.WithTimeout(ctx, r.p.Timeout)
		defer cancel()
	}
	r.emit(deployevent.TypeDeploymentStarted, r.started, "", nil)
	r.log.Info(fmt.Sprintf("deployment of %s to %s started, %s", r.p.Service, r.p.Environment, Plural(len(r.p.Steps), "step")),
		"span.id", r.depSpan.String(), "event.action", deployevent.TypeDeploymentStarted,
		"labels", map[string]string{"service": r.p.Service, "environment": r.p.Environment})

	status := deployevent.StatusSuccess
	failedAt := ""
	for i := range r.p.Steps {
		step := &r.p.Steps[i]
		if status == deployevent.StatusSuccess && depCtx.Err() != nil {
			status = stopStatus(ctx, depCtx)
		}
		if status != deployevent.StatusSuccess {
			res.Steps = append(res.Steps, r.skip(i, step, status, failedAt))
			continue
		}
		sr := r.step(ctx, depCtx, i, step)
		failedAt = sr.Name
		res.Steps = append(res.Steps, sr)
		switch {
		case sr.State == deployevent.StatusCancelled:
			status = deployevent.StatusCancelled
		case sr.State == deployevent.StatusTimeout && depCtx.Err() != nil:
			status = deployevent.StatusTimeout
		case sr.State == deployevent.StatusSuccess || step.ContinueOnError:
		case sr.State == deployevent.StatusTimeout:
			status = deployevent.StatusTimeout
		default:
			status = deployevent.StatusFailure
		}
	}
	res.Status = status
	res.Finished = time.Now()
	r.emit(deployevent.TypeDeploymentFinished, res.Finished, status, nil)
	level := slog.LevelInfo
	if deployevent.IsFailure(status) {
		level = slog.LevelError
	}
	msg := fmt.Sprintf("deployment of %s to %s: %s", r.p.Service, r.p.Environment, status)
	if f := res.FailedStep(); f != nil && status != deployevent.StatusSuccess {
		msg += fmt.Sprintf(" at step %d/%d %s", f.Position+1, len(r.p.Steps), f.Name)
	}
	r.log.Log(context.Background(), level, msg, "span.id", r.depSpan.String(),
		"event.action", deployevent.TypeDeploymentFinished, "event.outcome", outcome(status),
		"deployment.status", status, "event.duration", res.Finished.Sub(r.started))
	if r.o.Progress != nil {
		r.o.Progress.Finished(res)
	}
	return res
}

// TraceOf returns the trace and deployment span of a deployment: its own
// trace, or the one of the caller's traceparent when valid.
func TraceOf(deploymentID, parent string) (deploytrace.TraceID, deploytrace.SpanID) {
	trace := deploytrace.DeploymentTraceID(deploymentID)
	if parent != "" {
		if t, _, err := deploytrace.ParseTraceparent(parent); err == nil {
			trace = t
		}
	}
	return trace, deploytrace.DeploymentSpanID(trace, deploymentID)
}

// stopStatus tells a Ctrl-C from the plan's timeout.
func stopStatus(ctx, depCtx context.Context) string {
	if ctx.Err() != nil {
		return deployevent.StatusCancelled
	}
	if errors.Is(depCtx.Err(), context.DeadlineExceeded) {
		return deployevent.StatusTimeout
	}
	return deployevent.StatusCancelled
}

// outcome maps a status onto ECS event.outcome.
func outcome(status string) string {
	switch {
	case status == deployevent.StatusSuccess:
		return "success"
	case deployevent.IsFailure(status):
		return "failure"
	}
	return "unknown"
}

// Plural writes n and the noun, "1 step", "3 steps".
func Plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// skip records a step that never ran. After Ctrl-C it is cancelled, like
// the deployment; after a failure or timeout it is skipped, naming why.
func (r *run) skip(i int, step *plan.Step, status, previous string) StepResult {
	now := time.Now()
	sr := StepResult{Position: i, Name: step.Name, State: deployevent.StateSkipped, Started: now, NotRun: true}
	switch status {
	case deployevent.StatusCancelled:
		sr.State = deployevent.StatusCancelled
		sr.Message = "not run: the deployment was cancelled"
	case deployevent.StatusTimeout:
		sr.Message = fmt.Sprintf("not run: the deployment timeout of %s was reached", r.p.Timeout)
	default:
		sr.Message = "not run: step " + previous + " failed"
	}
	r.emit(deployevent.TypeStepFinished, now, "", &sr)
	r.log.Info("step "+step.Name+" "+sr.Message, "step.name", step.Name, "step.position", i, "step.state", sr.State,
		"event.action", deployevent.TypeStepFinished, "event.outcome", "unknown")
	if r.o.Progress != nil {
		r.o.Progress.StepFinished(sr, len(r.p.Steps))
	}
	return sr
}

// DeliveryID is the event id the receiver de-duplicates by: the same event
// of the same deployment always gets the same id, so resending is safe.
func DeliveryID(deploymentID, eventType string, position int) string {
	sum := sha256.Sum256([]byte(deploymentID + "\x00" + eventType + "\x00" + strconv.Itoa(position)))
	return hex.EncodeToString(sum[:16])
}

// emit builds one event and hands it to the sink.
func (r *run) emit(typ string, at time.Time, status string, sr *StepResult) {
	if r.o.Sink == nil {
		return
	}
	started := r.started
	ev := deployevent.Event{
		Type: typ,
		Time: at,
		Deployment: deployevent.Deployment{
			ID: deployevent.ID(r.o.DeploymentID), Service: r.p.Service, Environment: r.p.Environment,
			User: r.o.User, Origin: r.o.Origin, Revision: r.o.Revision, RevisionTime: r.revisionTime, Started: &started,
		},
	}
	position := -1
	if sr != nil {
		position = sr.Position
		st := &deployevent.Step{Name: sr.Name, Position: sr.Position, State: sr.State, Command: sr.Command, PID: sr.PID}
		s := sr.Started
		st.Started = &s
		if typ == deployevent.TypeStepFinished {
			f := sr.Started.Add(sr.Duration)
			st.Finished = &f
			st.Message = sr.Message
			st.ExitCode = sr.ExitCode
			st.ExitSignal = sr.Signal
			st.Ignored = sr.Ignored
			st.StderrTail = TailText(sr.StderrTail)
		}
		ev.Step = st
		// Step events name the deployment span as their parent.
		ev.Traceparent = deploytrace.FormatTraceparent(r.trace, r.depSpan)
	} else {
		ev.Traceparent = r.o.Parent
	}
	if typ == deployevent.TypeDeploymentStarted {
		ev.Deployment.Context = r.o.Context
	}
	if typ == deployevent.TypeDeploymentFinished {
		// The finish carries everything the deployment span needs (start,
		// service, environment, context), so a collector that never saw
		// the start, after a failover behind a load balancer, builds the
		// same span.
		ev.Deployment.Context = r.o.Context
		f := at
		ev.Deployment.Finished = &f
		ev.Deployment.Status = status
	}
	ev.ID = DeliveryID(r.o.DeploymentID, typ, position)
	body, err := json.Marshal(ev)
	if err != nil {
		r.log.Error("cannot encode event", "error", err.Error())
		return
	}
	r.o.Sink.Enqueue(&delivery.Request{
		Path: delivery.PathEvents, ContentType: delivery.ContentTypeJSON,
		Body: r.o.Masker.Values(string(body)), Items: 1, Deployment: r.o.DeploymentID,
	})
}

// stepEnv is the environment of a step's subprocess.
func (r *run) stepEnv(i int, step *plan.Step) []string {
	env := append([]string(nil), r.o.Environ...)
	for _, v := range r.p.Vars {
		env = append(env, v.Name+"="+r.o.Vars[v.Name])
	}
	for _, e := range r.p.Env {
		env = append(env, e.Name+"="+plan.Expand(e.Value, r.o.Vars))
	}
	for _, e := range step.Env {
		env = append(env, e.Name+"="+plan.Expand(e.Value, r.o.Vars))
	}
	sub := deploytrace.SubprocessSpanID(r.trace, r.o.DeploymentID, step.Name, i)
	resAttrs := "deployment.id=" + url.PathEscape(r.o.DeploymentID) + ",deployment.environment.name=" + url.PathEscape(r.p.Environment)
	for _, kv := range r.o.Environ {
		if v, ok := strings.CutPrefix(kv, "OTEL_RESOURCE_ATTRIBUTES="); ok && v != "" {
			resAttrs = v + "," + resAttrs
		}
	}
	return append(env,
		"TRACEPARENT="+deploytrace.FormatTraceparent(r.trace, sub),
		"OTEL_RESOURCE_ATTRIBUTES="+resAttrs,
		"FASTDEPLOY_DEPLOYMENT_ID="+r.o.DeploymentID,
		"FASTDEPLOY_STEP_NAME="+step.Name,
		"FASTDEPLOY_STEP_POSITION="+strconv.Itoa(i),
	)
}

func (r *run) step(ctx, depCtx context.Context, i int, step *plan.Step) StepResult {
	total := len(r.p.Steps)
	stepCtx := depCtx
	if step.Timeout > 0 {
		var cancel context.CancelFunc
		stepCtx, cancel = context.WithTimeout(depCtx, step.Timeout)
		defer cancel()
	}
	slog := r.log.With("step.name", step.Name, "step.position", i, "span.id", deploytrace.StepSpanID(r.trace, r.o.DeploymentID, step.Name, i).String())
	sr := StepResult{Position: i, Name: step.Name, Started: time.Now()}
	tail := &tailBuffer{}
	if r.o.Progress != nil {
		r.o.Progress.StepStarted(i, total, step.Name)
	}
	cmd, cleanup, err := r.command(i, step)
	if cleanup != nil {
		defer cleanup()
	}
	var forward *ansibleForwarder
	if err == nil {
		sr.Command = r.o.Masker.String(commandLine(cmd.Args))
		stdout := &lineWriter{fn: func(line string) { r.output(i, "stdout", line) }}
		stderr := &lineWriter{fn: func(line string) { tail.add(r.output(i, "stderr", line)) }}
		if step.Ansible != nil {
			forward = &ansibleForwarder{r: r, position: i, step: step, reader: ansible.NewReader(r.o.AnsibleCallback), tail: tail}
			stdout = &lineWriter{fn: forward.line}
			stderr = &lineWriter{fn: forward.stderrLine}
		}
		cmd.Stdout = stdout
		cmd.Stderr = stderr
		defer stdout.Flush()
		err = cmd.Start()
	}
	if err != nil {
		sr.State = deployevent.StatusFailure
		sr.Message = r.o.Masker.String(err.Error())
		sr.Duration = time.Since(sr.Started)
		r.emit(deployevent.TypeStepStarted, sr.Started, "", &sr)
		return r.finishStep(sr, slog)
	}
	pid := cmd.Process.Pid
	sr.PID = &pid
	r.emit(deployevent.TypeStepStarted, sr.Started, "", &sr)
	slog.Info(fmt.Sprintf("step %d/%d %s started", i+1, total, step.Name), "step.state", deployevent.StateRunning,
		"event.action", deployevent.TypeStepStarted, "process.pid", pid, "process.command_line", sr.Command)

	stopped := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-stepCtx.Done():
			killGroup(pid, r.o.KillGrace, stopped)
		case <-stopped:
		}
	}()
	waitErr := cmd.Wait()
	close(stopped)
	wg.Wait()
	if c, ok := cmd.Stdout.(*lineWriter); ok {
		c.Flush()
	}
	if c, ok := cmd.Stderr.(*lineWriter); ok {
		c.Flush()
	}
	sr.Duration = time.Since(sr.Started)
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		sr.Signal = SignalName(ws.Signal())
	} else {
		code := cmd.ProcessState.ExitCode()
		sr.ExitCode = &code
	}
	switch {
	case ctx.Err() != nil:
		sr.State = deployevent.StatusCancelled
		sr.Message = "cancelled by signal"
	case stepCtx.Err() != nil:
		sr.State = deployevent.StatusTimeout
		if depCtx.Err() != nil {
			sr.Message = fmt.Sprintf("deployment timeout of %s reached", r.p.Timeout)
		} else {
			sr.Message = fmt.Sprintf("step timeout of %s reached", step.Timeout)
		}
	case waitErr == nil:
		sr.State = deployevent.StatusSuccess
	default:
		sr.State = deployevent.StatusFailure
		sr.Message = r.o.Masker.String(exitMessage(waitErr))
		if forward != nil && forward.failure != "" {
			failure := r.o.Masker.String(forward.failure)
			sr.Message += ": " + failure
			tail.add(failure)
		}
		sr.Ignored = step.ContinueOnError
	}
	if forward != nil {
		forward.flush()
	}
	if sr.State != deployevent.StatusSuccess {
		sr.StderrTail = tail.lines()
	}
	return r.finishStep(sr, slog)
}

func (r *run) finishStep(sr StepResult, log *slog.Logger) StepResult {
	r.emit(deployevent.TypeStepFinished, sr.Started.Add(sr.Duration), "", &sr)
	level := slog.LevelInfo
	switch {
	case sr.Failed():
		level = slog.LevelError
	case sr.Ignored, sr.State == deployevent.StatusCancelled:
		level = slog.LevelWarn
	}
	attrs := []any{"step.state", sr.State, "event.action", deployevent.TypeStepFinished,
		"event.outcome", outcome(sr.State), "event.duration", sr.Duration}
	if sr.ExitCode != nil {
		attrs = append(attrs, "process.exit_code", *sr.ExitCode)
	}
	if sr.Signal != "" {
		attrs = append(attrs, "process.exit_signal", sr.Signal)
	}
	if sr.Message != "" {
		attrs = append(attrs, "error.message", sr.Message)
	}
	if sr.Ignored {
		attrs = append(attrs, "step.ignored", "true")
	}
	if len(sr.StderrTail) > 0 {
		attrs = append(attrs, "step.stderr_tail", TailText(sr.StderrTail))
	}
	msg := fmt.Sprintf("step %d/%d %s: %s", sr.Position+1, len(r.p.Steps), sr.Name, sr.State)
	if sr.Ignored {
		msg += " (ignored: continue_on_error)"
	}
	log.Log(context.Background(), level, msg, attrs...)
	if r.o.Progress != nil {
		r.o.Progress.StepFinished(sr, len(r.p.Steps))
	}
	return sr
}

// output shows and logs one line of a step's output; it returns the line
// masked.
func (r *run) output(i int, stream, line string) string {
	line = r.o.Masker.String(line)
	if r.o.Progress != nil {
		r.o.Progress.Output(i, stream, line)
	}
	if line != "" {
		r.log.Debug(line, "step.name", r.p.Steps[i].Name, "step.position", i, "stream", stream)
	}
	return line
}

// activity tells the progress what step i is doing now.
func (r *run) activity(i int, text string) {
	if a, ok := r.o.Progress.(ActivityReporter); ok {
		a.Activity(i, text)
	}
}

func exitMessage(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return "killed by " + SignalName(ws.Signal())
		}
		return fmt.Sprintf("exit status %d", ee.ExitCode())
	}
	return err.Error()
}

// killGroup stops a step's whole process group: SIGTERM first, SIGKILL
// after grace unless the leader exits (stopped closes) sooner.
func killGroup(pid int, grace time.Duration, stopped <-chan struct{}) {
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-stopped:
		// The leader is gone; children that ignored SIGTERM still go.
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	case <-t.C:
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
}

// command builds the subprocess of a step. cleanup removes temporary files.
func (r *run) command(i int, step *plan.Step) (*exec.Cmd, func(), error) {
	var cmd *exec.Cmd
	var cleanup func()
	var ansibleEnv []string
	// Steps run in the plan's directory, like make in a Makefile's.
	baseDir, err := filepath.Abs(filepath.Dir(r.o.PlanPath))
	if err != nil {
		return nil, nil, fmt.Errorf("plan directory: %w", err)
	}
	switch {
	case step.Ansible != nil:
		a := step.Ansible
		dir, err := ansible.TempDir()
		if err != nil {
			return nil, nil, fmt.Errorf("create temporary directory: %w", err)
		}
		cleanup = func() { os.RemoveAll(dir) }
		vars := map[string]any{}
		for k, v := range r.o.Vars {
			vars[k] = v
		}
		for k, v := range a.ExtraVars {
			vars[k] = plan.ExpandAny(v, r.o.Vars)
		}
		// Gone once ansible-playbook has read it, and on every exit path.
		varsFile, err := ansible.WriteExtraVars(dir, vars)
		if err != nil {
			return nil, cleanup, err
		}
		cleanup = func() { varsFile.Close(); os.RemoveAll(dir) }
		if ansibleEnv, err = ansible.Setup(r.o.AnsibleCallback, dir, r.o.Environ); err != nil {
			return nil, cleanup, err
		}
		playbook := plan.Expand(a.Playbook, r.o.Vars)
		if !filepath.IsAbs(playbook) {
			playbook = filepath.Join(baseDir, playbook)
		}
		args := make([]string, len(a.Args))
		for j, s := range a.Args {
			args[j] = plan.Expand(s, r.o.Vars)
		}
		cmd = exec.Command(r.o.AnsiblePlaybook, ansible.Args(playbook, plan.Expand(a.Inventory, r.o.Vars), plan.Expand(a.Limit, r.o.Vars), varsFile.Path(), args)...)
	case len(step.Command) > 0:
		argv := make([]string, len(step.Command))
		for j, s := range step.Command {
			argv[j] = plan.Expand(s, r.o.Vars)
		}
		cmd = exec.Command(argv[0], argv[1:]...)
	default:
		cmd = exec.Command("/bin/sh", "-c", step.Run)
	}
	cmd.Env = append(r.stepEnv(i, step), ansibleEnv...)
	cmd.Dir = baseDir
	if step.Dir != "" {
		d := plan.Expand(step.Dir, r.o.Vars)
		if !filepath.IsAbs(d) {
			d = filepath.Join(baseDir, d)
		}
		cmd.Dir = d
	}
	// Own process group, so cancellation reaches every child, and a
	// terminal's Ctrl-C reaches the deployer alone, which then decides.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Children that keep the output pipes open must not hold the step.
	cmd.WaitDelay = 2 * time.Second
	return cmd, cleanup, nil
}

func commandLine(args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`;&|<>()*?[]{}!#~") {
			quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		} else {
			quoted[i] = a
		}
	}
	return strings.Join(quoted, " ")
}

// Bounds of a step's stderr tail: the last lines, each cut, within a
// total the events carry (deployevent.MaxStderrTail).
const (
	tailLines    = 10
	tailLineMax  = 400
	tailBytesMax = 2048
)

// tailBuffer keeps the last lines of a step's stderr.
type tailBuffer struct {
	mu  sync.Mutex
	buf []string
}

func (t *tailBuffer) add(line string) {
	line = strings.TrimRight(line, " \t")
	if strings.TrimSpace(line) == "" {
		return
	}
	if len(line) > tailLineMax {
		line = truncateUTF8(line, tailLineMax) + "…"
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, line)
	if len(t.buf) > tailLines {
		t.buf = t.buf[len(t.buf)-tailLines:]
	}
	for len(t.buf) > 1 && len(TailText(t.buf)) > tailBytesMax {
		t.buf = t.buf[1:]
	}
}

func (t *tailBuffer) lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.buf...)
}

// TailText joins tail lines as events and logs carry them.
func TailText(lines []string) string { return strings.Join(lines, "\n") }

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// SignalName names a signal as people write it: SIGKILL, SIGTERM.
func SignalName(sig syscall.Signal) string {
	if name := unix.SignalName(sig); name != "" {
		return name
	}
	return "signal " + strconv.Itoa(int(sig))
}
