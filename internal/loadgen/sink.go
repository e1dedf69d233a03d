package loadgen

import (
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deploytrace"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/testutil/otlpsink"
)

// Sink is the tests' OTLP/HTTP backend in counting mode, with the checks
// of a load run: which acknowledged spans and log records arrived.
type Sink struct{ *otlpsink.Sink }

// StartSink starts a counting sink on addr ("127.0.0.1:0" for a free
// port): it keeps ids, not data, so long runs stay small.
func StartSink(addr string) (*Sink, error) {
	s, err := otlpsink.StartCounting(addr)
	if err != nil {
		return nil, err
	}
	return &Sink{s}, nil
}

// Missing compares what was acknowledged with what arrived: the spans
// acknowledged but never exported, and how many acknowledged spans
// arrived more than once.
func (s *Sink) Missing(acked map[deploytrace.TraceID]*Acked) (missing []string, repeated int) {
	for trace, a := range acked {
		for _, id := range a.Spans {
			switch n := s.SpanReceipts(pcommon.TraceID(trace), pcommon.SpanID(id)); {
			case n == 0:
				missing = append(missing, a.ID+"/"+id.String())
			case n > 1:
				repeated++
			}
		}
	}
	return missing, repeated
}

// MissingLogs returns the deployments for which fewer log records arrived
// than events were acknowledged.
func (s *Sink) MissingLogs(acked map[deploytrace.TraceID]*Acked) []string {
	var out []string
	for trace, a := range acked {
		if s.TraceLogRecords(pcommon.TraceID(trace)) < a.Events {
			out = append(out, a.ID)
		}
	}
	return out
}
