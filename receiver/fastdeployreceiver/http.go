package fastdeployreceiver

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/replay"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/signature"
)

// The HTTP stage: every endpoint, authentication (signature, fastdeploy's
// JWTs), and the mapping from refusals to status codes and JSON bodies.

// Paths served.
const (
	pathEvents  = "/v1/deployments/events"
	pathAnsible = "/v1/ansible"
	pathHealth  = "/health"
)

// Request headers naming where Ansible tasks belong.
const (
	headerDeployment   = "X-Fastdeploy-Deployment"
	headerStep         = "X-Fastdeploy-Step"
	headerStepPosition = "X-Fastdeploy-Step-Position"
	headerService      = "X-Fastdeploy-Service"
	headerTimezone     = "X-Fastdeploy-Timezone"
	headerTraceparent  = "Traceparent"
)

// Compatibility with existing fastdeploy installs: its deploy process posts
// steps to {API_URL}/steps/ and finishes with PUT {API_URL}/deployments/finish/,
// authenticated with the deployment's JWT, and its server publishes domain
// events. Pointing API_URL at the collector is enough.
const (
	pathCompatSteps  = "/steps/"
	pathCompatFinish = "/deployments/finish/"
	pathCompatEvents = "/v1/fastdeploy/events"
	pathCompatSync   = "/services/sync"
)

func (r *fastdeployReceiver) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(pathEvents, r.ingest(http.MethodPost, r.decodeEvents, nil))
	mux.HandleFunc(pathAnsible, r.ingest(http.MethodPost, r.decodeAnsible, nil))
	mux.HandleFunc(pathCompatEvents, r.ingest(http.MethodPost, r.decodeDomainEvents, nil))
	if r.upstream != nil {
		mux.HandleFunc(pathCompatSteps, r.proxied(http.MethodPost, r.decodeCompatStep))
		mux.HandleFunc(pathCompatFinish, r.proxied(http.MethodPut, r.decodeCompatFinish))
	} else if r.cfg.FastdeployJWTSecret != "" {
		mux.HandleFunc(pathCompatSteps, r.ingest(http.MethodPost, r.decodeCompatStep, replyStep, true))
		mux.HandleFunc(pathCompatFinish, r.ingest(http.MethodPut, r.decodeCompatFinish, replyFinish, true))
	} else {
		mux.HandleFunc(pathCompatSteps, r.compatOff)
		mux.HandleFunc(pathCompatFinish, r.compatOff)
	}
	mux.HandleFunc(pathHealth, r.handleHealth)
	if r.upstream != nil {
		// fastdeploy builds one more URL from API_URL, the services sync;
		// it must keep working. Nothing else of fastdeploy's API is
		// reachable through the collector.
		mux.HandleFunc(pathCompatSync, r.proxied("", nil))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, req *http.Request) {
		r.fail(w, req, &requestError{status: http.StatusNotFound, msg: "no such path; POST to " + pathEvents + " or " + pathAnsible, index: -1})
	})
	return mux
}

// routeOf is the self-metrics' path label: one of the paths served, or
// "other". Raw paths of unknown requests would let any client create
// series (and put whatever it wrote in a URL, tokens included, into them).
func routeOf(path string) string {
	switch path {
	case pathEvents, pathAnsible, pathHealth, pathCompatSteps, pathCompatFinish, pathCompatEvents:
		return path
	}
	return "other"
}

func (r *fastdeployReceiver) handleHealth(w http.ResponseWriter, req *http.Request) {
	status := http.StatusOK
	body := map[string]string{"status": "ok"}
	if !r.ready.Load() {
		status = http.StatusServiceUnavailable
		body["status"] = "unavailable"
	}
	r.respond(w, req, status, body)
}

// decodeFunc reads one endpoint's request into plain values; it checks
// the request's own authentication where the endpoint has one.
type decodeFunc func(req *http.Request, body []byte) (input, *requestError)

// replyFunc gives an endpoint's 200 body its own shape; nil answers
// {"accepted": n, "duplicates": n}.
type replyFunc func(in input, x *txn) any

