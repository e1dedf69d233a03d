// Package connlimit bounds a server's open connections without letting
// one client's connections that do nothing lock the others out.
//
// A cap that refuses new connections once full is a lockout switch: 1024
// TCP connections that never send a TLS hello, reopened as the server
// closes them, hold every slot. Here a new connection is admitted while
// some open connection is not serving a request: the limiter closes one
// of the source (remote IP) that holds the most connections, choosing
// the one that has waited longest without a request (first those that
// never sent one, such as a TLS hello that never came, then idle
// keep-alive ones). A flood from one source thus evicts only itself,
// however fast it reconnects; honest clients, holding a connection or two
// each, keep theirs. Only when every slot is serving a request is the new
// connection closed. The file-descriptor bound holds throughout.
//
// Left open: a flood from as many sources as the cap has slots can still
// evict honest clients' connections before their first request.
//
// It works through http.Server.ConnState rather than by wrapping the
// listener, so TLS connections stay *tls.Conn and HTTP/2 keeps working.
package connlimit

import (
	"container/list"
	"net"
	"net/http"
	"sync"
)

// Limiter is installed with Hook as an http.Server's ConnState.
type Limiter struct {
	max int
	// onEvict is told about each connection closed to make room
	// (neverServed: it had sent no request); onRefuse about each new
	// connection closed because every slot was serving a request.
	onEvict  func(neverServed bool)
	onRefuse func()

	mu      sync.Mutex
	conns   map[net.Conn]*entry
	sources map[string]*source
}

// source is one remote IP's connections: fresh ones have sent no request
// yet, idle ones are between requests; both oldest first.
type source struct {
	open        int
	fresh, idle list.List
}

type entry struct {
	src  *source
	elem *list.Element
	in   *list.List // the source's fresh or idle list, or nil (serving)
}

// New returns a limiter of max open connections (max ≤ 0: no limit).
// onEvict and onRefuse may be nil.
func New(max int, onEvict func(neverServed bool), onRefuse func()) *Limiter {
	return &Limiter{max: max, onEvict: onEvict, onRefuse: onRefuse, conns: map[net.Conn]*entry{}, sources: map[string]*source{}}
}

// Hook returns the ConnState function to install; previous, if set, is
// still called first.
func (l *Limiter) Hook(previous func(net.Conn, http.ConnState)) func(net.Conn, http.ConnState) {
	return func(c net.Conn, state http.ConnState) {
		if previous != nil {
			previous(c, state)
		}
		l.observe(c, state)
	}
}

// Open returns the connections counted now.
func (l *Limiter) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}

func sourceOf(c net.Conn) string {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	host, _, err := net.SplitHostPort(c.RemoteAddr().String())
	if err != nil {
		return c.RemoteAddr().String()
	}
	return host
}

func (l *Limiter) observe(c net.Conn, state http.ConnState) {
	var victim net.Conn
	victimFresh, refuse := false, false
	l.mu.Lock()
	switch state {
	case http.StateNew:
		if l.max > 0 && len(l.conns) >= l.max {
			victim, victimFresh = l.pickVictim()
			if victim == nil {
				refuse = true
				break
			}
			l.forget(victim)
		}
		key := sourceOf(c)
		src := l.sources[key]
		if src == nil {
			src = &source{}
			l.sources[key] = src
		}
		src.open++
		e := &entry{src: src}
		l.conns[c] = e
		e.moveTo(c, &src.fresh)
	case http.StateActive:
		if e := l.conns[c]; e != nil {
			e.moveTo(c, nil)
		}
	case http.StateIdle:
		if e := l.conns[c]; e != nil {
			e.moveTo(c, &e.src.idle)
		}
	case http.StateClosed, http.StateHijacked:
		l.forget(c)
	}
	l.mu.Unlock()
	// Closing outside the lock: the server reports StateClosed for it
	// through this same hook.
	if refuse {
		if l.onRefuse != nil {
			l.onRefuse()
		}
		_ = c.Close()
	}
	if victim != nil {
		if l.onEvict != nil {
			l.onEvict(victimFresh)
		}
		_ = victim.Close()
	}
}

// pickVictim chooses among the sources with a waiting connection the one
// with the most open connections, and of its connections the oldest that
// never sent a request, else the longest idle. Scanning the sources is
// bounded by max: each holds at least one connection.
func (l *Limiter) pickVictim() (net.Conn, bool) {
	var worst *source
	for _, src := range l.sources {
		if src.fresh.Len()+src.idle.Len() == 0 {
			continue
		}
		if worst == nil || src.open > worst.open {
			worst = src
		}
	}
	if worst == nil {
		return nil, false
	}
	if f := worst.fresh.Front(); f != nil {
		return f.Value.(net.Conn), true
	}
	return worst.idle.Front().Value.(net.Conn), false
}

func (e *entry) moveTo(c net.Conn, to *list.List) {
	if e.in != nil {
		e.in.Remove(e.elem)
		e.in, e.elem = nil, nil
	}
	if to != nil {
		e.in, e.elem = to, to.PushBack(c)
	}
}

func (l *Limiter) forget(c net.Conn) {
	e := l.conns[c]
	if e == nil {
		return
	}
	e.moveTo(c, nil)
	delete(l.conns, c)
	e.src.open--
	if e.src.open == 0 {
		delete(l.sources, sourceOf(c))
	}
}
