// Package fakereceiver is a test double of the collector's fastdeploy
// receiver that implements its HTTP contract: lifecycle events as a JSON
// object, array or NDJSON, validated and de-duplicated by delivery id,
// requests signed when a secret is set, 4xx with {"error", "field"} on bad
// input, and injectable faults (503/429 with Retry-After, dropped
// connections, hangs) to test delivery.
package fakereceiver

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployevent"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/signature"
)

// Fault is what the receiver does to one request instead of serving it.
type Fault int

// Faults.
const (
	None        Fault = iota
	Unavailable       // 503 with Retry-After
	TooMany           // 429 with Retry-After
	Drop              // close the connection without an answer
	Hang              // never answer (until the server closes)
	// AcceptThenDrop ingests the request, then loses the answer, so the
	// client sends it again: de-duplication must absorb the repeat.
	AcceptThenDrop
)

// AnsibleBatch is one POST to /v1/ansible.
type AnsibleBatch struct {
	Header http.Header
	Lines  []map[string]any
}

// Receiver is the fake. Its fields may be set before the first request.
type Receiver struct {
	Server *httptest.Server
	Secret []byte
	// RetryAfter is sent with Unavailable and TooMany ("0" when empty).
	RetryAfter string
	// FaultFor picks a fault per request (n counts requests from 1). Set it
	// before the first request; to change it while requests may still be
	// served (a retry in flight), use SetFaultFor.
	FaultFor func(n int, r *http.Request) Fault

	mu       sync.Mutex
	requests int
	accepted map[string]int // delivery id -> times accepted (dedup keeps it at 1)
	dupes    int
	events   []deployevent.Event
	ansible  []AnsibleBatch
	hang     chan struct{}
}

// Start starts a fake receiver on 127.0.0.1; it is closed with t's cleanup
// by the caller (Close).
func Start() *Receiver {
	r := &Receiver{accepted: map[string]int{}, hang: make(chan struct{})}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	return r
}

// URL is the receiver's base URL.
func (r *Receiver) URL() string { return r.Server.URL }

// Close stops the server, releasing hung requests first.
func (r *Receiver) Close() {
	r.mu.Lock()
	select {
	case <-r.hang:
	default:
		close(r.hang)
	}
	r.mu.Unlock()
	r.Server.CloseClientConnections()
	r.Server.Close()
}

// Events returns the accepted events, without duplicates, in arrival order.
func (r *Receiver) Events() []deployevent.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]deployevent.Event(nil), r.events...)
}

// Accepted returns how many times each delivery id was accepted as new;
// every value is 1 when de-duplication works.
func (r *Receiver) Accepted() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.accepted))
	for k, v := range r.accepted {
		out[k] = v
	}
	return out
}

// SetFaultFor replaces FaultFor while requests may be in flight.
func (r *Receiver) SetFaultFor(f func(n int, r *http.Request) Fault) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.FaultFor = f
}

// Duplicates counts events acknowledged but dropped as repeats.
func (r *Receiver) Duplicates() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dupes
}

// Requests counts requests received.
func (r *Receiver) Requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests
}

// Ansible returns the accepted /v1/ansible batches.
func (r *Receiver) Ansible() []AnsibleBatch {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]AnsibleBatch(nil), r.ansible...)
}

func writeError(w http.ResponseWriter, status int, msg, field string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg, "field": field})
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.requests++
	n := r.requests
	fault := None
	if r.FaultFor != nil {
		fault = r.FaultFor(n, req)
	}
	r.mu.Unlock()
	retryAfter := r.RetryAfter
	if retryAfter == "" {
		retryAfter = "0"
	}
	switch fault {
	case Unavailable:
		w.Header().Set("Retry-After", retryAfter)
		writeError(w, http.StatusServiceUnavailable, "pipeline refused the data", "")
		return
	case TooMany:
		w.Header().Set("Retry-After", retryAfter)
		writeError(w, http.StatusTooManyRequests, "too many requests", "")
		return
	case Drop:
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	case Hang:
		select {
		case <-r.hang:
		case <-req.Context().Done():
		}
		return
	case AcceptThenDrop:
		r.handle(httptest.NewRecorder(), req)
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	}
	r.handle(w, req)
}

