//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployer/mask"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/deploytrace"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/signature"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/testutil/collectorproc"
)

// Fake credentials planted where the deployer does not mask them, so only
// the collector's secret_redaction stands between them and the backends:
// a GitHub token in a step's command line, a Slack webhook in a plan
// variable (the deployment's context), an AWS key id in an Ansible result.
var plantedSecrets = map[string]string{
	"github_token":      "ghp_" + "E2ePlantedGithubToken0123456789abcde",
	"slack_webhook":     "T0E2E0000/B0E2E0000/" + "PlantedWebhookSecret24ch",
	"aws_access_key_id": "AKIA" + "QX4B7PLANTED2E2E",
}

const (
	backendService     = "checkout"
	backendEnvironment = "production"
	failedDeployment   = "e2e-backends-1"
	restoreDeployment  = "e2e-backends-2"
	signingSecret      = "e2e-signing-secret-not-real-0123456789"
)

// TestForwardingToJaegerAndPrometheus runs config/production.yaml (TLS,
// signed requests, memory_limiter, secret_redaction, file-backed OTLP
// queue, deploy_metrics, prometheus exporter) between the bundled deployer
// and a real Jaeger v2 and a real Prometheus, which also evaluates the
// shipped rule files. One deployment fails at its smoke test, the next
// restores the service; the test reads both back through Jaeger's and
// Prometheus's HTTP APIs.
func TestForwardingToJaegerAndPrometheus(t *testing.T) {
	collector := collectorproc.Binary(t)
	deployer := deployerBinary(t)
	jaegerBin := jaegerBinary(t)
	promBin := prometheusBinary(t)
	started := time.Now()

	dir := t.TempDir()
	ports := map[string]int{}
	cert := writeSelfSignedCert(t, dir)
	jaeger := startJaeger(t, jaegerBin, dir, ports)
	proc := startProductionCollector(t, collector, dir, cert, ports)
	prom := startPrometheus(t, promBin, dir, ports)
	t.Logf("servers up after %s", time.Since(started).Round(time.Millisecond))
	receiverURL := fmt.Sprintf("https://127.0.0.1:%d", ports["receiver"])

	plans := writePlans(t, dir)
	runDeployer := func(id, plan string) *exec.Cmd {
		cmd := exec.Command(deployer, "run",
			"--collector-url", receiverURL,
			"--deployment-id", id,
			"--user", "e2e",
			"--progress", "plain",
			"--delivery-timeout", "30s",
			"--spool-dir", filepath.Join(dir, "spool"),
			"--var", "notify=https://hooks.slack.com/services/"+plantedSecrets["slack_webhook"],
			plan)
		cmd.Env = deployerEnv(cert, dir, "GATE="+filepath.Join(dir, "gate"))
		return cmd
	}

	// Prometheus scrapes the collector before anything happens (exemplars
	// older than a target's first scrape are not kept).
	prom.waitForValue(t, `up{job="otelcol-fastdeploy"}`, 1)

	// 1. A production deployment that fails at its smoke test.
	out, err := runDeployer(failedDeployment, plans.failing).CombinedOutput()
	var exitErr *exec.ExitError
	require.ErrorAs(t, err, &exitErr, "the failing plan must fail: %s", out)
	require.Equal(t, 1, exitErr.ExitCode(), "fastdeploy exits 1 for a failed deployment: %s", out)

	// Prometheus's own rule evaluation pages for it.
	prom.waitFor(t, "ProductionDeploymentFailed fires for the failed deployment", func() (bool, string) {
		alerts := prom.alerts(t)
		for _, a := range alerts {
			if a.Labels["alertname"] == "ProductionDeploymentFailed" && a.Labels["service"] == backendService && a.State == "firing" {
				return true, ""
			}
		}
		return false, fmt.Sprintf("alerts: %+v; fastdeploy said:\n%s", alerts, out)
	})

	// 2. The next deployment restores the service. Its last step waits for
	// a gate file, so active_deployments can be seen at 1 before it ends.
	restore := runDeployer(restoreDeployment, plans.restoring)
	var restoreOut bytes.Buffer
	restore.Stdout, restore.Stderr = &restoreOut, &restoreOut
	require.NoError(t, restore.Start())
	var restoreErr error
	restoreDone := make(chan struct{})
	go func() {
		restoreErr = restore.Wait()
		close(restoreDone)
	}()
	t.Cleanup(func() {
		select {
		case <-restoreDone:
		default:
			_ = restore.Process.Kill()
			<-restoreDone
		}
	})
	active := fmt.Sprintf(`sum(active_deployments{service=%q, environment=%q})`, backendService, backendEnvironment)
	prom.waitForValue(t, active, 1)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "gate"), nil, 0o600))
	select {
	case <-restoreDone:
		require.NoError(t, restoreErr, "the restoring deployment must succeed: %s", restoreOut.String())
	case <-time.After(2 * time.Minute):
		t.Fatalf("the restoring deployment did not finish: %s", restoreOut.String())
	}
	prom.waitForValue(t, active, 0)

	// 3. Both traces in Jaeger, whole and redacted.
	failedTrace := jaeger.waitForTrace(t, failedDeployment, 6)   // deployment, 3 steps, 2 subprocesses
	restoreTrace := jaeger.waitForTrace(t, restoreDeployment, 8) // deployment, 3 steps, 3 subprocesses, the Ansible task on localhost
	checkFailedTrace(t, failedTrace)
	checkRestoreTrace(t, restoreTrace)
	for name, secret := range plantedSecrets {
		for _, raw := range [][]byte{failedTrace.raw, restoreTrace.raw} {
			assert.NotContains(t, string(raw), secret, "planted %s reached Jaeger", name)
		}
		assert.NotContains(t, proc.Output(), secret, "planted %s in the collector's own logs", name)
	}
	redacted := string(failedTrace.raw) + string(restoreTrace.raw)
	assert.True(t, maskedIn(redacted, "github_token"), "the command line reached Jaeger with the token replaced")
	assert.True(t, maskedIn(redacted, "slack_webhook"), "the deployment context reached Jaeger with the webhook replaced")
	assert.True(t, maskedIn(redacted, "aws_access_key_id"), "the Ansible result reached Jaeger with the key replaced")

	// 4. The deployment metrics in Prometheus.
	sel := func(extra string) string {
		return fmt.Sprintf(`service=%q%s`, backendService, extra)
	}
	env := fmt.Sprintf(`, environment=%q`, backendEnvironment)
	for query, want := range map[string]float64{
		`sum(deployments_total{` + sel(env+`, status="failure"`) + `})`:                                           1,
		`sum(deployments_total{` + sel(env+`, status="success"`) + `})`:                                           1,
		`sum(deployment_duration_seconds_bucket{` + sel(env+`, status="failure", le="+Inf"`) + `})`:               1,
		`sum(deployment_duration_seconds_bucket{` + sel(env+`, status="success", le="+Inf"`) + `})`:               1,
		`sum(step_duration_seconds_bucket{` + sel(`, step_name="build", status="success", le="+Inf"`) + `})`:      2,
		`sum(step_duration_seconds_bucket{` + sel(`, step_name="smoke test", status="failure", le="+Inf"`) + `})`: 1,
		`sum(step_duration_seconds_bucket{` + sel(`, step_name="rollout", status="success", le="+Inf"`) + `})`:    1,
		`sum(step_failures_total{` + sel(`, step_name="smoke test", error_type="exit_code_7"`) + `})`:             1,
		`sum(step_failures_total{` + sel(``) + `})`:                                                               1,
		`sum(deployment_time_to_restore_seconds_count{` + sel(env) + `})`:                                         1,
		active: 0,
	} {
		prom.waitForValue(t, query, want)
	}

	// The histogram buckets agree with the durations Jaeger shows.
	for _, tr := range []jaegerTrace{failedTrace, restoreTrace} {
		root := tr.root(t)
		status := map[string]string{"succeeded": "success", "failed": "failure"}[attr(root, "deployment.status")]
		seconds := root.EndTimestamp().AsTime().Sub(root.StartTimestamp().AsTime()).Seconds()
		buckets := prom.query(t, `deployment_duration_seconds_bucket{`+sel(env+`, status="`+status+`"`)+`}`)
		require.NotEmpty(t, buckets)
		for _, b := range buckets {
			le, err := strconv.ParseFloat(b.Metric["le"], 64)
			require.NoError(t, err)
			want := 0.0
			if seconds <= le {
				want = 1
			}
			assert.Equal(t, want, b.Value, "deployment_duration_seconds_bucket{status=%q, le=%q} for a deployment of %.3fs", status, b.Metric["le"], seconds)
		}
	}

	// Exemplars on the duration histogram lead to the trace in Jaeger.
	prom.waitFor(t, "an exemplar of the failed deployment's duration carries its trace id", func() (bool, string) {
		ex := prom.exemplars(t, `deployment_duration_seconds_bucket{`+sel(env+`, status="failure"`)+`}`, started)
		for _, e := range ex {
			if e == failedTrace.id {
				return true, ""
			}
		}
		all := prom.exemplars(t, `{__name__=~".+"}`, started)
		return false, fmt.Sprintf("exemplar trace ids %v, want %s; all %v", ex, failedTrace.id, all)
	})

	// No label value anywhere in Prometheus holds a planted secret.
	for _, name := range []string{"service", "environment", "step_name", "error_type"} {
		values := prom.labelValues(t, name)
		for secretName, secret := range plantedSecrets {
			for _, v := range values {
				assert.NotContains(t, v, secret, "planted %s in label %s", secretName, name)
			}
		}
	}

	// 5. The collector's own logs hold no secret, signature or token. A
	// request signed correctly (422, not 401: the signature was checked)
	// that also carries a bearer token gives the test a MAC and a token
	// to look for; the deployer's MACs are unknown here, so no "v1=" or "v2=" at
	// all. Stopping the collector first makes its output complete.
	body := fmt.Sprintf(`{"type":"e2e.unknown","time":%q,"deployment":{"id":"e2e-logs","service":%q}}`,
		time.Now().UTC().Format(time.RFC3339), backendService)
	bearerToken := "e2e-bearer-token-not-real-0123456789"
	req, err := http.NewRequest(http.MethodPost, receiverURL+"/v1/deployments/events", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	signature.SignHTTP([]byte(signingSecret), time.Now(), req, []byte(body))
	signed := req.Header.Get(signature.Header)
	req.Header.Set("Authorization", "Bearer "+bearerToken)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cert.clientTLS(t)}}
	resp, err := client.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode, "a signed event of an unknown type passes the signature check and is refused")
	proc.Stop(t)
	logs := proc.Output()
	require.Contains(t, logs, "fastdeploy receiver listening", "the collector's output was captured")
	_, mac, _ := strings.Cut(signed, "v2=")
	for what, value := range map[string]string{"the signing secret": signingSecret, "a signature's MAC": mac, "a bearer token": bearerToken} {
		assert.NotContains(t, logs, value, "%s in the collector's own logs", what)
	}
	assert.NotContains(t, logs, "v1=", "a signature in the collector's own logs")
	assert.NotContains(t, logs, "v2=", "a signature in the collector's own logs")
	t.Logf("whole run %s", time.Since(started).Round(time.Millisecond))
}

