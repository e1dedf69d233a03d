package fastdeployreceiver

import (
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLimitListenerClosesConnectionsBeyondMax(t *testing.T) {
	t.Parallel()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var refused atomic.Int64
	ln := newLimitListener(inner, 2, func() { refused.Add(1) })
	defer ln.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", inner.Addr().String())
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		return c
	}
	dial()
	dial()
	first := <-accepted
	<-accepted
	third := dial()
	require.NoError(t, third.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err = third.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.EOF, "the connection beyond the limit is closed at once")
	assert.EqualValues(t, 1, refused.Load())

	// Closing one frees its slot for the next.
	require.NoError(t, first.Close())
	_ = first.Close() // closing twice frees one slot only
	dial()
	select {
	case c := <-accepted:
		c.Close()
	case <-time.After(10 * time.Second):
		t.Fatal("a freed slot is not reused")
	}
}
