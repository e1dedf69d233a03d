package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deploytrace"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/signature"
)

// Options bound and shape a run. A run ends when Deployments have been
// sent, when Duration has passed, or when its context ends, whichever
// comes first; at least one of the three must bound it.
type Options struct {
	// Target is the receiver's base URL, such as http://127.0.0.1:8088.
	Target string
	// Senders is how many deployments are sent concurrently.
	Senders int
	// Rate is deployments started per second over all senders; 0 sends
	// as fast as the receiver answers.
	Rate float64
	// Deployments bounds how many deployments are sent; 0 for no bound.
	Deployments int
	// Duration bounds how long new deployments are started; 0 for no bound.
	Duration time.Duration
	// RequestTimeout bounds each request; a request that takes longer
	// counts as hung. Default 10s.
	RequestTimeout time.Duration
	// Retries is how often a request answered 429 or 503 is sent again
	// after its Retry-After (capped by MaxRetryWait). A deployment whose
	// request is finally refused stops there, as a deployer would spool.
	Retries int
	// MaxRetryWait caps the wait before a retry. Default 1s.
	MaxRetryWait time.Duration
	// Secret, when set, signs every request with X-Fastdeploy-Signature.
	Secret []byte
	// RunID names the run's deployments (default: the start time).
	RunID string
	// Seed makes the generated deployments reproducible.
	Seed uint64
}

// Result is what a run did. Latencies are per request, retries included
// as separate requests.
type Result struct {
	Elapsed     time.Duration
	Deployments int // deployments started
	Completed   int // deployments with every request acknowledged
	Requests    int
	Accepted    int // requests answered 2xx
	Events      int // events in acknowledged requests
	// Refused counts non-2xx answers by status code.
	Refused map[int]int
	// Errors counts transport failures (refused connections, resets,
	// timeouts) by a short description.
	Errors map[string]int
	// Hung counts requests that got no answer within RequestTimeout.
	Hung int
	// NoRetryAfter counts 429 and 503 answers without a Retry-After header.
	NoRetryAfter int
	Latencies    []time.Duration

	mu    sync.Mutex
	acked map[deploytrace.TraceID]*Acked
}

// Acked is what was acknowledged of one deployment.
type Acked struct {
	ID     string
	Spans  []deploytrace.SpanID
	Events int
}

// Percentile returns the q-th quantile (0..1) of request latency.
func (r *Result) Percentile(q float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	s := slices.Clone(r.Latencies)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// Acknowledged returns, per trace, the spans and events that the receiver
// acknowledged with a 2xx.
func (r *Result) Acknowledged() map[deploytrace.TraceID]*Acked {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[deploytrace.TraceID]*Acked, len(r.acked))
	for k, v := range r.acked {
		c := *v
		c.Spans = slices.Clone(v.Spans)
		out[k] = &c
	}
	return out
}

// AcknowledgedSpans is the number of spans acknowledged.
func (r *Result) AcknowledgedSpans() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, a := range r.acked {
		n += len(a.Spans)
	}
	return n
}

// Throughput is acknowledged events per second.
func (r *Result) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Events) / r.Elapsed.Seconds()
}

// String is the summary fdload prints.
func (r *Result) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "deployments %d (completed %d), requests %d, accepted %d, events %d in %s\n",
		r.Deployments, r.Completed, r.Requests, r.Accepted, r.Events, r.Elapsed.Round(time.Millisecond))
	fmt.Fprintf(&b, "throughput %.0f events/s, %.1f deployments/s\n", r.Throughput(), float64(r.Completed)/max(r.Elapsed.Seconds(), 1e-9))
	fmt.Fprintf(&b, "latency p50 %s p99 %s max %s\n", r.Percentile(0.50).Round(time.Microsecond),
		r.Percentile(0.99).Round(time.Microsecond), r.Percentile(1).Round(time.Microsecond))
	if len(r.Refused) > 0 {
		codes := make([]int, 0, len(r.Refused))
		for c := range r.Refused {
			codes = append(codes, c)
		}
		slices.Sort(codes)
		b.WriteString("refused")
		for _, c := range codes {
			fmt.Fprintf(&b, " %d:%d", c, r.Refused[c])
		}
		b.WriteString("\n")
	}
	for e, n := range r.Errors {
		fmt.Fprintf(&b, "transport error %q: %d\n", e, n)
	}
	if r.Hung > 0 {
		fmt.Fprintf(&b, "hung (no answer within the request timeout): %d\n", r.Hung)
	}
	if r.NoRetryAfter > 0 {
		fmt.Fprintf(&b, "429/503 without Retry-After: %d\n", r.NoRetryAfter)
	}
	return b.String()
}

