package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployer/fakereceiver"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployevent"
)

func fastConfig(endpoint string) Config {
	cfg := DefaultConfig(endpoint)
	cfg.BaseBackoff = 5 * time.Millisecond
	cfg.MaxBackoff = 40 * time.Millisecond
	cfg.MaxWait = 2 * time.Second
	cfg.AttemptTimeout = time.Second
	return cfg
}

func newClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	c, err := NewClient(cfg)
	require.NoError(t, err)
	return c
}

func eventReq(t *testing.T, dep string, i int) *Request {
	t.Helper()
	now := time.Date(2026, 2, 3, 10, 0, i, 0, time.UTC)
	ev := deployevent.Event{
		Type: deployevent.TypeStepStarted, ID: fmt.Sprintf("%s-%d", dep, i), Time: now,
		Deployment: deployevent.Deployment{ID: deployevent.ID(dep), Service: "web"},
		Step:       &deployevent.Step{Name: fmt.Sprintf("step %d", i), Position: i, State: deployevent.StateRunning},
	}
	b, err := json.Marshal(ev)
	require.NoError(t, err)
	return &Request{Path: PathEvents, ContentType: ContentTypeJSON, Body: string(b), Items: 1, Deployment: dep}
}

// closedURL returns the URL of a port nobody listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return "http://" + addr
}

func TestNewClientValidatesEndpoint(t *testing.T) {
	_, err := NewClient(Config{})
	require.ErrorContains(t, err, "endpoint is empty")
	_, err = NewClient(Config{Endpoint: "127.0.0.1:8088"})
	require.ErrorContains(t, err, "want an http:// or https:// URL")
}

func TestBackoffGrowsWithJitterAndCap(t *testing.T) {
	cfg := DefaultConfig("http://x")
	cfg.BaseBackoff, cfg.MaxBackoff = 100*time.Millisecond, 1*time.Second
	jit := 0.0
	cfg.jitter = func() float64 { return jit }
	c := newClient(t, cfg)
	// Without jitter: half the exponential delay.
	assert.Equal(t, 50*time.Millisecond, c.backoff(0))
	assert.Equal(t, 100*time.Millisecond, c.backoff(1))
	assert.Equal(t, 200*time.Millisecond, c.backoff(2))
	assert.Equal(t, 500*time.Millisecond, c.backoff(10), "capped at MaxBackoff/2 + jitter")
	assert.Equal(t, 500*time.Millisecond, c.backoff(200), "no overflow on huge attempts")
	jit = 0.999
	assert.InDelta(t, float64(100*time.Millisecond), float64(c.backoff(0)), float64(time.Millisecond))
	assert.InDelta(t, float64(time.Second), float64(c.backoff(10)), float64(time.Millisecond))
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 2, 3, 10, 0, 0, 0, time.UTC)
	assert.Equal(t, 3*time.Second, parseRetryAfter("3", now))
	assert.Equal(t, time.Duration(0), parseRetryAfter("", now))
	assert.Equal(t, time.Duration(0), parseRetryAfter("-1", now))
	assert.Equal(t, time.Duration(0), parseRetryAfter("soon", now))
	assert.Equal(t, 90*time.Second, parseRetryAfter(now.Add(90*time.Second).Format(http.TimeFormat), now))
	assert.Equal(t, time.Duration(0), parseRetryAfter(now.Add(-time.Minute).Format(http.TimeFormat), now))
}

func TestSendRetriesTransientFailures(t *testing.T) {
	for _, fault := range []fakereceiver.Fault{fakereceiver.Unavailable, fakereceiver.TooMany, fakereceiver.Drop} {
		t.Run(fmt.Sprint(fault), func(t *testing.T) {
			rcv := fakereceiver.Start()
			defer rcv.Close()
			rcv.FaultFor = func(n int, _ *http.Request) fakereceiver.Fault {
				if n <= 2 {
					return fault
				}
				return fakereceiver.None
			}
			var retries atomic.Int32
			cfg := fastConfig(rcv.URL())
			cfg.OnRetry = func(*Request, int, time.Duration, error) { retries.Add(1) }
			require.NoError(t, newClient(t, cfg).Send(context.Background(), eventReq(t, "d1", 0)))
			assert.Equal(t, 3, rcv.Requests())
			assert.EqualValues(t, 2, retries.Load())
			assert.Len(t, rcv.Events(), 1)
		})
	}
}

