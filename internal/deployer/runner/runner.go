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
	PID      *int
	Command  string
	Message  string
}

// Result is the outcome of a deployment.
type Result struct {
	DeploymentID string
	TraceID      string
	Status       string
	Started      time.Time
	Finished     time.Time
	Steps        []StepResult
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
	r := &run{o: o, p: o.Plan}
	r.trace = deploytrace.DeploymentTraceID(o.DeploymentID)
	if o.Parent != "" {
		if t, _, err := deploytrace.ParseTraceparent(o.Parent); err == nil {
			r.trace = t
		} else {
			o.Logger.Warn("ignoring invalid TRACEPARENT", "error", err.Error())
			r.o.Parent = ""
		}
	}
	r.depSpan = deploytrace.DeploymentSpanID(r.trace, o.DeploymentID)
	r.log = o.Logger.With("deployment.id", o.DeploymentID, "trace.id", r.trace.String())
	return r.run(ctx)
}

type run struct {
	o       Options
	p       *plan.Plan
	trace   deploytrace.TraceID
	depSpan deploytrace.SpanID
	log     *slog.Logger
	started time.Time
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
	r.log.Info(fmt.Sprintf("deployment of %s to %s started, %d steps", r.p.Service, r.p.Environment, len(r.p.Steps)),
		"span.id", r.depSpan.String(), "labels", map[string]string{"service": r.p.Service, "environment": r.p.Environment})

	status := deployevent.StatusSuccess
	for i := range r.p.Steps {
		step := &r.p.Steps[i]
		if status != deployevent.StatusSuccess {
			res.Steps = append(res.Steps, r.skip(i, step))
			continue
		}
		if err := depCtx.Err(); err != nil {
			status = stopStatus(ctx, depCtx)
			res.Steps = append(res.Steps, r.skip(i, step))
			continue
		}
		sr := r.step(ctx, depCtx, i, step)
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
	r.log.Log(context.Background(), level, "deployment finished", "span.id", r.depSpan.String(),
		"deployment.status", status, "duration_ms", res.Finished.Sub(r.started).Milliseconds())
	if r.o.Progress != nil {
		r.o.Progress.Finished(res)
	}
	return res
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

func (r *run) skip(i int, step *plan.Step) StepResult {
	now := time.Now()
	sr := StepResult{Position: i, Name: step.Name, State: deployevent.StateSkipped, Started: now, Message: "not run: an earlier step did not succeed"}
	r.emit(deployevent.TypeStepFinished, now, "", &sr)
	r.log.Info("step skipped", "step.name", step.Name, "step.state", sr.State)
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
			User: r.o.User, Origin: r.o.Origin, Revision: r.p.Revision, Started: &started,
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
	slog := r.log.With("step.name", step.Name, "span.id", deploytrace.StepSpanID(r.trace, r.o.DeploymentID, step.Name, i).String())
	sr := StepResult{Position: i, Name: step.Name, Started: time.Now()}
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
		stderr := &lineWriter{fn: func(line string) { r.output(i, "stderr", line) }}
		if step.Ansible != nil {
			forward = &ansibleForwarder{r: r, position: i, step: step, reader: ansible.NewReader(r.o.AnsibleCallback)}
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
	slog.Info("step started", "step.state", deployevent.StateRunning, "process.pid", pid, "process.command_line", sr.Command)

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
	code := cmd.ProcessState.ExitCode()
	sr.ExitCode = &code
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
			sr.Message += ": " + r.o.Masker.String(forward.failure)
		}
	}
	if forward != nil {
		forward.flush()
	}
	return r.finishStep(sr, slog)
}

func (r *run) finishStep(sr StepResult, log *slog.Logger) StepResult {
	r.emit(deployevent.TypeStepFinished, sr.Started.Add(sr.Duration), "", &sr)
	level := slog.LevelInfo
	if deployevent.IsFailure(sr.State) {
		level = slog.LevelError
	} else if sr.State == deployevent.StatusCancelled {
		level = slog.LevelWarn
	}
	attrs := []any{"step.state", sr.State, "duration_ms", sr.Duration.Milliseconds()}
	if sr.ExitCode != nil {
		attrs = append(attrs, "process.exit.code", *sr.ExitCode)
	}
	if sr.Message != "" {
		attrs = append(attrs, "error.message", sr.Message)
	}
	log.Log(context.Background(), level, "step finished", attrs...)
	if r.o.Progress != nil {
		r.o.Progress.StepFinished(sr, len(r.p.Steps))
	}
	return sr
}

func (r *run) output(i int, stream, line string) {
	line = r.o.Masker.String(line)
	if r.o.Progress != nil {
		r.o.Progress.Output(i, stream, line)
	}
	r.log.Debug(line, "step.name", r.p.Steps[i].Name, "stream", stream)
}

func exitMessage(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return "killed by signal " + ws.Signal().String()
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
		dir, err := os.MkdirTemp("", "fastdeploy-ansible-")
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
		varsFile := filepath.Join(dir, "extra-vars.json")
		data, err := json.Marshal(vars)
		if err == nil {
			err = os.WriteFile(varsFile, data, 0o600)
		}
		if err != nil {
			return nil, cleanup, fmt.Errorf("write extra vars: %w", err)
		}
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
		cmd = exec.Command(r.o.AnsiblePlaybook, ansible.Args(playbook, plan.Expand(a.Inventory, r.o.Vars), plan.Expand(a.Limit, r.o.Vars), varsFile, args)...)
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