// checkFailedTrace: deployment > build, smoke test, switch traffic; the
// steps that ran have their subprocess; the failure is on the smoke test.
func checkFailedTrace(t *testing.T, tr jaegerTrace) {
	t.Helper()
	checkHierarchy(t, tr)
	root := tr.root(t)
	assert.Equal(t, "deploy "+backendService, root.Name())
	assert.Equal(t, ptrace.StatusCodeError, root.Status().Code())
	assert.Equal(t, "failed", attr(root, "deployment.status"))
	assert.Equal(t, "failure", attr(root, "cicd.pipeline.result"))
	assert.Equal(t, backendEnvironment, attr(root, "deployment.environment.name"))
	assert.Equal(t, failedDeployment, attr(root, "deployment.id"))
	assert.Equal(t, failedDeployment, attr(root, "cicd.pipeline.run.id"))
	assert.Equal(t, "5d41402abc4b2a76b9719d911017c592", attr(root, "vcs.ref.head.revision"))
	assert.Equal(t, "e2e", attr(root, "user.name"))

	steps := tr.ofKind("step")
	require.Len(t, steps, 3)
	byName := map[string]ptrace.Span{}
	for _, s := range steps {
		byName[s.Name()] = s
	}
	assert.Equal(t, ptrace.StatusCodeOk, byName["build"].Status().Code())
	smoke := byName["smoke test"]
	assert.Equal(t, ptrace.StatusCodeError, smoke.Status().Code())
	assert.NotEmpty(t, smoke.Status().Message())
	assert.Equal(t, "exit_code_7", attr(smoke, "error.type"))
	assert.Equal(t, "failure", attr(smoke, "cicd.pipeline.task.run.result"))
	assert.Equal(t, "skipped", attr(byName["switch traffic"], "fastdeploy.status"))
	assert.NotEqual(t, ptrace.StatusCodeError, byName["switch traffic"].Status().Code(), "skipped is no failure")

	subs := tr.ofKind("subprocess")
	require.Len(t, subs, 2, "the skipped step ran nothing")
	for _, sub := range subs {
		if sub.ParentSpanID() == smoke.SpanID() {
			assert.Equal(t, "7", attr(sub, "process.exit.code"))
			assert.True(t, maskedIn(attr(sub, "process.command_line"), "github_token"), attr(sub, "process.command_line"))
			assert.Equal(t, ptrace.StatusCodeError, sub.Status().Code())
		}
	}
}

