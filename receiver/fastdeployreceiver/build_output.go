package fastdeployreceiver

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployattr"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/deploytrace"
)

const scopeName = "github.com/fastdeploy/otelcol-fastdeploy/receiver/fastdeployreceiver"

// output collects the spans and log records one request (or one timeout
// sweep) produces, grouped into one resource per deployed service and
// environment.
type output struct {
	traces    ptrace.Traces
	logs      plog.Logs
	spanCount int
	logCount  int
	spans     map[resourceKey]ptrace.SpanSlice
	records   map[resourceKey]plog.LogRecordSlice
	version   string
}

type resourceKey struct {
	service     string
	environment string
}

func newOutput(version string) *output {
	return &output{
		traces:  ptrace.NewTraces(),
		logs:    plog.NewLogs(),
		spans:   map[resourceKey]ptrace.SpanSlice{},
		records: map[resourceKey]plog.LogRecordSlice{},
		version: version,
	}
}

func fillResource(res pcommon.Resource, key resourceKey) {
	attrs := res.Attributes()
	service := key.service
	if service == "" {
		service = "unknown_service"
	}
	attrs.PutStr(deployattr.ServiceName, service)
	if key.environment != "" {
		attrs.PutStr(deployattr.DeploymentEnvironment, key.environment)
	}
}

func (o *output) newSpan(key resourceKey) ptrace.Span {
	ss, ok := o.spans[key]
	if !ok {
		rs := o.traces.ResourceSpans().AppendEmpty()
		fillResource(rs.Resource(), key)
		scope := rs.ScopeSpans().AppendEmpty()
		scope.Scope().SetName(scopeName)
		scope.Scope().SetVersion(o.version)
		ss = scope.Spans()
		o.spans[key] = ss
	}
	o.spanCount++
	return ss.AppendEmpty()
}

func (o *output) newLogRecord(key resourceKey) plog.LogRecord {
	lrs, ok := o.records[key]
	if !ok {
		rl := o.logs.ResourceLogs().AppendEmpty()
		fillResource(rl.Resource(), key)
		scope := rl.ScopeLogs().AppendEmpty()
		scope.Scope().SetName(scopeName)
		scope.Scope().SetVersion(o.version)
		lrs = scope.LogRecords()
		o.records[key] = lrs
	}
	o.logCount++
	return lrs.AppendEmpty()
}

func (o *output) empty() bool { return o.spanCount == 0 && o.logCount == 0 }

// spanIDs sets a span's identity.
func setIDs(span ptrace.Span, trace deploytrace.TraceID, id, parent deploytrace.SpanID) {
	span.SetTraceID(pcommon.TraceID(trace))
	span.SetSpanID(pcommon.SpanID(id))
	if !parent.IsEmpty() {
		span.SetParentSpanID(pcommon.SpanID(parent))
	}
}

func setTimes(span ptrace.Span, start, end time.Time) {
	span.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
	span.SetEndTimestamp(pcommon.NewTimestampFromTime(end))
}

func putStrIf(m pcommon.Map, k, v string) {
	if v != "" {
		m.PutStr(k, v)
	}
}

// putValue stores a decoded JSON value, keeping its shape: maps stay maps,
// arrays stay slices, integers stay integers.
func putValue(dst pcommon.Value, v any) {
	switch x := v.(type) {
	case nil:
		// an empty value
	case string:
		dst.SetStr(x)
	case bool:
		dst.SetBool(x)
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			dst.SetInt(i)
		} else if f, err := x.Float64(); err == nil {
			dst.SetDouble(f)
		} else {
			dst.SetStr(string(x))
		}
	case float64:
		dst.SetDouble(x)
	case int:
		dst.SetInt(int64(x))
	case int64:
		dst.SetInt(x)
	case map[string]any:
		putMap(dst.SetEmptyMap(), x)
	case []any:
		s := dst.SetEmptySlice()
		s.EnsureCapacity(len(x))
		for _, e := range x {
			putValue(s.AppendEmpty(), e)
		}
	default:
		dst.SetStr(fmt.Sprint(x))
	}
}

// putMap copies src in key order, so that the same input always yields
// the same output.
func putMap(dst pcommon.Map, src map[string]any) {
	dst.EnsureCapacity(len(src))
	for _, k := range slices.Sorted(maps.Keys(src)) {
		putValue(dst.PutEmpty(k), src[k])
	}
}
