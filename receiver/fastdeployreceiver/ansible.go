package fastdeployreceiver

import (
	"bytes"
	"strings"
	"time"

	"github.com/valyala/fastjson"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Ansible requests come in one of two formats, told apart per request:
// fastdeploy's json_cb callback (one object per task result) and Ansible's
// own ansible.posix.jsonl stdout callback (one object per callback event,
// with "_event").
const (
	formatJSONCB = "json_cb"
	formatJSONL  = "ansible.posix.jsonl"
)

// ansibleBatch is one decoded request.
type ansibleBatch struct {
	format string
	tasks  []ansibleTask // json_cb
	events []jsonlEvent  // ansible.posix.jsonl
}

// ansibleTask is one task result in fastdeploy's json_cb format.
type ansibleTask struct {
	Position     int
	Start        time.Time
	End          time.Time
	Name         string
	State        string // success | failure | skipped | unreachable
	ErrorMessage string
	Host         string
	Changed      *bool
	Result       pcommon.Map // the whole Ansible result ("misc"); empty when absent
	// Optional fields of the bundled deployer's improved json_cb callback.
	Play         string
	Handler      bool
	IgnoreErrors bool   // a failure the playbook carries on from
	ItemIndex    int    // -1 unless the line is one item of a loop
	Item         string // the loop item, as text
}

// jsonlEvent is one ansible.posix.jsonl callback event.
type jsonlEvent struct {
	Event string
	Time  time.Time
	// Play start events.
	PlayID, PlayName string
	PlayStart        time.Time
	// Task start and runner events.
	TaskID, TaskName, TaskPath string
	TaskStart, TaskEnd         time.Time
	Handler                    bool
	Hosts                      []hostResult
	// Stats at the end of a playbook run.
	Stats map[string]hostStats
}

type hostResult struct {
	Host    string
	Result  pcommon.Map
	Changed *bool
	Msg     string
}

type hostStats struct {
	Failures, Unreachable, Ignored, Rescued int64
}

// Layouts of json_cb's zone-less isoformat() times, and RFC 3339 for
// callbacks that send a zone.
var ansibleTimeLayouts = []string{
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999",
	time.RFC3339Nano,
}

func parseAnsibleTime(s string, loc *time.Location) (time.Time, bool) {
	for _, layout := range ansibleTimeLayouts {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// ansibleDecoder decodes Ansible requests with fastjson, straight into
// pdata values: Ansible results are large nested maps, and building them
// without an intermediate map[string]any is most of the receiver's speed.
// Errors are re-diagnosed with encoding/json, which names lines precisely.
type ansibleDecoder struct {
	parsers fastjson.ParserPool
}

// decode reads a request body; times without a zone are read in loc.
func (d *ansibleDecoder) decode(body []byte, loc *time.Location, now time.Time) (*ansibleBatch, *requestError) {
	p := d.parsers.Get()
	defer d.parsers.Put(p)
	batch := &ansibleBatch{}
	rerr := forEachItem(p, body, func(v *fastjson.Value, line, index int) *requestError {
		if v.Type() != fastjson.TypeObject {
			return malformed(line, index, "", "each item must be a JSON object")
		}
		if key := duplicateKey(v, ""); key != "" {
			return malformed(line, index, key, "key appears twice in one object")
		}
		format := formatJSONCB
		if v.Exists("_event") {
			format = formatJSONL
		}
		if batch.format == "" {
			batch.format = format
		} else if batch.format != format {
			return invalid(line, index, "_event", "a request must not mix json_cb and ansible.posix.jsonl lines")
		}
		if format == formatJSONL {
			ev, rerr := decodeJSONLEvent(v, line, index)
			if rerr != nil {
				return rerr
			}
			if ev != nil && outsideWindow(ev.Time, now) {
				return invalid(line, index, "_timestamp", windowReason)
			}
			if ev != nil {
				batch.events = append(batch.events, *ev)
			}
			return nil
		}
		task, rerr := decodeJSONCBTask(v, loc, line, index)
		if rerr != nil {
			return rerr
		}
		if outsideWindow(task.Start, now) || outsideWindow(task.End, now) {
			return invalid(line, index, "start", windowReason)
		}
		batch.tasks = append(batch.tasks, task)
		return nil
	})
	if rerr != nil {
		return nil, rerr
	}
	return batch, nil
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
	return jsonItems(body, func(raw []byte, line, index int) *requestError {
		v, err := p.ParseBytes(raw)
		if err != nil {
			// encoding/json accepted it; fastjson refuses only what is
			// nested deeper than it allows.
			return malformed(line, index, "", "JSON nested too deeply")
		}
		return fn(v, line, index)
	})
}

func fieldString(v *fastjson.Value, key string, line, index int, required bool) (string, *requestError) {
	f := v.Get(key)
	if f == nil || f.Type() == fastjson.TypeNull {
		if required {
			return "", invalid(line, index, key, "required")
		}
		return "", nil
	}
	b, err := f.StringBytes()
	if err != nil {
		return "", malformed(line, index, key, "wrong type: want string")
	}
	return string(b), nil
}

func decodeJSONCBTask(v *fastjson.Value, loc *time.Location, line, index int) (ansibleTask, *requestError) {
	var t ansibleTask
	pos := v.Get("position")
	if pos == nil {
		return t, invalid(line, index, "position", "required")
	}
	p, err := pos.Int()
	if err != nil {
		return t, malformed(line, index, "position", "wrong type: want integer")
	}
	if p < 0 {
		return t, invalid(line, index, "position", "must not be negative")
	}
	t.Position = p
	var rerr *requestError
	if t.Name, rerr = fieldString(v, "name", line, index, true); rerr != nil {
		return t, rerr
	}
	state, rerr := fieldString(v, "state", line, index, true)
	if rerr != nil {
		return t, rerr
	}
	switch state {
	case "success", "ok", "changed":
		t.State = "success"
	case "failure", "failed":
		t.State = "failure"
	case "skipped":
		t.State = "skipped"
	case "unreachable":
		t.State = "unreachable"
	default:
		return t, invalid(line, index, "state", "unknown state, want success, failure, skipped or unreachable")
	}
	for _, f := range []struct {
		key string
		dst *time.Time
	}{{"start", &t.Start}, {"end", &t.End}} {
		s, rerr := fieldString(v, f.key, line, index, true)
		if rerr != nil {
			return t, rerr
		}
		var ok bool
		if *f.dst, ok = parseAnsibleTime(s, loc); !ok {
			return t, malformed(line, index, f.key, "want an ISO 8601 time such as 2026-02-03T10:14:04.530911")
		}
	}
	if t.End.Before(t.Start) {
		return t, invalid(line, index, "end", "before start")
	}
	if t.Host, rerr = fieldString(v, "host", line, index, false); rerr != nil {
		return t, rerr
	}
	if t.Play, rerr = fieldString(v, "play", line, index, false); rerr != nil {
		return t, rerr
	}
	if h := v.Get("handler"); h != nil {
		t.Handler = h.Type() == fastjson.TypeTrue
	}
	if ie := v.Get("ignore_errors"); ie != nil {
		t.IgnoreErrors = ie.Type() == fastjson.TypeTrue
	}
	t.ItemIndex = -1
	if idx := v.Get("item_index"); idx != nil && idx.Type() != fastjson.TypeNull {
		n, err := idx.Int()
		if err != nil || n < 0 {
			return t, malformed(line, index, "item_index", "wrong type: want a non-negative integer")
		}
		t.ItemIndex = n
		t.Item = jsonText(v.Get("item"))
	}
	t.ErrorMessage = jsonText(v.Get("error_message"))
	t.Result = pcommon.NewMap()
	if misc := v.Get("misc"); misc != nil && misc.Type() != fastjson.TypeNull {
		obj, err := misc.Object()
		if err != nil {
			return t, malformed(line, index, "misc", "wrong type: want object")
		}
		putObject(t.Result, obj)
		if c := misc.Get("changed"); c != nil && (c.Type() == fastjson.TypeTrue || c.Type() == fastjson.TypeFalse) {
			changed := c.Type() == fastjson.TypeTrue
			t.Changed = &changed
		}
	}
	return t, nil
}

// jsonlRunnerStates maps runner events to our task states.
var jsonlRunnerStates = map[string]string{
	"v2_runner_on_ok":          "success",
	"v2_runner_on_failed":      "failure",
	"v2_runner_on_skipped":     "skipped",
	"v2_runner_on_unreachable": "unreachable",
}

func decodeJSONLEvent(v *fastjson.Value, line, index int) (*jsonlEvent, *requestError) {
	name, rerr := fieldString(v, "_event", line, index, true)
	if rerr != nil {
		return nil, rerr
	}
	ev := &jsonlEvent{Event: name}
	ts, rerr := fieldString(v, "_timestamp", line, index, true)
	if rerr != nil {
		return nil, rerr
	}
	var ok bool
	if ev.Time, ok = parseAnsibleTime(ts, time.UTC); !ok {
		return nil, malformed(line, index, "_timestamp", "want an RFC 3339 time")
	}
	parseDuration := func(obj string) (start, end time.Time, rerr *requestError) {
		d := v.Get(obj, "duration")
		if d == nil {
			return ev.Time, ev.Time, nil
		}
		start, end = ev.Time, ev.Time
		if s := d.GetStringBytes("start"); s != nil {
			if start, ok = parseAnsibleTime(string(s), time.UTC); !ok {
				return start, end, malformed(line, index, obj+".duration.start", "want an RFC 3339 time")
			}
		}
		if e := d.GetStringBytes("end"); e != nil {
			if end, ok = parseAnsibleTime(string(e), time.UTC); !ok {
				return start, end, malformed(line, index, obj+".duration.end", "want an RFC 3339 time")
			}
		}
		return start, end, nil
	}
	switch {
	case name == "v2_playbook_on_play_start":
		ev.PlayID = string(v.GetStringBytes("play", "id"))
		ev.PlayName = string(v.GetStringBytes("play", "name"))
		if ev.PlayStart, _, rerr = parseDuration("play"); rerr != nil {
			return nil, rerr
		}
	case name == "v2_playbook_on_task_start", name == "v2_playbook_on_handler_task_start",
		jsonlRunnerStates[name] != "":
		ev.TaskID = string(v.GetStringBytes("task", "id"))
		if ev.TaskID == "" {
			return nil, invalid(line, index, "task.id", "required")
		}
		ev.TaskName = string(v.GetStringBytes("task", "name"))
		ev.TaskPath = string(v.GetStringBytes("task", "path"))
		ev.Handler = name == "v2_playbook_on_handler_task_start"
		if ev.TaskStart, ev.TaskEnd, rerr = parseDuration("task"); rerr != nil {
			return nil, rerr
		}
		if ev.TaskEnd.Before(ev.TaskStart) {
			return nil, invalid(line, index, "task.duration.end", "before start")
		}
		hosts := v.GetObject("hosts")
		if hosts == nil && jsonlRunnerStates[name] != "" {
			return nil, invalid(line, index, "hosts", "required on runner events")
		}
		if hosts != nil {
			hosts.Visit(func(host []byte, res *fastjson.Value) {
				hr := hostResult{Host: string(host), Result: pcommon.NewMap()}
				if obj, err := res.Object(); err == nil {
					putObject(hr.Result, obj)
					if c := res.Get("changed"); c != nil && (c.Type() == fastjson.TypeTrue || c.Type() == fastjson.TypeFalse) {
						changed := c.Type() == fastjson.TypeTrue
						hr.Changed = &changed
					}
					hr.Msg = jsonText(res.Get("msg"))
				}
				ev.Hosts = append(ev.Hosts, hr)
			})
		}
	case name == "v2_playbook_on_stats":
		ev.Stats = map[string]hostStats{}
		if stats := v.GetObject("stats"); stats != nil {
			stats.Visit(func(host []byte, s *fastjson.Value) {
				ev.Stats[string(host)] = hostStats{
					Failures:    s.GetInt64("failures"),
					Unreachable: s.GetInt64("unreachable"),
					Ignored:     s.GetInt64("ignored"),
					Rescued:     s.GetInt64("rescued"),
				}
			})
		}
	default:
		// Other callback events (retries, includes, warnings) carry nothing
		// the trace needs; they are accepted and skipped.
		return nil, nil
	}
	return ev, nil
}

// putObject copies a JSON object into m in source order, keeping integers
// exact; depth is bounded by fastjson's parser.
func putObject(m pcommon.Map, obj *fastjson.Object) {
	m.EnsureCapacity(obj.Len())
	obj.Visit(func(k []byte, v *fastjson.Value) {
		putFast(m.PutEmpty(string(k)), v)
	})
}

func putFast(dst pcommon.Value, v *fastjson.Value) {
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
		putObject(dst.SetEmptyMap(), obj)
	case fastjson.TypeArray:
		arr, _ := v.Array()
		s := dst.SetEmptySlice()
		s.EnsureCapacity(len(arr))
		for _, e := range arr {
			putFast(s.AppendEmpty(), e)
		}
	}
}

// jsonText renders an error_message or msg, which Ansible sends as a
// string or as any JSON value, as text.
func jsonText(v *fastjson.Value) string {
	if v == nil || v.Type() == fastjson.TypeNull {
		return ""
	}
	if v.Type() == fastjson.TypeString {
		return strings.TrimSpace(string(v.GetStringBytes()))
	}
	return string(v.MarshalTo(nil))
}
