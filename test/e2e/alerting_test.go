//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deploytrace"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/testutil/collectorproc"
)

// TestFailureToCauseAndAlert measures, for a failing production deployment,
// how long after the failing step ends its trace (with the failed step and
// its cause) is queryable in a real Jaeger v2, and how long until a real
// Prometheus, loaded with the shipped prometheus.yml and rule files, has
// ProductionDeploymentFailed FIRING. The collector runs
// config/production.yaml as shipped, only its ports moved through the
// environment file's variables. Both latencies must stay within the worst
// case computed from the shipped settings; the alert's annotations must
// name the failed step, and its traces link must find the trace in Jaeger.
// The series' label sets are checked too: no otel_scope_* labels.
func TestFailureToCauseAndAlert(t *testing.T) {
	collector := collectorproc.Binary(t)
	deployer := deployerBinary(t)
	jaegerBin := jaegerBinary(t)
	promBin := prometheusBinary(t)
	settings := readPagingSettings(t)
	t.Logf("shipped settings: %+v; worst case to FIRING %s, to the trace in Jaeger %s",
		settings, settings.alertWorstCase(), settings.traceWorstCase())

	dir := t.TempDir()
	ports := map[string]int{}
	cert := writeSelfSignedCert(t, dir)
	jaeger := startJaeger(t, jaegerBin, dir, ports)
	startShippedCollector(t, collector, dir, cert, ports)
	prom := startShippedPrometheus(t, promBin, dir, ports)
	receiverURL := fmt.Sprintf("https://127.0.0.1:%d", ports["receiver"])
	plans := writeAlertPlans(t, dir)
	run := func(id, plan string) ([]byte, error) {
		cmd := exec.Command(deployer, "run",
			"--collector-url", receiverURL,
			"--deployment-id", id,
			"--user", "e2e",
			"--progress", "plain",
			"--delivery-timeout", "30s",
			"--spool-dir", filepath.Join(dir, "spool"),
			plan)
		cmd.Env = deployerEnv(cert, dir)
		return cmd.CombinedOutput()
	}

	prom.waitForValue(t, `up{job="otelcol-fastdeploy"}`, 1)
	prom.waitForValue(t, `up{job="otelcol-fastdeploy-internal"}`, 1)

	// A good deployment first: its series exist, nothing pages.
	out, err := run(alertGoodID, plans.good)
	require.NoError(t, err, "the good deployment: %s", out)
	prom.waitForValue(t, fmt.Sprintf(`sum(deployments_total{service=%q, status="success"})`, alertService), 1)
	for _, a := range prom.alerts(t) {
		assert.NotEqual(t, "ProductionDeploymentFailed", a.Labels["alertname"], "a good deployment pages: %+v", a)
	}

	// Watchers start before the failing deployment, so they see the first
	// moment the trace and the alert are there.
	traceID := deploytrace.DeploymentTraceID(alertFailedID).String()
	deadline := settings.alertWorstCase() + 60*time.Second
	var (
		wg         sync.WaitGroup
		traceSeen  time.Time
		seenTrace  jaegerTrace
		alertSeen  time.Time
		firing     firingAlert
		watchErrs  = make(chan error, 2)
		stopWatch  = make(chan struct{})
		stopClosed sync.Once
	)
	stop := func() { stopClosed.Do(func() { close(stopWatch) }) }
	t.Cleanup(stop)
	wg.Add(2)
	go func() {
		defer wg.Done()
		ok := pollUntil(deadline, 50*time.Millisecond, stopWatch, func() bool {
			tr, err := jaeger.trace(traceID)
			if err != nil || failedStep(tr) == nil {
				return false
			}
			traceSeen, seenTrace = time.Now(), tr
			return true
		})
		if !ok {
			watchErrs <- fmt.Errorf("the failed step's span was not in Jaeger within %s", deadline)
		}
	}()
	go func() {
		defer wg.Done()
		ok := pollUntil(deadline, 100*time.Millisecond, stopWatch, func() bool {
			for _, a := range prom.firingAlerts() {
				if a.Labels["alertname"] == "ProductionDeploymentFailed" && a.Labels["service"] == alertService && a.State == "firing" {
					alertSeen, firing = time.Now(), a
					return true
				}
			}
			return false
		})
		if !ok {
			watchErrs <- fmt.Errorf("ProductionDeploymentFailed did not fire within %s", deadline)
		}
	}()

	out, err = run(alertFailedID, plans.failing)
	var exitErr *exec.ExitError
	require.ErrorAs(t, err, &exitErr, "the failing plan must fail: %s", out)
	require.Equal(t, 1, exitErr.ExitCode(), "fastdeploy exits 1 for a failed deployment: %s", out)
	wg.Wait()
	close(watchErrs)
	for err := range watchErrs {
		require.NoError(t, err, "fastdeploy said:\n%s", out)
	}

	// From the failed step's end, as the trace records it.
	step := failedStep(seenTrace)
	require.NotNil(t, step)
	stepEnd := step.EndTimestamp().AsTime()
	traceLatency := traceSeen.Sub(stepEnd)
	alertLatency := alertSeen.Sub(stepEnd)
	t.Logf("failed step ended %s; trace with the failed step queryable in Jaeger after %.2f s; ProductionDeploymentFailed FIRING after %.2f s (Prometheus activeAt %s, %.2f s)",
		stepEnd.Format(time.RFC3339Nano), traceLatency.Seconds(), alertLatency.Seconds(),
		firing.ActiveAt.Format(time.RFC3339Nano), firing.ActiveAt.Sub(stepEnd).Seconds())
	// The machine is shared: a little slack over the computed bound for
	// process scheduling and HTTP round trips, none of it a setting.
	const slack = 3 * time.Second
	assert.LessOrEqual(t, traceLatency, settings.traceWorstCase()+slack, "trace latency beyond the shipped settings' worst case")
	assert.LessOrEqual(t, alertLatency, settings.alertWorstCase()+slack, "alert latency beyond the shipped settings' worst case")

	// The cause is on the failed step's span.
	assert.Equal(t, ptrace.StatusCodeError, step.Status().Code())
	errorType := attr(*step, "error.type")
	require.NotEmpty(t, errorType, "the failed step carries error.type")
	assert.NotEmpty(t, step.Status().Message(), "the failed step says why")
	if strings.Contains(string(seenTrace.raw), "already exists") {
		t.Logf("the cause (%q) is in the trace", alertCause)
	} else {
		t.Logf("the step's stderr is not in the trace yet; status message %q", step.Status().Message())
	}

	// The alert names the failed step, and its traces link finds the trace.
	assert.Equal(t, alertEnvironment, firing.Labels["environment"])
	assert.Equal(t, "page", firing.Labels["severity"])
	prom.waitFor(t, "the alert's failed_step annotation names the step", func() (bool, string) {
		for _, a := range prom.firingAlerts() {
			if a.Labels["alertname"] == "ProductionDeploymentFailed" && a.Labels["service"] == alertService {
				firing = a
				want := fmt.Sprintf("%s (%s)", alertFailedStep, errorType)
				return a.Annotations["failed_step"] == want, fmt.Sprintf("annotations %v, want failed_step %q", a.Annotations, want)
			}
		}
		return false, "the alert is gone"
	})
	assert.Contains(t, firing.Annotations["description"], "Failed step: "+alertFailedStep)
	link := firing.Annotations["traces"]
	require.True(t, strings.HasPrefix(link, shippedJaegerBase+"/search?"), "traces link %q", link)
	// Jaeger's UI search page and its HTTP API take the same parameters;
	// this Jaeger (built from the Go module) serves only the API.
	apiURL := jaeger.queryURL + "/api/traces?" + strings.TrimPrefix(link, shippedJaegerBase+"/search?")
	found := jaegerSearch(t, apiURL)
	assert.Contains(t, found, traceID, "the alert's traces link %s finds the failed deployment's trace", link)
	assert.NotContains(t, found, deploytrace.DeploymentTraceID(alertGoodID).String(),
		"the alert's traces link %s finds the failing deployment, not the good one before it", link)

	checkLabelSets(t, prom, ports)
}