// ingest is the one path of every request: method and content type
// checks, the body read under the size limit, the signature, decode, the
// validate gate, the tracker (holding the keys of what the request
// touches until it commits), delivery to the pipeline and the commit.
// PUT carries no body.
// Paths that authenticate requests themselves (fastdeploy's deployment
// JWTs) pass selfAuth: fastdeploy's deploy process cannot sign.
func (r *fastdeployReceiver) ingest(method string, decode decodeFunc, reply replyFunc, selfAuth ...bool) http.HandlerFunc {
	signs := r.cfg.Secret != "" && len(selfAuth) == 0
	return func(w http.ResponseWriter, req *http.Request) {
		markIngested := func() {}
		if req.Method != method {
			w.Header().Set("Allow", method)
			r.fail(w, req, &requestError{status: http.StatusMethodNotAllowed, msg: "use " + method, index: -1})
			return
		}
		if method == http.MethodPost {
			if rerr := checkContentType(req.Header.Get("Content-Type")); rerr != nil {
				r.fail(w, req, rerr)
				return
			}
		}
		// Credentials carried in headers are checked before the body is
		// read: unauthenticated clients cannot make us buffer it. A
		// missing, malformed or stale signature (or a v1 one on a request
		// whose routing v1 does not cover) is refused here; the MAC needs
		// the body. fastdeploy's JWT is checked whole.
		if signs {
			if err := r.verifier.Precheck(req.Header.Get(signature.Header), signature.RequestOf(req, nil), r.now()); err != nil {
				r.fail(w, req, &requestError{status: http.StatusUnauthorized, reason: "unauthorized", msg: err.Error(), field: signature.Header, index: -1})
				return
			}
		}
		if len(selfAuth) > 0 {
			if _, rerr := r.deploymentFromToken(req); rerr != nil {
				r.fail(w, req, rerr)
				return
			}
		}
		var body []byte
		if method != http.MethodPut { // PUT carries nothing we read
			// Until its MAC is verified, a body counts against
			// max_unauthenticated_buffer, shared by all requests.
			var unverified *budgetReader
			reader := io.Reader(req.Body)
			if signs {
				unverified = &budgetReader{r: req.Body, held: &r.unauthenticated, max: r.cfg.MaxUnauthenticatedBuffer}
				defer unverified.release()
				reader = unverified
			}
			var err error
			body, err = io.ReadAll(reader)
			if err != nil {
				r.failRead(w, req, err)
				return
			}
			// The slot is taken only once the body is in: clients that send
			// slowly are bounded by read_timeout, not by starving the others.
			if !r.takeSlot(w, req) {
				return
			}
			defer func() { <-r.slots }()
			if signs {
				verified, err := r.verifier.Verify(req.Header.Get(signature.Header), signature.RequestOf(req, body), r.now())
				if err != nil {
					r.fail(w, req, &requestError{status: http.StatusUnauthorized, reason: "unauthorized", msg: err.Error(), field: signature.Header, index: -1})
					return
				}
				unverified.release()
				// The same signed request again within the tolerance (an
				// honest retry or a replay) is ingested at most once: the
				// first copy reserves its key before anything is ingested,
				// commits it once the pipeline took the data and releases it
				// when the request fails, so that a retry is ingested then.
				// The key is what the MAC covers: padding or reordering the
				// header does not make a new request.
				switch r.replays.Reserve(verified.Key) {
				case replay.Done:
					r.tel.FastdeployReceiverEventsDuplicate.Add(req.Context(), 1)
					r.respond(w, req, http.StatusOK, map[string]any{"accepted": 0, "duplicates": 0, "replay": true})
					return
				case replay.InProgress:
					w.Header().Set("Retry-After", strconv.Itoa(int(r.cfg.RetryAfter/time.Second)))
					r.fail(w, req, &requestError{status: http.StatusTooManyRequests, reason: "in_progress",
						msg: "the same signed request is being ingested now; retry later", field: signature.Header, index: -1})
					return
				}
				ingested := false
				defer func() {
					if ingested {
						r.replays.Commit(verified.Key)
					} else {
						r.replays.Release(verified.Key)
					}
				}()
				markIngested = func() { ingested = true }
			}
		} else {
			if !r.takeSlot(w, req) {
				return
			}
			defer func() { <-r.slots }()
		}
		// Only authenticated bodies are inspected: an unauthenticated client
		// learns nothing but 401.
		if i := invalidUTF8At(body); i >= 0 {
			r.fail(w, req, malformed(lineAt(body, int64(i)), -1, "", "body is not valid UTF-8"))
			return
		}
		in, rerr := decode(req, body)
		now := r.now()
		if rerr == nil {
			rerr = in.validate(now)
		}
		if rerr != nil {
			r.fail(w, req, rerr)
			return
		}
		x := r.tracker.begin(now, in.lockKeys())
		in.track(x)
		if rerr := x.admit(); rerr != nil {
			x.release()
			x.discard()
			r.fail(w, req, rerr)
			return
		}
		x.release()
		if err := r.deliver(req.Context(), x); err != nil {
			x.discard()
			r.refused(w, req, err, x.accepted)
			return
		}
		markIngested()
		if err := x.commit(req.Context()); err != nil {
			// The data is in the pipeline; only a restart could lose the
			// in-flight state, so the request still succeeded.
			r.set.Logger.Warn("in-flight state not persisted", zap.Error(err))
		}
		r.recordEvictions(req.Context(), x)
		if x.duplicates > 0 {
			r.tel.FastdeployReceiverEventsDuplicate.Add(req.Context(), int64(x.duplicates))
		}
		if reply != nil {
			r.respond(w, req, http.StatusOK, reply(in, x))
			return
		}
		r.respond(w, req, http.StatusOK, map[string]int{"accepted": x.accepted, "duplicates": x.duplicates})
	}
}

