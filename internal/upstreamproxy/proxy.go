// Package upstreamproxy forwards a request unchanged to one upstream server
// and hands back its answer, answering as a proxy does when the upstream is
// down (502) or slow (504). The fastdeploy receiver uses it so that
// fastdeploy's own server still receives its deploy process's calls.
package upstreamproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// Outcome classifies one forwarded request.
type Outcome int

const (
	// Accepted: the upstream answered 2xx.
	Accepted Outcome = iota
	// Rejected: the upstream answered, not 2xx.
	Rejected
	// Unreachable: no answer (refused, reset, TLS failure): 502.
	Unreachable
	// TimedOut: no answer in time: 504.
	TimedOut
)

func (o Outcome) String() string {
	switch o {
	case Accepted:
		return "accepted"
	case Rejected:
		return "rejected"
	case Unreachable:
		return "unreachable"
	case TimedOut:
		return "timeout"
	}
	return "unknown"
}

// Response is the answer to send back.
type Response struct {
	Status  int
	Header  http.Header
	Body    []byte
	Outcome Outcome
	// Err is the transport error behind Unreachable and TimedOut.
	Err error
}

// hopByHop are the headers a proxy must not forward (RFC 9110 7.6.1).
var hopByHop = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// Proxy forwards to one upstream base URL.
type Proxy struct {
	base    *url.URL
	client  *http.Client
	timeout time.Duration
	maxBody int64

	counts [4]atomic.Int64
}

// DefaultMaxResponseBody bounds what is read of an upstream's answer;
// fastdeploy's answers are a few hundred bytes.
const DefaultMaxResponseBody = 1 << 20

// New makes a proxy to base (scheme, host and an optional path prefix).
// client carries TLS settings; timeout bounds each forwarded request.
func New(base string, client *http.Client, timeout time.Duration) (*Proxy, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("upstream must be an http(s) URL with a host, got %q", base)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("upstream must not have a query or fragment, got %q", base)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	if client == nil {
		client = &http.Client{}
	}
	// A redirect is the upstream's answer, for the deploy process to see.
	c := *client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	return &Proxy{base: u, client: &c, timeout: timeout, maxBody: DefaultMaxResponseBody}, nil
}

// Count returns how many requests ended with an outcome.
func (p *Proxy) Count(o Outcome) int64 { return p.counts[o].Load() }

// Target is the upstream URL a request path and query go to.
func (p *Proxy) Target(path, rawQuery string) string {
	u := *p.base
	u.Path = p.base.Path + path
	u.RawQuery = rawQuery
	return u.String()
}

// Forward sends the request's method, path, query, headers and body to the
// upstream. body is the request's body, already read.
func (p *Proxy) Forward(ctx context.Context, in *http.Request, body []byte) Response {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	out, err := http.NewRequestWithContext(ctx, in.Method, p.Target(in.URL.Path, in.URL.RawQuery), bytes.NewReader(body))
	if err != nil {
		return p.failed(Unreachable, err)
	}
	out.Header = in.Header.Clone()
	removeHopByHop(out.Header)
	// An empty PUT or POST still goes out with Content-Length: 0, as it came.
	out.ContentLength = int64(len(body))
	if len(body) == 0 {
		out.Body = http.NoBody
	}
	resp, err := p.client.Do(out)
	if err != nil {
		if isTimeout(ctx, err) {
			return p.failed(TimedOut, err)
		}
		return p.failed(Unreachable, err)
	}
	defer resp.Body.Close()
	respBody, err := io.ReadAll(io.LimitReader(resp.Body, p.maxBody+1))
	if err != nil {
		if isTimeout(ctx, err) {
			return p.failed(TimedOut, err)
		}
		return p.failed(Unreachable, err)
	}
	if int64(len(respBody)) > p.maxBody {
		return p.failed(Unreachable, fmt.Errorf("upstream answer larger than %d bytes", p.maxBody))
	}
	header := resp.Header.Clone()
	removeHopByHop(header)
	header.Del("Content-Length")
	outcome := Rejected
	if resp.StatusCode/100 == 2 {
		outcome = Accepted
	}
	p.counts[outcome].Add(1)
	return Response{Status: resp.StatusCode, Header: header, Body: respBody, Outcome: outcome}
}

func isTimeout(ctx context.Context, err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func removeHopByHop(h http.Header) {
	for _, v := range h.Values("Connection") {
		for name := range strings.SplitSeq(v, ",") {
			h.Del(strings.TrimSpace(name))
		}
	}
	for _, name := range hopByHop {
		h.Del(name)
	}
}

func (p *Proxy) failed(o Outcome, err error) Response {
	p.counts[o].Add(1)
	status, reason := http.StatusBadGateway, "upstream_unreachable"
	msg := "fastdeploy upstream could not be reached"
	if o == TimedOut {
		status, reason, msg = http.StatusGatewayTimeout, "upstream_timeout", "fastdeploy upstream did not answer in time"
	}
	// The transport error stays out of the body: it can carry addresses.
	body, _ := json.Marshal(map[string]string{"error": reason, "detail": msg})
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	return Response{Status: status, Header: h, Body: body, Outcome: o, Err: err}
}

// Write sends a response to the client.
func Write(w http.ResponseWriter, r Response) {
	for k, v := range r.Header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Length", fmt.Sprint(len(r.Body)))
	w.WriteHeader(r.Status)
	_, _ = w.Write(r.Body)
}