// firingAlert is an alert as Prometheus's /api/v1/alerts shows it.
type firingAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       string            `json:"state"`
	ActiveAt    time.Time         `json:"activeAt"`
}

// firingAlerts asks without failing the test: it runs in a watcher
// goroutine, where require must not be used.
func (p *prometheus) firingAlerts() []firingAlert {
	resp, err := http.Get(p.url + "/api/v1/alerts")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var body struct {
		Data struct {
			Alerts []firingAlert `json:"alerts"`
		} `json:"data"`
	}
	if json.NewDecoder(resp.Body).Decode(&body) != nil {
		return nil
	}
	return body.Data.Alerts
}

// pollUntil checks cond every interval until it holds, stop closes or
// timeout passes.
func pollUntil(timeout, interval time.Duration, stop <-chan struct{}, cond func() bool) bool {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if cond() {
			return true
		}
		select {
		case <-stop:
			return false
		case <-timer.C:
			return cond()
		case <-tick.C:
		}
	}
}

// failedStep returns the failed migrate step's span, once Jaeger has it.
func failedStep(tr jaegerTrace) *ptrace.Span {
	for _, s := range tr.ofKind("step") {
		if s.Name() == alertFailedStep && s.Status().Code() == ptrace.StatusCodeError {
			return &s
		}
	}
	return nil
}

