package fastdeployreceiver

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"time"
	"unicode/utf8"

	"github.com/valyala/fastjson"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployevent"
)

// Decoders turn a body into plain values (events, tasks, steps) and
// refuse only what cannot be read: syntax, wrong types. Whether the values
// are acceptable is validate's question. Both item walkers below pass each
// item through validate's uniqueKeys, so no format can skip that rule.

// jsonItems walks a body that is a JSON array of objects, one object, or
// objects one per line (NDJSON), calling fn with each raw item, its line and
// its index. Items are handed over raw so each decoder can report fields in
// its own terms; p checks their keys.
func jsonItems(body []byte, p *fastjson.Parser, fn func(raw []byte, line, index int) *requestError) *requestError {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return malformed(0, -1, "", "empty body")
	}
	if trimmed[0] != '[' {
		if items, ok := objectLines(body, p); ok {
			for _, it := range items {
				if rerr := fn(it.raw, it.line, it.index); rerr != nil {
					return rerr
				}
			}
			return nil
		}
	}
	return jsonItemsSlow(body, p, fn)
}

// objectLine is one item of a body with one JSON object per line.
type objectLine struct {
	raw         []byte
	line, index int
}

// objectLines splits the usual body, one JSON object per line, without
// encoding/json's Decoder, whose walk costs more than the decoding. ok is false for any other shape or any fault
// (including a repeated key), which jsonItemsSlow then reports.
func objectLines(body []byte, p *fastjson.Parser) (items []objectLine, ok bool) {
	line := 0
	for rest := body; len(rest) > 0; {
		line++
		var l []byte
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			l, rest = rest[:i], rest[i+1:]
		} else {
			l, rest = rest, nil
		}
		l = bytes.Trim(l, " \t\r") // JSON's white space only, as encoding/json
		if len(l) == 0 {
			continue
		}
		// fastjson is lenient where encoding/json is not (string escapes,
		// control characters, numbers): json.Valid keeps the two paths'
		// verdicts the same, and costs less than the Decoder's walk.
		if l[0] != '{' || !json.Valid(l) {
			return nil, false
		}
		v, err := p.ParseBytes(l)
		if err != nil || uniqueKeys(v, line, len(items)) != nil {
			return nil, false
		}
		items = append(items, objectLine{raw: l, line: line, index: len(items)})
	}
	return items, true
}

// jsonItemsSlow walks any body jsonItems accepts with encoding/json,
// which reports syntax errors by line.
func jsonItemsSlow(body []byte, p *fastjson.Parser, fn func(raw []byte, line, index int) *requestError) *requestError {
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
		if v, err := p.ParseBytes(raw); err == nil {
			if rerr := uniqueKeys(v, line, index); rerr != nil {
				return rerr
			}
		}
		if rerr := fn(raw, line, index); rerr != nil {
			return rerr
		}
		if inArray {
			continue
		}
	}
}

// forEachItem calls fn with each item of a body that is a JSON array, one
// value, or values one per line. Values are only valid during fn. On a
// syntax error the body is walked again with encoding/json to report the
// line and index of the fault without quoting it.
func forEachItem(p *fastjson.Parser, body []byte, fn func(v *fastjson.Value, line, index int) *requestError) *requestError {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return malformed(0, -1, "", "empty body")
	}
	if trimmed[0] == '[' {
		v, err := p.ParseBytes(trimmed)
		if err != nil {
			return slowItems(p, body, fn)
		}
		items := v.GetArray()
		if len(items) == 0 {
			return malformed(1, -1, "", "empty array: send at least one item")
		}
		for i, item := range items {
			if rerr := uniqueKeys(item, 0, i); rerr != nil {
				return rerr
			}
			if rerr := fn(item, 0, i); rerr != nil {
				return rerr
			}
		}
		return nil
	}
	line, index := 0, 0
	for rest := body; len(rest) > 0; {
		line++
		var l []byte
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			l, rest = rest[:i], rest[i+1:]
		} else {
			l, rest = rest, nil
		}
		l = bytes.TrimSpace(l)
		if len(l) == 0 {
			continue
		}
		v, err := p.ParseBytes(l)
		if err != nil {
			// Not one value per line: pretty-printed or several per line.
			return slowItems(p, body, fn)
		}
		if rerr := uniqueKeys(v, line, index); rerr != nil {
			return rerr
		}
		if rerr := fn(v, line, index); rerr != nil {
			return rerr
		}
		index++
	}
	return nil
}

