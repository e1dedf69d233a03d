// Package otlpsink is the OTLP/HTTP backend of the tests and of fdload:
// the collector's otlphttp exporter points at it. It always counts what
// arrives, by trace and span id; a recording sink (Start) also keeps the
// data for tests to read, a counting one (StartCounting) does not, for
// load runs long enough for kept data to grow too big. It stands in for a
// tracing backend where contrib's file exporter cannot be had.
package otlpsink

import (
	"compress/gzip"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// Sink receives what OTLP/HTTP exporters send to it.
type Sink struct {
	srv  *http.Server
	ln   net.Listener
	keep bool

	mu       sync.Mutex
	traces   []ptrace.Traces
	logs     []plog.Logs
	metrics  []pmetric.Metrics
	spanIDs  map[pcommon.TraceID]map[pcommon.SpanID]int
	traceLog map[pcommon.TraceID]int
	counts   Counts
	changed  chan struct{}
	refusing bool
}

// Counts are totals of what a Sink received.
type Counts struct {
	SpanReceipts int // spans received, repeats included
	UniqueSpans  int // distinct (trace, span) ids
	LogRecords   int
	Metrics      int // metrics payloads
	Refused      int // export requests answered 503 while refusing
}

// Start starts a recording sink on a free loopback port.
func Start() (*Sink, error) { return start("127.0.0.1:0", true) }

// StartCounting starts a sink on addr ("127.0.0.1:0" for a free port)
// that counts by id and keeps no data: Spans, Logs, Metrics and
// ExportedJSON return nothing.
func StartCounting(addr string) (*Sink, error) { return start(addr, false) }

func start(addr string, keep bool) (*Sink, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Sink{
		ln: ln, keep: keep, changed: make(chan struct{}),
		spanIDs:  map[pcommon.TraceID]map[pcommon.SpanID]int{},
		traceLog: map[pcommon.TraceID]int{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/traces", s.handle(s.storeTraces))
	mux.HandleFunc("/v1/logs", s.handle(s.storeLogs))
	mux.HandleFunc("/v1/metrics", s.handle(func(b []byte) error {
		req := pmetricotlp.NewExportRequest()
		if err := req.UnmarshalProto(b); err != nil {
			return err
		}
		s.counts.Metrics++
		if s.keep {
			s.metrics = append(s.metrics, req.Metrics())
		}
		return nil
	}))
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// storeTraces runs with s.mu held.
func (s *Sink) storeTraces(b []byte) error {
	req := ptraceotlp.NewExportRequest()
	if err := req.UnmarshalProto(b); err != nil {
		return err
	}
	rss := req.Traces().ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				m := s.spanIDs[sp.TraceID()]
				if m == nil {
					m = map[pcommon.SpanID]int{}
					s.spanIDs[sp.TraceID()] = m
				}
				if m[sp.SpanID()] == 0 {
					s.counts.UniqueSpans++
				}
				m[sp.SpanID()]++
				s.counts.SpanReceipts++
			}
		}
	}
	if s.keep {
		s.traces = append(s.traces, req.Traces())
	}
	return nil
}

// storeLogs runs with s.mu held.
func (s *Sink) storeLogs(b []byte) error {
	req := plogotlp.NewExportRequest()
	if err := req.UnmarshalProto(b); err != nil {
		return err
	}
	rls := req.Logs().ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		sls := rls.At(i).ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			recs := sls.At(j).LogRecords()
			s.counts.LogRecords += recs.Len()
			for k := 0; k < recs.Len(); k++ {
				s.traceLog[recs.At(k).TraceID()]++
			}
		}
	}
	if s.keep {
		s.logs = append(s.logs, req.Logs())
	}
	return nil
}

// Counts returns the totals so far.
func (s *Sink) Counts() Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts
}

// SpanReceipts says how many times the span (trace, span) arrived.
func (s *Sink) SpanReceipts(trace pcommon.TraceID, span pcommon.SpanID) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.spanIDs[trace][span]
}

