//go:build e2e

// Fault tests: overload, a backend outage, a crash, slow and stuck
// clients. Each runs the built collector on config/loadtest.yaml, the
// pipeline that can promise "every event acknowledged with 2xx is
// exported": no batch processor (it acknowledges before anything is
// durable), and the exporter's sending queue on file_storage.
//
// Asks of the receiver (skipped subtests name them):
//   - a connection limit (max_connections: wrap the listener from
//     ToListener with golang.org/x/net/netutil.LimitListener or an
//     equivalent semaphore), so that a flood of idle connections cannot
//     exhaust file descriptors; confighttp has no such setting.

package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/loadgen"
)

// TestOverload drives the collector far past what its backend takes: the
// backend refuses everything for the first half of the run, so the
// sending queue (100 requests here) fills, and 64 senders post as fast as
// they are answered. The receiver must answer every request promptly with
// 2xx or 503 + Retry-After (never 500, never hang), stay within
// memory_limiter's limit plus a 64 MiB margin, and export every
// acknowledged event once the backend is back.
func TestOverload(t *testing.T) {
	const limitMiB, marginMiB = 256, 64
	s := startLoadStack(t, map[string]string{
		"FDLOAD_QUEUE_SIZE": "100",
		"FDLOAD_LIMIT_MIB":  strconv.Itoa(limitMiB),
		"FDLOAD_SPIKE_MIB":  "64",
	})
	duration := scaled(6*time.Second, 120*time.Second)
	s.sink.SetRefusing(true)
	backendBack := time.AfterFunc(duration/2, func() { s.sink.SetRefusing(false) })
	defer backendBack.Stop()

	w, err := loadgen.NewWorkload(t.Name(), 2)
	require.NoError(t, err)
	sampler := loadgen.SampleRSS(s.proc.PID(), 50*time.Millisecond)
	res, err := loadgen.Run(context.Background(), w, loadgen.Options{
		Target: s.receiver, Senders: 64, Duration: duration, RequestTimeout: 10 * time.Second,
	})
	require.NoError(t, err)
	sampled := float64(sampler.Stop()) / (1 << 20)
	_, peak := s.memory()
	t.Logf("overload, 64 senders, backend down for the first %s:\n%speak RSS %.0f MiB (sampled %.0f MiB)", duration/2, res, peak, sampled)

	require.Positive(t, res.Refused[http.StatusServiceUnavailable], "the test must overload the collector:\n%s", res)
	for status := range res.Refused {
		assert.Contains(t, []int{http.StatusServiceUnavailable, http.StatusTooManyRequests}, status, "overload is answered 503 or 429, got %d", status)
	}
	assert.Zero(t, res.NoRetryAfter, "every 503 and 429 carries Retry-After")
	assert.Zero(t, res.Hung, "no request goes unanswered")
	assert.Empty(t, res.Errors, "no connection is refused or reset")
	assert.Less(t, res.Percentile(1), 5*time.Second, "answers come promptly under overload")
	assert.Less(t, peak, float64(limitMiB+marginMiB), "peak RSS within memory_limiter's limit plus the margin")

	// Refused requests may have been half ingested (traces taken, logs
	// refused): repeats are allowed for those, losses are not.
	repeated := requireAllArrived(t, s.sink, res, 60*time.Second)
	t.Logf("acknowledged spans that arrived more than once: %d", repeated)
}

// TestExporterOutage takes the backend away mid-load for 10 s (60 s under
// make soak) and brings it back: the persistent sending queue holds what
// was acknowledged meanwhile, and every acknowledged span arrives, none
// twice (the backend stored nothing while it refused, so at-least-once
// has no reason to repeat anything here).
func TestExporterOutage(t *testing.T) {
	s := startLoadStack(t, nil)
	outage := scaled(10*time.Second, 60*time.Second)
	before, after := 3*time.Second, scaled(3*time.Second, 20*time.Second)
	down := time.AfterFunc(before, func() { s.sink.SetRefusing(true) })
	defer down.Stop()
	up := time.AfterFunc(before+outage, func() { s.sink.SetRefusing(false) })
	defer up.Stop()

	w, err := loadgen.NewWorkload(t.Name(), 3)
	require.NoError(t, err)
	res, err := loadgen.Run(context.Background(), w, loadgen.Options{
		Target: s.receiver, Senders: 8, Rate: 40, Duration: before + outage + after,
	})
	require.NoError(t, err)
	t.Logf("backend down for %s of %s at 40 deployments/s:\n%s", outage, res.Elapsed.Round(time.Second), res)
	require.Positive(t, s.sink.Counts().Refused, "the exporter met the outage")
	assert.Empty(t, res.Refused, "the queue absorbs the outage: the receiver keeps acknowledging")
	assert.Empty(t, res.Errors)

	began := time.Now()
	repeated := requireAllArrived(t, s.sink, res, 60*time.Second)
	t.Logf("all %d acknowledged spans arrived, %s after the load ended", res.AcknowledgedSpans(), time.Since(began).Round(time.Millisecond))
	assert.Zero(t, repeated, "no acknowledged span arrived twice")
}

