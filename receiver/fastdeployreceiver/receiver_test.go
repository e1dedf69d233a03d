package fastdeployreceiver

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deploytrace"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/signature"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/testclock"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/testutil/fakeclock"
	"github.com/fastdeploy/otelcol-fastdeploy/receiver/fastdeployreceiver/internal/metadata"
)

// testNow is the fixed clock, for fixed data only (see internal/testclock).
var testNow = testclock.Now()

type testReceiver struct {
	r      *fastdeployReceiver
	traces *consumertest.TracesSink
	logs   *consumertest.LogsSink
	srv    *httptest.Server
	clock  *fakeclock.Clock
}

func newTestReceiver(t *testing.T, mutate func(*Config)) *testReceiver {
	t.Helper()
	cfg := createDefaultConfig()
	if mutate != nil {
		mutate(cfg)
	}
	r, err := newReceiver(receivertest.NewNopSettings(metadata.Type), cfg, nil)
	require.NoError(t, err)
	tr := &testReceiver{r: r, traces: new(consumertest.TracesSink), logs: new(consumertest.LogsSink), clock: fakeclock.New(testNow)}
	r.now = tr.clock.Now
	r.setTraces(tr.traces)
	r.setLogs(tr.logs)
	tr.srv = httptest.NewServer(r.handler())
	t.Cleanup(tr.srv.Close)
	t.Cleanup(func() { require.NoError(t, r.Shutdown(context.Background())) })
	return tr
}

type reply struct {
	status int
	header http.Header
	body   map[string]any
}

func (tr *testReceiver) post(t *testing.T, path, contentType, body string, headers ...string) reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, tr.srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", contentType)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := tr.srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	rep := reply{status: resp.StatusCode, header: resp.Header}
	require.NoError(t, json.Unmarshal(raw, &rep.body), string(raw))
	return rep
}

func (tr *testReceiver) events(t *testing.T, lines ...string) reply {
	t.Helper()
	return tr.post(t, pathEvents, "application/x-ndjson", strings.Join(lines, "\n"))
}

func allSpans(sink *consumertest.TracesSink) []ptrace.Span {
	var out []ptrace.Span
	for _, td := range sink.AllTraces() {
		for i := 0; i < td.ResourceSpans().Len(); i++ {
			ss := td.ResourceSpans().At(i).ScopeSpans()
			for j := 0; j < ss.Len(); j++ {
				for k := 0; k < ss.At(j).Spans().Len(); k++ {
					out = append(out, ss.At(j).Spans().At(k))
				}
			}
		}
	}
	return out
}

func allLogs(sink *consumertest.LogsSink) []plog.LogRecord {
	var out []plog.LogRecord
	for _, ld := range sink.AllLogs() {
		for i := 0; i < ld.ResourceLogs().Len(); i++ {
			sl := ld.ResourceLogs().At(i).ScopeLogs()
			for j := 0; j < sl.Len(); j++ {
				for k := 0; k < sl.At(j).LogRecords().Len(); k++ {
					out = append(out, sl.At(j).LogRecords().At(k))
				}
			}
		}
	}
	return out
}

func spanAttr(s ptrace.Span, k string) string {
	v, ok := s.Attributes().Get(k)
	if !ok {
		return ""
	}
	return v.AsString()
}

func ev(typ, id, at string, extra string) string {
	s := `{"type":"` + typ + `","time":"` + at + `","deployment":{"id":"7","service":"api","environment":"prod"`
	if strings.HasPrefix(typ, "deployment.finished") {
		s += `,"status":"success"`
	}
	s += `}`
	if id != "" {
		s += `,"id":"` + id + `"`
	}
	return s + extra + `}`
}

func stepEv(typ, id, at, name string, pos int, state string) string {
	step := `,"step":{"name":"` + name + `","position":` + string(rune('0'+pos))
	if state != "" {
		step += `,"state":"` + state + `"`
	}
	return ev(typ, id, at, step+`}`)
}

