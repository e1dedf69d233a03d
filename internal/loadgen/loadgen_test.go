package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deploytrace"
	"github.com/fastdeploy/otelcol-fastdeploy/receiver/fastdeployreceiver"
)

func TestTemplatesAreTheRepositorySamples(t *testing.T) {
	for _, name := range []string{"deployment-events.ndjson", "deployment-failed.ndjson", "ansible-json_cb.ndjson"} {
		want, err := os.ReadFile(filepath.Join("..", "..", "testdata", name))
		require.NoError(t, err)
		got, err := templateFS.ReadFile("templates/" + name)
		require.NoError(t, err)
		assert.Equal(t, string(want), string(got), "copy testdata/%s to internal/loadgen/templates/", name)
	}
}

func TestWorkloadIsDeterministicAndVaried(t *testing.T) {
	// A fixed base: two calls to NewWorkload around midnight UTC would differ.
	base := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	a, err := NewWorkloadAt("run", 7, base)
	require.NoError(t, err)
	b, err := NewWorkloadAt("run", 7, base)
	require.NoError(t, err)
	services := map[string]bool{}
	for n := range 20 {
		da, db := a.Deployment(n), b.Deployment(n)
		require.Equal(t, da, db, "same seed, same deployment %d", n)
		assert.Equal(t, fmt.Sprintf("run-%d", n), da.ID)
		assert.Equal(t, deploytrace.DeploymentTraceID(da.ID), da.Trace)
		services[da.Service] = true
		if n%5 == 4 {
			require.Len(t, da.Requests, 2, "the failed template has no Ansible run")
		} else {
			require.Len(t, da.Requests, 3)
			assert.Equal(t, PathAnsible, da.Requests[1].Path)
			assert.Len(t, da.Requests[1].Spans, 6)
		}
	}
	assert.Greater(t, len(services), 3, "services vary")
}

// startReceiver runs the real fastdeploy receiver in process.
func startReceiver(t *testing.T) (string, *consumertest.TracesSink, *consumertest.LogsSink) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	f := fastdeployreceiver.NewFactory()
	cfg := f.CreateDefaultConfig().(*fastdeployreceiver.Config)
	cfg.NetAddr.Endpoint = addr
	traces, logs := new(consumertest.TracesSink), new(consumertest.LogsSink)
	set := receivertest.NewNopSettings(f.Type())
	tr, err := f.CreateTraces(context.Background(), set, cfg, traces)
	require.NoError(t, err)
	lr, err := f.CreateLogs(context.Background(), set, cfg, logs)
	require.NoError(t, err)
	require.NoError(t, tr.Start(context.Background(), componenttest.NewNopHost()))
	require.NoError(t, lr.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() {
		assert.NoError(t, tr.Shutdown(context.Background()))
		assert.NoError(t, lr.Shutdown(context.Background()))
	})
	return "http://" + addr, traces, logs
}

// The span ids the load generator expects from each acknowledged request
// are the ones the receiver emits: the fault tests rely on it.
func TestAcknowledgedSpansAreWhatTheReceiverEmits(t *testing.T) {
	target, traces, logs := startReceiver(t)
	w, err := NewWorkload("ids", 1)
	require.NoError(t, err)
	res, err := Run(context.Background(), w, Options{Target: target, Senders: 4, Deployments: 20})
	require.NoError(t, err)
	require.Equal(t, 20, res.Completed, res.String())
	assert.Empty(t, res.Refused)
	assert.Empty(t, res.Errors)

	emitted := map[deploytrace.TraceID]map[deploytrace.SpanID]bool{}
	for _, td := range traces.AllTraces() {
		for i := 0; i < td.ResourceSpans().Len(); i++ {
			ss := td.ResourceSpans().At(i).ScopeSpans()
			for j := 0; j < ss.Len(); j++ {
				for k := 0; k < ss.At(j).Spans().Len(); k++ {
					sp := ss.At(j).Spans().At(k)
					tid := deploytrace.TraceID(sp.TraceID())
					if emitted[tid] == nil {
						emitted[tid] = map[deploytrace.SpanID]bool{}
					}
					emitted[tid][deploytrace.SpanID(sp.SpanID())] = true
				}
			}
		}
	}
	acked := res.Acknowledged()
	require.Len(t, acked, 20)
	total := 0
	for trace, a := range acked {
		for _, id := range a.Spans {
			assert.True(t, emitted[trace][id], "span %s of deployment %s", id, a.ID)
		}
		assert.Len(t, emitted[trace], len(a.Spans), "deployment %s: no span the generator does not expect", a.ID)
		total += len(a.Spans)
	}
	// 16 deployments with 13 spans, 4 failed ones with 5.
	assert.Equal(t, 16*13+4*5, total)
	assert.Equal(t, total, traces.SpanCount())
	assert.Equal(t, res.Events, logs.LogRecordCount())
	assert.Equal(t, 16*14+4*6, res.Events)
	assert.Len(t, res.Latencies, res.Requests)
	assert.Positive(t, res.Percentile(0.99))
}