// checkRestoreTrace: deployment > build, configure, rollout; configure's
// ansible-playbook subprocess > the task's result on localhost (fastdeploy
// runs Ansible with its bundled json_cb callback).
func checkRestoreTrace(t *testing.T, tr jaegerTrace) {
	t.Helper()
	checkHierarchy(t, tr)
	root := tr.root(t)
	assert.Equal(t, ptrace.StatusCodeOk, root.Status().Code())
	assert.Equal(t, "succeeded", attr(root, "deployment.status"))
	assert.Equal(t, "success", attr(root, "cicd.pipeline.result"))
	for _, s := range tr.ofKind("step") {
		assert.Equal(t, ptrace.StatusCodeOk, s.Status().Code(), "step %s", s.Name())
	}
	tasks := tr.ofKind("ansible.task")
	require.Len(t, tasks, 1)
	assert.Equal(t, "configure credentials", tasks[0].Name())
	assert.Equal(t, "[localhost] roll out checkout: configure credentials", attr(tasks[0], "ansible.task.name"))
	assert.Equal(t, "ok", attr(tasks[0], "ansible.task.host.status"))
	result, ok := tasks[0].Attributes().Get("fastdeploy.ansible.result")
	require.True(t, ok, "the task span carries the Ansible result")
	assert.True(t, strings.Contains(result.AsString(), "aws_access_key_id [REDACTED:aws_access_key_id]") ||
		strings.Contains(result.AsString(), "aws_access_key_id "+mask.Placeholder), result.AsString())
}

