// Package jsoncb is the json_cb record: one JSON object per Ansible task
// result, as fastdeploy's json_cb callback writes it and as the deployer's
// bundled plugin (internal/deployer/ansible/callback/fastdeploy_json_cb.py)
// writes it with a few more fields. It is the one Go definition of that
// line: the deployer reads its playbooks' output with it and the receiver
// reads /v1/ansible requests with it.
//
// Decoding works on fastjson values so the receiver can copy the Ansible
// result (misc) straight into pdata without an intermediate map.
package jsoncb

import (
	"strings"
	"time"
	"unsafe"

	"github.com/valyala/fastjson"
)

// Field names, in the order the bundled plugin writes them. The first five
// are those of fastdeploy's json_cb plus position; the rest are optional.
const (
	FieldPosition     = "position"
	FieldName         = "name"
	FieldState        = "state"
	FieldStart        = "start"
	FieldEnd          = "end"
	FieldHost         = "host"
	FieldPlay         = "play"
	FieldHandler      = "handler"
	FieldItemIndex    = "item_index"
	FieldItem         = "item"
	FieldErrorMessage = "error_message"
	FieldIgnoreErrors = "ignore_errors"
	FieldMisc         = "misc"
)

// Fields lists every field a record has, required ones first.
var Fields = []string{
	FieldPosition, FieldName, FieldState, FieldStart, FieldEnd,
	FieldHost, FieldPlay, FieldHandler, FieldItemIndex, FieldItem,
	FieldErrorMessage, FieldIgnoreErrors, FieldMisc,
}

// Required lists the fields without which a line is no json_cb record.
var Required = Fields[:5]

// The states of a record, after Decode maps the words other json_cb
// callbacks use onto them.
const (
	StateSuccess     = "success"
	StateFailure     = "failure"
	StateSkipped     = "skipped"
	StateUnreachable = "unreachable"
)

// States are the known states.
var States = []string{StateSuccess, StateFailure, StateSkipped, StateUnreachable}

// stateAliases maps what json_cb callbacks write onto the states above.
var stateAliases = map[string]string{
	"success": StateSuccess, "ok": StateSuccess, "changed": StateSuccess,
	"failure": StateFailure, "failed": StateFailure,
	"skipped": StateSkipped, "unreachable": StateUnreachable,
}

// KnownState says whether s is one of States.
func KnownState(s string) bool {
	switch s {
	case StateSuccess, StateFailure, StateSkipped, StateUnreachable:
		return true
	}
	return false
}

// Record is one json_cb line.
type Record struct {
	Position int
	Name     string
	// State is one of States when the line used a known word; otherwise
	// as sent, for the reader to refuse.
	State      string
	Start, End time.Time
	Host       string
	Play       string
	Handler    bool
	// ItemIndex is -1 unless the line is one item of a loop.
	ItemIndex int
	// Item is the loop item as text: a string as sent, anything else as
	// JSON; empty when the line has none (no_log) or is no item.
	Item string
	// ErrorMessage is the error as text, trimmed, however it was sent.
	ErrorMessage string
	// IgnoreErrors marks a failure the playbook carries on from.
	IgnoreErrors bool
	// Misc is the whole Ansible result, nil when absent. It points into
	// the parser that read the line and is valid until that parser is
	// used again.
	Misc *fastjson.Object
	// Changed is misc.changed when that is a boolean.
	Changed *bool
	// Missing names the first required field the line lacks; the reader
	// decides how to refuse it.
	Missing string
}

// FieldError is a field that cannot be read: wrong type or bad time.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Field indexes, in Fields order: errors are reported for the first
// field in that order, whatever order the line has its keys in.
const (
	iPosition = iota
	iName
	iState
	iStart
	iEnd
	iHost
	iPlay
	iHandler
	iItemIndex
	iItem
	iErrorMessage
	iIgnoreErrors
	iMisc
	nFields
)

// TimeExample shows the time format in error messages.
const TimeExample = "2026-02-03T10:14:04.530911"

