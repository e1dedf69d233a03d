//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/testutil/collectorproc"
)

const (
	alertService      = "shop"
	alertEnvironment  = "production"
	alertFailedStep   = "migrate"
	alertCause        = `ERROR: relation "users" already exists`
	alertGoodID       = "e2e-alert-good-1"
	alertFailedID     = "e2e-alert-failed-1"
	shippedJaegerBase = "http://127.0.0.1:16686"
)

// TestRemoteWriteToPrometheus switches the optional prometheusremotewrite
// exporter of production.yaml on through the environment, as an operator
// would, and checks that a real Prometheus running its remote-write
// receiver (and scraping nothing) gets the deployment series with the same
// labels the scrape path has, histograms included.
func TestRemoteWriteToPrometheus(t *testing.T) {
	collector := collectorproc.Binary(t)
	deployer := deployerBinary(t)
	promBin := prometheusBinary(t)
	dir := t.TempDir()
	ports := map[string]int{}
	cert := writeSelfSignedCert(t, dir)

	startOnFreePorts(t, ports, []string{"prometheus"}, func() (*exec.Cmd, string) {
		path := filepath.Join(dir, "prometheus.yml")
		require.NoError(t, os.WriteFile(path, []byte("global:\n  evaluation_interval: 1m\n"), 0o600))
		return exec.Command(promBin,
			"--config.file="+path,
			"--storage.tsdb.path="+filepath.Join(dir, "prometheus-data"),
			fmt.Sprintf("--web.listen-address=127.0.0.1:%d", ports["prometheus"]),
			"--web.enable-remote-write-receiver",
			"--log.level=warn",
		), fmt.Sprintf("http://127.0.0.1:%d/-/ready", ports["prometheus"])
	})
	prom := &prometheus{url: fmt.Sprintf("http://127.0.0.1:%d", ports["prometheus"])}
	// No Jaeger: traces queue on disk and retry, which does not hold up
	// the metrics pipeline.
	ports["jaeger_otlp"] = collectorproc.FreePort(t)
	startShippedCollector(t, collector, dir, cert, ports,
		"FASTDEPLOY_METRICS_EXPORTERS=[prometheus,prometheus_remote_write]",
		fmt.Sprintf("FASTDEPLOY_REMOTE_WRITE_ENDPOINT=http://127.0.0.1:%d/api/v1/write", ports["prometheus"]),
	)

	plans := writeAlertPlans(t, dir)
	for id, plan := range map[string]string{"e2e-rw-good": plans.good, "e2e-rw-failed": plans.failing} {
		cmd := exec.Command(deployer, "run", "--collector-url", fmt.Sprintf("https://127.0.0.1:%d", ports["receiver"]),
			"--deployment-id", id, "--progress", "plain", "--delivery-timeout", "30s",
			"--spool-dir", filepath.Join(dir, "spool"), plan)
		cmd.Env = deployerEnv(cert, dir)
		out, err := cmd.CombinedOutput()
		if plan == plans.good {
			require.NoError(t, err, "%s", out)
		} else {
			var exitErr *exec.ExitError
			require.ErrorAs(t, err, &exitErr, "the failing plan must fail: %s", out)
			require.Equal(t, 1, exitErr.ExitCode(), "fastdeploy exits 1 for a failed deployment: %s", out)
		}
	}

	sel := fmt.Sprintf(`service=%q, environment=%q`, alertService, alertEnvironment)
	for q, want := range map[string]float64{
		`sum(deployments_total{` + sel + `, status="success"})`:                                 1,
		`sum(deployments_total{` + sel + `, status="failure"})`:                                 1,
		`sum(deployment_duration_seconds_bucket{` + sel + `, status="failure", le="+Inf"})`:     1,
		`sum(step_failures_total{service="shop", step_name="migrate"})`:                         1,
		`count(step_duration_seconds_bucket{service="shop", step_name="build", le="+Inf"})`:     1,
		`sum(step_duration_seconds_count{service="shop", step_name="build", status="success"})`: 2,
	} {
		prom.waitForValue(t, q, want)
	}
	// Pushed series carry the connector's labels only: no job or instance
	// (nobody scraped them), no otel_scope_*, no target_info.
	for _, s := range prom.query(t, `{__name__=~"deployments_total|step_failures_total|deployment_duration_seconds_bucket"}`) {
		name := s.Metric["__name__"]
		own := map[string][]string{
			"deployments_total":                  {"service", "environment", "status"},
			"step_failures_total":                {"service", "step_name", "error_type"},
			"deployment_duration_seconds_bucket": {"service", "environment", "status", "le"},
		}[name]
		want := append([]string{"__name__"}, own...)
		sort.Strings(want)
		assert.Equal(t, want, labelNames(s.Metric), "labels of pushed %s", name)
	}
	assert.Empty(t, prom.query(t, `target_info`), "no target_info pushed")
	values := prom.labelValues(t, "__name__")
	for _, v := range values {
		assert.False(t, strings.HasPrefix(v, "otel_scope"), "pushed %s", v)
	}
	t.Logf("series names pushed: %s", strings.Join(values, " "))
}