// maskedIn reports whether text shows a secret of a kind replaced: by the
// deployer, which masks with the collector's engine before anything leaves
// it (mask.Placeholder), or by the collector's secret_redaction.
func maskedIn(text, kind string) bool {
	return strings.Contains(text, "[REDACTED:"+kind+"]") || strings.Contains(text, mask.Placeholder)
}

// checkHierarchy checks that every span but the root hangs under a span of
// the kind it belongs under, in the same trace, and that each span has the
// resource of the deployed service.
func checkHierarchy(t *testing.T, tr jaegerTrace) {
	t.Helper()
	parentKind := map[string][]string{
		"step":             {"deployment"},
		"subprocess":       {"step"},
		"ansible.playbook": {"subprocess"},
		"ansible.play":     {"ansible.playbook"},
		"ansible.task":     {"ansible.play", "subprocess"},
		"ansible.host":     {"ansible.task"},
	}
	byID := map[pcommon.SpanID]ptrace.Span{}
	for _, s := range tr.spans {
		byID[s.span.SpanID()] = s.span
	}
	for _, s := range tr.spans {
		assert.Equal(t, tr.id, s.span.TraceID().String())
		assert.Equal(t, backendService, s.service, "resource service.name of %q", s.span.Name())
		kind := attr(s.span, "fastdeploy.span.kind")
		if kind == "deployment" {
			assert.True(t, s.span.ParentSpanID().IsEmpty(), "the deployment span is the root")
			continue
		}
		parent, ok := byID[s.span.ParentSpanID()]
		if !assert.True(t, ok, "%s span %q has its parent in Jaeger", kind, s.span.Name()) {
			continue
		}
		assert.Contains(t, parentKind[kind], attr(parent, "fastdeploy.span.kind"), "parent of %s span %q", kind, s.span.Name())
	}
}