func TestOutOfOrderAndLateEventsJoinOneTrace(t *testing.T) {
	t.Parallel()
	tr := newTestReceiver(t, nil)
	// Finished before started, a step before its deployment.
	require.Equal(t, 200, tr.events(t, stepEv("step.finished", "s1f", "2026-11-27T11:00:05Z", "build", 0, "success")).status)
	require.Equal(t, 200, tr.events(t, stepEv("step.started", "s1s", "2026-11-27T11:00:01Z", "build", 0, "")).status)
	require.Equal(t, 200, tr.events(t, ev("deployment.started", "ds", "2026-11-27T11:00:00Z", "")).status)
	require.Equal(t, 200, tr.events(t, ev("deployment.finished", "df", "2026-11-27T11:00:10Z", "")).status)
	// A late step of the finished deployment still lands in its trace.
	require.Equal(t, 200, tr.events(t, stepEv("step.finished", "s2f", "2026-11-27T11:00:09Z", "notify", 1, "success")).status)

	spans := allSpans(tr.traces)
	require.Len(t, spans, 3)
	trace := deploytrace.DeploymentTraceID("7")
	depSpan := deploytrace.DeploymentSpanID(trace, "7")
	for _, s := range spans {
		assert.Equal(t, pcommonTrace(trace), s.TraceID())
	}
	assert.Equal(t, "build", spans[0].Name())
	assert.Equal(t, pcommonSpan(depSpan), spans[0].ParentSpanID())
	assert.Equal(t, "deploy api", spans[1].Name())
	assert.Equal(t, time.Date(2026, 11, 27, 11, 0, 0, 0, time.UTC), spans[1].StartTimestamp().AsTime(), "start taken from the started event")
	assert.Equal(t, "notify", spans[2].Name())
	assert.Equal(t, pcommonSpan(depSpan), spans[2].ParentSpanID())
	assert.Zero(t, tr.r.tracker.inflight(), "nothing left open")
}

func TestDuplicatesAreAcknowledgedNotEmitted(t *testing.T) {
	t.Parallel()
	tr := newTestReceiver(t, nil)
	body := []string{ev("deployment.started", "a", "2026-11-27T11:00:00Z", ""), ev("deployment.finished", "b", "2026-11-27T11:00:10Z", "")}
	rep := tr.events(t, body...)
	assert.EqualValues(t, 2, rep.body["accepted"])
	rep = tr.events(t, append(body, body[1])...)
	assert.Equal(t, 200, rep.status)
	assert.EqualValues(t, 0, rep.body["accepted"])
	assert.EqualValues(t, 3, rep.body["duplicates"])
	assert.Len(t, allSpans(tr.traces), 1)
	assert.Len(t, allLogs(tr.logs), 2)
}

func TestDedupWindowIsBounded(t *testing.T) {
	t.Parallel()
	tr := newTestReceiver(t, func(c *Config) { c.DedupWindow = 2 })
	for _, id := range []string{"1", "2", "3"} {
		tr.events(t, ev("deployment.started", id, "2026-11-27T11:00:00Z", ""))
	}
	assert.Equal(t, 2, tr.r.tracker.delivered.Len())
	rep := tr.events(t, ev("deployment.started", "1", "2026-11-27T11:00:00Z", ""))
	assert.EqualValues(t, 1, rep.body["accepted"], "the oldest id was forgotten")
	rep = tr.events(t, ev("deployment.started", "3", "2026-11-27T11:00:00Z", ""))
	assert.EqualValues(t, 1, rep.body["duplicates"])
}

// refusingTraces refuses until told otherwise, as memory_limiter does.
type refusingTraces struct {
	consumertest.TracesSink
	mu     sync.Mutex
	refuse error
}

func (r *refusingTraces) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	r.mu.Lock()
	err := r.refuse
	r.mu.Unlock()
	if err != nil {
		return err
	}
	return r.TracesSink.ConsumeTraces(ctx, td)
}

func (r *refusingTraces) set(err error) {
	r.mu.Lock()
	r.refuse = err
	r.mu.Unlock()
}

var _ consumer.Traces = (*refusingTraces)(nil)