// jaegerSearch GETs a search URL of Jaeger's HTTP API and returns the
// trace ids it found.
func jaegerSearch(t *testing.T, u string) []string {
	t.Helper()
	resp, err := http.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", u, raw)
	var body struct {
		Data []struct {
			TraceID string `json:"traceID"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(raw, &body))
	ids := make([]string, 0, len(body.Data))
	for _, d := range body.Data {
		ids = append(ids, d.TraceID)
	}
	return ids
}

// checkLabelSets: every deployment series in Prometheus has exactly the
// connector's labels plus job and instance (no otel_scope_*, which the
// exporter's without_scope_info drops), as has /metrics itself; the
// collector's own telemetry has no otel_scope_* labels either.
func checkLabelSets(t *testing.T, prom *prometheus, ports map[string]int) {
	t.Helper()
	want := map[string][]string{
		"deployments_total":                  {"service", "environment", "status"},
		"deployment_duration_seconds_bucket": {"service", "environment", "status", "le"},
		"deployment_duration_seconds_count":  {"service", "environment", "status"},
		"deployment_duration_seconds_sum":    {"service", "environment", "status"},
		"step_duration_seconds_bucket":       {"service", "step_name", "status", "le"},
		"step_duration_seconds_count":        {"service", "step_name", "status"},
		"step_failures_total":                {"service", "step_name", "error_type"},
		"active_deployments":                 {"service", "environment"},
	}
	seen := map[string]bool{}
	for _, s := range prom.query(t, `{job="otelcol-fastdeploy"}`) {
		name := s.Metric["__name__"]
		labels := wantLabels(want[name])
		if labels == nil {
			continue
		}
		seen[name] = true
		assert.Equal(t, labels, labelNames(s.Metric), "labels of %s", name)
	}
	for name := range want {
		assert.True(t, seen[name], "no %s series in Prometheus", name)
	}
	for _, s := range prom.query(t, `{job="otelcol-fastdeploy-internal"}`) {
		for l := range s.Metric {
			assert.False(t, strings.HasPrefix(l, "otel_scope_"), "%s carries %s", s.Metric["__name__"], l)
		}
	}
	// What the exporter serves, before any relabelling by Prometheus.
	for _, port := range []int{ports["exporter"], ports["telemetry"]} {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Contains(t, string(body), "# TYPE", "port %d serves metrics", port)
		assert.NotContains(t, string(body), "otel_scope_", "port %d serves otel_scope_* labels", port)
	}
	// The optional remote-write exporter is off unless configured.
	for _, s := range prom.query(t, `{job="otelcol-fastdeploy-internal", exporter=~"prometheus_?remote_?write.*"}`) {
		t.Errorf("prometheusremotewrite runs although FASTDEPLOY_METRICS_EXPORTERS is unset: %v", s.Metric)
	}
}

func wantLabels(own []string) []string {
	if own == nil {
		return nil
	}
	out := append([]string{"__name__", "instance", "job"}, own...)
	sort.Strings(out)
	return out
}

// pagingSettings are the shipped settings that bound how soon a failure
// pages and how soon its trace is in Jaeger.
type pagingSettings struct {
	FlushInterval  time.Duration // deploy_metrics metrics_flush_interval (production.yaml)
	ScrapeInterval time.Duration // job otelcol-fastdeploy (prometheus.yml)
	RuleInterval   time.Duration // group fastdeploy_paging (fastdeploy.rules.yml)
	For            time.Duration // ProductionDeploymentFailed's for:
	TraceFlush     time.Duration // otlp_grpc sending_queue batch flush_timeout
}

// alertWorstCase: a new failure series goes out at zero for one flush
// first, then with its count at the next; a scrape picks that up within
// one scrape interval; the group evaluates within one rule interval; then
// for: must pass.
func (s pagingSettings) alertWorstCase() time.Duration {
	return 2*s.FlushInterval + s.ScrapeInterval + s.RuleInterval + s.For
}

// traceWorstCase: the exporter's queue sends a batch at flush_timeout at
// the latest (it is never full with one deployment); Jaeger's memory store
// answers as soon as it has stored it.
func (s pagingSettings) traceWorstCase() time.Duration { return s.TraceFlush }

func readPagingSettings(t *testing.T) pagingSettings {
	t.Helper()
	read := func(name string) string {
		b, err := os.ReadFile(repoPath(t, name))
		require.NoError(t, err)
		return string(b)
	}
	one := func(what, text, pattern string) time.Duration {
		m := regexp.MustCompile(pattern).FindAllStringSubmatch(text, -1)
		require.Len(t, m, 1, "%s: want exactly one match of %s", what, pattern)
		d, err := time.ParseDuration(m[0][1])
		require.NoError(t, err, what)
		return d
	}
	section := func(text, start, next string) string {
		i := strings.Index(text, start)
		require.GreaterOrEqual(t, i, 0, "%q not found", start)
		rest := text[i+len(start):]
		if j := strings.Index(rest, next); j >= 0 {
			rest = rest[:j]
		}
		return rest
	}
	prod := read("config/production.yaml")
	prom := read("config/prometheus/prometheus.yml")
	rules := read("config/prometheus/fastdeploy.rules.yml")
	s := pagingSettings{
		FlushInterval:  one("metrics_flush_interval", prod, `(?m)^\s+metrics_flush_interval: (\S+)`),
		TraceFlush:     one("otlp_grpc flush_timeout", section(prod, "\n  otlp_grpc:", "\n  prometheus:"), `(?m)^\s+flush_timeout: (\S+)`),
		ScrapeInterval: one("scrape_interval", section(prom, "- job_name: otelcol-fastdeploy\n", "- job_name:"), `(?m)^\s+scrape_interval: (\S+)`),
		RuleInterval:   one("fastdeploy_paging interval", section(rules, "- name: fastdeploy_paging\n", "\n  - name:"), `(?m)^    interval: (\S+)`),
	}
	alert := section(rules, "- alert: ProductionDeploymentFailed\n", "- alert:")
	if slices.ContainsFunc(strings.Split(alert, "\n"), func(l string) bool { return strings.HasPrefix(strings.TrimSpace(l), "for:") }) {
		s.For = one("ProductionDeploymentFailed for", alert, `(?m)^\s+for: (\S+)`)
	}
	return s
}