type backendPlans struct{ failing, restoring string }

func writePlans(t *testing.T, dir string) backendPlans {
	t.Helper()
	token := plantedSecrets["github_token"]
	failing := `service: checkout
environment: production
revision: 5d41402abc4b2a76b9719d911017c592
vars:
  notify: ""
steps:
  - name: build
    command: [sh, -c, 'echo built checkout']
  - name: smoke test
    run: 'echo "calling the status API as ` + token + `" >&2; exit 7'
  - name: switch traffic
    run: echo never runs
`
	restoring := `service: checkout
environment: production
revision: 7b52009b64fd0a2a49e6d8a939753077
vars:
  notify: ""
steps:
  - name: build
    command: [sh, -c, 'echo built checkout']
  - name: configure
    ansible:
      playbook: site.yml
      inventory: localhost,
    timeout: 2m
  - name: rollout
    # Holds the deployment open until the test has seen it in flight.
    run: 'while [ ! -e "$GATE" ]; do sleep 0.05; done; echo rolled out'
    timeout: 2m
`
	playbook := `- name: roll out checkout
  hosts: all
  connection: local
  gather_facts: false
  tasks:
    - name: configure credentials
      ansible.builtin.command: echo "aws configure set aws_access_key_id ` + plantedSecrets["aws_access_key_id"] + `"
      changed_when: false
`
	p := backendPlans{failing: filepath.Join(dir, "failing.yaml"), restoring: filepath.Join(dir, "restoring.yaml")}
	require.NoError(t, os.WriteFile(p.failing, []byte(failing), 0o600))
	require.NoError(t, os.WriteFile(p.restoring, []byte(restoring), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "site.yml"), []byte(playbook), 0o600))
	if _, err := exec.LookPath("ansible-playbook"); err != nil {
		t.Skip("ansible-playbook is not installed: run `make tools` (Debian package ansible)")
	}
	return p
}

// startProductionCollector runs config/production.yaml as shipped, with
// its settings from the environment as the systemd unit gives them, and a
// second config merged over it for what a test must move: the health and
// telemetry ports (fixed in production) and a short flush interval.
func startProductionCollector(t *testing.T, bin, dir string, cert selfSignedCert, ports map[string]int) *collectorproc.Process {
	t.Helper()
	p := startOnFreePorts(t, ports, []string{"receiver", "exporter", "health", "telemetry"}, func() (*exec.Cmd, string) {
		override := fillConfig(t, `
extensions:
  health_check:
    endpoint: 127.0.0.1:{{health}}
connectors:
  deploy_metrics:
    # A short flush keeps the test fast; Prometheus scrapes four times
    # per flush, so it sees each new series' zero point.
    metrics_flush_interval: 2s
processors:
  batch:
    timeout: 200ms
service:
`+telemetryReader, map[string]any{"health": ports["health"], "telemetry": ports["telemetry"]})
		overridePath := filepath.Join(dir, "test-override.yaml")
		require.NoError(t, os.WriteFile(overridePath, []byte(override), 0o600))
		state := filepath.Join(dir, "state")
		require.NoError(t, os.MkdirAll(state, 0o700))

		cmd := exec.Command(bin, "--config", repoPath(t, "config/production.yaml"), "--config", overridePath)
		cmd.Env = productionEnv(ports, cert, state, fmt.Sprintf("127.0.0.1:%d", ports["jaeger_otlp"]),
			"FASTDEPLOY_OTLP_INSECURE=true")
		return cmd, fmt.Sprintf("http://127.0.0.1:%d/", ports["health"])
	})

	// Unsigned requests are refused: the production receiver demands them
	// signed. Over HTTP/1.1 and over HTTP/2, which Go clients such as
	// fastdeploy negotiate by default on TLS.
	for _, h2 := range []bool{false, true} {
		client := &http.Client{Timeout: 10 * time.Second,
			Transport: &http.Transport{TLSClientConfig: cert.clientTLS(t), ForceAttemptHTTP2: h2}}
		resp, err := client.Post(fmt.Sprintf("https://127.0.0.1:%d/v1/deployments/events", ports["receiver"]), "application/json",
			strings.NewReader(`{"type":"deployment.started","time":"`+nowRFC3339()+`","deployment":{"id":"unsigned","service":"x"}}`))
		require.NoError(t, err, "HTTP/2 over TLS: %v", h2)
		resp.Body.Close()
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "an unsigned request must be refused")
		client.CloseIdleConnections()
	}
	return p
}

