package fastdeployreceiver

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConnLimiterClosesConnectionsBeyondMax(t *testing.T) {
	t.Parallel()
	var refused atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
	}))
	srv.Config.ConnState = newConnLimiter(2, func() { refused.Add(1) }).connState(nil)
	srv.Start()
	defer srv.Close()
	addr := srv.Listener.Addr().String()

	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		return c
	}
	first := dial()
	dial()
	third := dial()
	require.NoError(t, third.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err := third.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.EOF, "the connection beyond the limit is closed at once")
	assert.EqualValues(t, 1, refused.Load())

	// Closing one frees its slot for the next.
	require.NoError(t, first.Close())
	require.Eventually(t, func() bool {
		c := dial()
		_, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
		if err != nil {
			return false
		}
		require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
		buf := make([]byte, 12)
		n, _ := io.ReadFull(c, buf)
		return n == 12 && string(buf) == "HTTP/1.1 200"
	}, 10*time.Second, 50*time.Millisecond)
}

// TestConnLimiterKeepsHTTP2OverTLS guards the regression of wrapping TLS
// connections: the server must still speak the protocol it negotiated.
func TestConnLimiterKeepsHTTP2OverTLS(t *testing.T) {
	t.Parallel()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Proto)
	}))
	srv.EnableHTTP2 = true
	srv.Config.ConnState = newConnLimiter(8, func() {}).connState(nil)
	srv.StartTLS()
	defer srv.Close()
	client := srv.Client()
	client.Transport.(*http.Transport).TLSClientConfig.NextProtos = []string{"h2", "http/1.1"}
	client.Transport.(*http.Transport).ForceAttemptHTTP2 = true
	resp, err := client.Get(srv.URL)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	assert.Equal(t, "HTTP/2.0", string(body))
}