// Decode reads one record from v. Times without a zone are read in loc.
// Keys it does not know are ignored (other json_cb callbacks may add
// some); Unknown lists them.
func Decode(v *fastjson.Value, loc *time.Location) (Record, *FieldError) {
	r := Record{ItemIndex: -1}
	obj, err := v.Object()
	if err != nil {
		return r, &FieldError{Msg: "want a JSON object"}
	}
	// One pass over the keys: a lookup per field would scan them all
	// once per field.
	var vals [nFields]*fastjson.Value
	obj.Visit(func(k []byte, fv *fastjson.Value) {
		if i := fieldIndex(k); i >= 0 && vals[i] == nil {
			vals[i] = fv
		}
	})
	var ok bool
	if pos := vals[iPosition]; pos == nil {
		r.Missing = FieldPosition
	} else if r.Position, err = pos.Int(); err != nil {
		return r, &FieldError{FieldPosition, "wrong type: want integer"}
	}
	var ferr *FieldError
	if r.Name, ok, ferr = str(vals[iName], FieldName); ferr != nil {
		return r, ferr
	} else if !ok {
		r.need(FieldName)
	}
	if sv := vals[iState]; sv == nil || sv.Type() == fastjson.TypeNull {
		r.need(FieldState)
	} else if b, err := sv.StringBytes(); err != nil {
		return r, &FieldError{FieldState, "wrong type: want string"}
	} else if known, ok := stateAliases[string(b)]; ok {
		r.State = known // the constant: no copy per record
	} else {
		r.State = string(b)
	}
	if r.Start, ferr = timeField(vals[iStart], FieldStart, loc, &r); ferr != nil {
		return r, ferr
	}
	if r.End, ferr = timeField(vals[iEnd], FieldEnd, loc, &r); ferr != nil {
		return r, ferr
	}
	if r.Host, _, ferr = str(vals[iHost], FieldHost); ferr != nil {
		return r, ferr
	}
	if r.Play, _, ferr = str(vals[iPlay], FieldPlay); ferr != nil {
		return r, ferr
	}
	r.Handler = vals[iHandler] != nil && vals[iHandler].Type() == fastjson.TypeTrue
	r.IgnoreErrors = vals[iIgnoreErrors] != nil && vals[iIgnoreErrors].Type() == fastjson.TypeTrue
	if idx := vals[iItemIndex]; idx != nil && idx.Type() != fastjson.TypeNull {
		n, err := idx.Int()
		if err != nil || n < 0 {
			return r, &FieldError{FieldItemIndex, "wrong type: want a non-negative integer"}
		}
		r.ItemIndex = n
		r.Item = Text(vals[iItem])
	}
	r.ErrorMessage = Text(vals[iErrorMessage])
	if misc := vals[iMisc]; misc != nil && misc.Type() != fastjson.TypeNull {
		if r.Misc, err = misc.Object(); err != nil {
			return r, &FieldError{FieldMisc, "wrong type: want object"}
		}
		if c := r.Misc.Get("changed"); c != nil && (c.Type() == fastjson.TypeTrue || c.Type() == fastjson.TypeFalse) {
			changed := c.Type() == fastjson.TypeTrue
			r.Changed = &changed
		}
	}
	return r, nil
}

// Parse reads one line with p; see Decode.
func Parse(p *fastjson.Parser, line []byte, loc *time.Location) (Record, error) {
	v, err := p.ParseBytes(line)
	if err != nil {
		return Record{}, err
	}
	r, ferr := Decode(v, loc)
	if ferr != nil {
		return r, ferr
	}
	return r, nil
}

// Unknown lists the keys of v that are no field of a record.
func Unknown(v *fastjson.Value) []string {
	var out []string
	if obj, err := v.Object(); err == nil {
		obj.Visit(func(k []byte, _ *fastjson.Value) {
			if fieldIndex(k) < 0 {
				out = append(out, string(k))
			}
		})
	}
	return out
}

// timeField reads a required time; absent marks it missing in r.
func timeField(v *fastjson.Value, key string, loc *time.Location, r *Record) (time.Time, *FieldError) {
	if v == nil || v.Type() == fastjson.TypeNull {
		r.need(key)
		return time.Time{}, nil
	}
	b, err := v.StringBytes()
	if err != nil {
		return time.Time{}, &FieldError{key, "wrong type: want string"}
	}
	// Parsed in place: time.Parse keeps nothing of its input on success,
	// so the text needs no copy.
	t, ok := ParseTime(unsafe.String(unsafe.SliceData(b), len(b)), loc)
	if !ok {
		return time.Time{}, &FieldError{key, "want an ISO 8601 time such as " + TimeExample}
	}
	return t, nil
}

func (r *Record) need(field string) {
	if r.Missing == "" {
		r.Missing = field
	}
}

func fieldIndex(k []byte) int {
	switch string(k) {
	case FieldPosition:
		return iPosition
	case FieldName:
		return iName
	case FieldState:
		return iState
	case FieldStart:
		return iStart
	case FieldEnd:
		return iEnd
	case FieldHost:
		return iHost
	case FieldPlay:
		return iPlay
	case FieldHandler:
		return iHandler
	case FieldItemIndex:
		return iItemIndex
	case FieldItem:
		return iItem
	case FieldErrorMessage:
		return iErrorMessage
	case FieldIgnoreErrors:
		return iIgnoreErrors
	case FieldMisc:
		return iMisc
	}
	return -1
}

// str reads an optional string field; present is false when it is absent
// or null.
func str(v *fastjson.Value, key string) (s string, present bool, ferr *FieldError) {
	if v == nil || v.Type() == fastjson.TypeNull {
		return "", false, nil
	}
	b, err := v.StringBytes()
	if err != nil {
		return "", true, &FieldError{key, "wrong type: want string"}
	}
	return string(b), true, nil
}

// Text renders a value Ansible sends as a string or as any JSON value
// (error_message, msg, a loop item) as text: a string trimmed, anything
// else as compact JSON; empty for absent or null.
func Text(v *fastjson.Value) string {
	if v == nil || v.Type() == fastjson.TypeNull {
		return ""
	}
	if v.Type() == fastjson.TypeString {
		return strings.TrimSpace(string(v.GetStringBytes()))
	}
	return string(v.MarshalTo(nil))
}

// Layouts of json_cb's zone-less isoformat() times, and RFC 3339 for
// callbacks that send a zone (the bundled plugin does).
var timeLayouts = []string{
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999",
	time.RFC3339Nano,
}

// ParseTime reads an Ansible time; one without a zone is read in loc.
func ParseTime(s string, loc *time.Location) (time.Time, bool) {
	// A zone (Z or an offset) follows the seconds: try RFC 3339 first, so
	// the bundled plugin's times cost one parse, not three.
	first := 0
	if len(s) > 19 && (s[len(s)-1] == 'Z' || s[len(s)-6] == '+' || s[len(s)-6] == '-') {
		first = len(timeLayouts) - 1
	}
	if t, err := time.ParseInLocation(timeLayouts[first], s, loc); err == nil {
		return t, true
	}
	for i, layout := range timeLayouts {
		if i == first {
			continue
		}
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}