// jaeger is a running Jaeger v2 with in-memory storage.
type jaeger struct{ queryURL string }

func startJaeger(t *testing.T, bin, dir string, ports map[string]int) *jaeger {
	t.Helper()
	p := startOnFreePorts(t, ports, []string{"jaeger_otlp", "jaeger_query", "jaeger_grpc", "jaeger_health"}, func() (*exec.Cmd, string) {
		config := fmt.Sprintf(`
service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [jaeger_storage_exporter]
  telemetry:
    logs:
      level: warn
    metrics:
      level: none
    traces:
      level: none
extensions:
  healthcheckv2:
    use_v2: true
    http:
      endpoint: 127.0.0.1:%d
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: 127.0.0.1:%d
    grpc:
      endpoint: 127.0.0.1:%d
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 10000
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:%d
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
`, ports["jaeger_health"], ports["jaeger_query"], ports["jaeger_grpc"], ports["jaeger_otlp"])
		path := filepath.Join(dir, "jaeger.yaml")
		require.NoError(t, os.WriteFile(path, []byte(config), 0o600))
		return exec.Command(bin, "--config", path), fmt.Sprintf("http://127.0.0.1:%d/status", ports["jaeger_health"])
	})
	// A graceful stop takes Jaeger 10 s; its in-memory store has nothing
	// to save.
	t.Cleanup(p.Kill)
	return &jaeger{queryURL: fmt.Sprintf("http://127.0.0.1:%d", ports["jaeger_query"])}
}

type jaegerSpan struct {
	service string
	span    ptrace.Span
}

type jaegerTrace struct {
	id    string
	raw   []byte // the API's answer, as sent: checked for secrets whole
	spans []jaegerSpan
}

func (tr jaegerTrace) ofKind(kind string) []ptrace.Span {
	var out []ptrace.Span
	for _, s := range tr.spans {
		if attr(s.span, "fastdeploy.span.kind") == kind {
			out = append(out, s.span)
		}
	}
	return out
}

func (tr jaegerTrace) root(t *testing.T) ptrace.Span {
	t.Helper()
	roots := tr.ofKind("deployment")
	require.Len(t, roots, 1, "one deployment span")
	return roots[0]
}

// waitForTrace polls Jaeger's API v3 until the deployment's trace has
// want spans.
func (j *jaeger) waitForTrace(t *testing.T, deploymentID string, want int) jaegerTrace {
	t.Helper()
	id := deploytrace.DeploymentTraceID(deploymentID).String()
	var tr jaegerTrace
	var last string
	ok := poll(60*time.Second, func() bool {
		var err error
		tr, err = j.trace(id)
		if err != nil {
			last = err.Error()
			return false
		}
		last = fmt.Sprintf("%d spans", len(tr.spans))
		return len(tr.spans) >= want
	})
	require.True(t, ok, "trace of deployment %s in Jaeger: %s", deploymentID, last)
	require.Len(t, tr.spans, want, "spans of deployment %s", deploymentID)
	return tr
}

