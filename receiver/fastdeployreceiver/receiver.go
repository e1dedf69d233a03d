package fastdeployreceiver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deploytrace"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/signature"
	"github.com/fastdeploy/otelcol-fastdeploy/receiver/fastdeployreceiver/internal/metadata"
)

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

type fastdeployReceiver struct {
	cfg     *Config
	set     receiver.Settings
	traces  consumer.Traces
	logs    consumer.Logs
	tracker *tracker
	// replays remembers signed requests already ingested.
	replays *replayCache
	// slots bounds the requests handled at once.
	slots chan struct{}
	// ansibleDecoder pools fastjson parsers across requests, also used to
	// vet lifecycle events.
	ansibleDecoder ansibleDecoder
	obsTrace       *receiverhelper.ObsReport
	obsLogs        *receiverhelper.ObsReport
	tel            *metadata.TelemetryBuilder
	now            func() time.Time
	onClose        func()

	storage storage.Client

	startOnce    sync.Once
	shutdownOnce sync.Once
	startErr     error
	ready        atomic.Bool
	server       *http.Server
	serveDone    chan struct{}
	cancel       context.CancelFunc
	sweepDone    chan struct{}
}

func newReceiver(set receiver.Settings, cfg *Config, onClose func()) (*fastdeployReceiver, error) {
	obsTrace, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{ReceiverID: set.ID, Transport: "http", ReceiverCreateSettings: set})
	if err != nil {
		return nil, fmt.Errorf("create obsreport: %w", err)
	}
	obsLogs, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{ReceiverID: set.ID, Transport: "http", ReceiverCreateSettings: set})
	if err != nil {
		return nil, fmt.Errorf("create obsreport: %w", err)
	}
	r := &fastdeployReceiver{
		cfg:      cfg,
		set:      set,
		tracker:  newTracker(cfg.Timeout, cfg.DedupWindow, set.BuildInfo.Version),
		obsTrace: obsTrace,
		obsLogs:  obsLogs,
		now:      time.Now,
		onClose:  onClose,
		slots:    make(chan struct{}, max(cfg.MaxConcurrentRequests, 1)),
		replays:  &replayCache{set: newBoundedSet[string, struct{}](maxRememberedSignatures)},
	}
	r.tel, err = metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, fmt.Errorf("create telemetry: %w", err)
	}
	err = r.tel.RegisterFastdeployReceiverInflightSpansCallback(func(_ context.Context, o metric.Int64Observer) error {
		o.Observe(int64(r.tracker.inflight()))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("register inflight gauge: %w", err)
	}
	return r, nil
}

func (r *fastdeployReceiver) setTraces(next consumer.Traces) { r.traces = next }
func (r *fastdeployReceiver) setLogs(next consumer.Logs)     { r.logs = next }

// Start is called once per pipeline that uses the receiver; only the first
// call starts the server.
func (r *fastdeployReceiver) Start(ctx context.Context, host component.Host) error {
	r.startOnce.Do(func() { r.startErr = r.start(ctx, host) })
	return r.startErr
}

