package loadgen

import (
	"compress/gzip"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deploytrace"
)

// Sink is an OTLP/HTTP backend that counts what arrives, by trace and
// span id, without keeping the data: it stands for a tracing backend in
// load runs that last long enough for a recording sink to grow too big.
type Sink struct {
	srv      *http.Server
	ln       net.Listener
	trackIDs bool

	mu       sync.Mutex
	refusing bool
	spans    map[deploytrace.TraceID]map[deploytrace.SpanID]int
	logs     map[deploytrace.TraceID]int
	received SinkCounts
	changed  chan struct{}
}

// SinkCounts are totals of what a Sink received.
type SinkCounts struct {
	SpanReceipts int // spans received, repeats included
	UniqueSpans  int // distinct (trace, span) ids; 0 when ids are not tracked
	LogRecords   int
	Metrics      int // metrics payloads
	Refused      int // export requests answered 503 while refusing
}

// StartSink listens on addr ("127.0.0.1:0" for a free port). With
// trackIDs it remembers every span id, so tests can check each
// acknowledged span by id and count repeats.
func StartSink(addr string, trackIDs bool) (*Sink, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Sink{
		ln:       ln,
		trackIDs: trackIDs,
		spans:    map[deploytrace.TraceID]map[deploytrace.SpanID]int{},
		logs:     map[deploytrace.TraceID]int{},
		changed:  make(chan struct{}),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/traces", s.handle(s.storeTraces))
	mux.HandleFunc("/v1/logs", s.handle(s.storeLogs))
	mux.HandleFunc("/v1/metrics", s.handle(func(b []byte) error {
		req := pmetricotlp.NewExportRequest()
		if err := req.UnmarshalProto(b); err != nil {
			return err
		}
		s.received.Metrics++
		return nil
	}))
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// Endpoint is the base URL for an otlphttp exporter.
func (s *Sink) Endpoint() string { return "http://" + s.ln.Addr().String() }

// Addr is the listening address.
func (s *Sink) Addr() string { return s.ln.Addr().String() }

// SetRefusing makes the sink answer 503 to every export, as a backend
// that is down would.
func (s *Sink) SetRefusing(refuse bool) {
	s.mu.Lock()
	s.refusing = refuse
	s.mu.Unlock()
}

// Close stops the server.
func (s *Sink) Close() error { return s.srv.Close() }

func (s *Sink) handle(store func([]byte) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			gz, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, "bad gzip", http.StatusBadRequest)
				return
			}
			defer gz.Close()
			body = gz
		}
		b, err := io.ReadAll(body)
		if err != nil {
			http.Error(w, "cannot read body", http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		if s.refusing {
			s.received.Refused++
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
			http.Error(w, "cannot decode", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}
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
				s.received.SpanReceipts++
				if !s.trackIDs {
					continue
				}
				sp := spans.At(k)
				t := deploytrace.TraceID(sp.TraceID())
				m := s.spans[t]
				if m == nil {
					m = map[deploytrace.SpanID]int{}
					s.spans[t] = m
				}
				if m[deploytrace.SpanID(sp.SpanID())] == 0 {
					s.received.UniqueSpans++
				}
				m[deploytrace.SpanID(sp.SpanID())]++
			}
		}
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
			s.received.LogRecords += recs.Len()
			if !s.trackIDs {
				continue
			}
			for k := 0; k < recs.Len(); k++ {
				s.logs[deploytrace.TraceID(recs.At(k).TraceID())]++
			}
		}
	}
	return nil
}

// Counts returns the totals so far.
func (s *Sink) Counts() SinkCounts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.received
}

// Missing compares what was acknowledged with what arrived: the spans
// acknowledged but never exported, and how many acknowledged spans
// arrived more than once.
func (s *Sink) Missing(acked map[deploytrace.TraceID]*Acked) (missing []string, repeated int, err error) {
	if !s.trackIDs {
		return nil, 0, errors.New("the sink does not track ids")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for trace, a := range acked {
		got := s.spans[trace]
		for _, id := range a.Spans {
			switch n := got[id]; {
			case n == 0:
				missing = append(missing, a.ID+"/"+id.String())
			case n > 1:
				repeated++
			}
		}
	}
	return missing, repeated, nil
}

// MissingLogs returns the deployments for which fewer log records arrived
// than events were acknowledged.
func (s *Sink) MissingLogs(acked map[deploytrace.TraceID]*Acked) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for trace, a := range acked {
		if s.logs[trace] < a.Events {
			out = append(out, a.ID)
		}
	}
	return out
}

// WaitFor waits until cond holds or timeout passes, re-checking at each
// accepted export and at least every 200ms; it reports whether cond held.
func (s *Sink) WaitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
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