// TestCrashRestart kills the collector with SIGKILL while its queue holds
// a backlog (the backend refused for the last seconds before the kill)
// and restarts it on the same storage: every event acknowledged before
// the kill is exported after the restart. Spans may arrive twice
// (at-least-once: a batch in flight at the kill is sent again).
func TestCrashRestart(t *testing.T) {
	s := startLoadStack(t, nil)
	for cycle := range scaled(1, 5) {
		t.Logf("crash %d", cycle+1)
		s.sink.SetRefusing(false)
		ctx, cancel := context.WithCancel(context.Background())
		w, err := loadgen.NewWorkload(fmt.Sprintf("%s-%d", t.Name(), cycle), uint64(cycle))
		require.NoError(t, err)
		var res *loadgen.Result
		done := make(chan struct{})
		go func() {
			defer close(done)
			res, _ = loadgen.Run(ctx, w, loadgen.Options{Target: s.receiver, Senders: 8, Rate: 40, RequestTimeout: 5 * time.Second})
		}()
		// A while of normal running, then a backlog builds, then the kill.
		timer := time.NewTimer(2 * time.Second)
		<-timer.C
		s.sink.SetRefusing(true)
		timer.Reset(2 * time.Second)
		<-timer.C
		s.proc.Kill()
		cancel()
		<-done
		require.NotNil(t, res)
		t.Logf("before the kill:\n%s", res)
		missing, _ := s.sink.Missing(res.Acknowledged())
		require.NotEmpty(t, missing, "the queue held acknowledged spans at the kill")
		t.Logf("%d of %d acknowledged spans were only in the queue at the kill", len(missing), res.AcknowledgedSpans())

		s.sink.SetRefusing(false)
		s.start()
		repeated := requireAllArrived(t, s.sink, res, 60*time.Second)
		t.Logf("after the restart every acknowledged span arrived; %d more than once", repeated)
	}

	// The restarted collector takes new load as usual.
	w, err := loadgen.NewWorkload(t.Name()+"-after", 9)
	require.NoError(t, err)
	res, err := loadgen.Run(context.Background(), w, loadgen.Options{Target: s.receiver, Senders: 4, Deployments: 50})
	require.NoError(t, err)
	assert.Equal(t, 50, res.Completed, res.String())
	requireAllArrived(t, s.sink, res, 30*time.Second)
}

