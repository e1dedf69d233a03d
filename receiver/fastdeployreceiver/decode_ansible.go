package fastdeployreceiver

import (
	"bytes"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fastjson"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deploytrace"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/jsoncb"
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
	at itemAt
	jsoncb.Record
	Result pcommon.Map // the whole Ansible result ("misc"); empty when absent
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
	keys    sync.Pool // *keyInterner
}

// decode reads a request body; times without a zone are read in loc.
func (d *ansibleDecoder) decode(body []byte, loc *time.Location) (*ansibleBatch, *requestError) {
	p := d.parsers.Get()
	defer d.parsers.Put(p)
	keys, _ := d.keys.Get().(*keyInterner)
	if keys == nil {
		keys = &keyInterner{}
	}
	defer d.keys.Put(keys)
	// One item per line is the usual shape: size the batch for it, within
	// reason (a body of blank lines must not reserve memory).
	batch := &ansibleBatch{}
	lines := min(bytes.Count(body, []byte{'\n'})+1, 256)
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
			if batch.events == nil {
				batch.events = make([]jsonlEvent, 0, lines)
			}
			ev, rerr := decodeJSONLEvent(v, line, index, keys)
			if rerr != nil {
				return rerr
			}
			if ev != nil {
				batch.events = append(batch.events, *ev)
			}
			return nil
		}
		if batch.tasks == nil {
			batch.tasks = make([]ansibleTask, 0, lines)
		}
		task, rerr := decodeJSONCBTask(v, loc, line, index, keys)
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

func decodeJSONCBTask(v *fastjson.Value, loc *time.Location, line, index int, keys *keyInterner) (ansibleTask, *requestError) {
	rec, ferr := jsoncb.Decode(v, loc)
	if ferr != nil {
		return ansibleTask{}, malformed(line, index, ferr.Field, "%s", ferr.Msg)
	}
	t := ansibleTask{at: itemAt{line: line, index: index}, Record: rec, Result: pcommon.NewMap()}
	if rec.Misc != nil {
		putObject(t.Result, rec.Misc, keys)
		// The parser is reused for the next item.
		t.Misc = nil
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

func decodeJSONLEvent(v *fastjson.Value, line, index int, keys *keyInterner) (*jsonlEvent, *requestError) {
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
	if ev.Time, ok = jsoncb.ParseTime(ts, time.UTC); !ok {
		return nil, malformed(line, index, "_timestamp", "want an RFC 3339 time")
	}
	parseDuration := func(obj string) (start, end time.Time, rerr *requestError) {
		d := v.Get(obj, "duration")
		if d == nil {
			return ev.Time, ev.Time, nil
		}
		start, end = ev.Time, ev.Time
		if s := d.GetStringBytes("start"); s != nil {
			if start, ok = jsoncb.ParseTime(string(s), time.UTC); !ok {
				return start, end, malformed(line, index, obj+".duration.start", "want an RFC 3339 time")
			}
		}
		if e := d.GetStringBytes("end"); e != nil {
			if end, ok = jsoncb.ParseTime(string(e), time.UTC); !ok {
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
					putObject(hr.Result, obj, keys)
					if c := res.Get("changed"); c != nil && (c.Type() == fastjson.TypeTrue || c.Type() == fastjson.TypeFalse) {
						changed := c.Type() == fastjson.TypeTrue
						hr.Changed = &changed
					}
					hr.Msg = jsoncb.Text(res.Get("msg"))
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
