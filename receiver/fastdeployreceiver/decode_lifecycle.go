package fastdeployreceiver

import (
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
	events, at, rerr := decodeItems[deployevent.Event](body, p, lifecycleTimeFields)
	if rerr != nil {
		return nil, rerr
	}
	return &lifecycleInput{events: events, at: at}, nil
}