func TestPipelineRefusalIsRetryable(t *testing.T) {
	t.Parallel()
	tr := newTestReceiver(t, nil)
	refusing := &refusingTraces{}
	tr.r.setTraces(refusing)
	refusing.set(errors.New("data refused due to high memory usage"))

	body := []string{ev("deployment.started", "a", "2026-11-27T11:00:00Z", ""), ev("deployment.finished", "b", "2026-11-27T11:00:10Z", "")}
	rep := tr.events(t, body...)
	assert.Equal(t, http.StatusServiceUnavailable, rep.status)
	assert.Equal(t, "5", rep.header.Get("Retry-After"))
	assert.NotEmpty(t, rep.body["error"])
	assert.Zero(t, tr.r.tracker.inflight(), "a refused request changes nothing")

	refusing.set(nil)
	rep = tr.events(t, body...)
	assert.Equal(t, http.StatusOK, rep.status)
	assert.EqualValues(t, 2, rep.body["accepted"], "the retry is not taken for a duplicate")
	assert.Len(t, allSpans(&refusing.TracesSink), 1)

	refusing.set(consumererror.NewPermanent(errors.New("bad data")))
	rep = tr.events(t, ev("deployment.finished", "c", "2026-11-27T11:00:10Z", ""))
	assert.Equal(t, http.StatusBadRequest, rep.status)
}

func TestSignature(t *testing.T) {
	t.Parallel()
	const secret = "shared-secret-for-tests"
	tr := newTestReceiver(t, func(c *Config) { c.Secret = secret })
	body := ev("deployment.started", "a", "2026-11-27T11:00:00Z", "")
	tests := []struct {
		name   string
		header string
		status int
	}{
		{name: "missing", status: 401},
		{name: "wrong secret", header: signature.Sign([]byte("other"), testNow, []byte(body)), status: 401},
		{name: "too old", header: signature.Sign([]byte(secret), testNow.Add(-6*time.Minute), []byte(body)), status: 401},
		{name: "garbage", header: "v1=zz", status: 401},
		{name: "valid", header: signature.Sign([]byte(secret), testNow, []byte(body)), status: 200},
	}
	for _, tt := range tests {
		rep := tr.post(t, pathEvents, "application/json", body, signature.Header, tt.header)
		assert.Equal(t, tt.status, rep.status, tt.name)
		if tt.status == 401 {
			assert.Equal(t, signature.Header, rep.body["field"], tt.name)
			assert.NotContains(t, rep.body["error"], secret)
			assert.Empty(t, allLogs(tr.logs), "%s: nothing ingested", tt.name)
		}
	}
	assert.Len(t, allLogs(tr.logs), 1)

	// The accepted request sent again within the tolerance: acknowledged,
	// nothing ingested. The body has a delivery id, so strip it to show the
	// signature alone stops the replay.
	noID := strings.Replace(body, `,"id":"a"`, "", 1)
	header := signature.Sign([]byte(secret), testNow, []byte(noID))
	require.Equal(t, 200, tr.post(t, pathEvents, "application/json", noID, signature.Header, header).status)
	require.Len(t, allLogs(tr.logs), 2)
	rep := tr.post(t, pathEvents, "application/json", noID, signature.Header, header)
	assert.Equal(t, 200, rep.status)
	assert.Equal(t, true, rep.body["replay"])
	assert.Len(t, allLogs(tr.logs), 2, "a replay ingests nothing")
}

func TestRefusedSignedRequestCanBeRetried(t *testing.T) {
	t.Parallel()
	const secret = "shared-secret-for-tests"
	tr := newTestReceiver(t, func(c *Config) { c.Secret = secret })
	refusing := &refusingTraces{}
	refusing.set(errors.New("memory"))
	tr.r.setTraces(refusing)
	body := ev("deployment.finished", "", "2026-11-27T11:00:10Z", "")
	header := signature.Sign([]byte(secret), testNow, []byte(body))
	assert.Equal(t, http.StatusServiceUnavailable, tr.post(t, pathEvents, "application/json", body, signature.Header, header).status)
	refusing.set(nil)
	rep := tr.post(t, pathEvents, "application/json", body, signature.Header, header)
	assert.Equal(t, 200, rep.status)
	assert.Nil(t, rep.body["replay"], "an honest retry of a refused request is ingested")
	assert.Len(t, allSpans(&refusing.TracesSink), 1)
}