// Run sends deployments from w according to o.
func Run(ctx context.Context, w *Workload, o Options) (*Result, error) {
	if o.Target == "" {
		return nil, errors.New("target must be set")
	}
	if o.Deployments <= 0 && o.Duration <= 0 && ctx.Done() == nil {
		return nil, errors.New("bound the run with a count, a duration or a context")
	}
	o.Senders = max(o.Senders, 1)
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 10 * time.Second
	}
	if o.MaxRetryWait <= 0 {
		o.MaxRetryWait = time.Second
	}
	client := &http.Client{
		Timeout: o.RequestTimeout,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConns:        o.Senders,
			MaxIdleConnsPerHost: o.Senders,
			IdleConnTimeout:     30 * time.Second,
			DisableCompression:  true,
		},
	}
	defer client.CloseIdleConnections()

	if o.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Duration)
		defer cancel()
	}
	res := &Result{Refused: map[int]int{}, Errors: map[string]int{}, acked: map[deploytrace.TraceID]*Acked{}}
	work := make(chan Deployment, o.Senders)
	start := time.Now()

	// The dispatcher generates deployments in order (the workload is
	// deterministic per seed) and paces them when a rate is set.
	go func() {
		defer close(work)
		var tick *time.Ticker
		if o.Rate > 0 {
			tick = time.NewTicker(time.Duration(float64(time.Second) / o.Rate))
			defer tick.Stop()
		}
		for n := 0; o.Deployments <= 0 || n < o.Deployments; n++ {
			if tick != nil && n > 0 {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
			d := w.Deployment(n)
			select {
			case <-ctx.Done():
				return
			case work <- d:
			}
		}
	}()

	var wg sync.WaitGroup
	for range o.Senders {
		wg.Go(func() {
			s := sender{client: client, o: &o, res: res}
			for d := range work {
				s.deployment(ctx, d)
			}
		})
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	return res, nil
}

type sender struct {
	client *http.Client
	o      *Options
	res    *Result
}

// deployment sends d's requests in order and stops at the first that is
// finally refused. Requests already started are finished even when the
// run's context ends, so that every request has an answer or an error.
func (s *sender) deployment(ctx context.Context, d Deployment) {
	s.res.mu.Lock()
	s.res.Deployments++
	s.res.mu.Unlock()
	for i, r := range d.Requests {
		if i > 0 && ctx.Err() != nil {
			return
		}
		if !s.request(ctx, d, r) {
			return
		}
	}
	s.res.mu.Lock()
	s.res.Completed++
	s.res.mu.Unlock()
}

func (s *sender) request(ctx context.Context, d Deployment, r Request) bool {
	for attempt := 0; ; attempt++ {
		status, retryAfter := s.send(d, r)
		if status >= 200 && status < 300 {
			return true
		}
		if (status != http.StatusServiceUnavailable && status != http.StatusTooManyRequests) || attempt >= s.o.Retries {
			return false
		}
		wait := min(retryAfter, s.o.MaxRetryWait)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
	}
}

// send makes one attempt and records it; status is 0 on transport errors.
func (s *sender) send(d Deployment, r Request) (status int, retryAfter time.Duration) {
	url := s.o.Target + r.Path
	if r.Query != "" {
		url += "?" + r.Query
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(r.Body))
	if err != nil {
		s.recordError(err)
		return 0, 0
	}
	for k, v := range r.Header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", r.ContentType)
	if len(s.o.Secret) > 0 {
		signature.SignHTTP(s.o.Secret, time.Now(), req, r.Body)
	}
	began := time.Now()
	resp, err := s.client.Do(req)
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	took := time.Since(began)

	s.res.mu.Lock()
	defer s.res.mu.Unlock()
	s.res.Requests++
	s.res.Latencies = append(s.res.Latencies, took)
	if err != nil {
		s.recordErrorLocked(err)
		return 0, 0
	}
	status = resp.StatusCode
	if status >= 200 && status < 300 {
		s.res.Accepted++
		s.res.Events += r.Events
		a := s.res.acked[d.Trace]
		if a == nil {
			a = &Acked{ID: d.ID}
			s.res.acked[d.Trace] = a
		}
		a.Spans = append(a.Spans, r.Spans...)
		a.Events += r.Events
		return status, 0
	}
	s.res.Refused[status]++
	if status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests {
		v := resp.Header.Get("Retry-After")
		secs, convErr := strconv.Atoi(v)
		if v == "" || convErr != nil {
			s.res.NoRetryAfter++
		} else {
			retryAfter = time.Duration(secs) * time.Second
		}
	}
	return status, retryAfter
}

func (s *sender) recordError(err error) {
	s.res.mu.Lock()
	defer s.res.mu.Unlock()
	s.recordErrorLocked(err)
}

func (s *sender) recordErrorLocked(err error) {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		s.res.Hung++
		s.res.Errors["timeout"]++
		return
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "connection refused"):
		msg = "connection refused"
	case strings.Contains(msg, "connection reset"):
		msg = "connection reset"
	case strings.Contains(msg, "EOF"):
		msg = "EOF"
	}
	s.res.Errors[msg]++
}