// TraceLogRecords says how many log records of trace arrived.
func (s *Sink) TraceLogRecords(trace pcommon.TraceID) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.traceLog[trace]
}

// Endpoint is the base URL for an otlphttp exporter.
func (s *Sink) Endpoint() string { return "http://" + s.ln.Addr().String() }

// Addr is the listening address.
func (s *Sink) Addr() string { return s.ln.Addr().String() }

// SetRefusing makes the sink answer 503, as a backend that is down would.
func (s *Sink) SetRefusing(refuse bool) {
	s.mu.Lock()
	s.refusing = refuse
	s.mu.Unlock()
}

func (s *Sink) handle(store func([]byte) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			gz, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			defer gz.Close()
			body = gz
		}
		b, err := io.ReadAll(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		if s.refusing {
			s.counts.Refused++
			s.mu.Unlock()
			http.Error(w, "refusing", http.StatusServiceUnavailable)
			return
		}
		err = store(b)
		if err == nil {
			close(s.changed)
			s.changed = make(chan struct{})
		}
		s.mu.Unlock()
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}
}

// Spans returns every span received so far, flattened with its resource.
func (s *Sink) Spans() []Span {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Span
	for _, t := range s.traces {
		for i := 0; i < t.ResourceSpans().Len(); i++ {
			rs := t.ResourceSpans().At(i)
			for j := 0; j < rs.ScopeSpans().Len(); j++ {
				ss := rs.ScopeSpans().At(j)
				for k := 0; k < ss.Spans().Len(); k++ {
					out = append(out, Span{Resource: rs.Resource().Attributes().AsRaw(), Span: ss.Spans().At(k)})
				}
			}
		}
	}
	return out
}

// Logs returns every log record received so far, with its resource.
func (s *Sink) Logs() []LogRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []LogRecord
	for _, l := range s.logs {
		for i := 0; i < l.ResourceLogs().Len(); i++ {
			rl := l.ResourceLogs().At(i)
			for j := 0; j < rl.ScopeLogs().Len(); j++ {
				sl := rl.ScopeLogs().At(j)
				for k := 0; k < sl.LogRecords().Len(); k++ {
					out = append(out, LogRecord{Resource: rl.Resource().Attributes().AsRaw(), Record: sl.LogRecords().At(k)})
				}
			}
		}
	}
	return out
}

// Metrics returns every metrics payload received so far.
func (s *Sink) Metrics() []pmetric.Metrics {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]pmetric.Metrics(nil), s.metrics...)
}

// Changed returns a channel closed at the next accepted export, so tests
// wait for data instead of sleeping.
func (s *Sink) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// WaitFor waits until cond holds or the timeout passes, re-checking at each
// accepted export and at least every 200ms (cond may depend on more than
// the sink); it reports whether cond held.
func (s *Sink) WaitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		ch := s.Changed()
		if cond() {
			return true
		}
		select {
		case <-ch:
		case <-tick.C:
		case <-deadline.C:
			return cond()
		}
	}
}

// Close stops the server.
func (s *Sink) Close() error { return s.srv.Close() }

// Span is a received span with its resource attributes.
type Span struct {
	Resource map[string]any
	Span     ptrace.Span
}

// LogRecord is a received log record with its resource attributes.
type LogRecord struct {
	Resource map[string]any
	Record   plog.LogRecord
}

// ExportedJSON renders everything received as OTLP JSON, for tests that
// search it for strings which must never be exported.
func (s *Sink) ExportedJSON(t testing.TB) string {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	for _, td := range s.traces {
		out, err := (&ptrace.JSONMarshaler{}).MarshalTraces(td)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(out)
	}
	for _, ld := range s.logs {
		out, err := (&plog.JSONMarshaler{}).MarshalLogs(ld)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(out)
	}
	return b.String()
}