func TestHTTPErrors(t *testing.T) {
	t.Parallel()
	tr := newTestReceiver(t, func(c *Config) { c.MaxRequestBodySize = 1024 })
	// The body limit is applied by confighttp's server; here the handler
	// runs bare, so wrap it the way ToServer does.
	tr.srv.Config.Handler = http.MaxBytesHandler(tr.r.handler(), 1024)

	rep := tr.post(t, pathEvents, "text/plain", "{}")
	assert.Equal(t, http.StatusUnsupportedMediaType, rep.status)
	rep = tr.post(t, pathEvents, "application/json", "["+strings.Repeat(" ", 2048)+"]")
	assert.Equal(t, http.StatusRequestEntityTooLarge, rep.status)
	rep = tr.post(t, "/nope", "application/json", "{}")
	assert.Equal(t, http.StatusNotFound, rep.status)

	resp, err := tr.srv.Client().Get(tr.srv.URL + pathEvents)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	assert.Equal(t, "POST", resp.Header.Get("Allow"))

	rep = tr.post(t, pathAnsible, "application/x-ndjson", "{}")
	assert.Equal(t, http.StatusBadRequest, rep.status)
	assert.Equal(t, headerDeployment, rep.body["field"])
	rep = tr.post(t, pathAnsible, "application/x-ndjson", "{}", headerDeployment, "7", "X-Fastdeploy-Timezone", "Mars/Olympus")
	assert.Equal(t, "tz", rep.body["field"])
	rep = tr.post(t, pathAnsible, "application/x-ndjson", "{}", headerTraceparent, "nope")
	assert.Equal(t, "traceparent", rep.body["field"])
}

func TestTimeoutClosesWhatNeverFinishes(t *testing.T) {
	t.Parallel()
	tr := newTestReceiver(t, func(c *Config) { c.Timeout = time.Hour })
	tr.events(t,
		ev("deployment.started", "a", "2026-11-27T11:00:00Z", ""),
		stepEv("step.started", "b", "2026-11-27T11:00:01Z", "migrate", 0, ""))
	require.Equal(t, 2, tr.r.tracker.inflight())

	tr.clock.Advance(59 * time.Minute)
	tr.r.sweepOnce(context.Background())
	assert.Empty(t, allSpans(tr.traces), "not yet")

	// The pipeline refuses at first: the spans stay in flight for the next sweep.
	refusing := &refusingTraces{}
	refusing.set(errors.New("refused"))
	tr.r.setTraces(refusing)
	tr.clock.Advance(2 * time.Minute)
	tr.r.sweepOnce(context.Background())
	assert.Equal(t, 2, tr.r.tracker.inflight())

	refusing.set(nil)
	tr.r.sweepOnce(context.Background())
	spans := allSpans(&refusing.TracesSink)
	require.Len(t, spans, 2)
	for _, s := range spans {
		assert.Equal(t, ptrace.StatusCodeError, s.Status().Code(), s.Name())
		assert.Equal(t, "timeout", spanAttr(s, "fastdeploy.status"))
		assert.Equal(t, "timeout", spanAttr(s, "error.type"))
	}
	assert.Zero(t, tr.r.tracker.inflight())
	assert.Equal(t, time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC), spans[1].EndTimestamp().AsTime(), "closed at start + timeout")
}

