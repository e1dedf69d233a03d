package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Stats counts what a Shipper did with the items (events or Ansible
// lines) it was given.
type Stats struct {
	Delivered int // accepted by the receiver
	Requests  int // HTTP requests that succeeded
	Retries   int // attempts retried
	Spooled   int // written to the spool for later
	Rejected  int // refused by the receiver for good, kept under rejected/
	Recovered int // spooled earlier and delivered during this run
}

// Batch limits: the receiver treats a request atomically, so smaller
// batches isolate a bad item faster; larger ones save round trips.
const (
	maxBatchItems = 100
	maxBatchBytes = 1 << 20
)

// ShipperOptions tune a Shipper.
type ShipperOptions struct {
	Logger *slog.Logger
	// ProbeInterval is how often, while the receiver is down, the shipper
	// tries again instead of spooling straight away.
	ProbeInterval time.Duration
}

// Shipper delivers requests in the background, in order, so the deployment
// never waits on the collector while it runs; Close waits a bounded time
// for the rest. While the receiver is unreachable requests go straight to
// the spool, and the spool is tried again every ProbeInterval.
type Shipper struct {
	client *Client
	spool  *Spool
	log    *slog.Logger
	probe  time.Duration

	ctx    context.Context // cancelled when Close's bound passes
	cancel context.CancelFunc
	done   chan struct{}
	wake   chan struct{}

	mu        sync.Mutex
	queue     []*Request
	closing   bool
	stats     Stats
	down      bool
	lastProbe time.Time
	spooled   map[string]bool // deployments with a spool file from this run
	inflight  int             // requests taken from the queue, not yet settled
}

// NewShipper starts a shipper. Close must be called.
func NewShipper(c *Client, spool *Spool, opts ShipperOptions) *Shipper {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.ProbeInterval <= 0 {
		opts.ProbeInterval = 15 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	own := *c // the retry hook below is this shipper's alone
	s := &Shipper{
		client: &own, spool: spool, log: opts.Logger, probe: opts.ProbeInterval,
		ctx: ctx, cancel: cancel,
		done: make(chan struct{}), wake: make(chan struct{}, 1),
		spooled: map[string]bool{},
	}
	prev := own.cfg.OnRetry
	own.cfg.OnRetry = func(req *Request, attempt int, wait time.Duration, err error) {
		s.mu.Lock()
		s.stats.Retries++
		s.mu.Unlock()
		// One short line per retry: the reason, not the whole error chain.
		s.log.Warn(fmt.Sprintf("collector %s; retry %d in %s", ShortReason(err), attempt, wait.Round(time.Millisecond)),
			"event.action", "delivery.retry", "url.path", req.Path)
		if prev != nil {
			prev(req, attempt, wait, err)
		}
	}
	go s.run()
	return s
}

// Enqueue hands req to the shipper; it never blocks on the network.
// Requests enqueued after Close are spooled directly.
func (s *Shipper) Enqueue(req *Request) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		s.spoolReq(req)
		return
	}
	s.queue = append(s.queue, req)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Close waits until everything enqueued is delivered or spooled, at most
// until ctx ends; then what is still in flight is spooled and Close
// returns the statistics.
func (s *Shipper) Close(ctx context.Context) Stats {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	select {
	case <-s.done:
	case <-ctx.Done():
		s.cancel()
		<-s.done
	}
	s.cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Pending counts the requests not yet delivered or spooled.
func (s *Shipper) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue) + s.inflight
}

func (s *Shipper) run() {
	defer close(s.done)
	for {
		batch, last := s.next()
		if len(batch) > 0 {
			s.deliver(batch)
			s.mu.Lock()
			s.inflight = 0
			s.mu.Unlock()
		}
		if last {
			s.finalProbe()
			return
		}
	}
}

// next waits for queued requests and takes the longest mergeable prefix.
func (s *Shipper) next() ([]*Request, bool) {
	for {
		s.mu.Lock()
		if len(s.queue) > 0 {
			n, size := 1, len(s.queue[0].Body)
			for n < len(s.queue) && n < maxBatchItems && mergeable(s.queue[0], s.queue[n]) && size+len(s.queue[n].Body) <= maxBatchBytes {
				size += len(s.queue[n].Body)
				n++
			}
			batch := s.queue[:n:n]
			s.queue = s.queue[n:]
			s.inflight = n
			s.mu.Unlock()
			return batch, false
		}
		closing := s.closing
		s.mu.Unlock()
		if closing {
			return nil, true
		}
		<-s.wake
	}
}

func mergeable(a, b *Request) bool {
	if a.Path != b.Path || a.ContentType != b.ContentType || a.Deployment != b.Deployment || len(a.Header) != len(b.Header) {
		return false
	}
	for k, v := range a.Header {
		if b.Header[k] != v {
			return false
		}
	}
	return a.ContentType == ContentTypeJSON || a.ContentType == ContentTypeNDJSON
}

