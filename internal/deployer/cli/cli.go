// Package cli is the fastdeploy command line: run, validate, flush.
package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployer/ansible"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployer/delivery"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployer/logging"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployer/mask"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployer/plan"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployer/progress"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployer/runner"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployevent"
)

// Exit codes.
const (
	ExitOK        = 0
	ExitFailed    = 1 // the deployment failed or timed out; flush left events behind
	ExitUsage     = 2 // bad flags or an invalid plan
	ExitCancelled = 130
	ExitTerm      = 143
)

// Version is set by the build (-ldflags "-X ...cli.Version=..."); empty
// means the module's build information tells it.
var Version = ""

// version is the deployer's version: the one the build set, else the
// module version, else the VCS revision the binary was built from.
func version() string {
	if Version != "" {
		return Version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown)"
	}
	v := bi.Main.Version
	var rev string
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if (v == "" || v == "(devel)") && rev != "" {
		v = "devel-" + rev[:min(12, len(rev))]
		if dirty {
			v += "-dirty"
		}
	}
	if v == "" {
		v = "(devel)"
	}
	return v
}

// versionLine is what "fastdeploy version" prints.
func versionLine() string {
	line := "fastdeploy " + version()
	if bi, ok := debug.ReadBuildInfo(); ok {
		line += " (" + bi.GoVersion
		for _, s := range bi.Settings {
			if s.Key == "vcs.time" {
				line += ", committed " + s.Value
			}
		}
		line += ")"
	}
	return line
}

// App holds the process's surroundings, so tests can run commands in
// process.
type App struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	// Terminal reports whether Stdout is a terminal (live progress).
	Terminal bool
	// Signals delivers SIGINT/SIGTERM; nil means none arrive.
	Signals <-chan os.Signal
	// HTTPClient, when set, sends to the collector (main may wrap it with
	// tracing); nil uses a plain client.
	HTTPClient *http.Client
	// Environ lists the environment, whose secret-looking values are
	// masked; nil means os.Environ.
	Environ func() []string
}

const usage = `fastdeploy runs a deployment plan step by step and reports every step to
an OpenTelemetry collector with the fastdeploy receiver, so each deployment
becomes one trace (deployment > step > subprocess > Ansible task).

Usage:
  fastdeploy run [flags] PLAN.yaml     run a plan
  fastdeploy validate PLAN.yaml...     check plans; names each bad field and line
  fastdeploy flush [flags]             send events spooled while the collector was unreachable
  fastdeploy version                   print the version
  fastdeploy help [COMMAND]            show help

Exit status: 0 deployment succeeded; 1 it failed or timed out (flush: events
remain spooled); 2 usage error or invalid plan; 130/143 cancelled by
SIGINT/SIGTERM.

Environment: FASTDEPLOY_COLLECTOR_URL, FASTDEPLOY_SECRET, FASTDEPLOY_SPOOL_DIR,
FASTDEPLOY_LOG_FORMAT, FASTDEPLOY_DEPLOYMENT_ID, FASTDEPLOY_TRACE_URL,
FASTDEPLOY_REVISION, FASTDEPLOY_REVISION_TIME, TRACEPARENT (join a caller's
trace). Run "fastdeploy help run" for the plan format.

Examples:
  fastdeploy run testdata/plans/shell.yaml --var release=1.4.2
  fastdeploy validate testdata/plans/invalid.yaml   # exit 2
  fastdeploy help run
`

