// Package logging builds the deployer's slog logger: JSON lines in the
// Elastic Common Schema (ECS, version ECSVersion; the JSON Schema in
// schema/deployer-log.schema.json describes every line), or human text,
// with secrets masked in every message and attribute.
//
// Call sites name attributes by their ECS field (trace.id, span.id,
// event.action, event.outcome, event.duration, process.pid,
// process.exit_code, process.command_line, error.message, error.type, ...).
// Any other attribute is the deployer's own and goes under labels, its dots
// turned into underscores (deployment.id becomes labels.deployment_id), as
// ECS asks for custom keyword fields. A key given twice (by a logger's
// With and by the call) is written once, the last value winning, so strict
// JSON parsers never see a duplicate key.
package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployer/mask"
)

// ECSVersion is the ECS version the JSON lines follow; pinned so that a
// reader knows which field definitions apply.
const ECSVersion = "8.11.0"

// LoggerName is the value of log.logger, and Dataset of event.dataset.
const (
	LoggerName  = "fastdeploy.deployer"
	Dataset     = "fastdeploy.deployer"
	ServiceName = "fastdeploy"
)

// ecsFields are the ECS fields call sites may set; they are written at the
// top level under their own (dotted) name. Every other key is a label.
var ecsFields = map[string]bool{
	"trace.id": true, "span.id": true, "transaction.id": true,
	"event.action": true, "event.outcome": true, "event.duration": true, "event.reason": true,
	"event.kind": true, "event.category": true, "event.type": true, "event.sequence": true,
	"process.pid": true, "process.exit_code": true, "process.command_line": true, "process.name": true,
	"error.message": true, "error.type": true,
	"url.full": true, "url.path": true, "http.response.status_code": true,
	"file.path": true, "host.hostname": true, "user.name": true,
}

// Options configure a logger.
type Options struct {
	// Format is "json" (ECS) or "text".
	Format string
	Level  slog.Leveler
	Masker *mask.Masker
	// ServiceVersion is the deployer's version, written as service.version.
	ServiceVersion string
}

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
	return NewLogger(w, Options{Format: format, Level: level, Masker: m})
}

// NewLogger returns a logger writing to w as o says.
func NewLogger(w io.Writer, o Options) (*slog.Logger, error) {
	if o.Level == nil {
		o.Level = slog.LevelInfo
	}
	if o.Masker == nil {
		o.Masker = mask.New()
	}
	switch o.Format {
	case "json", "text":
	default:
		return nil, fmt.Errorf("log format %q: want text or json", o.Format)
	}
	return slog.New(&handler{shared: &shared{w: w, o: o}}), nil
}

type shared struct {
	mu sync.Mutex
	w  io.Writer
	o  Options
}

// handler keeps the attributes of With itself, so that it can drop
// repeated keys at Handle time; slog's own handlers write each With's
// attributes as they come, duplicates included.
type handler struct {
	*shared
	attrs  []slog.Attr // keys already prefixed by their groups
	prefix string      // the open groups, "a.b."
}

func (h *handler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.o.Level.Level() }

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	out := *h
	out.attrs = slices.Clip(h.attrs)
	for _, a := range attrs {
		out.attrs = appendFlat(out.attrs, h.prefix, a)
	}
	return &out
}

func (h *handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	out := *h
	out.prefix = h.prefix + name + "."
	return &out
}

// appendFlat adds a, with groups flattened into dotted keys. The labels
// map (map[string]string) stays whole: it is merged into labels.
func appendFlat(dst []slog.Attr, prefix string, a slog.Attr) []slog.Attr {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, g := range v.Group() {
			dst = appendFlat(dst, p, g)
		}
		return dst
	}
	if a.Key == "" {
		return dst
	}
	return append(dst, slog.Attr{Key: prefix + a.Key, Value: v})
}

func (h *handler) Handle(_ context.Context, r slog.Record) error {
	attrs := slices.Clone(h.attrs)
	r.Attrs(func(a slog.Attr) bool {
		attrs = appendFlat(attrs, h.prefix, a)
		return true
	})
	attrs = dedup(attrs)
	msg := h.o.Masker.String(r.Message)
	var buf bytes.Buffer
	if h.o.Format == "json" {
		h.writeJSON(&buf, r, msg, attrs)
	} else {
		h.writeText(&buf, r, msg, attrs)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := h.w.Write(buf.Bytes())
	return err
}

// dedup keeps the last value of each key, at the place of its first.
func dedup(attrs []slog.Attr) []slog.Attr {
	index := make(map[string]int, len(attrs))
	out := attrs[:0:0]
	for _, a := range attrs {
		if i, ok := index[a.Key]; ok {
			out[i] = a
			continue
		}
		index[a.Key] = len(out)
		out = append(out, a)
	}
	return out
}

// writeText writes slog's text format, one key once.
func (h *handler) writeText(buf *bytes.Buffer, r slog.Record, msg string, attrs []slog.Attr) {
	th := slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})
	out := slog.NewRecord(r.Time, r.Level, msg, 0)
	for _, a := range attrs {
		if m, ok := a.Value.Any().(map[string]string); ok && a.Value.Kind() == slog.KindAny {
			keys := sortedKeys(m)
			for _, k := range keys {
				out.AddAttrs(slog.String(a.Key+"."+k, h.o.Masker.String(m[k])))
			}
			continue
		}
		out.AddAttrs(slog.Attr{Key: a.Key, Value: h.maskValue(a.Value)})
	}
	_ = th.Handle(context.Background(), out)
}