// TestSlowClients holds many connections open in the slowloris way and
// with bodies that never finish: the receiver keeps serving others, and
// cuts the slow ones off at read_header_timeout and read_timeout.
func TestSlowClients(t *testing.T) {
	const headerTimeout, readTimeout = time.Second, 2 * time.Second
	maxConnections := scaled(300, 3000)
	s := startLoadStack(t, map[string]string{
		"FDLOAD_READ_HEADER_TIMEOUT": headerTimeout.String(),
		"FDLOAD_READ_TIMEOUT":        readTimeout.String(),
		"FDLOAD_MAX_CONNECTIONS":     strconv.Itoa(maxConnections),
	})
	addr := strings.TrimPrefix(s.receiver, "http://")
	conns := scaled(200, 2000)
	failed, _ := presentSample(t, "testdata/deployment-failed.ndjson")
	good := lines(failed)
	body := strings.Join(func() []string {
		var out []string
		for _, l := range good {
			out = append(out, string(l))
		}
		return out
	}(), "\n")

	// post sends an honest request; it must be answered promptly.
	post := func(t *testing.T) int {
		t.Helper()
		client := &http.Client{Timeout: 2 * time.Second}
		resp, err := client.Post(s.receiver+"/v1/deployments/events", "application/x-ndjson", strings.NewReader(body))
		require.NoError(t, err, "an honest client is answered while slow ones hold connections")
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	// served checks that an honest client is served.
	served := func(t *testing.T) {
		t.Helper()
		assert.Equal(t, http.StatusOK, post(t), "an honest client is served while slow ones hold connections")
	}

	// cutOff waits for the server to end each connection and checks that
	// it did so within limit of the connection's start.
	cutOff := func(t *testing.T, cs []net.Conn, opened time.Time, limit time.Duration) {
		t.Helper()
		var wg sync.WaitGroup
		var mu sync.Mutex
		survivors, latest := 0, time.Duration(0)
		for _, c := range cs {
			wg.Go(func() {
				_ = c.SetReadDeadline(opened.Add(limit))
				_, err := io.Copy(io.Discard, c)
				var ne net.Error
				mu.Lock()
				defer mu.Unlock()
				if errors.As(err, &ne) && ne.Timeout() {
					survivors++
				}
				latest = max(latest, time.Since(opened))
			})
		}
		wg.Wait()
		assert.Zero(t, survivors, "connections still open %s after they were opened", limit)
		t.Logf("%d connections cut off, the last %s after opening", len(cs), latest.Round(time.Millisecond))
	}

	dial := func(t *testing.T, n int, first string) []net.Conn {
		t.Helper()
		cs := make([]net.Conn, 0, n)
		t.Cleanup(func() {
			for _, c := range cs {
				_ = c.Close()
			}
		})
		for range n {
			c, err := net.DialTimeout("tcp", addr, 2*time.Second)
			require.NoError(t, err)
			_, err = io.WriteString(c, first)
			require.NoError(t, err)
			cs = append(cs, c)
		}
		return cs
	}

	t.Run("headers that never end", func(t *testing.T) {
		opened := time.Now()
		cs := dial(t, conns, "POST /v1/deployments/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\n")
		// A tenth of them trickle a header line every 200ms, slowloris-style.
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for i := 0; i < len(cs); i += 10 {
			wg.Go(func() {
				tick := time.NewTicker(200 * time.Millisecond)
				defer tick.Stop()
				for n := 0; ; n++ {
					select {
					case <-stop:
						return
					case <-tick.C:
					}
					if _, err := fmt.Fprintf(cs[i], "X-Slow-%d: 1\r\n", n); err != nil {
						return
					}
				}
			})
		}
		served(t)
		cutOff(t, cs, opened, headerTimeout+3*time.Second)
		close(stop)
		wg.Wait()
		served(t)
	})

	t.Run("bodies that never finish", func(t *testing.T) {
		opened := time.Now()
		head := "POST /v1/deployments/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\nContent-Length: 100000\r\n\r\n"
		// More stuck bodies than the receiver's max_concurrent_requests
		// (64 by default).
		cs := dial(t, scaled(100, 500), head+body[:50])
		honest := post(t)
		// Each stuck request ends with a refusal or a closed connection
		// within read_timeout; none of it is ingested.
		statuses := map[int]int{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, c := range cs {
			wg.Go(func() {
				_ = c.SetReadDeadline(opened.Add(readTimeout + 3*time.Second))
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				mu.Lock()
				defer mu.Unlock()
				var ne net.Error
				switch {
				case err == nil:
					statuses[resp.StatusCode]++
					resp.Body.Close()
				case errors.As(err, &ne) && ne.Timeout():
					statuses[-1]++ // still waiting: the failure this test looks for
				default:
					statuses[0]++ // closed without an answer
				}
			})
		}
		wg.Wait()
		t.Logf("stuck bodies ended as (status: count, 0 = closed): %v", statuses)
		assert.Zero(t, statuses[-1], "stuck requests still open after read_timeout")
		for st := range statuses {
			assert.True(t, st == 0 || (st >= 400 && st < 500), "a stuck body is a client error, got %d", st)
		}
		served(t)
		assert.Equal(t, http.StatusOK, honest, "an honest client is served while stuck bodies hold connections")
	})

	t.Run("connection limit", func(t *testing.T) {
		// Connections beyond max_connections are closed at once, well
		// before the header timeout would cut them.
		extra := 50
		var cs []net.Conn
		for range maxConnections + extra {
			c, err := net.Dial("tcp", addr)
			require.NoError(t, err)
			cs = append(cs, c)
		}
		defer func() {
			for _, c := range cs {
				c.Close()
			}
		}()
		var closedEarly atomic.Int64
		deadline := time.Now().Add(headerTimeout / 2)
		var wg sync.WaitGroup
		for _, c := range cs {
			require.NoError(t, c.SetReadDeadline(deadline))
			wg.Go(func() {
				if _, err := c.Read(make([]byte, 1)); errors.Is(err, io.EOF) {
					closedEarly.Add(1)
				}
			})
		}
		wg.Wait()
		assert.GreaterOrEqual(t, int(closedEarly.Load()), extra, "connections beyond the limit are closed at once")
	})
}