func TestTraceparentNamesTheTrace(t *testing.T) {
	t.Parallel()
	tr := newTestReceiver(t, nil)
	const upstream = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	tp := `,"traceparent":"` + upstream + `"`
	tr.events(t, ev("deployment.started", "a", "2026-11-27T11:00:00Z", tp), ev("deployment.finished", "b", "2026-11-27T11:00:10Z", ""))
	spans := allSpans(tr.traces)
	require.Len(t, spans, 1)
	assert.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", spans[0].TraceID().String())
	assert.Equal(t, "00f067aa0ba902b7", spans[0].ParentSpanID().String(), "an upstream span is the deployment's parent")

	// A client that derives our ids and sends our own span back gets no self-parent.
	trace := deploytrace.DeploymentTraceID("9")
	own := deploytrace.FormatTraceparent(trace, deploytrace.StepSpanID(trace, "9", "x", 0))
	body := strings.ReplaceAll(ev("deployment.started", "c", "2026-11-27T11:00:00Z", `,"traceparent":"`+own+`"`), `"id":"7"`, `"id":"9"`)
	fin := strings.ReplaceAll(ev("deployment.finished", "d", "2026-11-27T11:00:10Z", ""), `"id":"7"`, `"id":"9"`)
	tr.events(t, body, fin)
	spans = allSpans(tr.traces)
	require.Len(t, spans, 2)
	assert.True(t, spans[1].ParentSpanID().IsEmpty())
}

func TestAnsibleTasksWithoutStepHangUnderPlaybookStep(t *testing.T) {
	t.Parallel()
	tr := newTestReceiver(t, nil)
	tr.events(t, ev("deployment.started", "a", "2026-11-27T11:00:00Z", ""))
	task := `{"position":1,"start":"2026-11-27T11:00:02","end":"2026-11-27T11:00:03","name":"ping","state":"success","misc":{"changed":false}}`
	rep := tr.post(t, pathAnsible, "application/x-ndjson", task, headerDeployment, "7")
	require.Equal(t, 200, rep.status, rep.body)
	tr.events(t, ev("deployment.finished", "b", "2026-11-27T11:00:10Z", ""))

	byName := map[string]ptrace.Span{}
	for _, s := range allSpans(tr.traces) {
		byName[s.Name()] = s
	}
	require.Contains(t, byName, "ansible-playbook")
	require.Contains(t, byName, "ping")
	assert.Equal(t, byName["ansible-playbook"].SpanID(), byName["ping"].ParentSpanID())
	assert.Equal(t, byName["deploy api"].SpanID(), byName["ansible-playbook"].ParentSpanID())
	assert.Equal(t, time.Date(2026, 11, 27, 11, 0, 2, 0, time.UTC), byName["ansible-playbook"].StartTimestamp().AsTime())
}

func TestHealth(t *testing.T) {
	t.Parallel()
	tr := newTestReceiver(t, nil)
	resp, err := http.Get(tr.srv.URL + pathHealth)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "not started")
	tr.r.ready.Store(true)
	resp, err = http.Get(tr.srv.URL + pathHealth)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestStartListensAndShutsDown(t *testing.T) {
	t.Parallel()
	cfg := createDefaultConfig()
	cfg.NetAddr.Endpoint = "127.0.0.1:0"
	f := NewFactory()
	traces := new(consumertest.TracesSink)
	logs := new(consumertest.LogsSink)
	set := receivertest.NewNopSettings(metadata.Type)
	rt, err := f.CreateTraces(context.Background(), set, cfg, traces)
	require.NoError(t, err)
	rl, err := f.CreateLogs(context.Background(), set, cfg, logs)
	require.NoError(t, err)
	assert.Same(t, rt, rl, "one receiver serves both signals of a config")
	require.NoError(t, rt.Start(context.Background(), componenttest.NewNopHost()))
	require.NoError(t, rl.Start(context.Background(), componenttest.NewNopHost()))
	require.NoError(t, rt.Shutdown(context.Background()))
	require.NoError(t, rl.Shutdown(context.Background()))
}

// blockingTraces holds ConsumeTraces until released, to fill the receiver.
type blockingTraces struct {
	consumertest.TracesSink
	entered chan struct{}
	release chan struct{}
}

func (b *blockingTraces) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	b.entered <- struct{}{}
	<-b.release
	return b.TracesSink.ConsumeTraces(ctx, td)
}