func (r *fastdeployReceiver) start(ctx context.Context, host component.Host) error {
	if r.cfg.Storage != nil {
		ext, ok := host.GetExtensions()[*r.cfg.Storage]
		if !ok {
			return fmt.Errorf("storage extension %s not found", r.cfg.Storage)
		}
		se, ok := ext.(storage.Extension)
		if !ok {
			return fmt.Errorf("extension %s is not a storage extension", r.cfg.Storage)
		}
		client, err := se.GetClient(ctx, component.KindReceiver, r.set.ID, "")
		if err != nil {
			return fmt.Errorf("open storage %s: %w", r.cfg.Storage, err)
		}
		if err := r.tracker.attach(ctx, client, r.cfg.DedupWindow); err != nil {
			_ = client.Close(ctx)
			return fmt.Errorf("restore in-flight state: %w", err)
		}
		r.storage = client
		r.set.Logger.Info("restored in-flight deployments", zap.Int("spans", r.tracker.inflight()))
	}
	ln, err := r.cfg.ToListener(ctx)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", r.cfg.NetAddr.Endpoint, err)
	}
	r.server, err = r.cfg.ToServer(ctx, host.GetExtensions(), r.set.TelemetrySettings, r.handler(),
		// Body limit and decompression failures get our JSON error shape too.
		confighttp.WithErrorHandler(func(w http.ResponseWriter, req *http.Request, msg string, status int) {
			reason := "malformed"
			if status == http.StatusUnauthorized || status == http.StatusForbidden {
				reason = "unauthorized" // an auth extension refused it
			}
			r.fail(w, req, &requestError{status: status, reason: reason, msg: msg, index: -1})
		}))
	if err != nil {
		_ = ln.Close()
		return fmt.Errorf("create server: %w", err)
	}
	limiter := newConnLimiter(r.cfg.MaxConnections, func() {
		r.tel.FastdeployReceiverConnectionsRefused.Add(context.Background(), 1)
	})
	r.server.ConnState = limiter.connState(r.server.ConnState)
	r.serveDone = make(chan struct{})
	go func() {
		defer close(r.serveDone)
		if err := r.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			componentstatus.ReportStatus(host, componentstatus.NewFatalErrorEvent(err))
		}
	}()
	sweepCtx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.sweepDone = make(chan struct{})
	go r.sweepLoop(sweepCtx)
	r.ready.Store(true)
	r.set.Logger.Info("fastdeploy receiver listening", zap.String("endpoint", ln.Addr().String()))
	return nil
}

// Shutdown stops intake, waits for requests in flight and the sweeper, and
// is safe without Start and twice.
func (r *fastdeployReceiver) Shutdown(ctx context.Context) error {
	var err error
	r.shutdownOnce.Do(func() {
		r.ready.Store(false)
		if r.server != nil {
			err = r.server.Shutdown(ctx)
			<-r.serveDone
		}
		if r.cancel != nil {
			r.cancel()
			<-r.sweepDone
		}
		// State was written through on every commit; closing flushes it.
		if r.storage != nil {
			err = errors.Join(err, r.storage.Close(ctx))
		}
		r.tel.Shutdown()
		if r.onClose != nil {
			r.onClose()
		}
	})
	return err
}

func (r *fastdeployReceiver) sweepLoop(ctx context.Context) {
	defer close(r.sweepDone)
	interval := min(max(r.cfg.Timeout/10, time.Second), 30*time.Second)
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			r.sweepOnce(ctx)
		}
	}
}

// sweepOnce closes timed-out spans; when the pipeline refuses them they
// stay in flight and the next sweep tries again.
func (r *fastdeployReceiver) sweepOnce(ctx context.Context) {
	x := r.tracker.sweep(r.now())
	x.release()
	if x.out.empty() {
		return
	}
	if err := r.deliver(ctx, x); err != nil {
		r.set.Logger.Warn("pipeline refused timed-out spans, will retry", zap.Error(err))
		return
	}
	if err := x.commit(ctx); err != nil {
		r.set.Logger.Warn("timed-out spans were exported but their removal was not persisted", zap.Error(err))
	}
	r.tel.FastdeployReceiverSpansTimedOut.Add(ctx, int64(x.out.spanCount))
}

// deliver hands a transaction's output to the pipeline.
func (r *fastdeployReceiver) deliver(ctx context.Context, x *txn) error {
	if r.traces != nil && x.out.spanCount > 0 {
		tctx := r.obsTrace.StartTracesOp(ctx)
		err := r.traces.ConsumeTraces(tctx, x.out.traces)
		r.obsTrace.EndTracesOp(tctx, "json", x.out.spanCount, err)
		if err != nil {
			return err
		}
	}
	if r.logs != nil && x.out.logCount > 0 {
		lctx := r.obsLogs.StartLogsOp(ctx)
		err := r.logs.ConsumeLogs(lctx, x.out.logs)
		r.obsLogs.EndLogsOp(lctx, "json", x.out.logCount, err)
		if err != nil {
			return err
		}
	}
	return nil
}

