package fakefastdeploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"time"
)

// naive marks a time that arrived without a zone: pydantic keeps such a
// datetime naive and writes it back without one.
var naive = time.FixedZone("naive", 0)

// pyTime writes a time as pydantic v2's model_dump_json does: UTC as "Z",
// microseconds only when there are any, naive times without a zone.
func pyTime(t *time.Time) any {
	if t == nil {
		return nil
	}
	layout := "2006-01-02T15:04:05"
	if t.Nanosecond()/1000 != 0 {
		layout += ".000000"
	}
	if t.Location() == naive {
		return t.Format(layout)
	}
	if _, off := t.Zone(); off == 0 {
		return t.Format(layout) + "Z"
	}
	return t.Format(layout + "-07:00")
}

// parsePyTime reads a datetime as pydantic does in lax mode, for the forms
// fastdeploy's deploy process and test clients send: ISO 8601 with or
// without a zone.
func parsePyTime(raw json.RawMessage) (time.Time, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return time.Time{}, errors.New("Input should be a valid datetime")
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.Truncate(time.Microsecond), nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999", "2006-01-02 15:04:05.999999999Z07:00"} {
		if t, err := time.ParseInLocation(layout, s, naive); err == nil {
			return t.Truncate(time.Microsecond), nil
		}
	}
	return time.Time{}, errors.New("Input should be a valid datetime")
}

// stepEvent is StepProcessed / StepDeleted as the websocket carries it.
func stepEvent(s *step, deleted bool) []byte {
	return marshalOrdered([]kv{
		{"type", "step"}, {"id", s.ID}, {"name", s.Name}, {"state", s.State},
		{"deployment_id", s.DeploymentID}, {"message", s.Message},
		{"started", pyTime(s.Started)}, {"finished", pyTime(s.Finished)}, {"deleted", deleted},
	})
}

// deploymentEvent is DeploymentStarted / DeploymentFinished.
func deploymentEvent(d *deployment) []byte {
	started := d.Started
	return marshalOrdered([]kv{
		{"type", "deployment"}, {"id", d.ID}, {"service_id", d.ServiceID}, {"origin", d.Origin},
		{"user", d.User}, {"started", pyTime(&started)}, {"finished", pyTime(d.Finished)}, {"context", d.Context},
	})
}

func serviceEvent(s Service, deleted bool) []byte {
	data := s.Data
	if data == nil {
		data = map[string]any{}
	}
	return marshalOrdered([]kv{{"type", "service"}, {"id", s.ID}, {"name", s.Name}, {"data", data}, {"deleted", deleted}})
}

type kv struct {
	k string
	v any
}

// marshalOrdered keeps pydantic's field order, which a reader of captured
// frames expects.
func marshalOrdered(fields []kv) []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range fields {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(f.k)
		v, err := json.Marshal(f.v)
		if err != nil {
			v = []byte("null")
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes()
}
