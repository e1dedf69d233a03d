//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deploytrace"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/testutil/collectorproc"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/testutil/otlpsink"
)

// stack is a running collector that exports to an OTLP sink.
type stack struct {
	sink      *otlpsink.Sink
	proc      *collectorproc.Process
	receiver  string // base URL of the fastdeploy receiver
	telemetry string // the collector's own Prometheus metrics URL
	metrics   string // the prometheus exporter's URL: deployment metrics
}

const basicConfig = `
extensions:
  health_check:
    endpoint: 127.0.0.1:{{health}}
receivers:
  fastdeploy:
    endpoint: 127.0.0.1:{{receiver}}
    max_request_body_size: 1048576
processors:
  secret_redaction: {}
  batch:
    timeout: 100ms
connectors:
  deploy_metrics:
    metrics_flush_interval: 200ms
exporters:
  otlp_http:
    endpoint: {{sink}}
    compression: none
  prometheus:
    endpoint: 127.0.0.1:{{prometheus}}
service:
  extensions: [health_check]
  pipelines:
    traces:
      receivers: [fastdeploy]
      processors: [secret_redaction, batch]
      exporters: [otlp_http, deploy_metrics]
    logs:
      receivers: [fastdeploy]
      processors: [secret_redaction, batch]
      exporters: [otlp_http, deploy_metrics]
    metrics/deployments:
      receivers: [deploy_metrics]
      exporters: [prometheus]
` + telemetryReader

func startStack(t *testing.T, config string) *stack {
	t.Helper()
	bin := collectorproc.Binary(t)
	sink, err := otlpsink.Start()
	require.NoError(t, err)
	t.Cleanup(func() { _ = sink.Close() })
	ports := map[string]int{
		"health":     collectorproc.FreePort(t),
		"receiver":   collectorproc.FreePort(t),
		"telemetry":  collectorproc.FreePort(t),
		"prometheus": collectorproc.FreePort(t),
	}
	cfg := fillConfig(t, config, map[string]any{"sink": sink.Endpoint(),
		"health": ports["health"], "receiver": ports["receiver"], "telemetry": ports["telemetry"], "prometheus": ports["prometheus"]})
	s := &stack{
		sink:      sink,
		receiver:  fmt.Sprintf("http://127.0.0.1:%d", ports["receiver"]),
		telemetry: fmt.Sprintf("http://127.0.0.1:%d/metrics", ports["telemetry"]),
		metrics:   fmt.Sprintf("http://127.0.0.1:%d/metrics", ports["prometheus"]),
	}
	s.proc = collectorproc.Start(t, bin, cfg, fmt.Sprintf("http://127.0.0.1:%d/", ports["health"]))
	return s
}

func repoFile(t *testing.T, name string) []byte {
	t.Helper()
	_, here, _, _ := runtime.Caller(0)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(here), "..", "..", name))
	require.NoError(t, err)
	return b
}

func lines(b []byte) [][]byte {
	var out [][]byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if l := bytes.TrimSpace(sc.Bytes()); len(l) > 0 {
			out = append(out, append([]byte(nil), l...))
		}
	}
	return out
}

type response struct {
	status int
	header http.Header
	body   map[string]any
}

func post(t *testing.T, url, contentType string, body []byte, headers map[string]string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", contentType)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	r := response{status: resp.StatusCode, header: resp.Header}
	require.NoError(t, json.Unmarshal(raw, &r.body), "response body must be JSON: %s", raw)
	return r
}

func attr(s ptrace.Span, k string) string {
	v, ok := s.Attributes().Get(k)
	if !ok {
		return ""
	}
	return v.AsString()
}