func TestSendHonoursRetryAfter(t *testing.T) {
	rcv := fakereceiver.Start()
	defer rcv.Close()
	rcv.RetryAfter = "1"
	rcv.FaultFor = func(n int, _ *http.Request) fakereceiver.Fault {
		if n == 1 {
			return fakereceiver.TooMany
		}
		return fakereceiver.None
	}
	cfg := fastConfig(rcv.URL())
	var waited time.Duration
	cfg.OnRetry = func(_ *Request, _ int, wait time.Duration, _ error) { waited = wait }
	start := time.Now()
	require.NoError(t, newClient(t, cfg).Send(context.Background(), eventReq(t, "d1", 0)))
	assert.Equal(t, time.Second, waited, "Retry-After replaces the 5ms backoff")
	assert.GreaterOrEqual(t, time.Since(start), time.Second)
}

func TestSendGivesUpWhenRetryAfterExceedsBound(t *testing.T) {
	rcv := fakereceiver.Start()
	defer rcv.Close()
	rcv.RetryAfter = "30"
	rcv.FaultFor = func(int, *http.Request) fakereceiver.Fault { return fakereceiver.Unavailable }
	start := time.Now()
	err := newClient(t, fastConfig(rcv.URL())).Send(context.Background(), eventReq(t, "d1", 0))
	require.ErrorIs(t, err, ErrUnavailable)
	assert.Less(t, time.Since(start), time.Second, "no point waiting 30s when the bound is 2s")
	assert.Equal(t, 1, rcv.Requests())
}

func TestSendBoundedWhenUnreachable(t *testing.T) {
	cfg := fastConfig(closedURL(t))
	cfg.MaxWait = 300 * time.Millisecond
	start := time.Now()
	err := newClient(t, cfg).Send(context.Background(), eventReq(t, "d1", 0))
	require.ErrorIs(t, err, ErrUnavailable)
	assert.ErrorContains(t, err, "connection refused")
	elapsed := time.Since(start)
	assert.Less(t, elapsed, 600*time.Millisecond)
	assert.Greater(t, elapsed, 150*time.Millisecond, "it did retry")
}

func TestSendRejectedIsNotRetried(t *testing.T) {
	rcv := fakereceiver.Start()
	defer rcv.Close()
	req := eventReq(t, "d1", 0)
	req.Body = `{"type":"step.started","time":"2026-02-03T10:00:00Z","deployment":{"id":"d1","service":"web"}}`
	err := newClient(t, fastConfig(rcv.URL())).Send(context.Background(), req)
	var rej *RejectedError
	require.ErrorAs(t, err, &rej)
	assert.Equal(t, http.StatusUnprocessableEntity, rej.Status)
	assert.Equal(t, "step", rej.Field)
	assert.Equal(t, "required on step.started", rej.Message)
	assert.True(t, rej.Splittable())
	assert.False(t, rej.Unauthorized())
	assert.Equal(t, 1, rcv.Requests())
}

func TestSendSigns(t *testing.T) {
	rcv := fakereceiver.Start()
	defer rcv.Close()
	rcv.Secret = []byte("shared-secret")

	err := newClient(t, fastConfig(rcv.URL())).Send(context.Background(), eventReq(t, "d1", 0))
	var rej *RejectedError
	require.ErrorAs(t, err, &rej)
	assert.True(t, rej.Unauthorized(), "unsigned request refused")

	cfg := fastConfig(rcv.URL())
	cfg.Secret = []byte("shared-secret")
	require.NoError(t, newClient(t, cfg).Send(context.Background(), eventReq(t, "d1", 0)))
	assert.Len(t, rcv.Events(), 1)
}

