package fastdeployreceiver

import (
	"context"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/fastdeployapi"
)

// streamDeliveryAttempts bounds how often a stream event the pipeline
// refused is offered again: the stream cannot be replayed.
const streamDeliveryAttempts = 5

// startStream follows fastdeploy's event stream when fastdeploy.api is set.
func (r *fastdeployReceiver) startStream(ctx context.Context, host component.Host) error {
	if !r.cfg.Fastdeploy.API.HasValue() {
		return nil
	}
	api := r.cfg.Fastdeploy.API.Get()
	client, err := api.ClientConfig.ToClient(ctx, host.GetExtensions(), r.set.TelemetrySettings)
	if err != nil {
		return err
	}
	sctx, cancel := context.WithCancel(context.Background())
	f, err := fastdeployapi.New(fastdeployapi.Config{
		BaseURL: api.Endpoint, Username: api.Username, Password: string(api.Password), Client: client,
		ReauthMargin: api.ReauthMargin, MaxBackoff: api.MaxBackoff, Logger: r.set.Logger.Named("fastdeploy_api"),
		OnEvent: func(ev fastdeployapi.Event) { r.applyStreamEvent(sctx, ev) },
	})
	if err != nil {
		cancel()
		return err
	}
	r.follower, r.stopStream = f, cancel
	r.streamDone = make(chan struct{})
	go func() {
		defer close(r.streamDone)
		f.Run(sctx)
	}()
	return nil
}

func (r *fastdeployReceiver) shutdownStream() {
	if r.stopStream == nil {
		return
	}
	r.stopStream()
	<-r.streamDone
}

// serviceName names a fastdeploy service id: the configured
// fastdeploy_services first, then fastdeploy's own services list.
func (r *fastdeployReceiver) serviceName(ctx context.Context, id int64) string {
	key := strconv.FormatInt(id, 10)
	if name := r.cfg.FastdeployServices[key]; name != "" {
		return name
	}
	if r.follower != nil {
		if name, ok := r.follower.ServiceName(ctx, id); ok {
			return name
		}
	}
	return "service-" + key
}

// applyStreamEvent turns one stream event into telemetry.
func (r *fastdeployReceiver) applyStreamEvent(ctx context.Context, ev fastdeployapi.Event) {
	if ev.Deployment == nil && ev.Step == nil {
		return
	}
	in := &streamInput{event: ev}
	if ev.Deployment != nil {
		in.service = r.serviceName(ctx, ev.Deployment.ServiceID)
	}
	if rerr := in.validate(r.now()); rerr != nil {
		r.tel.FastdeployReceiverStreamEvents.Add(ctx, 1, metric.WithAttributes(attribute.String("outcome", "refused")))
		r.set.Logger.Warn("a fastdeploy stream event was refused", zap.String("error", rerr.Error()))
		return
	}
	for attempt := 1; ; attempt++ {
		// The deployment's key is held until commit or discard: a proxied
		// call for the same deployment sees what this event emitted.
		x := r.tracker.begin(r.now(), in.lockKeys())
		in.track(x)
		var err error
		if rerr := x.admit(); rerr != nil {
			x.release()
			err = rerr
			if !rerr.retry {
				x.discard()
				r.tel.FastdeployReceiverStreamEvents.Add(ctx, 1, metric.WithAttributes(attribute.String("outcome", "refused")))
				r.set.Logger.Warn("a fastdeploy stream event was refused", zap.String("error", rerr.Error()))
				return
			}
		} else {
			x.release()
			err = r.deliver(ctx, x)
		}
		if err == nil {
			if err := x.commit(ctx); err != nil {
				r.set.Logger.Warn("in-flight state not persisted", zap.Error(err))
			}
			r.recordEvictions(ctx, x)
			r.tel.FastdeployReceiverStreamEvents.Add(ctx, 1, metric.WithAttributes(attribute.String("outcome", "accepted")))
			return
		}
		x.discard()
		if attempt == streamDeliveryAttempts || ctx.Err() != nil {
			r.tel.FastdeployReceiverStreamEvents.Add(ctx, 1, metric.WithAttributes(attribute.String("outcome", "refused")))
			r.set.Logger.Warn("a fastdeploy stream event was refused by the pipeline and is lost", zap.Error(err))
			return
		}
		timer := time.NewTimer(time.Duration(attempt) * 200 * time.Millisecond)
		select {
		case <-ctx.Done():
			timer.Stop()
		case <-timer.C:
		}
	}
}