func (j *jaeger) trace(id string) (jaegerTrace, error) {
	resp, err := http.Get(j.queryURL + "/api/v3/traces/" + id)
	if err != nil {
		return jaegerTrace{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return jaegerTrace{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return jaegerTrace{}, fmt.Errorf("jaeger answered %d: %s", resp.StatusCode, raw)
	}
	var wrapper struct {
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(raw, &wrapper); err != nil {
		return jaegerTrace{}, err
	}
	td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(wrapper.Result)
	if err != nil {
		return jaegerTrace{}, fmt.Errorf("decode jaeger trace: %w", err)
	}
	tr := jaegerTrace{id: id, raw: raw}
	for i := 0; i < td.ResourceSpans().Len(); i++ {
		rs := td.ResourceSpans().At(i)
		service := ""
		if v, ok := rs.Resource().Attributes().Get("service.name"); ok {
			service = v.AsString()
		}
		for j := 0; j < rs.ScopeSpans().Len(); j++ {
			spans := rs.ScopeSpans().At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				tr.spans = append(tr.spans, jaegerSpan{service: service, span: spans.At(k)})
			}
		}
	}
	return tr, nil
}

// prometheus is a running Prometheus that scrapes the collector's
// deployment metrics every second and evaluates the shipped rules.
type prometheus struct{ url string }

func startPrometheus(t *testing.T, bin, dir string, ports map[string]int) *prometheus {
	t.Helper()
	startOnFreePorts(t, ports, []string{"prometheus"}, func() (*exec.Cmd, string) {
		config := fmt.Sprintf(`
global:
  scrape_interval: 500ms
  scrape_timeout: 500ms
  evaluation_interval: 1s
rule_files:
  - %s
  - %s
scrape_configs:
  - job_name: otelcol-fastdeploy
    static_configs:
      - targets: ['127.0.0.1:%d']
`, repoPath(t, "config/prometheus/deploy_metrics.rules.yml"), repoPath(t, "config/prometheus/fastdeploy.rules.yml"), ports["exporter"])
		path := filepath.Join(dir, "prometheus.yml")
		require.NoError(t, os.WriteFile(path, []byte(config), 0o600))
		cmd := exec.Command(bin,
			"--config.file="+path,
			"--storage.tsdb.path="+filepath.Join(dir, "prometheus-data"),
			fmt.Sprintf("--web.listen-address=127.0.0.1:%d", ports["prometheus"]),
			"--enable-feature=exemplar-storage",
			"--log.level=warn",
		)
		return cmd, fmt.Sprintf("http://127.0.0.1:%d/-/ready", ports["prometheus"])
	})
	return &prometheus{url: fmt.Sprintf("http://127.0.0.1:%d", ports["prometheus"])}
}

type promSample struct {
	Metric map[string]string
	Value  float64
}

func (p *prometheus) get(t *testing.T, path string, params url.Values, data any) error {
	t.Helper()
	resp, err := http.Get(p.url + path + "?" + params.Encode())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var body struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return err
	}
	if body.Status != "success" {
		return fmt.Errorf("prometheus %s: %s", path, body.Error)
	}
	return json.Unmarshal(body.Data, data)
}

func (p *prometheus) query(t *testing.T, q string) []promSample {
	t.Helper()
	var data struct {
		Result []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		} `json:"result"`
	}
	require.NoError(t, p.get(t, "/api/v1/query", url.Values{"query": {q}}, &data), q)
	out := make([]promSample, 0, len(data.Result))
	for _, r := range data.Result {
		s, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		require.NoError(t, err)
		out = append(out, promSample{Metric: r.Metric, Value: v})
	}
	return out
}

// waitForValue polls until the query's single sample has the wanted value.
func (p *prometheus) waitForValue(t *testing.T, q string, want float64) {
	t.Helper()
	p.waitFor(t, fmt.Sprintf("%s == %v", q, want), func() (bool, string) {
		got := p.query(t, q)
		if len(got) == 1 && math.Abs(got[0].Value-want) < 1e-9 {
			return true, ""
		}
		return false, fmt.Sprintf("got %+v", got)
	})
}

func (p *prometheus) waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	var last string
	ok := poll(60*time.Second, func() bool {
		var done bool
		done, last = cond()
		return done
	})
	require.True(t, ok, "%s: %s", what, last)
}

type promAlert struct {
	Labels map[string]string `json:"labels"`
	State  string            `json:"state"`
}

func (p *prometheus) alerts(t *testing.T) []promAlert {
	t.Helper()
	var data struct {
		Alerts []promAlert `json:"alerts"`
	}
	require.NoError(t, p.get(t, "/api/v1/alerts", url.Values{}, &data))
	return data.Alerts
}