// A load balancer places requests by the deployment header: every request
// names its deployment, and a header the request sets itself wins.
func TestSendNamesTheDeployment(t *testing.T) {
	got := make(chan string, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get(HeaderDeployment)
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	c := newClient(t, fastConfig(srv.URL))
	require.NoError(t, c.Send(context.Background(), eventReq(t, "dep-7", 0)))
	assert.Equal(t, "dep-7", <-got)
	req := eventReq(t, "dep-7", 1)
	req.Path, req.Header = PathAnsible, map[string]string{HeaderDeployment: "dep-7b"}
	require.NoError(t, c.Send(context.Background(), req))
	assert.Equal(t, "dep-7b", <-got)
}

func TestShipperBatchesInOrder(t *testing.T) {
	rcv := fakereceiver.Start()
	defer rcv.Close()
	spool, err := NewSpool(t.TempDir())
	require.NoError(t, err)
	s := NewShipper(newClient(t, fastConfig(rcv.URL())), spool, ShipperOptions{})
	for i := range 250 {
		s.Enqueue(eventReq(t, "d1", i))
	}
	st := s.Close(context.Background())
	assert.Equal(t, 250, st.Delivered)
	assert.LessOrEqual(t, st.Requests, 250)
	assert.GreaterOrEqual(t, st.Requests, 3, "at most 100 events per request")
	evs := rcv.Events()
	require.Len(t, evs, 250)
	for i, ev := range evs {
		assert.Equal(t, i, ev.Step.Position, "order kept")
	}
	n, err := spool.Pending()
	require.NoError(t, err)
	assert.Zero(t, n)
}

func TestShipperSplitsBatchAroundBadEvent(t *testing.T) {
	rcv := fakereceiver.Start()
	defer rcv.Close()
	dir := t.TempDir()
	spool, err := NewSpool(dir)
	require.NoError(t, err)
	// Hold the shipper's first send until all ten are queued, so they
	// travel as one batch.
	gate := make(chan struct{})
	rcv.FaultFor = func(n int, _ *http.Request) fakereceiver.Fault {
		if n == 1 {
			<-gate
		}
		return fakereceiver.None
	}
	s := NewShipper(newClient(t, fastConfig(rcv.URL())), spool, ShipperOptions{})
	s.Enqueue(eventReq(t, "d1", 0))
	for i := 1; i <= 10; i++ {
		r := eventReq(t, "d1", i)
		if i == 7 {
			r.Body = `{"type":"step.bogus","time":"2026-02-03T10:00:00Z","deployment":{"id":"d1","service":"web"}}`
		}
		s.Enqueue(r)
	}
	close(gate)
	st := s.Close(context.Background())
	assert.Equal(t, 10, st.Delivered)
	assert.Equal(t, 1, st.Rejected)
	assert.Len(t, rcv.Events(), 10)
	rejected, err := os.ReadFile(spool.Path("d1")[:len(dir)] + "/rejected/" + fileName("d1"))
	require.NoError(t, err)
	assert.Contains(t, string(rejected), "step.bogus")
}

func TestShipperSpoolsWhenUnreachableThenFlushDeliversExactlyOnce(t *testing.T) {
	dir := t.TempDir()
	spool, err := NewSpool(dir)
	require.NoError(t, err)
	cfg := fastConfig(closedURL(t))
	cfg.MaxWait = 100 * time.Millisecond
	s := NewShipper(newClient(t, cfg), spool, ShipperOptions{ProbeInterval: time.Hour})
	start := time.Now()
	for i := range 20 {
		s.Enqueue(eventReq(t, "dep/1", i))
	}
	st := s.Close(context.Background())
	assert.Less(t, time.Since(start), time.Second, "down collector costs one bounded wait, not one per event")
	assert.Equal(t, 20, st.Spooled)
	assert.Zero(t, st.Delivered)
	files, err := spool.Files()
	require.NoError(t, err)
	require.Len(t, files, 1)
	info, err := os.Stat(files[0])
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())

	rcv := fakereceiver.Start()
	defer rcv.Close()
	res, err := spool.Flush(context.Background(), newClient(t, fastConfig(rcv.URL())))
	require.NoError(t, err)
	assert.Equal(t, 20, res.SentItems)
	assert.Zero(t, res.Remaining)
	files, err = spool.Files()
	require.NoError(t, err)
	assert.Empty(t, files, "flushed file removed")
	require.Len(t, rcv.Events(), 20)
	for id, n := range rcv.Accepted() {
		assert.Equal(t, 1, n, id)
	}
}

