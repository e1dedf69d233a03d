package fastdeployreceiver

import (
	"net"
	"net/http"
	"sync"
)

// connLimiter closes connections beyond max as soon as the server sees
// them, so a flood of idle or slow connections cannot exhaust the
// collector's file descriptors; refused clients see a closed connection
// and retry. It counts through http.Server.ConnState rather than wrapping
// the listener, so TLS connections stay *tls.Conn and HTTP/2 keeps working.
type connLimiter struct {
	max     int
	refused func()

	mu      sync.Mutex
	open    map[net.Conn]bool // true: counted against max
	counted int
}

func newConnLimiter(maxConns int, refused func()) *connLimiter {
	return &connLimiter{max: maxConns, refused: refused, open: map[net.Conn]bool{}}
}

// connState is installed as the server's ConnState hook; previous, if set,
// is still called.
func (l *connLimiter) connState(previous func(net.Conn, http.ConnState)) func(net.Conn, http.ConnState) {
	return func(c net.Conn, state http.ConnState) {
		if previous != nil {
			previous(c, state)
		}
		switch state {
		case http.StateNew:
			l.mu.Lock()
			over := l.counted >= l.max
			if !over {
				l.counted++
			}
			l.open[c] = !over
			l.mu.Unlock()
			if over {
				// Counted before the close, so whoever sees the close sees the count.
				l.refused()
				_ = c.Close()
			}
		case http.StateClosed, http.StateHijacked:
			l.mu.Lock()
			if l.open[c] {
				l.counted--
			}
			delete(l.open, c)
			l.mu.Unlock()
		}
	}
}