const planHelp = `
Plan format (YAML), a complete plan; each step has one of run, command or
ansible:
  service: web                   # required: the deployed service
  environment: production        # required
  revision: 3f2c1ab              # VCS revision (default: git HEAD of the plan's directory)
  revision_time: 2026-11-27T09:30:00Z  # its commit time (default: read from git)
  timeout: 30m                   # bound of the whole deployment
  env: {LOG_LEVEL: info}         # environment of every step; ${var} expands
  vars:                          # steps see them as env vars; values come from --var,
    release: "1.0"               #   --var-file, the variable's env or file, or a default
    db_password: {env: CI_DB_PASSWORD, required: true}
    api_token: {file: secrets/token, secret: true}
  steps:
    - name: build                # required
      run: make build            # a shell command (sh -c)
      timeout: 5m                # step bound: then SIGTERM, SIGKILL after --kill-grace
      env: {GOFLAGS: -mod=mod}
      dir: build                 # working directory, relative to the plan
    - name: test
      command: [make, "test-${release}"]  # an argv; ${var} expands
      continue_on_error: true    # a failure is reported as ignored, the deployment goes on
    - name: configure
      ansible:                   # an ansible-playbook run (callback output forwarded)
        playbook: site.yml
        inventory: hosts.ini
        limit: web
        extra_vars: {version: "${release}", db_password: "${db_password}"}
        args: [--diff]

Steps run in the plan's directory unless dir says otherwise.

Steps get TRACEPARENT (their subprocess span), OTEL_RESOURCE_ATTRIBUTES with
deployment.id, FASTDEPLOY_DEPLOYMENT_ID, FASTDEPLOY_STEP_NAME and
FASTDEPLOY_STEP_POSITION. Masked in output, logs, spool and events: values of
variables whose names look secret (password, token, secret, *_key, ...) or
marked secret, of --secret-var, and of environment variables whose names look
secret; and anything the collector's secret catalogue recognises (tokens,
keys, passwords in command lines, URLs and connection strings). A required
secret given an empty value is refused. Pass secrets with env:, file: or
--var-file rather than --var, which every user sees in ps.
`

// Main runs the command line and returns the exit code.
func (a *App) Main(args []string) int {
	if a.Getenv == nil {
		a.Getenv = os.Getenv
	}
	if len(args) == 0 {
		fmt.Fprint(a.Stderr, usage)
		return ExitUsage
	}
	if args[0] == "help" && len(args) > 2 {
		fmt.Fprintf(a.Stderr, "fastdeploy help: want at most one command, got %d\n", len(args)-1)
		return ExitUsage
	}
	switch args[0] {
	case "run":
		return a.run(args[1:])
	case "validate":
		return a.validate(args[1:])
	case "flush":
		return a.flush(args[1:])
	case "version", "--version", "-version":
		fmt.Fprintln(a.Stdout, versionLine())
		return ExitOK
	case "help", "-h", "--help", "-help":
		if len(args) > 1 {
			switch args[1] {
			case "run", "validate", "flush":
				return a.Main([]string{args[1], "--help"})
			case "version", "help":
				fmt.Fprint(a.Stdout, usage)
				return ExitOK
			}
			fmt.Fprintf(a.Stderr, "fastdeploy help: unknown command %q: want run, validate, flush, version or help\n", args[1])
			return ExitUsage
		}
		fmt.Fprint(a.Stdout, usage)
		return ExitOK
	}
	fmt.Fprintf(a.Stderr, "fastdeploy: unknown command %q: want run, validate, flush, version or help (run \"fastdeploy help\")\n", args[0])
	return ExitUsage
}

// kv collects repeated key=value flags.
type kv map[string]string

func (m kv) String() string { return "" }
func (m kv) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return errors.New("want key=value")
	}
	m[k] = v
	return nil
}

// collectorFlags are shared by run and flush.
type collectorFlags struct {
	url, secretFile, spoolDir string
	timeout                   time.Duration
}

func (a *App) addCollectorFlags(fs *flag.FlagSet, c *collectorFlags) {
	fs.StringVar(&c.url, "collector-url", envOr(a.Getenv, "FASTDEPLOY_COLLECTOR_URL", "http://127.0.0.1:8088"), "base URL of the collector's fastdeploy receiver (env FASTDEPLOY_COLLECTOR_URL)")
	fs.StringVar(&c.secretFile, "secret-file", "", "file holding the request signing secret; or set FASTDEPLOY_SECRET")
	fs.StringVar(&c.spoolDir, "spool-dir", envOr(a.Getenv, "FASTDEPLOY_SPOOL_DIR", defaultSpoolDir(a.Getenv)), "directory of events kept while the collector is unreachable (env FASTDEPLOY_SPOOL_DIR)")
	fs.DurationVar(&c.timeout, "delivery-timeout", 10*time.Second, "longest wait for the collector, per request and at the end of a run; then events are spooled")
}