func TestFlushKeepsWhatItCouldNotSend(t *testing.T) {
	spool, err := NewSpool(t.TempDir())
	require.NoError(t, err)
	for i := range 3 {
		require.NoError(t, spool.Append(eventReq(t, "d1", i)))
	}
	rcv := fakereceiver.Start()
	defer rcv.Close()
	rcv.FaultFor = func(n int, _ *http.Request) fakereceiver.Fault {
		if n >= 3 {
			return fakereceiver.Unavailable
		}
		return fakereceiver.None
	}
	cfg := fastConfig(rcv.URL())
	cfg.MaxWait = 50 * time.Millisecond
	res, err := spool.Flush(context.Background(), newClient(t, cfg))
	require.ErrorIs(t, err, ErrUnavailable)
	assert.Equal(t, 2, res.Sent)
	assert.Equal(t, 1, res.Remaining)
	n, err := spool.Pending()
	require.NoError(t, err)
	assert.Equal(t, 1, n)

	rcv.SetFaultFor(nil) // a dropped request may still be served
	res, err = spool.Flush(context.Background(), newClient(t, cfg))
	require.NoError(t, err)
	assert.Equal(t, 1, res.Sent)
	assert.Len(t, rcv.Events(), 3)
}

func TestFlushKeepsUnreadableLines(t *testing.T) {
	dir := t.TempDir()
	spool, err := NewSpool(dir)
	require.NoError(t, err)
	require.NoError(t, spool.Append(eventReq(t, "d1", 0)))
	f, err := os.OpenFile(spool.Path("d1"), os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString(`{"path":"/v1/depl`) // torn write
	require.NoError(t, err)
	require.NoError(t, f.Close())
	rcv := fakereceiver.Start()
	defer rcv.Close()
	res, err := spool.Flush(context.Background(), newClient(t, fastConfig(rcv.URL())))
	require.NoError(t, err)
	assert.Equal(t, 1, res.Sent)
	assert.Equal(t, 1, res.Rejected)
	kept, err := os.ReadFile(dir + "/rejected/" + fileName("unreadable"))
	require.NoError(t, err)
	assert.Contains(t, string(kept), `/v1/depl`)
}

func TestShipperRecoversWhenCollectorReturns(t *testing.T) {
	rcv := fakereceiver.Start()
	defer rcv.Close()
	var down atomic.Bool
	down.Store(true)
	rcv.FaultFor = func(int, *http.Request) fakereceiver.Fault {
		if down.Load() {
			return fakereceiver.Unavailable
		}
		return fakereceiver.None
	}
	spool, err := NewSpool(t.TempDir())
	require.NoError(t, err)
	cfg := fastConfig(rcv.URL())
	cfg.MaxWait = 30 * time.Millisecond
	s := NewShipper(newClient(t, cfg), spool, ShipperOptions{ProbeInterval: time.Nanosecond})
	for i := range 5 {
		s.Enqueue(eventReq(t, "d1", i))
	}
	// Wait until the first batch went to the spool before the collector
	// comes back.
	require.Eventually(t, func() bool { n, _ := spool.Pending(); return n > 0 }, 5*time.Second, time.Millisecond)
	down.Store(false)
	for i := 5; i < 10; i++ {
		s.Enqueue(eventReq(t, "d1", i))
	}
	st := s.Close(context.Background())
	assert.Equal(t, 10, st.Delivered+st.Recovered)
	assert.Positive(t, st.Recovered)
	n, err := spool.Pending()
	require.NoError(t, err)
	assert.Zero(t, n)
	assert.Len(t, rcv.Events(), 10)
}

func TestShipperCloseIsBounded(t *testing.T) {
	rcv := fakereceiver.Start()
	defer rcv.Close()
	rcv.FaultFor = func(int, *http.Request) fakereceiver.Fault { return fakereceiver.Hang }
	spool, err := NewSpool(t.TempDir())
	require.NoError(t, err)
	cfg := fastConfig(rcv.URL())
	cfg.AttemptTimeout, cfg.MaxWait = time.Minute, time.Minute
	s := NewShipper(newClient(t, cfg), spool, ShipperOptions{})
	for i := range 3 {
		s.Enqueue(eventReq(t, "d1", i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	st := s.Close(ctx)
	assert.Less(t, time.Since(start), time.Second)
	assert.Equal(t, 3, st.Spooled, "in-flight and queued events spooled when the bound passes")
	s.Enqueue(eventReq(t, "d1", 3))
	assert.Equal(t, 4, spooledItems(t, spool), "the three queued and the late one")
}

func spooledItems(t *testing.T, s *Spool) int {
	t.Helper()
	data, err := os.ReadFile(s.Path("d1"))
	require.NoError(t, err)
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var r Request
		require.NoError(t, json.Unmarshal([]byte(line), &r))
		n += r.Items
	}
	return n
}

// TestDeliveryUnderRandomFaults sends many events through a receiver that
// fails half of the requests in assorted ways, then flushes the spool, and
// checks that every event arrived exactly once after de-duplication.
func TestDeliveryUnderRandomFaults(t *testing.T) {
	rcv := fakereceiver.Start()
	defer rcv.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	faults := []fakereceiver.Fault{fakereceiver.Unavailable, fakereceiver.TooMany, fakereceiver.Drop, fakereceiver.AcceptThenDrop}
	var injected atomic.Int32
	rcv.FaultFor = func(int, *http.Request) fakereceiver.Fault {
		if rng.IntN(2) == 0 {
			injected.Add(1)
			return faults[rng.IntN(len(faults))]
		}
		return fakereceiver.None
	}
	spool, err := NewSpool(t.TempDir())
	require.NoError(t, err)
	cfg := fastConfig(rcv.URL())
	cfg.MaxWait = 20 * time.Millisecond // small: some batches do go to the spool
	const n = 300
	s := NewShipper(newClient(t, cfg), spool, ShipperOptions{ProbeInterval: time.Millisecond})
	for i := range n {
		s.Enqueue(eventReq(t, "d1", i))
		if i%3 == 0 {
			time.Sleep(time.Millisecond) // let batches form at different sizes
		}
	}
	st := s.Close(context.Background())
	rcv.SetFaultFor(nil) // a dropped request may still be served
	res, err := spool.Flush(context.Background(), newClient(t, fastConfig(rcv.URL())))
	require.NoError(t, err)
	t.Logf("faults injected %d, retries %d, delivered live %d, spooled %d, recovered in run %d, flushed %d, duplicates dropped %d",
		injected.Load(), st.Retries, st.Delivered, st.Spooled, st.Recovered, res.SentItems, rcv.Duplicates())
	accepted := rcv.Accepted()
	require.Len(t, accepted, n, "every event arrived")
	for id, c := range accepted {
		require.Equal(t, 1, c, id)
	}
	assert.Positive(t, injected.Load())
}

func TestSpoolFileNames(t *testing.T) {
	assert.NotEqual(t, fileName("a/b"), fileName("a_b"), "sanitised names stay unique")
	assert.Regexp(t, `^a_b-[0-9a-f]{8}\.ndjson$`, fileName("a/b"))
	assert.Regexp(t, `^_etc_passwd-[0-9a-f]{8}\.ndjson$`, fileName("../etc/passwd"))
	assert.False(t, errors.Is(nil, ErrUnavailable))
}
