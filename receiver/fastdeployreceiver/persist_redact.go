package fastdeployreceiver

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sync"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/secrets"
)

// Secrets at rest: everything the receiver writes to storage passes
// through the secrets engine with its default rules, the engine the
// secret_redaction processor runs, before it is encoded. Strings are
// redacted where a secret occurs in them; values under secret-looking keys
// (a context's "password", or {name: DB_PASSWORD, value: ...}) are masked
// whole; lists of strings are scanned as the text they form; long map keys
// are scanned too. These are the processor's rules for attribute values,
// so no file the receiver writes holds a secret the processor (with its
// default rules) would have removed from the telemetry.
//
// The in-flight state in memory is not redacted: the spans still to be
// emitted carry what the client sent, and the processor redacts them on
// the way out. Only a deployment restored after a restart carries the
// redacted values; a deployment whose id, or a step whose name, itself
// holds a secret is restored under the redacted name, so events after the
// restart do not find it (it times out), and a delivery id holding one is
// not recognised as a repeat after a restart.

var atRestEngine = sync.OnceValues(func() (*secrets.Engine, error) { return secrets.New(secrets.Options{}) })

// atRest redacts a value about to be stored; it never changes its input:
// what it changes it copies, so the in-flight state that shares maps and
// slices with the stored form stays as it is.
type atRest struct {
	engine *secrets.Engine
	tally  secrets.Tally
}

func newAtRest() (*atRest, error) {
	e, err := atRestEngine()
	if err != nil {
		return nil, fmt.Errorf("secret rules: %w", err)
	}
	return &atRest{engine: e}, nil
}

// str redacts one string; underSecretKey masks it whole.
func (a *atRest) str(s string, underSecretKey bool) string {
	a.tally.StartItem()
	if underSecretKey {
		if m, ok := a.engine.MaskKeyValue(s, &a.tally); ok {
			return m
		}
		return s
	}
	if r, ok := a.engine.Redact(s, &a.tally); ok {
		return r
	}
	return s
}

// redact returns v with every string in it redacted, and whether it
// changed: struct fields, pointers, slices, and the free-form maps of a
// deployment's context. A value with nothing to redact is returned as it
// is.
func (a *atRest) redact(v reflect.Value) (reflect.Value, bool) {
	switch v.Kind() {
	case reflect.String:
		if r := a.str(v.String(), false); r != v.String() {
			out := reflect.New(v.Type()).Elem()
			out.SetString(r)
			return out, true
		}
	case reflect.Pointer:
		if v.IsNil() {
			return v, false
		}
		if e, changed := a.redact(v.Elem()); changed {
			out := reflect.New(v.Type().Elem())
			out.Elem().Set(e)
			return out, true
		}
	case reflect.Struct:
		var out reflect.Value
		for i := range v.NumField() {
			if !v.Type().Field(i).IsExported() {
				continue // the stored forms export what they store
			}
			r, changed := a.redact(v.Field(i))
			if !changed {
				continue
			}
			if !out.IsValid() {
				out = reflect.New(v.Type()).Elem()
				out.Set(v)
			}
			out.Field(i).Set(r)
		}
		if out.IsValid() {
			return out, true
		}
	case reflect.Slice:
		var out reflect.Value
		for i := range v.Len() {
			r, changed := a.redact(v.Index(i))
			if !changed {
				continue
			}
			if !out.IsValid() {
				out = reflect.MakeSlice(v.Type(), v.Len(), v.Len())
				reflect.Copy(out, v)
			}
			out.Index(i).Set(r)
		}
		if out.IsValid() {
			return out, true
		}
	case reflect.Map:
		if m, ok := v.Interface().(map[string]any); ok {
			if r, changed := a.contextMap(m, false); changed {
				return reflect.ValueOf(r), true
			}
		}
	}
	return v, false
}

// redacted returns a copy of rec with every string redacted.
func redacted[T any](a *atRest, rec T) T {
	if r, changed := a.redact(reflect.ValueOf(rec)); changed {
		return r.Interface().(T)
	}
	return rec
}

// The context's free-form values, by the processor's rules for attribute
// values (secretredactionprocessor: mapEntries, value, slice).

func (a *atRest) contextMap(m map[string]any, underSecretKey bool) (map[string]any, bool) {
	var out map[string]any
	set := func(k string, v any) {
		if out == nil {
			out = make(map[string]any, len(m))
			for k2, v2 := range m {
				out[k2] = v2
			}
		}
		out[k] = v
	}
	namedBySibling := a.engine.ValueNamedBySibling(len(m), func(field string) (string, bool) {
		n, ok := m[field].(string)
		return n, ok
	})
	for k, v := range m {
		secretKey := underSecretKey || a.engine.IsSecretKey(k) || (k == "value" && namedBySibling)
		if r, changed := a.contextValue(k, v, secretKey); changed {
			set(k, r)
		}
	}
	if len(m) > 0 {
		for k := range m {
			if len(k) < secrets.MinSecretMapKey {
				continue
			}
			if rk := a.str(k, false); rk != k {
				v := m[k]
				if out != nil {
					v = out[k]
				}
				set(rk, v)
				delete(out, k)
			}
		}
	}
	return out, out != nil
}

func (a *atRest) contextValue(key string, v any, secretKey bool) (any, bool) {
	switch v := v.(type) {
	case string:
		r := a.str(v, secretKey)
		return r, r != v
	case json.Number:
		if secretKey {
			r := a.str(string(v), true)
			return r, r != string(v)
		}
	case float64, int, int64:
		if secretKey {
			s := fmt.Sprint(v)
			r := a.str(s, true)
			return r, r != s
		}
	case map[string]any:
		return a.contextMap(v, secretKey)
	case []any:
		return a.contextSlice(key, v, secretKey)
	}
	return v, false
}

// contextSlice: a list of strings is scanned as the text it forms (an
// argv as its command line, output lines as the output), others element
// by element.
func (a *atRest) contextSlice(key string, s []any, secretKey bool) ([]any, bool) {
	if !secretKey && len(s) >= 2 {
		elems := make([]string, 0, len(s))
		for _, e := range s {
			str, ok := e.(string)
			if !ok {
				break
			}
			elems = append(elems, str)
		}
		if len(elems) == len(s) {
			a.tally.StartItem()
			r := a.engine.RedactJoined(elems, secrets.ListSeparator(key, elems[0]), &a.tally)
			if r == nil {
				return s, false
			}
			out := make([]any, len(r))
			for i, e := range r {
				out[i] = e
			}
			return out, true
		}
	}
	var out []any
	for i, e := range s {
		r, changed := a.contextValue("", e, secretKey)
		if !changed {
			continue
		}
		if out == nil {
			out = append([]any(nil), s...)
		}
		out[i] = r
	}
	return out, out != nil
}
