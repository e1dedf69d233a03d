// Package delivery ships the deployer's events to the collector's
// fastdeploy receiver without losing any: each request is retried with
// exponential backoff and jitter on connection errors, 429 and 5xx
// (honouring Retry-After) within a bounded wait, and what cannot be
// delivered goes to an on-disk spool that `fastdeploy flush` or the next
// run sends. The receiver de-duplicates by event id, so sending an event
// twice is harmless; losing one is not.
package delivery

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/signature"
)

// Receiver paths.
const (
	PathEvents  = "/v1/deployments/events"
	PathAnsible = "/v1/ansible"
)

// HeaderDeployment names the deployment of every request, so a load
// balancer in front of several collectors (config/haproxy/haproxy.cfg)
// keeps one deployment on one collector without reading the body.
const HeaderDeployment = "X-Fastdeploy-Deployment"

// Content types.
const (
	ContentTypeJSON   = "application/json"
	ContentTypeNDJSON = "application/x-ndjson"
)

// Request is one POST to the receiver. It is also the unit the spool
// stores, so it holds everything needed to send it again later.
type Request struct {
	Path        string            `json:"path"`
	ContentType string            `json:"content_type"`
	Header      map[string]string `json:"header,omitempty"`
	Body        string            `json:"body"`
	// Items counts the events or lines in Body, for statistics and for
	// splitting a refused batch.
	Items int `json:"items"`
	// Deployment keys the spool file.
	Deployment string `json:"deployment"`
}

// ErrUnavailable is returned when the receiver could not be reached, or
// kept answering "try later", within the wait bound.
var ErrUnavailable = errors.New("collector unavailable")

// RejectedError is a refusal that sending again cannot fix (bad input).
type RejectedError struct {
	Status int
	// Message and Field come from the receiver's {"error", "field"} body.
	Message string
	Field   string
}

func (e *RejectedError) Error() string {
	msg := fmt.Sprintf("collector refused the request with status %d", e.Status)
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.Field != "" {
		msg += " (field " + e.Field + ")"
	}
	return msg
}

// Unauthorized reports whether the refusal is about credentials, which a
// corrected secret fixes, so the request is worth keeping in the spool.
func (e *RejectedError) Unauthorized() bool {
	return e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden
}

// Splittable reports whether a batch refused this way may hold good items
// beside a bad one.
func (e *RejectedError) Splittable() bool {
	switch e.Status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
		return true
	}
	return false
}

// Config configures a Client.
type Config struct {
	// Endpoint is the receiver's base URL, e.g. http://127.0.0.1:8088.
	Endpoint string
	// Secret signs requests with X-Fastdeploy-Signature when set.
	Secret []byte
	// HTTPClient sends requests; nil means a client without timeout
	// (AttemptTimeout bounds each attempt).
	HTTPClient *http.Client
	// MaxWait bounds the time one request spends in retries.
	MaxWait time.Duration
	// AttemptTimeout bounds one HTTP attempt.
	AttemptTimeout time.Duration
	// BaseBackoff is the first retry delay, doubled on each attempt up to
	// MaxBackoff.
	BaseBackoff time.Duration
	MaxBackoff  time.Duration
	// UserAgent identifies the deployer.
	UserAgent string
	// OnRetry, when set, is told about each failed attempt that will be
	// retried (for logs and statistics).
	OnRetry func(req *Request, attempt int, wait time.Duration, err error)
	// RequestContext, when set, derives each attempt's context from the
	// request (the deployer uses it to parent its HTTP client spans on the
	// request's deployment span).
	RequestContext func(ctx context.Context, req *Request) context.Context
	// jitter returns a value in [0, 1); tests fix it.
	jitter func() float64
	// now tells the time for signatures; tests fix it.
	now func() time.Time
}

// DefaultConfig returns delivery defaults: a deployment waits at most 10s
// for one request before it goes to the spool.
func DefaultConfig(endpoint string) Config {
	return Config{
		Endpoint:       endpoint,
		MaxWait:        10 * time.Second,
		AttemptTimeout: 5 * time.Second,
		BaseBackoff:    200 * time.Millisecond,
		MaxBackoff:     5 * time.Second,
		UserAgent:      "fastdeploy",
	}
}

// Client sends requests to the receiver with retries.
type Client struct {
	cfg Config
}