func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}

func defaultSpoolDir(getenv func(string) string) string {
	if d := getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "fastdeploy", "spool")
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".local", "state", "fastdeploy", "spool")
	}
	return filepath.Join(os.TempDir(), "fastdeploy-spool")
}

func (a *App) secret(c *collectorFlags) ([]byte, error) {
	if c.secretFile != "" {
		b, err := os.ReadFile(c.secretFile)
		if err != nil {
			return nil, fmt.Errorf("read secret file: %w", err)
		}
		return []byte(strings.TrimSpace(string(b))), nil
	}
	return []byte(a.Getenv("FASTDEPLOY_SECRET")), nil
}

func (a *App) client(c *collectorFlags, tracing *httpTracing) (*delivery.Client, *delivery.Spool, error) {
	secret, err := a.secret(c)
	if err != nil {
		return nil, nil, err
	}
	cfg := delivery.DefaultConfig(c.url)
	cfg.HTTPClient = a.HTTPClient
	if tracing != nil {
		cfg.HTTPClient = tracing.client
		cfg.RequestContext = tracing.requestCtx
	}
	cfg.Secret = secret
	cfg.MaxWait = c.timeout
	cfg.UserAgent = "fastdeploy/" + version()
	client, err := delivery.NewClient(cfg)
	if err != nil {
		return nil, nil, err
	}
	spool, err := delivery.NewSpool(c.spoolDir)
	if err != nil {
		return nil, nil, err
	}
	return client, spool, nil
}

// command is one subcommand's flags and help.
type command struct {
	name string
	help string
	fs   *flag.FlagSet
}

func newCommand(name, help string) *command {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	// Parse errors and help are printed by parse, each where it belongs.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &command{name: name, help: help, fs: fs}
}

// printHelp writes the command's help, and its flags when it has any.
func (c *command) printHelp(w io.Writer) {
	fmt.Fprint(w, c.help)
	n := 0
	c.fs.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		return
	}
	fmt.Fprintln(w, "\nFlags:")
	c.fs.SetOutput(w)
	c.fs.PrintDefaults()
	c.fs.SetOutput(io.Discard)
}

// parse reads flags anywhere among the arguments, before or after the
// operands, as most command lines allow; "--" ends the flags. It returns
// the operands, or the exit code when the command is done (help shown, or
// a usage error explained).
func (a *App) parse(c *command, args []string) ([]string, int, bool) {
	var operands []string
	for {
		err := c.fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			c.printHelp(a.Stdout)
			return nil, ExitOK, false
		}
		if err != nil {
			a.usageError(c, err.Error())
			return nil, ExitUsage, false
		}
		rest := c.fs.Args()
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			return append(operands, rest...), 0, true
		}
		if len(rest) == 0 {
			return operands, 0, true
		}
		operands = append(operands, rest[0])
		args = rest[1:]
	}
}

// usageError says what is wrong in one line and where the help is.
func (a *App) usageError(c *command, msg string) {
	fmt.Fprintf(a.Stderr, "fastdeploy %s: %s\nRun \"fastdeploy help %s\" for its flags and usage.\n", c.name, msg, c.name)
}

const runHelp = `Usage: fastdeploy run [flags] PLAN.yaml

Runs the plan's steps in order, each as a subprocess in its own process
group, shows progress (live on a terminal, plain lines otherwise) and a
summary, logs to stderr, and sends deployment.started, step.started,
step.finished and deployment.finished events to the collector. Events the
collector does not take within --delivery-timeout are spooled and sent by
the next run or "fastdeploy flush". Ctrl-C stops the running step's process
group and reports the deployment cancelled.

A failed deployment ends with the step that failed it, its exit code or
signal, the last lines of its stderr and the trace id (a link with
--trace-url). Flags may come before or after the plan file.

Examples:
  fastdeploy run testdata/plans/shell.yaml --var release=1.4.2
  fastdeploy run --dry-run testdata/plans/ansible.yaml
  fastdeploy run --log-format json testdata/plans/failing.yaml   # exit 1: migrate fails
  fastdeploy run testdata/plans/failing.yaml --trace-url http://127.0.0.1:16686   # exit 1
` + planHelp