// TestDeploymentBecomesOneTrace posts a deployment's lifecycle events and
// the Ansible run of one of its steps, as the deployer does while it runs,
// and checks the trace and logs that leave the collector.
func TestDeploymentBecomesOneTrace(t *testing.T) {
	s := startStack(t, basicConfig)
	samples, shift := presentSamples(t, "testdata/deployment-events.ndjson", "testdata/ansible-json_cb.ndjson")
	events := lines(samples[0])
	require.Len(t, events, 8)
	ndjson := func(ls [][]byte) []byte { return append(bytes.Join(ls, []byte("\n")), '\n') }

	// Up to and including "migrate" started, then its Ansible run, then the rest.
	r := post(t, s.receiver+"/v1/deployments/events", "application/x-ndjson", ndjson(events[:4]), nil)
	require.Equal(t, http.StatusOK, r.status, r.body)
	assert.EqualValues(t, 4, r.body["accepted"])
	r = post(t, s.receiver+"/v1/ansible?tz=UTC", "application/x-ndjson", samples[1],
		map[string]string{"X-Fastdeploy-Deployment": "42", "X-Fastdeploy-Step": "migrate"})
	require.Equal(t, http.StatusOK, r.status, r.body)
	assert.EqualValues(t, 6, r.body["accepted"])
	// The rest as a JSON array, the other accepted shape.
	r = post(t, s.receiver+"/v1/deployments/events", "application/json", []byte("["+string(bytes.Join(events[4:], []byte(",")))+"]"), nil)
	require.Equal(t, http.StatusOK, r.status, r.body)
	assert.EqualValues(t, 4, r.body["accepted"])

	const wantSpans = 1 + 3 + 3 + 6 // deployment, steps, subprocesses, tasks
	const wantLogs = 8 + 6
	require.True(t, s.sink.WaitFor(30*time.Second, func() bool {
		return len(s.sink.Spans()) >= wantSpans && len(s.sink.Logs()) >= wantLogs
	}), "got %d spans and %d log records", len(s.sink.Spans()), len(s.sink.Logs()))

	spans := s.sink.Spans()
	require.Len(t, spans, wantSpans)
	trace := deploytrace.DeploymentTraceID("42")
	byKind := map[string][]otlpsink.Span{}
	bySpanID := map[[8]byte]otlpsink.Span{}
	for _, sp := range spans {
		assert.Equal(t, trace.String(), sp.Span.TraceID().String(), "every span is in the deployment's trace")
		assert.Equal(t, "web", sp.Resource["service.name"])
		byKind[attr(sp.Span, "fastdeploy.span.kind")] = append(byKind[attr(sp.Span, "fastdeploy.span.kind")], sp)
		bySpanID[sp.Span.SpanID()] = sp
	}
	require.Len(t, byKind["deployment"], 1)
	require.Len(t, byKind["step"], 3)
	require.Len(t, byKind["subprocess"], 3)
	require.Len(t, byKind["ansible.task"], 6)

	dep := byKind["deployment"][0].Span
	assert.True(t, dep.ParentSpanID().IsEmpty(), "the deployment span is the root")
	assert.Equal(t, "deploy web", dep.Name())
	assert.Equal(t, ptrace.StatusCodeOk, dep.Status().Code())
	assert.Equal(t, "production", attr(dep, "deployment.environment.name"))
	assert.Equal(t, "succeeded", attr(dep, "deployment.status"))
	assert.Equal(t, "success", attr(dep, "cicd.pipeline.result"))
	assert.Equal(t, "9f2c1e7b3a5d4c6e8f0a1b2c3d4e5f6a7b8c9d0e", attr(dep, "vcs.ref.head.revision"))
	assert.Equal(t, time.Date(2026, 11, 27, 11, 0, 20, 0, time.UTC).Add(shift), dep.StartTimestamp().AsTime(), "times are the events' own")
	assert.Equal(t, time.Date(2026, 11, 27, 11, 0, 32, 500e6, time.UTC).Add(shift), dep.EndTimestamp().AsTime())

	var migrateSub otlpsink.Span
	for _, st := range byKind["step"] {
		assert.Equal(t, dep.SpanID(), st.Span.ParentSpanID(), "step %s hangs under the deployment", st.Span.Name())
	}
	for _, sub := range byKind["subprocess"] {
		parent, ok := bySpanID[sub.Span.ParentSpanID()]
		require.True(t, ok, "subprocess parent must be exported")
		assert.Equal(t, "step", attr(parent.Span, "fastdeploy.span.kind"))
		if parent.Span.Name() == "migrate" {
			migrateSub = sub
			assert.Equal(t, "ansible-playbook", sub.Span.Name())
			assert.Equal(t, "ansible-playbook -i inventory site.yml", attr(sub.Span, "process.command_line"))
			assert.Equal(t, "0", attr(sub.Span, "process.exit.code"))
			assert.Equal(t, "4250", attr(sub.Span, "process.pid"))
		}
	}
	require.False(t, migrateSub.Span.SpanID().IsEmpty(), "migrate has a subprocess span")
	failedTasks := 0
	for _, task := range byKind["ansible.task"] {
		assert.Equal(t, migrateSub.Span.SpanID(), task.Span.ParentSpanID(), "task %s hangs under the ansible-playbook subprocess", task.Span.Name())
		if task.Span.Status().Code() == ptrace.StatusCodeError {
			failedTasks++
			assert.Equal(t, "optional cleanup", task.Span.Name())
		}
	}
	assert.Equal(t, 1, failedTasks)

	// Every log record carries the trace and span of what it tells about.
	logs := s.sink.Logs()
	require.Len(t, logs, wantLogs)
	actions := map[string]int{}
	for _, l := range logs {
		assert.Equal(t, trace.String(), l.Record.TraceID().String())
		_, ok := bySpanID[l.Record.SpanID()]
		assert.True(t, ok, "log %q points at an exported span", l.Record.Body().AsString())
		a, _ := l.Record.Attributes().Get("event.action")
		actions[a.AsString()]++
	}
	assert.Equal(t, map[string]int{"deployment.started": 1, "step.started": 3, "step.finished": 3, "deployment.finished": 1, "ansible.task": 6}, actions)

	// The planted secrets (a password in the deployment context and in an
	// Ansible command, a bearer token in a curl command) never leave.
	exported := s.sink.ExportedJSON(t)
	for _, secret := range []string{"hunter2-not-real", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJzbW9rZSJ9"} {
		assert.NotContains(t, exported, secret)
	}
	assert.Contains(t, exported, "REDACTED", "the secrets were replaced, not the spans dropped")

	// deploy_metrics turned the trace into deployment metrics on the
	// Prometheus endpoint.
	require.Eventually(t, func() bool {
		return metricValue(t, s.metrics, `deployments_total{`) == 1 &&
			metricValue(t, s.metrics, `step_duration_seconds_count{`) == 3 &&
			// Commit 09:30, deployment end 11:00:32.5: DORA lead time.
			metricValue(t, s.metrics, `deployment_lead_time_seconds_sum{`) == 5432.5
	}, 20*time.Second, 100*time.Millisecond, "deployment metrics on the prometheus exporter")

	// The same events again: acknowledged, counted as duplicates, not emitted.
	r = post(t, s.receiver+"/v1/deployments/events", "application/x-ndjson", ndjson(events), nil)
	require.Equal(t, http.StatusOK, r.status)
	assert.EqualValues(t, 0, r.body["accepted"])
	assert.EqualValues(t, 8, r.body["duplicates"])
	require.Eventually(t, func() bool {
		return metricValue(t, s.telemetry, "otelcol_fastdeploy_receiver_events_duplicate") == 8
	}, 20*time.Second, 100*time.Millisecond)
	assert.Len(t, s.sink.Spans(), wantSpans, "duplicates add no spans")
}

