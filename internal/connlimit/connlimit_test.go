package connlimit

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

type counters struct{ evictedFresh, evictedIdle, refused atomic.Int64 }

func startServer(t *testing.T, max int, h2 bool, handler http.Handler) (*httptest.Server, *Limiter, *counters) {
	t.Helper()
	var c counters
	l := New(max, func(neverServed bool) {
		if neverServed {
			c.evictedFresh.Add(1)
		} else {
			c.evictedIdle.Add(1)
		}
	}, func() { c.refused.Add(1) })
	srv := httptest.NewUnstartedServer(handler)
	srv.Config.ConnState = l.Hook(srv.Config.ConnState)
	srv.EnableHTTP2 = h2
	// Handshake errors of the flood are expected; keep the test output clean.
	srv.Config.ErrorLog = nil
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, l, &c
}

// TestFloodOfSilentConnections is issue 17's item 2 in small: a client
// (from 127.0.0.2) keeps twice the cap of connections open without ever
// sending a TLS hello, reopening each as soon as it is closed; honest
// HTTPS requests (from 127.0.0.1), each on a new connection, over
// HTTP/1.1 and HTTP/2, still all succeed.
func TestFloodOfSilentConnections(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		const max = 16
		srv, l, c := startServer(t, max, h2, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "ok")
		}))
		addr := srv.Listener.Addr().String()

		attacker := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
		stop := make(chan struct{})
		var flood sync.WaitGroup
		var opened atomic.Int64
		for range 2 * max {
			flood.Add(1)
			go func() {
				defer flood.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					conn, err := attacker.Dial("tcp", addr)
					if err != nil {
						continue
					}
					opened.Add(1)
					// Wait until the server closes it (or the test ends).
					go func() { <-stop; conn.Close() }()
					_, _ = conn.Read(make([]byte, 1))
					conn.Close()
				}
			}()
		}
		// The flood holds the cap before the honest clients start.
		require.Eventually(t, func() bool { return l.Open() == max && opened.Load() >= 2*max }, 10*time.Second, time.Millisecond)

		const requests = 100
		ok := 0
		for range requests {
			tr := srv.Client().Transport.(*http.Transport).Clone()
			tr.DisableKeepAlives = true
			tr.ForceAttemptHTTP2 = h2
			client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			resp, err := client.Get(srv.URL)
			if err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(body) == "ok" && (resp.ProtoMajor == 2) == h2 {
					ok++
				}
			}
			tr.CloseIdleConnections()
		}
		close(stop)
		flood.Wait()
		t.Logf("HTTP/2 %v: %d of %d honest requests succeeded under a flood of %d silent connections (%d opened, %d evicted before a request, %d refused)",
			h2, ok, requests, 2*max, opened.Load(), c.evictedFresh.Load(), c.refused.Load())
		assert.GreaterOrEqual(t, ok, requests*99/100)
		assert.Positive(t, c.evictedFresh.Load(), "the flood was evicted, not the honest clients")
		assert.Zero(t, c.refused.Load(), "nobody is refused while slots hold silent connections")
		assert.LessOrEqual(t, l.Open(), max)
	}
}

// TestServingConnectionsAreNeverEvicted: with every slot serving a
// request, a new connection is closed and counted; once one finishes,
// the next connection gets in. Idle keep-alive connections make room
// before the serving ones, and after those that never sent a request.
func TestServingConnectionsAreNeverEvicted(t *testing.T) {
	const max = 4
	release := make(chan struct{})
	var releaseOnce sync.Once
	var serving sync.WaitGroup
	srv, l, c := startServer(t, max, false, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/block" {
			serving.Done()
			<-release
		}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
	newClient := func() *http.Client {
		tr := srv.Client().Transport.(*http.Transport).Clone()
		return &http.Client{Transport: tr, Timeout: 10 * time.Second}
	}
	// One idle keep-alive connection.
	idleClient := newClient()
	resp, err := idleClient.Get(srv.URL + "/")
	require.NoError(t, err)
	_, _ = io.ReadAll(resp.Body) // read to the end, or the connection is not kept
	resp.Body.Close()
	// max-1 connections serving.
	var blocked sync.WaitGroup
	serving.Add(max - 1)
	for range max - 1 {
		blocked.Add(1)
		go func() {
			defer blocked.Done()
			resp, err := newClient().Get(srv.URL + "/block")
			if err == nil {
				resp.Body.Close()
			}
		}()
	}
	serving.Wait()
	require.Equal(t, max, l.Open())

	// A silent connection takes the idle one's slot.
	silent, err := net.Dial("tcp", srv.Listener.Addr().String())
	require.NoError(t, err)
	defer silent.Close()
	require.Eventually(t, func() bool { return c.evictedIdle.Load() == 1 }, 5*time.Second, time.Millisecond)
	// A request evicts the silent connection, not a serving one.
	hung := make(chan error, 1)
	go func() {
		resp, err := newClient().Get(srv.URL + "/block")
		if err == nil {
			resp.Body.Close()
		}
		hung <- err
	}()
	serving.Add(1)
	serving.Wait()
	assert.Equal(t, int64(1), c.evictedFresh.Load())
	_, err = silent.Read(make([]byte, 1))
	require.Error(t, err, "the silent connection was closed")

	// Every slot serving: the next connection is refused.
	conn, err := tls.Dial("tcp", srv.Listener.Addr().String(), srv.Client().Transport.(*http.Transport).TLSClientConfig)
	if err == nil {
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
	}
	require.Error(t, err)
	require.Eventually(t, func() bool { return c.refused.Load() == 1 }, 5*time.Second, time.Millisecond)

	releaseOnce.Do(func() { close(release) })
	blocked.Wait()
	require.NoError(t, <-hung)
	resp, err = newClient().Get(srv.URL + "/")
	require.NoError(t, err, "a slot is free again")
	resp.Body.Close()
	idleClient.CloseIdleConnections()
}