// slowItems walks items with encoding/json, which reports syntax errors by
// line, and hands each well-formed item to fn.
func slowItems(p *fastjson.Parser, body []byte, fn func(v *fastjson.Value, line, index int) *requestError) *requestError {
	return jsonItems(body, p, func(raw []byte, line, index int) *requestError {
		v, err := p.ParseBytes(raw)
		if err != nil {
			// encoding/json accepted it; fastjson refuses only what is
			// nested deeper than it allows.
			return malformed(line, index, "", "JSON nested too deeply")
		}
		return fn(v, line, index)
	})
}

// decodeItems reads every item of a body into a T with encoding/json,
// numbers kept exact (json.Number in maps), and says where each stood.
// timeFields name the time fields, for errors that encoding/json reports
// without one.
func decodeItems[T any](body []byte, p *fastjson.Parser, timeFields []string) ([]T, []itemAt, *requestError) {
	var items []T
	var at []itemAt
	rerr := jsonItems(body, p, func(raw []byte, line, index int) *requestError {
		var item T
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&item); err != nil {
			return typeError(raw, err, line, index, timeFields)
		}
		items = append(items, item)
		at = append(at, itemAt{line: line, index: index})
		return nil
	})
	if rerr != nil {
		return nil, nil, rerr
	}
	return items, at, nil
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

// fieldString reads an optional string field; present is false when it
// is absent or null.
func fieldString(v *fastjson.Value, key string, line, index int) (s string, present bool, rerr *requestError) {
	f := v.Get(key)
	if f == nil || f.Type() == fastjson.TypeNull {
		return "", false, nil
	}
	b, err := f.StringBytes()
	if err != nil {
		return "", true, malformed(line, index, key, "wrong type: want string")
	}
	return string(b), true, nil
}

// putObject copies a JSON object into m in source order, keeping integers
// exact; depth is bounded by fastjson's parser. keys may be nil.
func putObject(m pcommon.Map, obj *fastjson.Object, keys *keyInterner) {
	m.EnsureCapacity(obj.Len())
	obj.Visit(func(k []byte, v *fastjson.Value) {
		putFast(m.PutEmpty(keys.key(k)), v, keys)
	})
}

func putFast(dst pcommon.Value, v *fastjson.Value, keys *keyInterner) {
	switch v.Type() {
	case fastjson.TypeString:
		dst.SetStr(string(v.GetStringBytes()))
	case fastjson.TypeNumber:
		if i, err := v.Int64(); err == nil {
			dst.SetInt(i)
		} else if f, err := v.Float64(); err == nil {
			dst.SetDouble(f)
		} else {
			dst.SetStr(v.String())
		}
	case fastjson.TypeTrue:
		dst.SetBool(true)
	case fastjson.TypeFalse:
		dst.SetBool(false)
	case fastjson.TypeObject:
		obj, _ := v.Object()
		putObject(dst.SetEmptyMap(), obj, keys)
	case fastjson.TypeArray:
		arr, _ := v.Array()
		s := dst.SetEmptySlice()
		s.EnsureCapacity(len(arr))
		for _, e := range arr {
			putFast(s.AppendEmpty(), e, keys)
		}
	}
}

// keyInterner hands out one string per distinct object key, so the keys
// every Ansible result repeats (changed, rc, stdout, invocation, ...) are
// not copied once per result. Bounded in count and key length: past
// that, keys are copied as they would be without it. One per goroutine
// at a time (pooled by the decoder).
type keyInterner struct{ m map[string]string }

const (
	maxInternedKeys   = 1024
	maxInternedKeyLen = 64
)

func (in *keyInterner) key(k []byte) string {
	if in == nil {
		return string(k)
	}
	if s, ok := in.m[string(k)]; ok {
		return s
	}
	s := string(k)
	if len(k) <= maxInternedKeyLen && len(in.m) < maxInternedKeys {
		if in.m == nil {
			in.m = make(map[string]string, 64)
		}
		in.m[s] = s
	}
	return s
}
