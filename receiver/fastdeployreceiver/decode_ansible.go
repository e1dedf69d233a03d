package fastdeployreceiver

import (
	"net/http"
	"strconv"
	"time"

	"github.com/valyala/fastjson"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deploytrace"
)

// Ansible requests come in one of two formats, told apart per request:
// fastdeploy's json_cb callback (one object per task result) and Ansible's
// own ansible.posix.jsonl stdout callback (one object per callback event,
// with "_event").
const (
	formatJSONCB = "json_cb"
	formatJSONL  = "ansible.posix.jsonl"
)

// ansibleTarget says where a request's Ansible tasks hang in the trace:
// from the X-Fastdeploy-* headers or from a traceparent.
type ansibleTarget struct {
	deployment   string
	service      string
	step         string
	stepPosition *int
	traceparent  string
}

// ansibleInput is one decoded /v1/ansible request.
type ansibleInput struct {
	target ansibleTarget
	batch  *ansibleBatch
}

// itemAt is where an item sits in a request body, for error messages.
type itemAt struct {
	line  int // 1-based, 0 when not known
	index int // 0-based
}

// ansibleBatch is one decoded request body.
type ansibleBatch struct {
	format string
	tasks  []ansibleTask // json_cb
	events []jsonlEvent  // ansible.posix.jsonl
}

// ansibleTask is one task result in fastdeploy's json_cb format.
type ansibleTask struct {
	at           itemAt
	missing      string // the first required field absent, refused by validate
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
	at      itemAt
	missing string // the first required field absent, refused by validate
	Event   string
	Time    time.Time
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

// ansibleDecoder decodes Ansible requests with fastjson, straight into
// pdata values: Ansible results are large nested maps, and building them
// without an intermediate map[string]any is most of the receiver's speed.
// Errors are re-diagnosed with encoding/json, which names lines precisely.
type ansibleDecoder struct {
	parsers fastjson.ParserPool
}

// decode reads a request body; times without a zone are read in loc.
func (d *ansibleDecoder) decode(body []byte, loc *time.Location) (*ansibleBatch, *requestError) {
	p := d.parsers.Get()
	defer d.parsers.Put(p)
	batch := &ansibleBatch{}
	rerr := forEachItem(p, body, func(v *fastjson.Value, line, index int) *requestError {
		if v.Type() != fastjson.TypeObject {
			return malformed(line, index, "", "each item must be a JSON object")
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
			if ev != nil {
				batch.events = append(batch.events, *ev)
			}
			return nil
		}
		task, rerr := decodeJSONCBTask(v, loc, line, index)
		if rerr != nil {
			return rerr
		}
		batch.tasks = append(batch.tasks, task)
		return nil
	})
	if rerr != nil {
		return nil, rerr
	}
	return batch, nil
}

// jsonCBStates maps the states json_cb callbacks write onto ours; a state
// not listed is kept as sent, for validate to refuse.
var jsonCBStates = map[string]string{
	"success": "success", "ok": "success", "changed": "success",
	"failure": "failure", "failed": "failure",
	"skipped": "skipped", "unreachable": "unreachable",
}

func decodeJSONCBTask(v *fastjson.Value, loc *time.Location, line, index int) (ansibleTask, *requestError) {
	t := ansibleTask{at: itemAt{line: line, index: index}, ItemIndex: -1}
	need := func(key string) {
		if t.missing == "" {
			t.missing = key
		}
	}
	if pos := v.Get("position"); pos == nil {
		need("position")
	} else {
		p, err := pos.Int()
		if err != nil {
			return t, malformed(line, index, "position", "wrong type: want integer")
		}
		t.Position = p
	}
	var rerr *requestError
	var ok bool
	if t.Name, ok, rerr = fieldString(v, "name", line, index); rerr != nil {
		return t, rerr
	} else if !ok {
		need("name")
	}
	state, ok, rerr := fieldString(v, "state", line, index)
	if rerr != nil {
		return t, rerr
	} else if !ok {
		need("state")
	}
	t.State = state
	if known, ok := jsonCBStates[state]; ok {
		t.State = known
	}
	for _, f := range []struct {
		key string
		dst *time.Time
	}{{"start", &t.Start}, {"end", &t.End}} {
		s, present, rerr := fieldString(v, f.key, line, index)
		if rerr != nil {
			return t, rerr
		}
		if !present {
			need(f.key)
			continue
		}
		if *f.dst, ok = parseAnsibleTime(s, loc); !ok {
			return t, malformed(line, index, f.key, "want an ISO 8601 time such as 2026-02-03T10:14:04.530911")
		}
	}
	if t.Host, _, rerr = fieldString(v, "host", line, index); rerr != nil {
		return t, rerr
	}
	if t.Play, _, rerr = fieldString(v, "play", line, index); rerr != nil {
		return t, rerr
	}
	if h := v.Get("handler"); h != nil {
		t.Handler = h.Type() == fastjson.TypeTrue
	}
	if ie := v.Get("ignore_errors"); ie != nil {
		t.IgnoreErrors = ie.Type() == fastjson.TypeTrue
	}
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
	ev := &jsonlEvent{at: itemAt{line: line, index: index}}
	name, ok, rerr := fieldString(v, "_event", line, index)
	if rerr != nil {
		return nil, rerr
	} else if !ok {
		ev.missing = "_event"
		return ev, nil
	}
	ev.Event = name
	ts, ok, rerr := fieldString(v, "_timestamp", line, index)
	if rerr != nil {
		return nil, rerr
	} else if !ok {
		ev.missing = "_timestamp"
		return ev, nil
	}
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
			ev.missing = "task.id"
		}
		ev.TaskName = string(v.GetStringBytes("task", "name"))
		ev.TaskPath = string(v.GetStringBytes("task", "path"))
		ev.Handler = name == "v2_playbook_on_handler_task_start"
		if ev.TaskStart, ev.TaskEnd, rerr = parseDuration("task"); rerr != nil {
			return nil, rerr
		}
		hosts := v.GetObject("hosts")
		if hosts == nil && jsonlRunnerStates[name] != "" && ev.missing == "" {
			ev.missing = "hosts"
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

// decodeAnsibleTarget reads where a request's tasks belong from its
// headers, and the zone its zone-less times are in.
func decodeAnsibleTarget(req *http.Request) (ansibleTarget, *time.Location, *requestError) {
	target := ansibleTarget{
		deployment:  req.Header.Get(headerDeployment),
		service:     req.Header.Get(headerService),
		step:        req.Header.Get(headerStep),
		traceparent: req.Header.Get(headerTraceparent),
	}
	if target.traceparent != "" {
		if _, _, err := deploytrace.ParseTraceparent(target.traceparent); err != nil {
			return target, nil, &requestError{status: http.StatusBadRequest, reason: "malformed", msg: traceparentReason, field: "traceparent", index: -1}
		}
	}
	if p := req.Header.Get(headerStepPosition); p != "" {
		pos, err := strconv.Atoi(p)
		if err != nil || pos < 0 {
			return target, nil, &requestError{status: http.StatusBadRequest, reason: "malformed", msg: "want a non-negative integer", field: headerStepPosition, index: -1}
		}
		target.stepPosition = &pos
	}
	loc := time.UTC
	tz := req.URL.Query().Get("tz")
	if tz == "" {
		tz = req.Header.Get(headerTimezone)
	}
	if tz != "" {
		l, err := time.LoadLocation(tz)
		if err != nil {
			return target, nil, &requestError{status: http.StatusBadRequest, reason: "malformed", msg: "unknown IANA time zone", field: "tz", index: -1}
		}
		loc = l
	}
	return target, loc, nil
}
