package fastdeployreceiver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"time"
	"unicode/utf8"

	"github.com/valyala/fastjson"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployevent"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/deploytrace"
)

// requestError is a refusal that goes back to the client as a JSON body
// naming what is wrong. Messages never quote values, only names and
// positions, so that a secret in a bad payload is not echoed.
type requestError struct {
	status int
	reason string // the events_refused metric's reason attribute
	msg    string
	field  string
	line   int // 1-based line in the body, 0 when not known
	index  int // 0-based position of the item in the request, -1 when not known
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
}

func (e *requestError) body() errorBody {
	b := errorBody{Error: e.msg, Field: e.field, Line: e.line}
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

// jsonItems walks a body that is a JSON array of objects, one object, or
// objects one per line (NDJSON), calling fn with each raw item, its line and
// its index. Items are handed over raw so each decoder can report fields in
// its own terms.
func jsonItems(body []byte, fn func(raw []byte, line, index int) *requestError) *requestError {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return malformed(0, -1, "", "empty body")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	inArray := trimmed[0] == '['
	if inArray {
		if _, err := dec.Token(); err != nil {
			return syntaxError(body, err, -1)
		}
	}
	for index := 0; ; index++ {
		if inArray && !dec.More() {
			if index == 0 {
				return malformed(1, -1, "", "empty array: send at least one item")
			}
			if _, err := dec.Token(); err != nil {
				return syntaxError(body, err, index)
			}
			if rest := bytes.TrimSpace(body[dec.InputOffset():]); len(rest) > 0 {
				return malformed(lineAt(body, dec.InputOffset()), -1, "", "unexpected data after the array")
			}
			return nil
		}
		start := skipSpace(body, dec.InputOffset())
		if !inArray && start >= int64(len(body)) {
			if index == 0 {
				return malformed(0, -1, "", "empty body")
			}
			return nil
		}
		line := lineAt(body, start)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) && !inArray {
				return nil
			}
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return malformed(line, index, "", "invalid JSON: the item starting here is incomplete")
			}
			return syntaxError(body, err, index)
		}
		if len(raw) == 0 || raw[0] != '{' {
			return malformed(line, index, "", "each item must be a JSON object")
		}
		if rerr := fn(raw, line, index); rerr != nil {
			return rerr
		}
		if inArray {
			continue
		}
	}
}

// invalidUTF8At returns the offset of the first byte that is not UTF-8, or
// -1. Invalid text would otherwise be turned into U+FFFD silently.
func invalidUTF8At(body []byte) int {
	if utf8.Valid(body) {
		return -1
	}
	for i := 0; i < len(body); {
		r, size := utf8.DecodeRune(body[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return -1
}

// Event times outside this window are refused: far-past times are bugs or
// zero values, and future times beyond clock skew would distort durations
// and event-time metrics.
const (
	maxEventAge   = 5 * 365 * 24 * time.Hour
	maxFutureSkew = 24 * time.Hour
	windowReason  = "time outside the accepted window (5 years ago to 24 hours ahead)"
)

func outsideWindow(t, now time.Time) bool {
	return t.Before(now.Add(-maxEventAge)) || t.After(now.Add(maxFutureSkew))
}

// duplicateKey returns the dotted path of the first key that appears twice
// in one object of v, or "". encoding/json would keep the last silently.
func duplicateKey(v *fastjson.Value, prefix string) string {
	switch v.Type() {
	case fastjson.TypeObject:
		obj, _ := v.Object()
		var keys [][]byte
		found := ""
		obj.Visit(func(k []byte, child *fastjson.Value) {
			if found != "" {
				return
			}
			for _, seen := range keys {
				if bytes.Equal(seen, k) {
					found = prefix + string(k)
					return
				}
			}
			keys = append(keys, k)
			found = duplicateKey(child, prefix+string(k)+".")
		})
		return found
	case fastjson.TypeArray:
		arr, _ := v.Array()
		for _, e := range arr {
			if d := duplicateKey(e, prefix); d != "" {
				return d
			}
		}
	}
	return ""
}

func skipSpace(body []byte, off int64) int64 {
	for off < int64(len(body)) {
		switch body[off] {
		case ' ', '\t', '\r', '\n':
			off++
		default:
			return off
		}
	}
	return off
}

func lineAt(body []byte, off int64) int {
	if off > int64(len(body)) {
		off = int64(len(body))
	}
	return bytes.Count(body[:off], []byte{'\n'}) + 1
}

func syntaxError(body []byte, err error, index int) *requestError {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return malformed(lineAt(body, se.Offset), index, "", "invalid JSON: %s", se.Error())
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return malformed(lineAt(body, int64(len(body))), index, "", "invalid JSON: unexpected end of input")
	}
	return malformed(0, index, "", "invalid JSON: %s", err.Error())
}

// typeError turns an unmarshal error into a field-naming refusal.
func typeError(raw json.RawMessage, err error, line, index int, timeFields []string) *requestError {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		want := te.Type.String()
		if te.Type == reflect.TypeFor[deployevent.ID]() {
			want = "string or integer"
		}
		return malformed(line, index, te.Field, "wrong type: want %s, got JSON %s", want, te.Value)
	}
	// time.Time reports a parse error without the field: find it.
	if field := badTimeField(raw, timeFields); field != "" {
		return malformed(line, index, field, "want an RFC 3339 timestamp with zone, such as 2026-02-03T10:14:04Z")
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return malformed(line, index, "", "invalid JSON: %s", se.Error())
	}
	return malformed(line, index, "", "cannot decode item")
}

func badTimeField(raw json.RawMessage, fields []string) string {
	var doc map[string]any
	if json.Unmarshal(raw, &doc) != nil {
		return ""
	}
	for _, path := range fields {
		v := lookup(doc, path)
		if v == nil {
			continue
		}
		s, ok := v.(string)
		if !ok {
			return path
		}
		if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
			return path
		}
	}
	return ""
}

