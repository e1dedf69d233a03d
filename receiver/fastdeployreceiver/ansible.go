package fastdeployreceiver

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"
)

// ansibleTask is one task result in fastdeploy's json_cb callback format.
type ansibleTask struct {
	Position     int
	Start        time.Time
	End          time.Time
	Name         string
	State        string // success | failure | skipped | unreachable
	ErrorMessage string
	Host         string
	Changed      *bool
	Result       map[string]any // the whole Ansible result ("misc")
}

type jsonCBLine struct {
	Position     *int            `json:"position"`
	Start        *string         `json:"start"`
	End          *string         `json:"end"`
	Name         *string         `json:"name"`
	State        *string         `json:"state"`
	ErrorMessage json.RawMessage `json:"error_message"`
	Misc         json.RawMessage `json:"misc"`
	Host         string          `json:"host"`
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

// decodeJSONCB decodes a request of json_cb lines. Times without a zone are
// read in loc, the Ansible host's zone.
func decodeJSONCB(body []byte, loc *time.Location) ([]ansibleTask, *requestError) {
	var tasks []ansibleTask
	rerr := jsonItems(body, func(raw json.RawMessage, line, index int) *requestError {
		var l jsonCBLine
		if err := json.Unmarshal(raw, &l); err != nil {
			return typeError(raw, err, line, index, nil)
		}
		switch {
		case l.Position == nil:
			return invalid(line, index, "position", "required")
		case *l.Position < 0:
			return invalid(line, index, "position", "must not be negative")
		case l.Name == nil:
			return invalid(line, index, "name", "required")
		case l.State == nil:
			return invalid(line, index, "state", "required")
		case l.Start == nil:
			return invalid(line, index, "start", "required")
		case l.End == nil:
			return invalid(line, index, "end", "required")
		}
		t := ansibleTask{Position: *l.Position, Name: *l.Name, Host: l.Host}
		switch *l.State {
		case "success", "ok", "changed":
			t.State = "success"
		case "failure", "failed":
			t.State = "failure"
		case "skipped":
			t.State = "skipped"
		case "unreachable":
			t.State = "unreachable"
		default:
			return invalid(line, index, "state", "unknown state, want success, failure, skipped or unreachable")
		}
		var ok bool
		if t.Start, ok = parseAnsibleTime(*l.Start, loc); !ok {
			return malformed(line, index, "start", "want an ISO 8601 time such as 2026-02-03T10:14:04.530911")
		}
		if t.End, ok = parseAnsibleTime(*l.End, loc); !ok {
			return malformed(line, index, "end", "want an ISO 8601 time such as 2026-02-03T10:14:04.530911")
		}
		if t.End.Before(t.Start) {
			return invalid(line, index, "end", "before start")
		}
		t.ErrorMessage = jsonText(l.ErrorMessage)
		if len(bytes.TrimSpace(l.Misc)) > 0 && !bytes.Equal(bytes.TrimSpace(l.Misc), []byte("null")) {
			dec := json.NewDecoder(bytes.NewReader(l.Misc))
			dec.UseNumber() // keeps 64-bit integers exact
			var misc any
			if err := dec.Decode(&misc); err != nil {
				return malformed(line, index, "misc", "invalid JSON")
			}
			m, isMap := misc.(map[string]any)
			if !isMap {
				return malformed(line, index, "misc", "wrong type: want object")
			}
			t.Result = m
			if c, isBool := m["changed"].(bool); isBool {
				t.Changed = &c
			}
		}
		tasks = append(tasks, t)
		return nil
	})
	if rerr != nil {
		return nil, rerr
	}
	return tasks, nil
}

// jsonText renders an error_message, which json_cb sends as a string or as
// any JSON value, as text.
func jsonText(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return strings.TrimSpace(s)
	}
	return string(raw)
}
