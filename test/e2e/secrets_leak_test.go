//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/testutil/collectorproc"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/testutil/otlpsink"
)

// leakPlan is the scenario of a new user: secrets in the environment used
// by shell steps (mysql -p$VAR, docker login -p $VAR), in an argv, by an
// Ansible task that echoes them, and in a failing step's error output; a
// --var whose name ends in _key.
const leakPlan = `service: shop
environment: production
vars:
  encryption_key: {required: true}
  registry_pat: {env: REGISTRY_PAT}
  db_password: {env: CI_DB_PASSWORD}
steps:
  - name: migrate
    run: echo mysql -uapp -p$CI_DB_PASSWORD -h db; echo "key is ${encryption_key}"
  - name: login
    run: echo docker login -u ci -p $REGISTRY_PAT registry.example.com
  - name: argv
    command: [echo, docker, login, -p, "${registry_pat}", registry.example.com]
  - name: configure
    ansible:
      playbook: site.yml
      inventory: localhost,
      extra_vars:
        db_password: ${db_password}
    timeout: 5m
  - name: connect
    command: [sh, -c, 'echo "ERROR 1045: mysql -uapp -p$CI_DB_PASSWORD -h db: access denied" >&2; exit 3']
    continue_on_error: true
`

const leakPlaybook = `
- name: configure shop
  hosts: all
  connection: local
  gather_facts: false
  tasks:
    - name: log in to database
      ansible.builtin.command: "echo mysql -uapp -p{{ db_password }} -h db"
      changed_when: false
    - name: show the registry login
      ansible.builtin.debug:
        msg: "docker login -p {{ lookup('env', 'REGISTRY_PAT') }} registry.example.com"
`

// leakOverride moves what a test must move in config/production.yaml
// (health and telemetry ports, flush interval) and sends every signal the
// pipelines produce to a local OTLP sink as well: traces beside the
// connector, logs beside the connector, the deployment metrics beside the
// Prometheus exporter.
const leakOverride = `
extensions:
  health_check:
    endpoint: 127.0.0.1:{{health}}
connectors:
  deploy_metrics:
    metrics_flush_interval: 1s
exporters:
  otlp_http/sink:
    endpoint: {{sink}}
    compression: none
service:
  pipelines:
    traces:
      exporters: [otlp_http/sink, deploy_metrics]
    logs:
      exporters: [otlp_http/sink, deploy_metrics]
    metrics:
      exporters: [prometheus, otlp_http/sink]
` + telemetryReader