// NewClient returns a client for cfg.
func NewClient(cfg Config) (*Client, error) {
	if cfg.Endpoint == "" {
		return nil, errors.New("collector endpoint is empty")
	}
	if !strings.HasPrefix(cfg.Endpoint, "http://") && !strings.HasPrefix(cfg.Endpoint, "https://") {
		return nil, fmt.Errorf("collector endpoint %q: want an http:// or https:// URL", cfg.Endpoint)
	}
	cfg.Endpoint = strings.TrimRight(cfg.Endpoint, "/")
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{}
	}
	if cfg.jitter == nil {
		cfg.jitter = rand.Float64
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	if cfg.BaseBackoff <= 0 {
		cfg.BaseBackoff = 200 * time.Millisecond
	}
	if cfg.MaxBackoff < cfg.BaseBackoff {
		cfg.MaxBackoff = cfg.BaseBackoff
	}
	return &Client{cfg: cfg}, nil
}

// Send delivers req, retrying transient failures until it succeeds, the
// receiver refuses it for good (*RejectedError), the wait bound passes or
// ctx ends (both ErrUnavailable, wrapping the last failure).
func (c *Client) Send(ctx context.Context, req *Request) error {
	start := time.Now()
	deadline := start.Add(c.cfg.MaxWait)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	var lastErr error
	for attempt := 0; ; attempt++ {
		retryAfter, err := c.attempt(ctx, req)
		if err == nil {
			return nil
		}
		var rej *RejectedError
		if errors.As(err, &rej) {
			return err
		}
		lastErr = err
		wait := c.backoff(attempt)
		if retryAfter > 0 {
			wait = retryAfter
		}
		if ctx.Err() != nil || time.Now().Add(wait).After(deadline) {
			return fmt.Errorf("%w after %d attempts in %s: %w", ErrUnavailable, attempt+1, time.Since(start).Round(time.Millisecond), lastErr)
		}
		if c.cfg.OnRetry != nil {
			c.cfg.OnRetry(req, attempt+1, wait, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w after %d attempts: %w", ErrUnavailable, attempt+1, lastErr)
		case <-t.C:
		}
	}
}

// backoff is exponential with equal jitter: half the delay is fixed so
// retries keep spreading out, half is random so clients that failed
// together do not retry together.
func (c *Client) backoff(attempt int) time.Duration {
	d := c.cfg.BaseBackoff << min(attempt, 20)
	if d > c.cfg.MaxBackoff || d <= 0 {
		d = c.cfg.MaxBackoff
	}
	return d/2 + time.Duration(c.cfg.jitter()*float64(d/2))
}

// attempt makes one HTTP call. It returns the Retry-After the receiver
// asked for, if any, with a retryable error.
func (c *Client) attempt(ctx context.Context, req *Request) (time.Duration, error) {
	if c.cfg.AttemptTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.AttemptTimeout)
		defer cancel()
	}
	if c.cfg.RequestContext != nil {
		ctx = c.cfg.RequestContext(ctx, req)
	}
	body := []byte(req.Body)
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.Endpoint+req.Path, bytes.NewReader(body))
	if err != nil {
		return 0, &RejectedError{Message: err.Error()}
	}
	hr.Header.Set("Content-Type", req.ContentType)
	if c.cfg.UserAgent != "" {
		hr.Header.Set("User-Agent", c.cfg.UserAgent)
	}
	if req.Deployment != "" {
		hr.Header.Set(HeaderDeployment, req.Deployment)
	}
	for k, v := range req.Header {
		hr.Header.Set(k, v)
	}
	if len(c.cfg.Secret) > 0 {
		// v2 signs the routing headers set above too, so sign last.
		signature.SignHTTP(c.cfg.Secret, c.cfg.now(), hr, body)
	}
	resp, err := c.cfg.HTTPClient.Do(hr)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	respBody, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return 0, nil
	case resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode >= 500:
		return parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()), fmt.Errorf("collector answered %s", resp.Status)
	}
	rej := &RejectedError{Status: resp.StatusCode}
	var eb struct {
		Error string `json:"error"`
		Field string `json:"field"`
	}
	if json.Unmarshal(respBody, &eb) == nil {
		rej.Message, rej.Field = eb.Error, eb.Field
	}
	return 0, rej
}

// parseRetryAfter reads delay-seconds or an HTTP date; 0 means absent.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil {
		if secs < 0 {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}
