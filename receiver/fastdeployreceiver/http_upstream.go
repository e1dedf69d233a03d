package fastdeployreceiver

import (
	"errors"
	"io"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/upstreamproxy"
)

// proxied forwards a request to fastdeploy's server unchanged and answers
// with fastdeploy's answer. When fastdeploy accepted it (2xx) and it is one
// of the deploy process's calls (method given), h turns it into telemetry:
// fastdeploy's own retries of a refused step never double a span, and
// fastdeploy's 2xx is what authenticates the deployment token.
func (r *fastdeployReceiver) proxied(method string, decode decodeFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				r.fail(w, req, &requestError{status: http.StatusRequestEntityTooLarge, reason: "too_large",
					msg: "body larger than max_request_body_size", index: -1})
				return
			}
			r.fail(w, req, &requestError{status: http.StatusBadRequest, reason: "malformed", msg: "cannot read body", index: -1})
			return
		}
		select {
		case r.slots <- struct{}{}:
			defer func() { <-r.slots }()
		default:
			// fastdeploy's deploy process retries a non-2xx step; 503 says why.
			r.fail(w, req, &requestError{status: http.StatusServiceUnavailable, reason: "overloaded",
				msg: "too many requests in flight; retry later", index: -1})
			return
		}
		resp := r.upstream.Forward(req.Context(), req, body)
		r.tel.FastdeployReceiverUpstreamRequests.Add(req.Context(), 1,
			metric.WithAttributes(attribute.String("outcome", resp.Outcome.String())))
		if resp.Err != nil {
			r.set.Logger.Warn("fastdeploy upstream failed", zap.String("outcome", resp.Outcome.String()),
				zap.String("path", req.URL.Path), zap.Error(resp.Err))
		}
		if resp.Outcome == upstreamproxy.Accepted && decode != nil && req.Method == method {
			r.recordAccepted(req, body, decode)
		}
		// Forwarded paths other than the deploy calls are counted as one
		// label: their paths are the client's to choose.
		path := req.URL.Path
		if decode == nil {
			path = "upstream"
		}
		r.tel.FastdeployReceiverRequests.Add(req.Context(), 1, metric.WithAttributeSet(attribute.NewSet(
			attribute.String("path", path), attribute.Int("status_code", resp.Status))))
		upstreamproxy.Write(w, resp)
	}
}

// recordAccepted turns a call fastdeploy accepted into telemetry. Nothing
// can be refused any more: fastdeploy has it. A failure is logged and
// counted, the answer stays fastdeploy's.
func (r *fastdeployReceiver) recordAccepted(req *http.Request, body []byte, decode decodeFunc) {
	in, rerr := decode(req, body)
	now := r.now()
	if rerr == nil {
		rerr = in.validate(now)
	}
	if rerr != nil {
		reason := rerr.reason
		if reason == "" {
			reason = "invalid"
		}
		r.tel.FastdeployReceiverEventsRefused.Add(req.Context(), 1, metric.WithAttributes(attribute.String("reason", reason)))
		r.set.Logger.Warn("fastdeploy accepted a call the receiver cannot record", zap.String("path", req.URL.Path), zap.String("error", rerr.Error()))
		return
	}
	x := r.tracker.begin(now, in.lockKeys())
	in.track(x)
	if rerr := x.admit(); rerr != nil {
		x.release()
		x.discard()
		r.tel.FastdeployReceiverEventsRefused.Add(req.Context(), 1, metric.WithAttributes(attribute.String("reason", rerr.reason)))
		r.set.Logger.Warn("fastdeploy accepted a call the receiver cannot record", zap.String("path", req.URL.Path), zap.String("error", rerr.Error()))
		return
	}
	x.release()
	if err := r.deliver(req.Context(), x); err != nil {
		x.discard()
		r.tel.FastdeployReceiverEventsRefused.Add(req.Context(), int64(max(x.accepted, 1)), metric.WithAttributes(attribute.String("reason", "pipeline")))
		r.set.Logger.Warn("telemetry of a call fastdeploy accepted was refused by the pipeline", zap.Error(err))
		return
	}
	if err := x.commit(req.Context()); err != nil {
		r.set.Logger.Warn("in-flight state not persisted", zap.Error(err))
	}
	r.recordEvictions(req.Context(), x)
}