func lookup(doc map[string]any, path string) any {
	var cur any = doc
	for _, k := range splitPath(path) {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[k]
	}
	return cur
}

func splitPath(p string) []string {
	var out []string
	start := 0
	for i := 0; i < len(p); i++ {
		if p[i] == '.' {
			out = append(out, p[start:i])
			start = i + 1
		}
	}
	return append(out, p[start:])
}

func stepTime(s *deployevent.Step, started bool) *time.Time {
	if s == nil {
		return nil
	}
	if started {
		return s.Started
	}
	return s.Finished
}

var lifecycleTimeFields = []string{"time", "deployment.started", "deployment.finished", "deployment.revision_time", "step.started", "step.finished"}

// decodeLifecycle decodes and validates every event of a request; one bad
// event refuses the whole request. Times are checked against now.
func decodeLifecycle(body []byte, now time.Time, parsers *fastjson.ParserPool) ([]deployevent.Event, *requestError) {
	var events []deployevent.Event
	p := parsers.Get()
	defer parsers.Put(p)
	rerr := jsonItems(body, func(raw []byte, line, index int) *requestError {
		if v, err := p.ParseBytes(raw); err == nil {
			if key := duplicateKey(v, ""); key != "" {
				return malformed(line, index, key, "key appears twice in one object")
			}
		}
		var ev deployevent.Event
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber() // context values keep their integers exact
		if err := dec.Decode(&ev); err != nil {
			return typeError(raw, err, line, index, lifecycleTimeFields)
		}
		if err := ev.Validate(); err != nil {
			var fe *deployevent.FieldError
			if errors.As(err, &fe) {
				return invalid(line, index, fe.Field, fe.Reason)
			}
			return invalid(line, index, "", err.Error())
		}
		for _, tf := range []struct {
			field string
			t     *time.Time
		}{
			{"time", &ev.Time}, {"deployment.started", ev.Deployment.Started}, {"deployment.finished", ev.Deployment.Finished},
			{"deployment.revision_time", ev.Deployment.RevisionTime}, {"step.started", stepTime(ev.Step, true)}, {"step.finished", stepTime(ev.Step, false)},
		} {
			if tf.t != nil && outsideWindow(*tf.t, now) {
				return invalid(line, index, tf.field, windowReason)
			}
		}
		if ev.Traceparent != "" {
			if _, _, err := deploytrace.ParseTraceparent(ev.Traceparent); err != nil {
				return invalid(line, index, "traceparent", "want 00-<32 hex trace id>-<16 hex span id>-<2 hex flags>")
			}
		}
		events = append(events, ev)
		return nil
	})
	if rerr != nil {
		return nil, rerr
	}
	return events, nil
}