func (h *handler) maskValue(v slog.Value) slog.Value {
	switch v.Kind() {
	case slog.KindString:
		return slog.StringValue(h.o.Masker.String(v.String()))
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return slog.StringValue(h.o.Masker.String(err.Error()))
		}
		if s, ok := v.Any().(fmt.Stringer); ok {
			return slog.StringValue(h.o.Masker.String(s.String()))
		}
	}
	return v
}

// writeJSON writes one ECS line. Field order: the ECS base fields, the
// call's ECS fields, then labels.
func (h *handler) writeJSON(buf *bytes.Buffer, r slog.Record, msg string, attrs []slog.Attr) {
	w := &jsonLine{buf: buf}
	ts := r.Time
	if ts.IsZero() {
		ts = time.Now()
	}
	w.str("@timestamp", ts.UTC().Format("2006-01-02T15:04:05.000Z"))
	w.str("log.level", levelName(r.Level))
	w.str("message", msg)
	w.str("ecs.version", ECSVersion)
	w.str("log.logger", LoggerName)
	w.str("service.name", ServiceName)
	if h.o.ServiceVersion != "" {
		w.str("service.version", h.o.ServiceVersion)
	}
	w.str("event.dataset", Dataset)
	var labels [][2]string
	addLabel := func(k, v string) {
		k = labelKey(k)
		for i := range labels {
			if labels[i][0] == k {
				labels[i][1] = v
				return
			}
		}
		labels = append(labels, [2]string{k, v})
	}
	for _, a := range attrs {
		v := a.Value
		if a.Key == "labels" {
			if m, ok := v.Any().(map[string]string); ok {
				for _, k := range sortedKeys(m) {
					addLabel(k, h.o.Masker.String(m[k]))
				}
				continue
			}
		}
		if ecsFields[a.Key] {
			w.value(a.Key, h.ecsValue(a.Key, v))
			continue
		}
		addLabel(a.Key, h.labelValue(v))
	}
	if len(labels) > 0 {
		w.key("labels")
		buf.WriteByte('{')
		for i, l := range labels {
			if i > 0 {
				buf.WriteByte(',')
			}
			writeJSONString(buf, l[0])
			buf.WriteByte(':')
			writeJSONString(buf, l[1])
		}
		buf.WriteByte('}')
	}
	buf.WriteString("}\n")
}

// ecsValue converts a value to its ECS type: event.duration is in
// nanoseconds, everything else keeps its JSON kind.
func (h *handler) ecsValue(key string, v slog.Value) any {
	switch v.Kind() {
	case slog.KindDuration:
		return v.Duration().Nanoseconds()
	case slog.KindString:
		return h.o.Masker.String(v.String())
	case slog.KindInt64:
		return v.Int64()
	case slog.KindUint64:
		return v.Uint64()
	case slog.KindFloat64:
		return v.Float64()
	case slog.KindBool:
		return v.Bool()
	case slog.KindTime:
		return v.Time().UTC().Format(time.RFC3339Nano)
	}
	if key == "event.duration" {
		if d, ok := v.Any().(time.Duration); ok {
			return d.Nanoseconds()
		}
	}
	return h.labelValue(v)
}

// labelValue renders any value as a keyword string, as ECS labels are.
func (h *handler) labelValue(v slog.Value) string {
	switch v.Kind() {
	case slog.KindString:
		return h.o.Masker.String(v.String())
	case slog.KindTime:
		return v.Time().UTC().Format(time.RFC3339Nano)
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			return h.o.Masker.String(x.Error())
		case fmt.Stringer:
			return h.o.Masker.String(x.String())
		case []string:
			return h.o.Masker.String(strings.Join(x, ","))
		}
		b, err := json.Marshal(v.Any())
		if err != nil {
			return h.o.Masker.String(fmt.Sprint(v.Any()))
		}
		return h.o.Masker.Values(string(b))
	}
	return v.String()
}

// labelKey makes a key a label name: ECS label names hold no dots.
func labelKey(k string) string {
	return strings.NewReplacer(".", "_", " ", "_").Replace(k)
}

func levelName(l slog.Level) string {
	switch {
	case l < slog.LevelInfo:
		return "debug"
	case l < slog.LevelWarn:
		return "info"
	case l < slog.LevelError:
		return "warn"
	}
	return "error"
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// jsonLine writes the members of one JSON object in order.
type jsonLine struct {
	buf *bytes.Buffer
	n   int
}

func (w *jsonLine) key(k string) {
	if w.n == 0 {
		w.buf.WriteByte('{')
	} else {
		w.buf.WriteByte(',')
	}
	w.n++
	writeJSONString(w.buf, k)
	w.buf.WriteByte(':')
}

func (w *jsonLine) str(k, v string) {
	w.key(k)
	writeJSONString(w.buf, v)
}

func (w *jsonLine) value(k string, v any) {
	w.key(k)
	switch x := v.(type) {
	case string:
		writeJSONString(w.buf, x)
	case int64:
		w.buf.WriteString(strconv.FormatInt(x, 10))
	case uint64:
		w.buf.WriteString(strconv.FormatUint(x, 10))
	case bool:
		w.buf.WriteString(strconv.FormatBool(x))
	default:
		b, err := json.Marshal(x)
		if err != nil {
			writeJSONString(w.buf, fmt.Sprint(x))
			return
		}
		w.buf.Write(b)
	}
}

func writeJSONString(buf *bytes.Buffer, s string) {
	b, _ := json.Marshal(s) // strings always marshal
	buf.Write(b)
}
