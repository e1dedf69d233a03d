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

func testDecodeJSONCB(body []byte, loc *time.Location) ([]ansibleTask, *requestError) {
	var d ansibleDecoder
	batch, rerr := d.decode(body, loc, testNow)
	if rerr != nil {
		return nil, rerr
	}
	return batch.tasks, nil
}

func decodeJSONBody(resp *http.Response, v any) error {
	return json.NewDecoder(resp.Body).Decode(v)
}

func testDecodeLifecycle(body []byte) ([]deployevent.Event, *requestError) {
	var parsers fastjson.ParserPool
	return decodeLifecycle(body, testNow, &parsers)
}