func TestRefusalsAreCountedAndRetried(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch n := calls.Add(1); {
		case n%3 == 1:
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusServiceUnavailable)
		case n%3 == 2:
			w.WriteHeader(http.StatusTooManyRequests) // no Retry-After: counted
		default:
			w.WriteHeader(http.StatusOK)
		}
	}))
	defer srv.Close()
	w, err := NewWorkload("retry", 1)
	require.NoError(t, err)
	res, err := Run(context.Background(), w, Options{Target: srv.URL, Senders: 1, Deployments: 1, Retries: 2})
	require.NoError(t, err)
	// Each of the three requests is answered 503, 429, then 200.
	assert.Equal(t, 1, res.Completed)
	assert.Equal(t, 9, res.Requests)
	assert.Equal(t, 3, res.Accepted)
	assert.Equal(t, map[int]int{503: 3, 429: 3}, res.Refused)
	assert.Equal(t, 3, res.NoRetryAfter)

	// Without retries the deployment stops at its first refused request.
	calls.Store(0)
	res, err = Run(context.Background(), w, Options{Target: srv.URL, Senders: 1, Deployments: 1})
	require.NoError(t, err)
	assert.Equal(t, 0, res.Completed)
	assert.Equal(t, 1, res.Requests)
	assert.Empty(t, res.Acknowledged())
}

func TestHungRequestsAreCounted(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	}))
	defer srv.Close()
	defer close(release)
	w, err := NewWorkload("hung", 1)
	require.NoError(t, err)
	res, err := Run(context.Background(), w, Options{Target: srv.URL, Senders: 2, Deployments: 2, RequestTimeout: 200 * time.Millisecond})
	require.NoError(t, err)
	assert.Equal(t, 2, res.Hung)
	assert.Equal(t, 0, res.Accepted)
}

func TestRateIsHeld(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	w, err := NewWorkload("rate", 1)
	require.NoError(t, err)
	res, err := Run(context.Background(), w, Options{Target: srv.URL, Senders: 4, Deployments: 11, Rate: 50})
	require.NoError(t, err)
	assert.Equal(t, 11, res.Completed)
	// Ten intervals of 20ms between eleven deployments.
	assert.GreaterOrEqual(t, res.Elapsed, 190*time.Millisecond)
}

func TestRunNeedsABound(t *testing.T) {
	w, err := NewWorkload("x", 1)
	require.NoError(t, err)
	_, err = Run(context.Background(), w, Options{Target: "http://127.0.0.1:1"})
	assert.Error(t, err)
	_, err = Run(context.Background(), w, Options{Deployments: 1})
	assert.Error(t, err)
}

// TestSinkMissing checks the load run's view of the sink: acknowledged
// spans that never arrived, ones that arrived twice, deployments short of
// log records.
func TestSinkMissing(t *testing.T) {
	s, err := StartSink("127.0.0.1:0")
	require.NoError(t, err)
	defer s.Close()
	trace := deploytrace.TraceID{1}
	td := ptrace.NewTraces()
	spans := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
	for _, id := range []deploytrace.SpanID{{2}, {3}, {3}} {
		sp := spans.AppendEmpty()
		sp.SetTraceID(pcommon.TraceID(trace))
		sp.SetSpanID(pcommon.SpanID(id))
	}
	body, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	require.NoError(t, err)
	resp, err := http.Post(s.Endpoint()+"/v1/traces", "application/x-protobuf", bytes.NewReader(body))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	acked := map[deploytrace.TraceID]*Acked{
		trace:                  {ID: "d", Spans: []deploytrace.SpanID{{1}, {2}, {3}}, Events: 1},
		deploytrace.TraceID{9}: {ID: "e", Events: 0},
	}
	missing, repeated := s.Missing(acked)
	assert.Equal(t, []string{"d/0100000000000000"}, missing)
	assert.Equal(t, 1, repeated, "span 3 arrived twice")
	assert.Equal(t, []string{"d"}, s.MissingLogs(acked), "d has an acknowledged event and no log record; e has none to miss")
	assert.Empty(t, s.Spans(), "a counting sink keeps no data")
}

func TestProcessMemory(t *testing.T) {
	rss, peak, err := ProcessMemory(os.Getpid())
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	assert.Positive(t, rss)
	assert.GreaterOrEqual(t, peak, rss)
	s := SampleRSS(os.Getpid(), 10*time.Millisecond)
	assert.Positive(t, s.Stop())
}