func (a *App) run(args []string) int {
	cmd := newCommand("run", runHelp)
	fs := cmd.fs
	var c collectorFlags
	a.addCollectorFlags(fs, &c)
	vars, secretVars := kv{}, kv{}
	fs.Var(vars, "var", "set a plan variable, key=value (repeatable); masked when the name looks secret")
	fs.Var(secretVars, "secret-var", "set a plan variable whose value is masked everywhere, key=value (repeatable)")
	var varFiles fileList
	fs.Var(&varFiles, "var-file", "read plan variables from a file of name=value lines or a YAML mapping (repeatable; --var wins)")
	dryRun := fs.Bool("dry-run", false, "print the resolved plan and run nothing")
	offline := fs.Bool("offline", false, "send nothing to the collector")
	logFormat := fs.String("log-format", envOr(a.Getenv, "FASTDEPLOY_LOG_FORMAT", "text"), "log format on stderr: text or json (env FASTDEPLOY_LOG_FORMAT)")
	logLevel := fs.String("log-level", "", "log level: debug (includes step output), info, warn, error (default info for json, warn for text, whose story the progress tells)")
	depID := fs.String("deployment-id", a.Getenv("FASTDEPLOY_DEPLOYMENT_ID"), "deployment id (default: generated); reuse one to resume its trace")
	user := fs.String("user", a.loginUser(), "user named in the events; the default is the login user")
	traceURL := fs.String("trace-url", a.Getenv("FASTDEPLOY_TRACE_URL"), "base URL of a trace UI, e.g. Jaeger's http://127.0.0.1:16686: the summary links the trace as BASE/trace/ID, or replaces {trace_id} in it (env FASTDEPLOY_TRACE_URL)")
	revision := fs.String("revision", a.Getenv("FASTDEPLOY_REVISION"), "deployed VCS revision (default: the plan's revision, else HEAD when the plan's directory is a git checkout) (env FASTDEPLOY_REVISION)")
	revisionTime := fs.String("revision-time", a.Getenv("FASTDEPLOY_REVISION_TIME"), "commit time of the revision, RFC 3339, for DORA lead time (default: the plan's revision_time, else read from git) (env FASTDEPLOY_REVISION_TIME)")
	traceHTTP := fs.Bool("trace-http", a.Getenv("FASTDEPLOY_TRACE_HTTP") == "true", "trace the deployer's own HTTP calls to the collector as client spans in the deployment's trace, sent to the collector's OTLP/HTTP endpoint (--otlp-endpoint) (env FASTDEPLOY_TRACE_HTTP=true)")
	otlpEndpoint := fs.String("otlp-endpoint", envOr(a.Getenv, "OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"), "OTLP/HTTP endpoint for --trace-http (env OTEL_EXPORTER_OTLP_ENDPOINT)")
	origin := fs.String("origin", "cli", "origin named in the events, e.g. cli, github")
	progressMode := fs.String("progress", "auto", "progress display: auto, live or plain")
	killGrace := fs.Duration("kill-grace", 5*time.Second, "time between SIGTERM and SIGKILL of a stopped step's process group")
	ansibleBin := fs.String("ansible-playbook", "ansible-playbook", "ansible-playbook binary for ansible steps")
	ansibleCallback := fs.String("ansible-callback", envOr(a.Getenv, "FASTDEPLOY_ANSIBLE_CALLBACK", string(ansible.CallbackBundled)),
		"stdout callback of ansible steps: fastdeploy (the bundled json_cb plugin) or jsonl (Ansible's ansible.posix.jsonl) (env FASTDEPLOY_ANSIBLE_CALLBACK)")
	operands, code, ok := a.parse(cmd, args)
	if !ok {
		return code
	}
	switch len(operands) {
	case 1:
	case 0:
		a.usageError(cmd, "missing the plan file: fastdeploy run [flags] PLAN.yaml [flags]")
		return ExitUsage
	default:
		a.usageError(cmd, fmt.Sprintf("want one plan file, got %d: %s (a flag's value with a space? write --var name=value)", len(operands), strings.Join(operands, " ")))
		return ExitUsage
	}
	callback, err := ansible.ParseCallback(*ansibleCallback)
	if err != nil {
		fmt.Fprintln(a.Stderr, "fastdeploy run: --ansible-callback:", err)
		return ExitUsage
	}
	planPath := operands[0]
	p, err := plan.Load(planPath)
	if err != nil {
		fmt.Fprintln(a.Stderr, err)
		return ExitUsage
	}
	overrides := map[string]string{}
	for _, f := range varFiles {
		fileVars, err := plan.ReadVarFile(f)
		if err != nil {
			fmt.Fprintln(a.Stderr, "fastdeploy run:", err)
			return ExitUsage
		}
		for k, v := range fileVars {
			overrides[k] = v
		}
	}
	for k, v := range vars {
		overrides[k] = v
	}
	for k, v := range secretVars {
		overrides[k] = v
	}
	values, err := p.ResolveFrom(overrides, plan.Sources{Getenv: a.Getenv, ReadFile: os.ReadFile, Dir: filepath.Dir(planPath)})
	if err == nil {
		err = requiredNotEmpty(p, values)
	}
	if err != nil {
		fmt.Fprintln(a.Stderr, "fastdeploy run:", err)
		return ExitUsage
	}
	environ := os.Environ
	if a.Environ != nil {
		environ = a.Environ
	}
	masker := mask.New(secretValues(p, values, secretVars, a.Getenv, environ())...)

	live := a.Terminal
	switch *progressMode {
	case "live":
		live = true
	case "plain":
		live = false
	case "auto":
	default:
		fmt.Fprintf(a.Stderr, "fastdeploy run: --progress %q: want auto, live or plain\n", *progressMode)
		return ExitUsage
	}
	if *logLevel == "" {
		*logLevel = "info"
		if *logFormat == "text" {
			*logLevel = "warn"
		}
	}
	level, err := logging.ParseLevel(*logLevel)
	if err != nil {
		fmt.Fprintln(a.Stderr, "fastdeploy run:", err)
		return ExitUsage
	}
	printer := progress.New(a.Stdout, live)
	defer printer.Close()
	logOut := a.Stderr
	if live && a.Terminal {
		logOut = printer // share the terminal with the status line
	}
	log, err := logging.NewLogger(logOut, logging.Options{Format: *logFormat, Level: level, Masker: masker, ServiceVersion: version()})
	if err != nil {
		fmt.Fprintln(a.Stderr, "fastdeploy run:", err)
		return ExitUsage
	}
	if *depID == "" {
		*depID = newDeploymentID()
	}
	if len(*depID) > deployevent.MaxIDLength {
		fmt.Fprintln(a.Stderr, "fastdeploy run: --deployment-id longer than 256 bytes")
		return ExitUsage
	}
	log = log.With("deployment.id", *depID)
	rev, err := resolveRevision(planPath, p, *revision, *revisionTime)
	if err != nil {
		fmt.Fprintln(a.Stderr, "fastdeploy run:", err)
		return ExitUsage
	}
	if *dryRun {
		a.printPlan(p, planPath, values, masker, rev)
		return ExitOK
	}
	printer.TraceURL = traceLink(*traceURL)

	var sink runner.Sink
	var shipper *delivery.Shipper
	var spool *delivery.Spool
	var client *delivery.Client
	if !*offline {
		var tracing *httpTracing
		if *traceHTTP {
			traceID, spanID := runner.TraceOf(*depID, a.Getenv("TRACEPARENT"))
			if tracing, err = newHTTPTracing(*otlpEndpoint, *depID, traceID, spanID, log); err != nil {
				fmt.Fprintln(a.Stderr, "fastdeploy run:", err)
				return ExitUsage
			}
			// Runs after the shipper's Close below: the last spans go too.
			defer tracing.shutdown()
		}
		client, spool, err = a.client(&c, tracing)
		if err != nil {
			fmt.Fprintln(a.Stderr, "fastdeploy run:", err)
			return ExitUsage
		}
		shipper = delivery.NewShipper(client, spool, delivery.ShipperOptions{Logger: log})
		sink = shipper
	}

	// First signal: cancel the deployment. Second: stop waiting for the
	// collector too (events go to the spool at once).
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	deliverCtx, stopDelivery := context.WithCancel(context.Background())
	defer stopDelivery()
	var got os.Signal
	sigDone := make(chan struct{})
	stopSignals := make(chan struct{})
	go func() {
		defer close(sigDone)
		for n := 0; ; n++ {
			select {
			case s := <-a.Signals:
				if n == 0 {
					got = s
					log.Warn("signal received: cancelling the deployment", "signal", s.String())
					cancel()
				} else {
					stopDelivery()
				}
			case <-stopSignals:
				return
			}
		}
	}()

	// Events spooled by earlier runs go out beside this one.
	oldFlushed := make(chan delivery.FlushResult, 1)
	if spool != nil {
		go func() {
			res, _ := spool.Flush(deliverCtx, client)
			oldFlushed <- res
		}()
	} else {
		oldFlushed <- delivery.FlushResult{}
	}

	host, _ := os.Hostname()
	ctxVars := map[string]any{}
	for k, v := range values {
		ctxVars[k] = masker.Value(k, v, plan.LooksSecret)
		if _, secret := secretVars[k]; secret {
			ctxVars[k] = mask.Placeholder
		}
	}
	res := runner.Run(ctx, runner.Options{
		Plan: p, PlanPath: planPath, Vars: values, DeploymentID: *depID, User: *user, Origin: *origin,
		Parent:   a.Getenv("TRACEPARENT"),
		Context:  map[string]any{"plan": planPath, "host": host, "vars": ctxVars, "deployer": "fastdeploy " + version()},
		Revision: rev.revision, RevisionTime: rev.timePtr(),
		Sink: sink, Logger: log, Progress: printer, Masker: masker, KillGrace: *killGrace,
		AnsiblePlaybook: *ansibleBin, AnsibleCallback: callback,
	})

	if shipper != nil {
		closeCtx, cancelClose := context.WithTimeout(deliverCtx, c.timeout)
		closed := make(chan struct{})
		announced := make(chan struct{})
		go func() {
			defer close(announced)
			// A pause after the summary is explained, so a hanging
			// collector does not make a silent deployer.
			t := time.NewTimer(waitAnnounceAfter)
			defer t.Stop()
			select {
			case <-closed:
			case <-t.C:
				if n := shipper.Pending(); n > 0 {
					log.Warn(fmt.Sprintf("waiting up to %s for the collector to take %s; Ctrl-C spools them now",
						c.timeout-waitAnnounceAfter, runner.Plural(n, "request")), "event.action", "delivery.wait")
				}
			}
		}()
		st := shipper.Close(closeCtx)
		close(closed)
		<-announced
		cancelClose()
		stopDelivery()
		old := <-oldFlushed
		attrs := []any{"delivered", st.Delivered, "retries", st.Retries, "spooled", st.Spooled - st.Recovered, "rejected", st.Rejected, "earlier_runs_flushed", old.SentItems}
		if st.Spooled > st.Recovered {
			log.Warn("collector did not take every event; they are spooled: run fastdeploy flush", append(attrs, "spool", spool.Dir())...)
		} else {
			log.Info("events delivered to the collector", attrs...)
		}
	}
	close(stopSignals)
	<-sigDone
	switch {
	case got == syscall.SIGTERM:
		return ExitTerm
	case got != nil:
		return ExitCancelled
	case res.Status == deployevent.StatusSuccess:
		return ExitOK
	}
	return ExitFailed
}

