package fastdeployreceiver

import (
	"net"
	"sync"
)

// limitListener closes connections beyond max at once, so that a flood of
// idle or slow connections cannot exhaust the collector's file
// descriptors; refused clients see a closed connection and retry.
// (net/netutil's LimitListener instead leaves them waiting in the backlog.)
type limitListener struct {
	net.Listener
	slots   chan struct{}
	refused func()
}

func newLimitListener(l net.Listener, maxConns int, refused func()) net.Listener {
	return &limitListener{Listener: l, slots: make(chan struct{}, maxConns), refused: refused}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			return &limitConn{Conn: c, release: func() { <-l.slots }}, nil
		default:
			_ = c.Close()
			l.refused()
		}
	}
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