// startShippedCollector runs config/production.yaml alone, every setting
// from the environment as the systemd unit's EnvironmentFile gives it:
// the ports a test must move are variables of the shipped file.
func startShippedCollector(t *testing.T, bin, dir string, cert selfSignedCert, ports map[string]int, env ...string) *collectorproc.Process {
	t.Helper()
	return startOnFreePorts(t, ports, []string{"receiver", "exporter", "health", "telemetry"}, func() (*exec.Cmd, string) {
		state := filepath.Join(dir, "state")
		require.NoError(t, os.MkdirAll(state, 0o700))
		cmd := exec.Command(bin, "--config", repoPath(t, "config/production.yaml"))
		cmd.Env = productionEnv(ports, cert, state, fmt.Sprintf("127.0.0.1:%d", ports["jaeger_otlp"]),
			fmt.Sprintf("FASTDEPLOY_HEALTH_ENDPOINT=127.0.0.1:%d", ports["health"]),
			fmt.Sprintf("FASTDEPLOY_TELEMETRY_PORT=%d", ports["telemetry"]))
		cmd.Env = append(cmd.Env, env...)
		return cmd, fmt.Sprintf("http://127.0.0.1:%d/", ports["health"])
	})
}

// startShippedPrometheus runs config/prometheus/prometheus.yml as shipped
// (intervals, relabelling, rule files), only its two targets moved to the
// test's ports.
func startShippedPrometheus(t *testing.T, bin, dir string, ports map[string]int, flags ...string) *prometheus {
	t.Helper()
	shipped, err := os.ReadFile(repoPath(t, "config/prometheus/prometheus.yml"))
	require.NoError(t, err)
	promDir := filepath.Join(dir, "prometheus")
	require.NoError(t, os.MkdirAll(promDir, 0o700))
	rules, err := filepath.Glob(repoPath(t, "config/prometheus/*.rules.yml"))
	require.NoError(t, err)
	for _, r := range rules {
		b, err := os.ReadFile(r)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(promDir, filepath.Base(r)), b, 0o600))
	}
	startOnFreePorts(t, ports, []string{"prometheus"}, func() (*exec.Cmd, string) {
		config := string(shipped)
		for target, port := range map[string]int{"'127.0.0.1:9464'": ports["exporter"], "'127.0.0.1:8888'": ports["telemetry"]} {
			require.Equal(t, 1, strings.Count(config, target), "prometheus.yml names %s once", target)
			config = strings.Replace(config, target, fmt.Sprintf("'127.0.0.1:%d'", port), 1)
		}
		path := filepath.Join(promDir, "prometheus.yml")
		require.NoError(t, os.WriteFile(path, []byte(config), 0o600))
		args := append([]string{
			"--config.file=" + path,
			"--storage.tsdb.path=" + filepath.Join(promDir, "data"),
			fmt.Sprintf("--web.listen-address=127.0.0.1:%d", ports["prometheus"]),
			"--enable-feature=exemplar-storage",
			"--log.level=warn",
		}, flags...)
		return exec.Command(bin, args...), fmt.Sprintf("http://127.0.0.1:%d/-/ready", ports["prometheus"])
	})
	return &prometheus{url: fmt.Sprintf("http://127.0.0.1:%d", ports["prometheus"])}
}

type alertPlans struct{ good, failing string }

func writeAlertPlans(t *testing.T, dir string) alertPlans {
	t.Helper()
	good := `service: shop
environment: production
revision: 0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c
steps:
  - name: build
    run: echo built shop
  - name: migrate
    run: echo migrated
`
	failing := `service: shop
environment: production
revision: 1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b
steps:
  - name: build
    run: echo built shop
  - name: migrate
    run: |
      echo "applying 0042_users.sql"
      echo '` + alertCause + `' >&2
      exit 1
  - name: switch traffic
    run: echo never runs
`
	p := alertPlans{good: filepath.Join(dir, "good.yaml"), failing: filepath.Join(dir, "failing.yaml")}
	require.NoError(t, os.WriteFile(p.good, []byte(good), 0o600))
	require.NoError(t, os.WriteFile(p.failing, []byte(failing), 0o600))
	return p
}

func labelNames(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