// secretValues lists the values to mask: secret-looking or secret-marked
// variables, --secret-var values, the signing secret, and plan and process
// environment values whose names look secret.
func secretValues(p *plan.Plan, values map[string]string, secretVars kv, getenv func(string) string, environ []string) []string {
	var out []string
	for _, v := range p.Vars {
		if v.Secret || plan.LooksSecret(v.Name) {
			out = append(out, values[v.Name])
		}
	}
	for _, v := range secretVars {
		out = append(out, v)
	}
	envs := append([]plan.EnvVar(nil), p.Env...)
	for _, s := range p.Steps {
		envs = append(envs, s.Env...)
	}
	for _, e := range envs {
		if plan.LooksSecret(e.Name) {
			out = append(out, plan.Expand(e.Value, values))
		}
	}
	if s := getenv("FASTDEPLOY_SECRET"); s != "" {
		out = append(out, s)
	}
	for _, kv := range environ {
		if name, value, ok := strings.Cut(kv, "="); ok && plan.LooksSecret(name) {
			out = append(out, value)
		}
	}
	return out
}

// waitAnnounceAfter is how long the end-of-run wait for the collector
// goes unannounced.
const waitAnnounceAfter = time.Second

// requiredNotEmpty refuses required variables given an empty value: a
// required secret passed as --var db_password= is a mistake, not a value.
func requiredNotEmpty(p *plan.Plan, values map[string]string) error {
	var errs []error
	for _, v := range p.Vars {
		if v.Required && values[v.Name] == "" {
			errs = append(errs, fmt.Errorf("variable %s is required and was given an empty value", v.Name))
		}
	}
	return errors.Join(errs...)
}

