package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployer/delivery"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/deploytrace"
)

// httpTracing traces the deployer's own calls to the collector (off by
// default, --trace-http): otelhttp client spans, each a child of the
// deployment span of the events it carries, so they sit in the
// deployment's trace; exported as OTLP/HTTP protobuf.
type httpTracing struct {
	client     *http.Client
	requestCtx func(context.Context, *delivery.Request) context.Context
	shutdown   func()
}

// newHTTPTracing sets the tracing up. traceID and spanID are the running
// deployment's (the caller's TRACEPARENT may have chosen the trace);
// requests of other deployments (spooled earlier) get their own.
func newHTTPTracing(endpoint, depID string, traceID deploytrace.TraceID, spanID deploytrace.SpanID, log *slog.Logger) (*httpTracing, error) {
	if !strings.HasPrefix(endpoint, "http://") && !strings.HasPrefix(endpoint, "https://") {
		return nil, fmt.Errorf("--otlp-endpoint %q: want an http:// or https:// URL", endpoint)
	}
	// The SDK reports export errors to a global handler that prints to
	// stderr; the exporter logs them itself, in the log format.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(error) {}))
	exp := &otlpExporter{url: strings.TrimRight(endpoint, "/") + "/v1/traces", client: &http.Client{Timeout: 5 * time.Second}, log: log}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(time.Second)),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())),
	)
	transport := otelhttp.NewTransport(http.DefaultTransport,
		otelhttp.WithTracerProvider(tp),
		// Headers stay ours: the receiver reads traceparent on /v1/ansible
		// as the parent of the Ansible spans.
		otelhttp.WithPropagators(propagation.NewCompositeTextMapPropagator()),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method + " " + r.URL.Path }),
	)
	return &httpTracing{
		client: &http.Client{Transport: transport},
		requestCtx: func(ctx context.Context, req *delivery.Request) context.Context {
			t, s := traceID, spanID
			if req.Deployment != depID {
				t = deploytrace.DeploymentTraceID(req.Deployment)
				s = deploytrace.DeploymentSpanID(t, req.Deployment)
			}
			sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID(t), SpanID: trace.SpanID(s), TraceFlags: trace.FlagsSampled, Remote: true})
			return trace.ContextWithRemoteSpanContext(ctx, sc)
		},
		shutdown: func() {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			_ = tp.Shutdown(ctx)
		},
	}, nil
}

// otlpExporter posts spans as OTLP/HTTP protobuf; pdata encodes them.
type otlpExporter struct {
	url    string
	client *http.Client
	log    *slog.Logger
}

func (e *otlpExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if len(spans) == 0 {
		return nil
	}
	body, err := ptraceotlp.NewExportRequestFromTraces(toPdata(spans)).MarshalProto()
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	resp, err := e.client.Do(req)
	if err != nil {
		e.log.Warn("cannot export the deployer's HTTP spans: "+delivery.ShortReason(err), "event.action", "trace.export", "url.full", e.url)
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		e.log.Warn("the trace endpoint refused the deployer's HTTP spans", "event.action", "trace.export", "url.full", e.url, "http.response.status_code", resp.StatusCode)
		return fmt.Errorf("trace export: %s", resp.Status)
	}
	return nil
}

func (e *otlpExporter) Shutdown(context.Context) error { return nil }

func toPdata(spans []sdktrace.ReadOnlySpan) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "fastdeploy")
	rs.Resource().Attributes().PutStr("service.version", version())
	scopes := map[string]ptrace.ScopeSpans{}
	for _, s := range spans {
		sc := s.InstrumentationScope()
		ss, ok := scopes[sc.Name]
		if !ok {
			ss = rs.ScopeSpans().AppendEmpty()
			ss.Scope().SetName(sc.Name)
			ss.Scope().SetVersion(sc.Version)
			scopes[sc.Name] = ss
		}
		out := ss.Spans().AppendEmpty()
		out.SetTraceID(pcommon.TraceID(s.SpanContext().TraceID()))
		out.SetSpanID(pcommon.SpanID(s.SpanContext().SpanID()))
		if p := s.Parent(); p.IsValid() {
			out.SetParentSpanID(pcommon.SpanID(p.SpanID()))
		}
		out.SetName(s.Name())
		out.SetKind(ptrace.SpanKind(s.SpanKind()))
		out.SetStartTimestamp(pcommon.NewTimestampFromTime(s.StartTime()))
		out.SetEndTimestamp(pcommon.NewTimestampFromTime(s.EndTime()))
		putAttrs(out.Attributes(), s.Attributes())
		for _, ev := range s.Events() {
			oe := out.Events().AppendEmpty()
			oe.SetName(ev.Name)
			oe.SetTimestamp(pcommon.NewTimestampFromTime(ev.Time))
			putAttrs(oe.Attributes(), ev.Attributes)
		}
		switch s.Status().Code {
		case codes.Error:
			out.Status().SetCode(ptrace.StatusCodeError)
			out.Status().SetMessage(s.Status().Description)
		case codes.Ok:
			out.Status().SetCode(ptrace.StatusCodeOk)
		}
	}
	return td
}

func putAttrs(m pcommon.Map, attrs []attribute.KeyValue) {
	for _, kv := range attrs {
		k := string(kv.Key)
		switch kv.Value.Type() {
		case attribute.BOOL:
			m.PutBool(k, kv.Value.AsBool())
		case attribute.INT64:
			m.PutInt(k, kv.Value.AsInt64())
		case attribute.FLOAT64:
			m.PutDouble(k, kv.Value.AsFloat64())
		case attribute.STRINGSLICE:
			s := m.PutEmptySlice(k)
			for _, v := range kv.Value.AsStringSlice() {
				s.AppendEmpty().SetStr(v)
			}
		default:
			m.PutStr(k, kv.Value.Emit())
		}
	}
}
