package fastdeployreceiver

import (
	"bytes"
	"encoding/json"

	"github.com/valyala/fastjson"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployevent"
)

// lifecycleInput is one decoded /v1/deployments/events request.
type lifecycleInput struct {
	events []deployevent.Event
	at     []itemAt
}

var lifecycleTimeFields = []string{"time", "deployment.started", "deployment.finished", "deployment.revision_time", "step.started", "step.finished"}

// decodeLifecycle reads every event of a request (schema v1, one
// definition in internal/deployevent); one unreadable event refuses the
// whole request.
func decodeLifecycle(body []byte, p *fastjson.Parser) (*lifecycleInput, *requestError) {
	in := &lifecycleInput{}
	rerr := jsonItems(body, p, func(raw []byte, line, index int) *requestError {
		var ev deployevent.Event
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber() // context values keep their integers exact
		if err := dec.Decode(&ev); err != nil {
			return typeError(raw, err, line, index, lifecycleTimeFields)
		}
		in.events = append(in.events, ev)
		in.at = append(in.at, itemAt{line: line, index: index})
		return nil
	})
	if rerr != nil {
		return nil, rerr
	}
	return in, nil
}
