package fastdeployreceiver

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/connlimit"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/fastdeployapi"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/replay"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/signature"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/upstreamproxy"
	"github.com/fastdeploy/otelcol-fastdeploy/receiver/fastdeployreceiver/internal/metadata"
)

// maxRememberedSignatures bounds the replay cache. A signature older than
// signature_tolerance is refused anyway, so the cache only has to cover the
// requests of one tolerance window.
const maxRememberedSignatures = 65536

type fastdeployReceiver struct {
	cfg     *Config
	set     receiver.Settings
	traces  consumer.Traces
	logs    consumer.Logs
	tracker *tracker
	// replays remembers signed requests already ingested.
	replays *replay.Cache
	// verifier checks X-Fastdeploy-Signature when secret is set.
	verifier signature.Verifier
	// unauthenticated is the body bytes held by requests whose MAC is
	// not verified yet (max_unauthenticated_buffer).
	unauthenticated atomic.Int64
	// slots bounds the requests handled at once.
	slots chan struct{}
	// delivered remembers spans the traces pipeline took for a request
	// the logs pipeline then refused (deliver.go).
	delivered deliveredSpans
	// ansibleDecoder pools fastjson parsers across requests, also used to
	// vet lifecycle events.
	ansibleDecoder ansibleDecoder
	obsTrace       *receiverhelper.ObsReport
	obsLogs        *receiverhelper.ObsReport
	tel            *metadata.TelemetryBuilder
	now            func() time.Time
	onClose        func()

	storage storage.Client

	// upstream forwards to fastdeploy's own server (fastdeploy.upstream).
	upstream *upstreamproxy.Proxy
	// follower follows fastdeploy's event stream (fastdeploy.api).
	follower   *fastdeployapi.Follower
	stopStream context.CancelFunc
	streamDone chan struct{}

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
		replays:  replay.New(maxRememberedSignatures),
		verifier: signature.Verifier{Secret: []byte(cfg.Secret), Tolerance: cfg.SignatureTolerance},
	}
	if cfg.RefuseV1Signatures {
		r.verifier.V1 = signature.V1Refused
	}
	r.tracker.loadBalanced = cfg.LoadBalanced
	r.tracker.limits = inflightLimits{deployments: cfg.MaxInflightDeployments, contextSize: cfg.MaxDeploymentContextSize, steps: cfg.MaxInflightSteps}
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

func (r *fastdeployReceiver) setLogs(next consumer.Logs) { r.logs = next }

// Start is called once per pipeline that uses the receiver; only the first
// call starts the server.
func (r *fastdeployReceiver) Start(ctx context.Context, host component.Host) error {
	r.startOnce.Do(func() { r.startErr = r.start(ctx, host) })
	return r.startErr
}

func (r *fastdeployReceiver) start(ctx context.Context, host component.Host) error {
	r.tracker.since = r.now()
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
	if r.cfg.Fastdeploy.Upstream.HasValue() {
		up := r.cfg.Fastdeploy.Upstream.Get()
		client, err := up.ToClient(ctx, host.GetExtensions(), r.set.TelemetrySettings)
		if err != nil {
			return fmt.Errorf("fastdeploy.upstream: %w", err)
		}
		if r.upstream, err = upstreamproxy.New(up.Endpoint, client, up.Timeout); err != nil {
			return fmt.Errorf("fastdeploy.upstream: %w", err)
		}
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
	closed := func() { r.tel.FastdeployReceiverConnectionsRefused.Add(context.Background(), 1) }
	limiter := connlimit.New(r.cfg.MaxConnections, func(bool) { closed() }, closed)
	r.server.ConnState = limiter.Hook(r.server.ConnState)
	// The HTTP server logs each failed TLS handshake; a flood of them
	// would be a flood of log lines. They are counted instead.
	r.server.ErrorLog = log.New(&serverLog{logger: r.set.Logger, handshakeFailed: func() {
		r.tel.FastdeployReceiverTLSHandshakeErrors.Add(context.Background(), 1)
	}}, "", 0)
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
	if err := r.startStream(ctx, host); err != nil {
		return fmt.Errorf("fastdeploy.api: %w", err)
	}
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
		r.shutdownStream()
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
		// Beyond max_inflight_deployments (state restored under a lowered
		// cap): sweep again at once, a bounded batch at a time, while that
		// makes progress.
		for ctx.Err() == nil && r.tracker.overCap() && r.sweepOnce(ctx) {
		}
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
func (r *fastdeployReceiver) sweepOnce(ctx context.Context) (progress bool) {
	x := r.tracker.sweep(r.now())
	x.release()
	if x.abandoned > 0 {
		r.set.Logger.Info("dropping the timed-out state of deployments this collector does not own (load_balanced): they moved to another collector, or were restored and not heard of since",
			zap.Int("deployments", x.abandoned))
	}
	if x.out.empty() {
		if len(x.deployments)+len(x.steps) == 0 {
			x.discard()
			return false
		}
		// Only state dropped, nothing to send.
		if err := x.commit(ctx); err != nil {
			r.set.Logger.Warn("dropped state was not persisted", zap.Error(err))
		}
		return true
	}
	if err := r.deliver(ctx, x); err != nil {
		x.discard()
		r.set.Logger.Warn("pipeline refused timed-out spans, will retry", zap.Error(err))
		return false
	}
	if err := x.commit(ctx); err != nil {
		r.set.Logger.Warn("timed-out spans were exported but their removal was not persisted", zap.Error(err))
	}
	r.tel.FastdeployReceiverSpansTimedOut.Add(ctx, int64(x.out.spanCount))
	r.recordEvictions(ctx, x)
	return true
}

// recordEvictions counts the deployments and steps a committed
// transaction closed early to stay within the in-flight caps.
func (r *fastdeployReceiver) recordEvictions(ctx context.Context, x *txn) {
	if x.evicted > 0 {
		r.tel.FastdeployReceiverDeploymentsEvicted.Add(ctx, int64(x.evicted))
	}
	if x.evictedSteps > 0 {
		r.tel.FastdeployReceiverStepsEvicted.Add(ctx, int64(x.evictedSteps))
	}
}

// serverLog receives the HTTP server's own error lines: TLS handshake
// failures are counted, anything else goes to the collector's log at
// debug level (the server's lines can quote what clients sent).
type serverLog struct {
	logger          *zap.Logger
	handshakeFailed func()
}

func (l *serverLog) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	if strings.Contains(line, "TLS handshake error") {
		l.handshakeFailed()
		return len(p), nil
	}
	l.logger.Debug("http server", zap.String("error", line))
	return len(p), nil
}