// exemplars returns the trace ids of the query's exemplars since from.
func (p *prometheus) exemplars(t *testing.T, q string, from time.Time) []string {
	t.Helper()
	var data []struct {
		Exemplars []struct {
			Labels map[string]string `json:"labels"`
		} `json:"exemplars"`
	}
	params := url.Values{"query": {q},
		"start": {strconv.FormatInt(from.Add(-time.Minute).Unix(), 10)},
		"end":   {strconv.FormatInt(time.Now().Add(time.Minute).Unix(), 10)}}
	require.NoError(t, p.get(t, "/api/v1/query_exemplars", params, &data))
	var ids []string
	for _, series := range data {
		for _, e := range series.Exemplars {
			ids = append(ids, e.Labels["trace_id"])
		}
	}
	sort.Strings(ids)
	return ids
}

func (p *prometheus) labelValues(t *testing.T, label string) []string {
	t.Helper()
	var values []string
	require.NoError(t, p.get(t, "/api/v1/label/"+label+"/values", url.Values{}, &values))
	return values
}

// startOnFreePorts picks free loopback ports for names, builds the server's
// command with them and starts it; when one of the ports was taken between
// picking and binding (other tests run beside this one), it tries again
// with new ones.
func startOnFreePorts(t *testing.T, ports map[string]int, names []string, command func() (cmd *exec.Cmd, healthURL string)) *collectorproc.Process {
	t.Helper()
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		for _, n := range names {
			ports[n] = collectorproc.FreePort(t)
		}
		cmd, health := command()
		var p *collectorproc.Process
		if p, err = collectorproc.TryStartCommand(t, cmd, health); err == nil {
			return p
		}
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
		t.Logf("a port was taken, attempt %d: %s", attempt, strings.SplitN(err.Error(), "\n", 2)[0])
	}
	t.Fatal(err)
	return nil
}

// poll checks cond every 100 ms until it holds or timeout passes.
func poll(timeout time.Duration, cond func() bool) bool {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if cond() {
			return true
		}
		select {
		case <-ctx.Done():
			return cond()
		case <-tick.C:
		}
	}
}

func repoPath(t *testing.T, name string) string {
	t.Helper()
	_, here, _, _ := runtime.Caller(0)
	path, err := filepath.Abs(filepath.Join(filepath.Dir(here), "..", "..", name))
	require.NoError(t, err)
	return path
}

// jaegerBinary builds Jaeger v2 once (scripts/jaeger.sh caches it in
// ~/.cache/otelcol-fastdeploy) and returns its path; the test is skipped when it cannot be
// built here.
func jaegerBinary(t *testing.T) string {
	t.Helper()
	start := time.Now()
	cmd := exec.Command(repoPath(t, "scripts/jaeger.sh"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Skipf("Jaeger v2 cannot be built here (scripts/jaeger.sh: %v): %s", err, stderr.String())
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Logf("built Jaeger in %s", d.Round(time.Second))
	}
	return strings.TrimSpace(string(out))
}

// prometheusBinary finds Debian's prometheus, which `make tools`
// (scripts/ensure-tools.sh) installs.
func prometheusBinary(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if errors.Is(err, exec.ErrNotFound) {
		t.Skip("prometheus is not installed and could not be: run `make tools` (Debian package prometheus)")
	}
	require.NoError(t, err)
	return bin
}

type selfSignedCert struct{ certFile, keyFile string }

// writeSelfSignedCert makes a certificate for 127.0.0.1 that the deployer
// trusts through SSL_CERT_FILE.
func writeSelfSignedCert(t *testing.T, dir string) selfSignedCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "otelcol-fastdeploy e2e"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	c := selfSignedCert{certFile: filepath.Join(dir, "tls.crt"), keyFile: filepath.Join(dir, "tls.key")}
	require.NoError(t, os.WriteFile(c.certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(c.keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600))
	return c
}

func (c selfSignedCert) clientTLS(t *testing.T) *tls.Config {
	t.Helper()
	pemBytes, err := os.ReadFile(c.certFile)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(pemBytes))
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}
