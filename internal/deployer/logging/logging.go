// Package logging builds the deployer's slog logger: JSON lines in the
// ECS-like shape of the design review (@timestamp, log.level, message,
// logger, deployment.id, step.name, step.state, duration_ms, trace.id,
// span.id, labels) or human text, with secrets masked in every message
// and string attribute.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployer/mask"
)

// LoggerName is the value of the logger field.
const LoggerName = "fastdeploy.deployer"

// ParseLevel reads debug, info, warn or error.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("log level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// New returns a logger writing format ("json" or "text") to w.
func New(w io.Writer, format string, level slog.Level, m *mask.Masker) (*slog.Logger, error) {
	var h slog.Handler
	switch format {
	case "json":
		h = slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: ecs})
		h = h.WithAttrs([]slog.Attr{slog.String("logger", LoggerName)})
	case "text":
		h = slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})
	default:
		return nil, fmt.Errorf("log format %q: want text or json", format)
	}
	return slog.New(&maskHandler{next: h, m: m}), nil
}

// ecs renames slog's built-in keys to their ECS names.
func ecs(groups []string, a slog.Attr) slog.Attr {
	if len(groups) > 0 {
		return a
	}
	switch a.Key {
	case slog.TimeKey:
		a.Key = "@timestamp"
		a.Value = slog.StringValue(a.Value.Time().UTC().Format("2006-01-02T15:04:05.000Z07:00"))
	case slog.LevelKey:
		a.Key = "log.level"
		a.Value = slog.StringValue(strings.ToLower(a.Value.String()))
	case slog.MessageKey:
		a.Key = "message"
	}
	return a
}

// maskHandler masks secrets before any handler formats the record.
type maskHandler struct {
	next slog.Handler
	m    *mask.Masker
}

func (h *maskHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *maskHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, h.m.String(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h *maskHandler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, h.m.String(v.String()))
	case slog.KindGroup:
		attrs := v.Group()
		masked := make([]any, len(attrs))
		for i, g := range attrs {
			masked[i] = h.attr(g)
		}
		return slog.Group(a.Key, masked...)
	case slog.KindAny:
		if m, ok := v.Any().(map[string]string); ok {
			out := make(map[string]string, len(m))
			for k, s := range m {
				out[k] = h.m.String(s)
			}
			return slog.Any(a.Key, out)
		}
		if err, ok := v.Any().(error); ok {
			return slog.String(a.Key, h.m.String(err.Error()))
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

func (h *maskHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	masked := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		masked[i] = h.attr(a)
	}
	return &maskHandler{next: h.next.WithAttrs(masked), m: h.m}
}

func (h *maskHandler) WithGroup(name string) slog.Handler {
	return &maskHandler{next: h.next.WithGroup(name), m: h.m}
}