// merge joins parts into one request: JSON objects into an array, NDJSON
// by concatenation.
func merge(parts []*Request) *Request {
	if len(parts) == 1 {
		return parts[0]
	}
	out := *parts[0]
	var b strings.Builder
	items := 0
	if out.ContentType == ContentTypeJSON {
		b.WriteByte('[')
		for i, p := range parts {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strings.TrimSpace(p.Body))
			items += p.Items
		}
		b.WriteByte(']')
	} else {
		for _, p := range parts {
			b.WriteString(p.Body)
			if !strings.HasSuffix(p.Body, "\n") {
				b.WriteByte('\n')
			}
			items += p.Items
		}
	}
	out.Body, out.Items = b.String(), items
	return &out
}

func (s *Shipper) deliver(parts []*Request) {
	req := merge(parts)
	if s.isDown() && !s.tryRecover(req.Deployment, false) {
		s.spoolReq(req)
		return
	}
	err := s.client.Send(s.ctx, req)
	var rej *RejectedError
	switch {
	case err == nil:
		s.mu.Lock()
		s.stats.Delivered += req.Items
		s.stats.Requests++
		s.mu.Unlock()
	case errors.As(err, &rej) && rej.Splittable() && len(parts) > 1:
		h := len(parts) / 2
		s.deliver(parts[:h])
		s.deliver(parts[h:])
	case errors.As(err, &rej) && rej.Unauthorized():
		s.log.Error("collector refused our credentials; events are spooled, fix the signing secret and run fastdeploy flush", "status", rej.Status, "error", rej.Message)
		s.markDown()
		s.spoolReq(req)
	case errors.As(err, &rej):
		s.log.Error("collector refused events; kept under the spool's rejected directory", "status", rej.Status, "error", rej.Message, "field", rej.Field, "items", req.Items)
		if rerr := s.spool.Reject(req); rerr != nil {
			s.log.Error("cannot keep rejected events", "error", rerr.Error())
		}
		s.mu.Lock()
		s.stats.Rejected += req.Items
		s.mu.Unlock()
	default:
		s.log.Warn("collector "+ShortReason(err)+"; spooling events until it is back", "error.message", err.Error(), "file.path", s.spool.Dir())
		s.markDown()
		s.spoolReq(req)
	}
}

func (s *Shipper) isDown() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.down
}

func (s *Shipper) markDown() {
	s.mu.Lock()
	s.down = true
	s.lastProbe = time.Now()
	s.mu.Unlock()
}

// tryRecover flushes the deployment's spool file when the probe interval
// has passed (or force is set); it reports whether the receiver is back.
func (s *Shipper) tryRecover(deployment string, force bool) bool {
	s.mu.Lock()
	if !force && time.Since(s.lastProbe) < s.probe {
		s.mu.Unlock()
		return false
	}
	s.lastProbe = time.Now()
	s.mu.Unlock()
	res, err := s.spool.FlushDeployment(s.ctx, s.client, deployment)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Recovered += res.SentItems
	s.stats.Rejected += res.Rejected
	if err != nil {
		return false
	}
	s.down = false
	delete(s.spooled, deployment)
	s.log.Info("collector reachable again; spooled events delivered", "requests", res.Sent)
	return true
}

// finalProbe gives spooled requests of this run one more chance at the
// end, unless the receiver failed only moments ago.
func (s *Shipper) finalProbe() {
	s.mu.Lock()
	var deps []string
	for d := range s.spooled {
		deps = append(deps, d)
	}
	s.mu.Unlock()
	for _, d := range deps {
		if s.ctx.Err() != nil || !s.tryRecover(d, false) {
			return
		}
	}
}

func (s *Shipper) spoolReq(req *Request) {
	if err := s.spool.Append(req); err != nil {
		// Nowhere left to put it: say so loudly, with the payload's size
		// but not its content (it may hold secrets).
		s.log.Error("cannot spool undeliverable events: they are lost", "error", err.Error(), "items", req.Items)
		return
	}
	s.mu.Lock()
	s.stats.Spooled += req.Items
	s.spooled[req.Deployment] = true
	s.mu.Unlock()
}

// ShortReason says in a few words why a delivery attempt failed:
// "refused the connection", "did not answer in time", "answered 503 ...".
func ShortReason(err error) string {
	var netErr net.Error
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused the connection"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "closed the connection"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "did not answer in time"
	case errors.As(err, &dnsErr):
		return "host name did not resolve"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "is unreachable"
	}
	msg := err.Error()
	if i := strings.Index(msg, "collector answered "); i >= 0 {
		return "answered " + strings.TrimPrefix(msg[i:], "collector answered ")
	}
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	return "failed: " + msg
}