// loginUser is the user the events name by default: $USER, else the
// account the process runs as, else $LOGNAME.
func (a *App) loginUser() string {
	if u := a.Getenv("USER"); u != "" {
		return u
	}
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return envOr(a.Getenv, "LOGNAME", "unknown")
}

// traceLink builds the summary's link to a trace UI: {trace_id} in the
// base is replaced, else Jaeger's /trace/ID is appended.
func traceLink(base string) func(string) string {
	if base == "" {
		return nil
	}
	return func(id string) string {
		if strings.Contains(base, "{trace_id}") {
			return strings.ReplaceAll(base, "{trace_id}", id)
		}
		return strings.TrimRight(base, "/") + "/trace/" + id
	}
}

// fileList collects repeated file flags.
type fileList []string

func (f *fileList) String() string { return strings.Join(*f, ",") }
func (f *fileList) Set(s string) error {
	if s == "" {
		return errors.New("want a file name")
	}
	*f = append(*f, s)
	return nil
}

func newDeploymentID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return time.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

func (a *App) printPlan(p *plan.Plan, path string, values map[string]string, m *mask.Masker, rev revisionInfo) {
	w := a.Stdout
	fmt.Fprintf(w, "plan %s: deploy %s to %s", path, p.Service, p.Environment)
	if rev.revision != "" {
		fmt.Fprintf(w, " at %s", rev.revision)
		if rev.time != nil {
			fmt.Fprintf(w, " (committed %s)", rev.time.UTC().Format(time.RFC3339))
		}
	}
	fmt.Fprintf(w, ", %s (dry run: nothing is executed)\n", runner.Plural(len(p.Steps), "step"))
	if p.Timeout > 0 {
		fmt.Fprintf(w, "timeout: %s\n", p.Timeout)
	}
	secretValue := func(name, v string) string { return m.Value(name, v, plan.LooksSecret) }
	if len(values) > 0 {
		names := make([]string, 0, len(values))
		for k := range values {
			names = append(names, k)
		}
		sort.Strings(names)
		fmt.Fprintln(w, "vars:")
		for _, k := range names {
			fmt.Fprintf(w, "  %s=%s\n", k, secretValue(k, values[k]))
		}
	}
	printEnv := func(indent string, env []plan.EnvVar) {
		if len(env) == 0 {
			return
		}
		fmt.Fprintln(w, indent+"env:")
		for _, e := range env {
			fmt.Fprintf(w, "%s  %s=%s\n", indent, e.Name, secretValue(e.Name, plan.Expand(e.Value, values)))
		}
	}
	printEnv("", p.Env)
	for i, s := range p.Steps {
		var what string
		switch s.Kind() {
		case "run":
			what = "run: " + s.Run
		case "command":
			argv := make([]string, len(s.Command))
			for j, arg := range s.Command {
				argv[j] = plan.Expand(arg, values)
			}
			what = "command: " + strings.Join(argv, " ")
		case "ansible":
			what = "ansible-playbook " + plan.Expand(s.Ansible.Playbook, values)
			if s.Ansible.Inventory != "" {
				what += " -i " + plan.Expand(s.Ansible.Inventory, values)
			}
			if s.Ansible.Limit != "" {
				what += " --limit " + plan.Expand(s.Ansible.Limit, values)
			}
			if len(s.Ansible.Args) > 0 {
				what += " " + strings.Join(s.Ansible.Args, " ")
			}
		}
		extra := ""
		if s.Timeout > 0 {
			extra += fmt.Sprintf(" [timeout %s]", s.Timeout)
		}
		if s.ContinueOnError {
			extra += " [continue on error]"
		}
		if s.Dir != "" {
			extra += " [dir " + plan.Expand(s.Dir, values) + "]"
		}
		fmt.Fprintf(w, "%d. %s: %s%s\n", i+1, s.Name, m.String(what), extra)
		printEnv("   ", s.Env)
		if s.Ansible != nil && len(s.Ansible.ExtraVars) > 0 {
			fmt.Fprintln(w, "   extra_vars:")
			names := make([]string, 0, len(s.Ansible.ExtraVars))
			for k := range s.Ansible.ExtraVars {
				names = append(names, k)
			}
			sort.Strings(names)
			for _, k := range names {
				v := plan.ExpandAny(s.Ansible.ExtraVars[k], values)
				text, ok := v.(string)
				if !ok {
					b, _ := json.Marshal(v)
					text = string(b)
				}
				fmt.Fprintf(w, "     %s=%s\n", k, m.String(secretValue(k, text)))
			}
		}
	}
}

