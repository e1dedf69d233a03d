package fastdeployreceiver

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/pdatatest/plogtest"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/pdatatest/ptracetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

var update = flag.Bool("update", false, "rewrite golden files from the current output")

// goldenRecorded is the clock the goldens were recorded with: their
// fixtures' own time, unmoved by FASTDEPLOY_TEST_CLOCK_SHIFT (the golden
// observed times are arrival times, so they follow this clock).
var goldenRecorded = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// TestGoldenDeployment posts a deployment as the deployer streams it (the
// first steps, the Ansible run of "migrate", the rest) and compares every
// exported span and log record with testdata/golden.
func TestGoldenDeployment(t *testing.T) {
	t.Parallel()
	tr := newTestReceiver(t, nil)
	tr.clock.Set(goldenRecorded)
	events := readLines(t, filepath.Join("testdata", "golden", "events.ndjson"))
	ansible, err := os.ReadFile(filepath.Join("testdata", "golden", "ansible.ndjson"))
	require.NoError(t, err)

	require.Equal(t, 200, tr.events(t, events[:4]...).status)
	rep := tr.post(t, pathAnsible+"?tz=UTC", "application/x-ndjson", string(ansible), headerDeployment, "42", headerStep, "migrate")
	require.Equal(t, 200, rep.status, rep.body)
	require.Equal(t, 200, tr.events(t, events[4:]...).status)

	traces, logs := exported(t, tr)
	compareGolden(t, filepath.Join("testdata", "golden", "traces.json"), traces)
	compareGolden(t, filepath.Join("testdata", "golden", "logs.json"), logs)
}

// exported renders what the receiver sent down each pipeline as OTLP JSON,
// one document per consumer call.
func exported(t *testing.T, tr *testReceiver) (traces, logs []json.RawMessage) {
	t.Helper()
	for _, td := range tr.traces.AllTraces() {
		b, err := (&ptrace.JSONMarshaler{}).MarshalTraces(td)
		require.NoError(t, err)
		traces = append(traces, b)
	}
	for _, ld := range tr.logs.AllLogs() {
		b, err := (&plog.JSONMarshaler{}).MarshalLogs(ld)
		require.NoError(t, err)
		logs = append(logs, b)
	}
	return traces, logs
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

// compareGolden checks exported documents (one per consumer call) against
// a golden file, order-insensitively within each document: resources,
// scopes, spans and log records may come in any order, attributes too.
// With -update it rewrites the file instead.
func compareGolden(t *testing.T, path string, docs []json.RawMessage) {
	t.Helper()
	got, err := json.MarshalIndent(docs, "", "  ")
	require.NoError(t, err)
	got = append(got, '\n')
	assert.False(t, bytes.Contains(got, []byte("hunter2")), "no planted secret in golden output")
	if *update {
		require.NoError(t, os.WriteFile(path, got, 0o600))
	}
	raw, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -run TestGolden -update to create it")
	var want []json.RawMessage
	require.NoError(t, json.Unmarshal(raw, &want))
	fail := func(err error) {
		t.Helper()
		assert.NoError(t, err)
		if err != nil {
			_ = os.WriteFile(path+".got", got, 0o600)
			t.Logf("output written to %s.got; diff it against %s", path, path)
		}
	}
	if !assert.Len(t, docs, len(want), "consumer calls") {
		fail(errors.New("a different number of consumer calls"))
		return
	}
	for i := range want {
		if isTraces(want[i]) {
			w, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(want[i])
			require.NoError(t, err)
			g, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(docs[i])
			require.NoError(t, err)
			fail(ptracetest.CompareTraces(w, g, ptracetest.IgnoreResourceSpansOrder(), ptracetest.IgnoreScopeSpansOrder(), ptracetest.IgnoreSpansOrder()))
			continue
		}
		w, err := (&plog.JSONUnmarshaler{}).UnmarshalLogs(want[i])
		require.NoError(t, err)
		g, err := (&plog.JSONUnmarshaler{}).UnmarshalLogs(docs[i])
		require.NoError(t, err)
		fail(plogtest.CompareLogs(w, g, plogtest.IgnoreResourceLogsOrder(), plogtest.IgnoreScopeLogsOrder(), plogtest.IgnoreLogRecordsOrder()))
	}
}

func isTraces(doc json.RawMessage) bool {
	var probe struct {
		ResourceSpans json.RawMessage `json:"resourceSpans"`
	}
	return json.Unmarshal(doc, &probe) == nil && probe.ResourceSpans != nil
}