func TestOverloadAnswers429AtOnce(t *testing.T) {
	t.Parallel()
	tr := newTestReceiver(t, func(c *Config) { c.MaxConcurrentRequests = 2 })
	blocking := &blockingTraces{entered: make(chan struct{}, 2), release: make(chan struct{})}
	tr.r.setTraces(blocking)
	done := make(chan int, 2)
	for i := range 2 {
		go func() {
			// Two deployments: requests for one deployment wait for each
			// other before the pipeline and would not fill it.
			body := strings.Replace(ev("deployment.finished", "x"+itoa(i), "2026-11-27T11:00:10Z", ""), `"id":"7"`, `"id":"`+itoa(70+i)+`"`, 1)
			rep := tr.events(t, body)
			done <- rep.status
		}()
	}
	<-blocking.entered
	<-blocking.entered
	rep := tr.events(t, ev("deployment.finished", "y", "2026-11-27T11:00:10Z", ""))
	assert.Equal(t, http.StatusTooManyRequests, rep.status)
	assert.Equal(t, "5", rep.header.Get("Retry-After"))
	close(blocking.release)
	assert.Equal(t, 200, <-done)
	assert.Equal(t, 200, <-done)
	rep = tr.events(t, ev("deployment.finished", "y", "2026-11-27T11:00:10Z", ""))
	assert.Equal(t, 200, rep.status, "room again")
}

func TestSignedReplayCannotBePadded(t *testing.T) {
	t.Parallel()
	const secret = "shared-secret-for-tests"
	tr := newTestReceiver(t, func(c *Config) { c.Secret = secret })
	body := ev("deployment.started", "", "2026-11-27T11:00:00Z", "")
	header := signature.Sign([]byte(secret), testNow, []byte(body))
	require.Equal(t, 200, tr.post(t, pathEvents, "application/json", body, signature.Header, header).status)
	for _, padded := range []string{header + ",v1=" + strings.Repeat("0", 64), " " + strings.ReplaceAll(header, ",", " , ")} {
		rep := tr.post(t, pathEvents, "application/json", body, signature.Header, padded)
		assert.Equal(t, true, rep.body["replay"], "%q is the same signed request", padded)
	}
	assert.Len(t, allLogs(tr.logs), 1)
}

// TestUnsignedBodyIsNotRead: without a valid signature header the request
// is refused before its body is read, so unauthenticated clients cannot
// make the receiver buffer bodies.
func TestUnsignedBodyIsNotRead(t *testing.T) {
	t.Parallel()
	tr := newTestReceiver(t, func(c *Config) { c.Secret = "shared-secret-for-tests" })
	for _, header := range []string{"", "t=1,v1=" + strings.Repeat("0", 64), "garbage"} {
		body := &countingReader{r: strings.NewReader(ev("deployment.started", "", "2026-11-27T11:00:00Z", ""))}
		req := httptest.NewRequest(http.MethodPost, pathEvents, body)
		req.Header.Set("Content-Type", "application/json")
		if header != "" {
			req.Header.Set(signature.Header, header)
		}
		rec := httptest.NewRecorder()
		tr.r.handler().ServeHTTP(rec, req)
		assert.Equal(t, http.StatusUnauthorized, rec.Code, header)
		assert.Zero(t, body.reads, "%q: the body was read", header)
	}
}

type countingReader struct {
	r     io.Reader
	reads int
}

func (c *countingReader) Read(p []byte) (int, error) {
	c.reads++
	return c.r.Read(p)
}

func TestFastdeployPathsNeedNoSignature(t *testing.T) {
	t.Parallel()
	tr := newTestReceiver(t, func(c *Config) {
		c.Secret = "shared-secret-for-tests"
		c.FastdeployJWTSecret = jwtSecret
	})
	rep := tr.do(t, http.MethodPost, pathCompatSteps, `{"name":"build","state":"running","started":"2026-11-27T11:00:00+00:00"}`,
		"Authorization", "Bearer "+deploymentToken("9", testNow.Add(time.Hour)))
	assert.Equal(t, http.StatusOK, rep.status, "fastdeploy's deploy process authenticates with its JWT, it cannot sign")
	rep = tr.post(t, pathEvents, "application/json", ev("deployment.started", "", "2026-11-27T11:00:00Z", ""))
	assert.Equal(t, http.StatusUnauthorized, rep.status, "our own paths still need the signature")
}