func (r *fastdeployReceiver) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(pathEvents, r.ingest(http.MethodPost, r.handleEvents))
	mux.HandleFunc(pathAnsible, r.ingest(http.MethodPost, r.handleAnsible))
	mux.HandleFunc(pathCompatEvents, r.ingest(http.MethodPost, r.handleCompatEvents))
	if r.cfg.FastdeployJWTSecret != "" {
		mux.HandleFunc(pathCompatSteps, r.ingest(http.MethodPost, r.handleCompatStep, true))
		mux.HandleFunc(pathCompatFinish, r.ingest(http.MethodPut, r.handleCompatFinish, true))
	} else {
		mux.HandleFunc(pathCompatSteps, r.compatOff)
		mux.HandleFunc(pathCompatFinish, r.compatOff)
	}
	mux.HandleFunc(pathHealth, r.handleHealth)
	mux.HandleFunc("/", func(w http.ResponseWriter, req *http.Request) {
		r.fail(w, req, &requestError{status: http.StatusNotFound, msg: "no such path; POST to " + pathEvents + " or " + pathAnsible, index: -1})
	})
	return mux
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

type handlerFunc func(ctx context.Context, req *http.Request, body []byte) (*txn, *requestError)

// ingest wraps a handler with what every ingest path needs: method and
// content type checks, the body read under the size limit, the signature,
// delivery to the pipeline and the commit. PUT carries no body.
// Paths that authenticate requests themselves (fastdeploy's deployment
// JWTs) pass selfAuth: fastdeploy's deploy process cannot sign.
func (r *fastdeployReceiver) ingest(method string, h handlerFunc, selfAuth ...bool) http.HandlerFunc {
	signs := r.cfg.Secret != "" && len(selfAuth) == 0
	return func(w http.ResponseWriter, req *http.Request) {
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
		// A missing, malformed or stale signature is refused before the
		// body is read: unauthenticated clients cannot make us buffer it.
		if signs {
			if err := signature.Precheck(req.Header.Get(signature.Header), r.now(), r.cfg.SignatureTolerance); err != nil {
				r.fail(w, req, &requestError{status: http.StatusUnauthorized, reason: "unauthorized", msg: err.Error(), field: signature.Header, index: -1})
				return
			}
		}
		body, err := io.ReadAll(req.Body)
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				r.fail(w, req, &requestError{status: http.StatusRequestEntityTooLarge, reason: "too_large",
					msg: fmt.Sprintf("body larger than max_request_body_size (%d bytes)", tooLarge.Limit), index: -1})
				return
			}
			var netErr net.Error
			if errors.As(err, &netErr) && netErr.Timeout() {
				r.fail(w, req, &requestError{status: http.StatusRequestTimeout, reason: "malformed", msg: "body not received within read_timeout", index: -1})
				return
			}
			r.fail(w, req, &requestError{status: http.StatusBadRequest, reason: "malformed", msg: "cannot read body", index: -1})
			return
		}
		// The slot is taken only once the body is in: clients that send
		// slowly are bounded by read_timeout, not by starving the others.
		select {
		case r.slots <- struct{}{}:
			defer func() { <-r.slots }()
		default:
			// Overloaded: say so now rather than queue; the client retries.
			w.Header().Set("Retry-After", strconv.Itoa(int(r.cfg.RetryAfter/time.Second)))
			r.fail(w, req, &requestError{status: http.StatusTooManyRequests, reason: "overloaded",
				msg: "too many requests in flight; retry later", index: -1})
			return
		}
		replayKey := ""
		if signs {
			ts, err := signature.Verify([]byte(r.cfg.Secret), req.Header.Get(signature.Header), body, r.now(), r.cfg.SignatureTolerance)
			if err != nil {
				r.fail(w, req, &requestError{status: http.StatusUnauthorized, reason: "unauthorized", msg: err.Error(), field: signature.Header, index: -1})
				return
			}
			// A signed request already ingested, sent again within the
			// tolerance: an honest retry or a replay. Either way it is
			// acknowledged and adds nothing. The key is what the MAC
			// covers, so padding or reordering the header does not help.
			sum := sha256.Sum256(body)
			replayKey = req.URL.Path + " " + ts + " " + hex.EncodeToString(sum[:])
			if r.replays.seen(replayKey) {
				r.tel.FastdeployReceiverEventsDuplicate.Add(req.Context(), 1)
				r.respond(w, req, http.StatusOK, map[string]any{"accepted": 0, "duplicates": 0, "replay": true})
				return
			}
		}
		// Only authenticated bodies are inspected: an unauthenticated client
		// learns nothing but 401.
		if i := invalidUTF8At(body); i >= 0 {
			r.fail(w, req, malformed(lineAt(body, int64(i)), -1, "", "body is not valid UTF-8"))
			return
		}
		x, rerr := h(req.Context(), req, body)
		if rerr != nil {
			r.fail(w, req, rerr)
			return
		}
		x.release()
		if err := r.deliver(req.Context(), x); err != nil {
			r.refused(w, req, err, x.accepted)
			return
		}
		if replayKey != "" {
			r.replays.add(replayKey)
		}
		if err := x.commit(req.Context()); err != nil {
			// The data is in the pipeline; only a restart could lose the
			// in-flight state, so the request still succeeded.
			r.set.Logger.Warn("in-flight state not persisted", zap.Error(err))
		}
		if x.duplicates > 0 {
			r.tel.FastdeployReceiverEventsDuplicate.Add(req.Context(), int64(x.duplicates))
		}
		if x.reply != nil {
			r.respond(w, req, http.StatusOK, x.reply)
			return
		}
		r.respond(w, req, http.StatusOK, map[string]int{"accepted": x.accepted, "duplicates": x.duplicates})
	}
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

