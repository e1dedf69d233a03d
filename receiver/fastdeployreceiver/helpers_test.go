package fastdeployreceiver

import (
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deploytrace"
)

func pcommonTrace(t deploytrace.TraceID) pcommon.TraceID { return pcommon.TraceID(t) }
func pcommonSpan(s deploytrace.SpanID) pcommon.SpanID    { return pcommon.SpanID(s) }