// TestBadInputIsRefusedClearly checks each refusal's status, JSON body and
// count, and that a bad line refuses its whole request.
func TestBadInputIsRefusedClearly(t *testing.T) {
	s := startStack(t, basicConfig)
	failed, _ := presentSample(t, "testdata/deployment-failed.ndjson")
	good := lines(failed)
	url := s.receiver + "/v1/deployments/events"
	now := nowRFC3339()
	tests := []struct {
		name        string
		contentType string
		body        []byte
		status      int
		field       string
		line        float64
	}{
		{name: "malformed json on line 2", contentType: "application/x-ndjson", body: []byte(string(good[0]) + "\n{\"type\": \n"), status: 400, line: 2},
		{name: "wrong type", contentType: "application/json", body: []byte(`{"type":"deployment.started","time":"` + now + `","deployment":{"id":true,"service":"web"}}`), status: 400, field: "deployment.id", line: 1},
		{name: "bad time", contentType: "application/json", body: []byte(`{"type":"deployment.started","time":"yesterday","deployment":{"id":"1","service":"web"}}`), status: 400, field: "time", line: 1},
		{name: "missing service on line 3", contentType: "application/x-ndjson", body: []byte(string(good[0]) + "\n" + string(good[1]) + "\n" + `{"type":"deployment.started","time":"` + now + `","deployment":{"id":"44"}}`), status: 422, field: "deployment.service", line: 3},
		{name: "unknown type", contentType: "application/json", body: []byte(`{"type":"deployment.paused","time":"` + now + `","deployment":{"id":"1","service":"web"}}`), status: 422, field: "type", line: 1},
		{name: "form post", contentType: "application/x-www-form-urlencoded", body: good[0], status: 415, field: "Content-Type"},
		{name: "too large", contentType: "application/json", body: bytes.Repeat([]byte(" "), 2<<20), status: 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := post(t, url, tt.contentType, tt.body, nil)
			assert.Equal(t, tt.status, r.status, r.body)
			assert.NotEmpty(t, r.body["error"])
			if tt.field != "" {
				assert.Equal(t, tt.field, r.body["field"], r.body)
			}
			if tt.line != 0 {
				assert.Equal(t, tt.line, r.body["line"], r.body)
			}
		})
	}
	// Nothing of the refused requests was ingested: deployment 43's first
	// events were in two of them. Now send the whole deployment.
	r := post(t, url, "application/x-ndjson", bytes.Join(good, []byte("\n")), nil)
	require.Equal(t, http.StatusOK, r.status, r.body)
	assert.EqualValues(t, 6, r.body["accepted"], "refused requests left no delivery id behind")
	require.True(t, s.sink.WaitFor(30*time.Second, func() bool { return len(s.sink.Spans()) >= 5 }))
	var failedStep, dep ptrace.Span
	for _, sp := range s.sink.Spans() {
		switch attr(sp.Span, "fastdeploy.span.kind") {
		case "deployment":
			dep = sp.Span
		case "step":
			if sp.Span.Name() == "smoke test" {
				failedStep = sp.Span
			}
		}
	}
	assert.Equal(t, ptrace.StatusCodeError, dep.Status().Code())
	assert.Equal(t, "deployment failed at step smoke test", dep.Status().Message())
	assert.Equal(t, "failure", attr(dep, "cicd.pipeline.result"))
	assert.Equal(t, ptrace.StatusCodeError, failedStep.Status().Code())
	assert.Equal(t, "GET /health returned 502", failedStep.Status().Message())
	assert.Equal(t, "exit_code_22", attr(failedStep, "error.type"))

	require.Eventually(t, func() bool {
		return metricValue(t, s.telemetry, `otelcol_fastdeploy_receiver_events_refused{reason="malformed"`) == 3 &&
			metricValue(t, s.telemetry, `otelcol_fastdeploy_receiver_events_refused{reason="invalid"`) == 2 &&
			metricValue(t, s.telemetry, `otelcol_fastdeploy_receiver_events_refused{reason="unsupported_media_type"`) == 1 &&
			metricValue(t, s.telemetry, `otelcol_fastdeploy_receiver_events_refused{reason="too_large"`) == 1
	}, 20*time.Second, 100*time.Millisecond, "refusals are counted by reason")
}

// metricValue sums the samples of the collector's own Prometheus metrics
// whose line starts with prefix; -1 when there is none.
func metricValue(t *testing.T, url, prefix string) float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	total, found := 0.0, false
	re := regexp.MustCompile(`\s([0-9.eE+-]+)$`)
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(l, prefix) {
			continue
		}
		if m := re.FindStringSubmatch(l); m != nil {
			v, _ := strconv.ParseFloat(m[1], 64)
			total += v
			found = true
		}
	}
	if !found {
		return -1
	}
	return total
}