func (r *fastdeployReceiver) handleEvents(_ context.Context, _ *http.Request, body []byte) (*txn, *requestError) {
	events, rerr := decodeLifecycle(body, r.now(), &r.ansibleDecoder.parsers)
	if rerr != nil {
		return nil, rerr
	}
	x := r.tracker.begin(r.now())
	for i := range events {
		x.lifecycle(&events[i])
	}
	return x, nil
}

func (r *fastdeployReceiver) handleAnsible(_ context.Context, req *http.Request, body []byte) (*txn, *requestError) {
	target := ansibleTarget{
		deployment:  req.Header.Get(headerDeployment),
		service:     req.Header.Get(headerService),
		step:        req.Header.Get(headerStep),
		traceparent: req.Header.Get(headerTraceparent),
	}
	if target.traceparent != "" {
		if _, _, err := deploytrace.ParseTraceparent(target.traceparent); err != nil {
			return nil, &requestError{status: http.StatusBadRequest, reason: "malformed", msg: "want 00-<32 hex trace id>-<16 hex span id>-<2 hex flags>", field: "traceparent", index: -1}
		}
	} else if target.deployment == "" {
		return nil, &requestError{status: http.StatusBadRequest, reason: "invalid",
			msg: "name the deployment with the " + headerDeployment + " header or a traceparent header", field: headerDeployment, index: -1}
	}
	if p := req.Header.Get(headerStepPosition); p != "" {
		pos, err := strconv.Atoi(p)
		if err != nil || pos < 0 {
			return nil, &requestError{status: http.StatusBadRequest, reason: "malformed", msg: "want a non-negative integer", field: headerStepPosition, index: -1}
		}
		target.stepPosition = &pos
	}
	loc := time.UTC
	tz := req.URL.Query().Get("tz")
	if tz == "" {
		tz = req.Header.Get(headerTimezone)
	}
	if tz != "" {
		l, err := time.LoadLocation(tz)
		if err != nil {
			return nil, &requestError{status: http.StatusBadRequest, reason: "malformed", msg: "unknown IANA time zone", field: "tz", index: -1}
		}
		loc = l
	}
	batch, rerr := r.ansibleDecoder.decode(body, loc, r.now())
	if rerr != nil {
		return nil, rerr
	}
	x := r.tracker.begin(r.now())
	x.ansible(batch, target)
	return x, nil
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
	r.respond(w, req, rerr.status, rerr.body())
}

func (r *fastdeployReceiver) respond(w http.ResponseWriter, req *http.Request, status int, body any) {
	r.tel.FastdeployReceiverRequests.Add(req.Context(), 1, metric.WithAttributeSet(attribute.NewSet(
		attribute.String("path", req.URL.Path), attribute.Int("status_code", status))))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}