func (r *Receiver) handle(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		writeError(w, http.StatusMethodNotAllowed, "use POST", "")
		return
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, 20<<20))
	if err != nil {
		writeError(w, http.StatusBadRequest, "cannot read body", "")
		return
	}
	if len(r.Secret) > 0 {
		// v2 only, as production.yaml's receiver: a deployer that signed
		// less than the routing would fail here.
		v := signature.Verifier{Secret: r.Secret, Tolerance: 5 * time.Minute, V1: signature.V1Refused}
		if _, err := v.Verify(req.Header.Get(signature.Header), signature.RequestOf(req, body), time.Now()); err != nil {
			writeError(w, http.StatusUnauthorized, err.Error(), "")
			return
		}
	}
	ct, _, _ := strings.Cut(req.Header.Get("Content-Type"), ";")
	if ct != "application/json" && ct != "application/x-ndjson" {
		writeError(w, http.StatusUnsupportedMediaType, "want application/json or application/x-ndjson", "")
		return
	}
	switch req.URL.Path {
	case "/v1/deployments/events":
		r.serveEvents(w, body)
	case "/v1/ansible":
		r.serveAnsible(w, req, body)
	default:
		writeError(w, http.StatusNotFound, "no such path", "")
	}
}

// objects splits a body into JSON objects: an object, an array, or NDJSON.
func objects(body []byte) ([]json.RawMessage, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) > 0 && trimmed[0] == '[' {
		var arr []json.RawMessage
		err := json.Unmarshal(trimmed, &arr)
		return arr, err
	}
	var out []json.RawMessage
	sc := bufio.NewScanner(bytes.NewReader(trimmed))
	sc.Buffer(nil, 20<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		if !json.Valid(line) {
			return nil, errors.New("invalid JSON line")
		}
		out = append(out, append(json.RawMessage(nil), line...))
	}
	return out, sc.Err()
}

func (r *Receiver) serveEvents(w http.ResponseWriter, body []byte) {
	objs, err := objects(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, "malformed JSON", "")
		return
	}
	evs := make([]deployevent.Event, 0, len(objs))
	for _, o := range objs {
		var ev deployevent.Event
		if err := json.Unmarshal(o, &ev); err != nil {
			writeError(w, http.StatusBadRequest, "malformed event", "")
			return
		}
		if err := ev.Validate(); err != nil {
			var fe *deployevent.FieldError
			if errors.As(err, &fe) {
				writeError(w, http.StatusUnprocessableEntity, fe.Reason, fe.Field)
				return
			}
			writeError(w, http.StatusUnprocessableEntity, err.Error(), "")
			return
		}
		evs = append(evs, ev)
	}
	// Atomic: validated all before accepting any.
	r.mu.Lock()
	for _, ev := range evs {
		if ev.ID != "" {
			if r.accepted[ev.ID] > 0 {
				r.dupes++
				continue
			}
			r.accepted[ev.ID]++
		}
		r.events = append(r.events, ev)
	}
	r.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (r *Receiver) serveAnsible(w http.ResponseWriter, req *http.Request, body []byte) {
	if req.Header.Get("X-Fastdeploy-Deployment") == "" && req.Header.Get("traceparent") == "" {
		writeError(w, http.StatusUnprocessableEntity, "deployment unknown: send X-Fastdeploy-Deployment or traceparent", "X-Fastdeploy-Deployment")
		return
	}
	objs, err := objects(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, "malformed JSON", "")
		return
	}
	batch := AnsibleBatch{Header: req.Header.Clone()}
	for _, o := range objs {
		var m map[string]any
		if err := json.Unmarshal(o, &m); err != nil {
			writeError(w, http.StatusBadRequest, "malformed line", "")
			return
		}
		batch.Lines = append(batch.Lines, m)
	}
	r.mu.Lock()
	r.ansible = append(r.ansible, batch)
	r.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}