// failRead answers a body that could not be read.
// takeSlot takes one of the request slots (max in flight), or answers
// 429 overloaded at once rather than queue: the client retries. The caller
// gives a taken slot back when the request is done.
func (r *fastdeployReceiver) takeSlot(w http.ResponseWriter, req *http.Request) bool {
	select {
	case r.slots <- struct{}{}:
		return true
	default:
		w.Header().Set("Retry-After", strconv.Itoa(int(r.cfg.RetryAfter/time.Second)))
		r.fail(w, req, &requestError{status: http.StatusTooManyRequests, reason: "overloaded",
			msg: "too many requests in flight; retry later", index: -1})
		return false
	}
}

func (r *fastdeployReceiver) failRead(w http.ResponseWriter, req *http.Request, err error) {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		r.fail(w, req, &requestError{status: http.StatusRequestEntityTooLarge, reason: "too_large",
			msg: fmt.Sprintf("body larger than max_request_body_size (%d bytes)", tooLarge.Limit), index: -1})
		return
	}
	if errors.Is(err, errUnauthenticatedBuffer) {
		w.Header().Set("Retry-After", strconv.Itoa(int(r.cfg.RetryAfter/time.Second)))
		r.fail(w, req, &requestError{status: http.StatusTooManyRequests, reason: "overloaded",
			msg: fmt.Sprintf("bodies not yet authenticated exceed max_unauthenticated_buffer (%d bytes); retry later", r.cfg.MaxUnauthenticatedBuffer), index: -1})
		return
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		r.fail(w, req, &requestError{status: http.StatusRequestTimeout, reason: "malformed", msg: "body not received within read_timeout", index: -1})
		return
	}
	r.fail(w, req, &requestError{status: http.StatusBadRequest, reason: "malformed", msg: "cannot read body", index: -1})
}

var errUnauthenticatedBuffer = errors.New("max_unauthenticated_buffer reached")

// budgetReader counts the bytes it reads against a budget shared by all
// requests, until release.
type budgetReader struct {
	r    io.Reader
	held *atomic.Int64
	max  int64
	mine int64
}

