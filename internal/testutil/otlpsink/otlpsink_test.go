package otlpsink

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	trace = pcommon.TraceID{1}
	other = pcommon.TraceID{2}
)

func traces(t *testing.T, ids ...pcommon.SpanID) []byte {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "shop")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	for _, id := range ids {
		sp := spans.AppendEmpty()
		sp.SetTraceID(trace)
		sp.SetSpanID(id)
		sp.SetName("deploy")
	}
	b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	require.NoError(t, err)
	return b
}

func logs(t *testing.T, n int) []byte {
	ld := plog.NewLogs()
	recs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	for range n {
		r := recs.AppendEmpty()
		r.SetTraceID(trace)
		r.Body().SetStr("step finished")
	}
	b, err := plogotlp.NewExportRequestFromLogs(ld).MarshalProto()
	require.NoError(t, err)
	return b
}

func post(t *testing.T, s *Sink, path string, body []byte, gz bool) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.Endpoint()+path, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-protobuf")
	if gz {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		_, _ = w.Write(body)
		require.NoError(t, w.Close())
		req, err = http.NewRequest(http.MethodPost, s.Endpoint()+path, &buf)
		require.NoError(t, err)
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// TestSinkModes sends the same exports to a recording and a counting
// sink: both count by id and refuse alike; only the recording one keeps
// the data.
func TestSinkModes(t *testing.T) {
	for _, keep := range []bool{true, false} {
		s, err := start("127.0.0.1:0", keep)
		require.NoError(t, err)
		changed := s.Changed()

		s.SetRefusing(true)
		assert.Equal(t, http.StatusServiceUnavailable, post(t, s, "/v1/traces", traces(t, pcommon.SpanID{1}), false))
		s.SetRefusing(false)
		select {
		case <-changed:
			t.Fatal("a refused export changes nothing")
		default:
		}
		assert.Equal(t, http.StatusOK, post(t, s, "/v1/traces", traces(t, pcommon.SpanID{1}, pcommon.SpanID{2}), false))
		<-changed
		assert.Equal(t, http.StatusOK, post(t, s, "/v1/traces", traces(t, pcommon.SpanID{2}), true), "gzip is read")
		assert.Equal(t, http.StatusOK, post(t, s, "/v1/logs", logs(t, 3), false))
		assert.Equal(t, http.StatusBadRequest, post(t, s, "/v1/logs", []byte("not protobuf \xff\xff"), false))
		assert.Equal(t, http.StatusBadRequest, post(t, s, "/v1/traces", []byte("not gzip"), true))

		assert.Equal(t, Counts{SpanReceipts: 3, UniqueSpans: 2, LogRecords: 3, Refused: 1}, s.Counts(), "keep=%v", keep)
		assert.Equal(t, 1, s.SpanReceipts(trace, pcommon.SpanID{1}))
		assert.Equal(t, 2, s.SpanReceipts(trace, pcommon.SpanID{2}))
		assert.Zero(t, s.SpanReceipts(other, pcommon.SpanID{1}))
		assert.Equal(t, 3, s.TraceLogRecords(trace))
		assert.Zero(t, s.TraceLogRecords(other))
		assert.True(t, s.WaitFor(0, func() bool { return s.Counts().SpanReceipts == 3 }))
		if keep {
			spans := s.Spans()
			require.Len(t, spans, 3)
			assert.Equal(t, "shop", spans[0].Resource["service.name"])
			assert.Len(t, s.Logs(), 3)
			assert.Contains(t, s.ExportedJSON(t), "step finished")
		} else {
			assert.Empty(t, s.Spans())
			assert.Empty(t, s.Logs())
			assert.Empty(t, s.ExportedJSON(t))
		}
		require.NoError(t, s.Close())
	}
}