// TestNoPlantedSecretLeaks runs the leak scenario through the built
// deployer and config/production.yaml (TLS, signed requests,
// secret_redaction before every exporter and the connector): first with
// the collector unreachable, so every event is spooled, then flushed, then
// once more with the collector up. No planted value may appear in the
// console, the deployer's JSON logs, its spool, its temporary files, what
// the collector exported (spans, logs, metrics), the Prometheus endpoint,
// the collector's own metrics or its log.
func TestNoPlantedSecretLeaks(t *testing.T) {
	needAnsible(t)
	collector := collectorproc.Binary(t)
	deployerBin := deployerBinary(t)

	// Built at run time: no literal in the repository looks like a credential.
	dbPassword := "gen" + strings.Repeat("Db7x", 4)
	pat := "ghp_" + strings.Repeat("Zq9T", 9)
	encKey := "gen" + strings.Repeat("Ek4w", 5)
	planted := map[string]string{"CI_DB_PASSWORD": dbPassword, "REGISTRY_PAT": pat, "encryption_key": encKey}

	dir := t.TempDir()
	cert := writeSelfSignedCert(t, dir)
	sink, err := otlpsink.Start()
	require.NoError(t, err)
	t.Cleanup(func() { _ = sink.Close() })

	ports := map[string]int{}
	proc := startOnFreePorts(t, ports, []string{"receiver", "exporter", "health", "telemetry"}, func() (*exec.Cmd, string) {
		overridePath := filepath.Join(dir, "test-override.yaml")
		require.NoError(t, os.WriteFile(overridePath,
			[]byte(fillConfig(t, leakOverride, map[string]any{"health": ports["health"], "sink": sink.Endpoint(), "telemetry": ports["telemetry"]})), 0o600))
		state := filepath.Join(dir, "state")
		require.NoError(t, os.MkdirAll(state, 0o700))
		cmd := exec.Command(collector, "--config", repoPath(t, "config/production.yaml"), "--config", overridePath)
		// No Jaeger here: otlp_grpc is out of the traces pipeline.
		cmd.Env = productionEnv(ports, cert, state, "127.0.0.1:1")
		return cmd, fmt.Sprintf("http://127.0.0.1:%d/", ports["health"])
	})
	receiverURL := fmt.Sprintf("https://127.0.0.1:%d", ports["receiver"])

	planDir := writeFiles(t, map[string]string{"plan.yaml": leakPlan, "site.yml": leakPlaybook})
	spool := filepath.Join(dir, "spool")
	tmp := filepath.Join(dir, "tmp") // the deployer's TMPDIR: every temporary file it makes
	require.NoError(t, os.MkdirAll(tmp, 0o700))

	type result struct {
		code           int
		stdout, stderr string
	}
	run := func(args ...string) result {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, deployerBin, args...)
		cmd.Env = deployerEnv(cert, dir, "CI_DB_PASSWORD="+dbPassword, "REGISTRY_PAT="+pat, "TMPDIR="+tmp)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return result{exit.ExitCode(), stdout.String(), stderr.String()}
		}
		require.NoError(t, err, stderr.String())
		return result{0, stdout.String(), stderr.String()}
	}
	deploy := func(collectorURL, id string) result {
		return run("run", "--collector-url", collectorURL, "--deployment-id", id, "--progress", "plain",
			"--log-format", "json", "--log-level", "debug", "--delivery-timeout", "2s", "--spool-dir", spool,
			"--var", "encryption_key="+encKey, filepath.Join(planDir, "plan.yaml"))
	}
	noPlanted := func(where, text string) {
		t.Helper()
		for name, v := range planted {
			assert.NotContains(t, text, v, "%s holds %s", where, name)
		}
	}
	scanFiles := func(root string) int {
		t.Helper()
		files := 0
		require.NoError(t, filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := os.ReadFile(path)
			if errors.Is(err, os.ErrNotExist) {
				return nil // removed while we walked
			}
			require.NoError(t, err)
			files++
			noPlanted(path, string(data))
			return nil
		}))
		return files
	}

	// 1. The collector is unreachable: every event goes to the spool.
	l := collectorproc.FreePort(t)
	offline := deploy(fmt.Sprintf("https://127.0.0.1:%d", l), "e2e-leak-offline")
	require.Equal(t, 0, offline.code, "the deployment succeeds without a collector:\n%s\n%s", offline.stdout, offline.stderr)
	assert.Contains(t, offline.stdout, "docker login -u ci -p ***", "the console shows where a secret was")
	noPlanted("console (offline run)", offline.stdout)
	noPlanted("JSON logs (offline run)", offline.stderr)
	assert.Positive(t, scanFiles(spool), "the events were spooled")
	scanFiles(tmp)

	// 2. The spool is flushed to the production collector.
	flushed := run("flush", "--collector-url", receiverURL, "--spool-dir", spool)
	require.Equal(t, 0, flushed.code, "%s\n%s", flushed.stdout, flushed.stderr)
	noPlanted("flush output", flushed.stdout+flushed.stderr)

	// 3. The same deployment with the collector up.
	online := deploy(receiverURL, "e2e-leak-online")
	require.Equal(t, 0, online.code, "%s\n%s", online.stdout, online.stderr)
	noPlanted("console", online.stdout)
	noPlanted("JSON logs", online.stderr)
	for _, line := range strings.Split(strings.TrimSpace(online.stderr), "\n") {
		assert.True(t, strings.HasPrefix(line, "{"), "the deployer logs JSON lines: %q", line)
	}
	scanFiles(spool)
	scanFiles(tmp)

	// Both deployments reach the sink whole: the Ansible tasks, the failed
	// step's message and the metrics the connector made of them.
	require.True(t, sink.WaitFor(60*time.Second, func() bool {
		for _, id := range []string{"e2e-leak-offline", "e2e-leak-online"} {
			sp := spansOf(sink, id)
			if len(sp["deployment"]) != 1 || len(sp["ansible.task"]) < 2 || len(sp["step"]) < 5 {
				return false
			}
		}
		return len(sink.Logs()) > 0 && len(sink.Metrics()) > 0
	}), "spans: %d, logs: %d, metrics: %d\ncollector:\n%s", len(sink.Spans()), len(sink.Logs()), len(sink.Metrics()), proc.Output())
	exported := sink.ExportedJSON(t)
	for _, md := range sink.Metrics() {
		out, err := (&pmetric.JSONMarshaler{}).MarshalMetrics(md)
		require.NoError(t, err)
		exported += string(out)
	}
	noPlanted("exported telemetry", exported)
	// The secrets were there to leak: the export shows where they were masked.
	assert.Contains(t, exported, "-p ***", "the deployer masked the values it knows")
	for _, sp := range spansOf(sink, "e2e-leak-online")["step"] {
		if sp.Name() == "connect" {
			assert.Equal(t, "failure", attr(sp, "fastdeploy.status"))
		}
	}

	// What Prometheus scrapes, and the collector's own metrics and log.
	for _, u := range []string{fmt.Sprintf("http://127.0.0.1:%d/metrics", ports["exporter"]), fmt.Sprintf("http://127.0.0.1:%d/metrics", ports["telemetry"])} {
		resp, err := http.Get(u)
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, u)
		noPlanted(u, string(body))
	}
	noPlanted("collector log", proc.Output())

	// Everything else on disk: the deployer's HOME (Ansible's ~/.ansible
	// included), the collector's state directory (its queue and in-flight
	// deployments) and the certificates.
	files := scanFiles(dir)
	t.Logf("%d files scanned under %s", files, dir)
}