func (b *budgetReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if n > 0 {
		if b.held.Add(int64(n)) > b.max {
			b.held.Add(-int64(n))
			return 0, errUnauthenticatedBuffer
		}
		b.mine += int64(n)
	}
	return n, err
}

// release returns what was counted; safe to call more than once.
func (b *budgetReader) release() {
	b.held.Add(-b.mine)
	b.mine = 0
}

func checkContentType(ct string) *requestError {
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil {
		mt = ""
	}
	switch mt {
	case "application/json", "application/x-ndjson", "application/jsonl", "application/x-jsonlines":
		return nil
	}
	return &requestError{status: http.StatusUnsupportedMediaType, reason: "unsupported_media_type",
		msg: "content type must be application/json or application/x-ndjson", field: "Content-Type", index: -1}
}

func (r *fastdeployReceiver) decodeEvents(_ *http.Request, body []byte) (input, *requestError) {
	p := r.ansibleDecoder.parsers.Get()
	defer r.ansibleDecoder.parsers.Put(p)
	in, rerr := decodeLifecycle(body, p)
	if rerr != nil {
		return nil, rerr
	}
	return in, nil
}

func (r *fastdeployReceiver) decodeAnsible(req *http.Request, body []byte) (input, *requestError) {
	target, loc, rerr := decodeAnsibleTarget(req)
	if rerr != nil {
		return nil, rerr
	}
	batch, rerr := r.ansibleDecoder.decode(body, loc)
	if rerr != nil {
		return nil, rerr
	}
	return &ansibleInput{target: target, batch: batch}, nil
}

func (r *fastdeployReceiver) decodeDomainEvents(req *http.Request, body []byte) (input, *requestError) {
	p := r.ansibleDecoder.parsers.Get()
	defer r.ansibleDecoder.parsers.Put(p)
	in, rerr := decodeDomainEvents(body, p, r.cfg.FastdeployServices)
	if rerr != nil {
		return nil, rerr
	}
	// Service names are looked up now, before the tracker: the services
	// list may have to be fetched.
	in.names = map[string]string{}
	for _, ev := range in.events {
		if ev.Type == "deployment" && ev.ServiceID != "" {
			if id, err := ev.ServiceID.Int64(); err == nil {
				in.names[ev.ServiceID.String()] = r.serviceName(req.Context(), id)
			}
		}
	}
	return in, nil
}

// deploymentFromToken names the deployment a call is for. With a secret the
// token is verified here; in proxy mode without one, fastdeploy's 2xx has
// verified it and its claims are read as they are.
func (r *fastdeployReceiver) deploymentFromToken(req *http.Request) (deploymentJWT, *requestError) {
	var tok deploymentJWT
	var err error
	if r.cfg.FastdeployJWTSecret == "" && r.upstream != nil {
		tok, err = deploymentTokenClaims(req.Header.Get("Authorization"))
	} else {
		tok, err = verifyDeploymentToken([]byte(r.cfg.FastdeployJWTSecret), req.Header.Get("Authorization"), r.now())
	}
	if err != nil {
		return deploymentJWT{}, &requestError{status: http.StatusUnauthorized, reason: "unauthorized", msg: err.Error(), field: "Authorization", index: -1}
	}
	return tok, nil
}

func (r *fastdeployReceiver) decodeCompatStep(req *http.Request, body []byte) (input, *requestError) {
	tok, rerr := r.deploymentFromToken(req)
	if rerr != nil {
		return nil, rerr
	}
	p := r.ansibleDecoder.parsers.Get()
	defer r.ansibleDecoder.parsers.Put(p)
	in, rerr := decodeCompatStep(body, p, tok.id)
	if rerr != nil {
		return nil, rerr
	}
	return in, nil
}

func (r *fastdeployReceiver) decodeCompatFinish(req *http.Request, _ []byte) (input, *requestError) {
	tok, rerr := r.deploymentFromToken(req)
	if rerr != nil {
		return nil, rerr
	}
	return &fastdeployFinishInput{deployment: tok.id, at: r.now(), issued: r.cfg.Fastdeploy.tokenIssued(tok)}, nil
}

