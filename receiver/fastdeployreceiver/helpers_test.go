package fastdeployreceiver

import (
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deploytrace"
)

func pcommonTrace(t deploytrace.TraceID) pcommon.TraceID { return pcommon.TraceID(t) }
func pcommonSpan(s deploytrace.SpanID) pcommon.SpanID    { return pcommon.SpanID(s) }

func testDecodeJSONCB(body []byte, loc *time.Location) ([]ansibleTask, *requestError) {
	var d ansibleDecoder
	batch, rerr := d.decode(body, loc)
	if rerr != nil {
		return nil, rerr
	}
	return batch.tasks, nil
}
