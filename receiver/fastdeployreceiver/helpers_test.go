package fastdeployreceiver

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/valyala/fastjson"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployevent"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/deploytrace"
)

func pcommonTrace(t deploytrace.TraceID) pcommon.TraceID { return pcommon.TraceID(t) }
func pcommonSpan(s deploytrace.SpanID) pcommon.SpanID    { return pcommon.SpanID(s) }

// testDecodeAnsible decodes a body and passes it through the gate, as
// /v1/ansible does for deployment 7.
func testDecodeAnsible(d *ansibleDecoder, body []byte, loc *time.Location) (*ansibleBatch, *requestError) {
	batch, rerr := d.decode(body, loc)
	if rerr != nil {
		return nil, rerr
	}
	in := &ansibleInput{target: ansibleTarget{deployment: "7"}, batch: batch}
	if rerr := in.validate(testNow); rerr != nil {
		return nil, rerr
	}
	return batch, nil
}

func testDecodeJSONCB(body []byte, loc *time.Location) ([]ansibleTask, *requestError) {
	var d ansibleDecoder
	batch, rerr := testDecodeAnsible(&d, body, loc)
	if rerr != nil {
		return nil, rerr
	}
	return batch.tasks, nil
}

func decodeJSONBody(resp *http.Response, v any) error {
	return json.NewDecoder(resp.Body).Decode(v)
}

// testDecodeLifecycle decodes a body and passes it through the gate, as
// /v1/deployments/events does.
func testDecodeLifecycle(body []byte) ([]deployevent.Event, *requestError) {
	var p fastjson.Parser
	in, rerr := decodeLifecycle(body, &p)
	if rerr != nil {
		return nil, rerr
	}
	if rerr := in.validate(testNow); rerr != nil {
		return nil, rerr
	}
	return in.events, nil
}

func stepWith(message, tail string) deployevent.Step {
	return deployevent.Step{Name: "s", State: deployevent.StatusFailure, Message: message, StderrTail: tail}
}