// fastdeploy's deploy process reads its own answers.
func replyStep(input, *txn) any { return map[string]any{"detail": "step processed"} }

func replyFinish(in input, _ *txn) any {
	return map[string]any{"detail": "Deployment " + in.(*fastdeployFinishInput).deployment + " finished"}
}

var errNoCompat = errors.New("fastdeploy compatibility is off: set fastdeploy_jwt_secret")

func (r *fastdeployReceiver) compatOff(w http.ResponseWriter, req *http.Request) {
	r.fail(w, req, &requestError{status: http.StatusNotFound, msg: errNoCompat.Error(), index: -1})
}

// refused answers a pipeline refusal: 503 with Retry-After for what may
// pass later (memory_limiter), 400 for what never will.
func (r *fastdeployReceiver) refused(w http.ResponseWriter, req *http.Request, err error, events int) {
	r.tel.FastdeployReceiverEventsRefused.Add(req.Context(), int64(max(events, 1)),
		metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", "pipeline"))))
	if consumererror.IsPermanent(err) {
		r.respondError(w, req, &requestError{status: http.StatusBadRequest, msg: "the pipeline rejected the data", index: -1})
		return
	}
	w.Header().Set("Retry-After", strconv.Itoa(int(r.cfg.RetryAfter/time.Second)))
	r.respondError(w, req, &requestError{status: http.StatusServiceUnavailable, msg: "the pipeline is not accepting data now; retry later", index: -1})
}

func (r *fastdeployReceiver) fail(w http.ResponseWriter, req *http.Request, rerr *requestError) {
	if rerr.reason != "" {
		r.tel.FastdeployReceiverEventsRefused.Add(req.Context(), 1,
			metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", rerr.reason))))
	}
	r.respondError(w, req, rerr)
}

func (r *fastdeployReceiver) respondError(w http.ResponseWriter, req *http.Request, rerr *requestError) {
	if rerr.retry {
		w.Header().Set("Retry-After", strconv.Itoa(int(r.cfg.RetryAfter/time.Second)))
	}
	r.respond(w, req, rerr.status, rerr.body())
}

func (r *fastdeployReceiver) respond(w http.ResponseWriter, req *http.Request, status int, body any) {
	r.tel.FastdeployReceiverRequests.Add(req.Context(), 1, metric.WithAttributeSet(attribute.NewSet(
		attribute.String("path", routeOf(req.URL.Path)), attribute.Int("status_code", status))))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// requestError is a refusal that goes back to the client as a JSON body
// naming what is wrong. Messages never quote values, only names and
// positions, so that a secret in a bad payload is not echoed.
type requestError struct {
	status int
	reason string // the events_refused metric's reason attribute
	msg    string
	field  string
	line   int    // 1-based line in the body, 0 when not known
	index  int    // 0-based position of the item in the request, -1 when not known
	limit  string // the configured limit that refused the request, if one did
	retry  bool   // may pass later: the answer carries Retry-After
}

func (e *requestError) Error() string {
	s := e.msg
	if e.field != "" {
		s = e.field + ": " + s
	}
	if e.line > 0 {
		s = fmt.Sprintf("line %d: %s", e.line, s)
	}
	return s
}

type errorBody struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
	Line  int    `json:"line,omitempty"`
	Index *int   `json:"index,omitempty"`
	Limit string `json:"limit,omitempty"`
}

func (e *requestError) body() errorBody {
	b := errorBody{Error: e.msg, Field: e.field, Line: e.line, Limit: e.limit}
	if e.index >= 0 {
		idx := e.index
		b.Index = &idx
	}
	return b
}

func malformed(line, index int, field, format string, args ...any) *requestError {
	return &requestError{status: http.StatusBadRequest, reason: "malformed", msg: fmt.Sprintf(format, args...), field: field, line: line, index: index}
}

func invalid(line, index int, field, msg string) *requestError {
	return &requestError{status: http.StatusUnprocessableEntity, reason: "invalid", msg: msg, field: field, line: line, index: index}
}