const validateHelp = `Usage: fastdeploy validate PLAN.yaml...

Checks each plan and prints every problem as FILE:LINE: FIELD: REASON.
Exit status 0 when all plans are valid, 2 otherwise.

Examples:
  fastdeploy validate testdata/plans/shell.yaml testdata/plans/failing.yaml
  fastdeploy validate testdata/plans/invalid.yaml   # exit 2: three problems named
` + planHelp

func (a *App) validate(args []string) int {
	cmd := newCommand("validate", validateHelp)
	paths, code, ok := a.parse(cmd, args)
	if !ok {
		return code
	}
	if len(paths) == 0 {
		a.usageError(cmd, "missing the plan files: fastdeploy validate PLAN.yaml...")
		return ExitUsage
	}
	code = ExitOK
	for _, path := range paths {
		p, err := plan.Load(path)
		if err != nil {
			fmt.Fprintln(a.Stderr, err)
			code = ExitUsage
			continue
		}
		fmt.Fprintf(a.Stdout, "%s: valid, %s\n", path, runner.Plural(len(p.Steps), "step"))
	}
	return code
}

const flushHelp = `Usage: fastdeploy flush [flags]

Sends the events spooled while the collector was unreachable, oldest
deployment first, and removes what was delivered. Sending twice is
harmless: the collector de-duplicates by event id. Exit status 0 when the
spool is empty afterwards, 1 when events remain.

Examples:
  fastdeploy flush
  fastdeploy flush --collector-url http://127.0.0.1:8088 --delivery-timeout 30s
`

func (a *App) flush(args []string) int {
	cmd := newCommand("flush", flushHelp)
	var c collectorFlags
	a.addCollectorFlags(cmd.fs, &c)
	operands, code, ok := a.parse(cmd, args)
	if !ok {
		return code
	}
	if len(operands) > 0 {
		a.usageError(cmd, "takes no operands, got "+strings.Join(operands, " "))
		return ExitUsage
	}
	client, spool, err := a.client(&c, nil)
	if err != nil {
		fmt.Fprintln(a.Stderr, "fastdeploy flush:", err)
		return ExitUsage
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-a.Signals:
			cancel()
		case <-ctx.Done():
		}
	}()
	res, err := spool.Flush(ctx, client)
	fmt.Fprintf(a.Stdout, "flushed %d requests (%d events) from %d spool files; %d requests remain; %d rejected\n",
		res.Sent, res.SentItems, res.Files, res.Remaining, res.Rejected)
	if err != nil {
		fmt.Fprintln(a.Stderr, "fastdeploy flush:", err)
	}
	if res.Remaining > 0 || err != nil {
		return ExitFailed
	}
	return ExitOK
}
