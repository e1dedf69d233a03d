package fastdeployreceiver

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fastjson"
)

const (
	evStarted  = `{"type":"deployment.started","id":"d1","time":"2026-11-27T11:00:00Z","deployment":{"id":"7","service":"api"}}`
	evFinished = `{"type":"deployment.finished","id":"d2","time":"2026-11-27T11:05:00Z","deployment":{"id":"7","service":"api","status":"success"}}`
)

func TestDecodeLifecycleShapes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		want int
	}{
		{name: "one object", body: evStarted, want: 1},
		{name: "array", body: "[" + evStarted + "," + evFinished + "]", want: 2},
		{name: "array with whitespace", body: " [\n " + evStarted + " ,\n " + evFinished + "\n ] \n", want: 2},
		{name: "ndjson", body: evStarted + "\n" + evFinished + "\n", want: 2},
		{name: "ndjson with crlf and blank lines", body: evStarted + "\r\n\r\n" + evFinished, want: 2},
		{name: "integer deployment id", body: `{"type":"deployment.started","time":"2026-11-27T11:00:00Z","deployment":{"id":42,"service":"api"}}`, want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			events, rerr := testDecodeLifecycle([]byte(tt.body))
			require.Nil(t, rerr)
			assert.Len(t, events, tt.want)
		})
	}
	events, rerr := testDecodeLifecycle([]byte(`{"type":"deployment.started","time":"2026-11-27T11:00:00+01:00","deployment":{"id":42,"service":"api","context":{"replicas":3}}}`))
	require.Nil(t, rerr)
	assert.Equal(t, "42", string(events[0].Deployment.ID))
	assert.True(t, events[0].Time.Equal(time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)), "zone honoured")
	assert.Equal(t, "3", events[0].Deployment.Context["replicas"].(interface{ String() string }).String(), "integers stay exact")
}

func TestDecodeLifecycleErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		body   string
		status int
		field  string
		line   int
		index  int
	}{
		{name: "empty", body: "  \n", status: http.StatusBadRequest, index: -1},
		{name: "empty array", body: "[ ]", status: http.StatusBadRequest, line: 1, index: -1},
		{name: "only a comma", body: ",", status: http.StatusBadRequest, line: 1, index: 0},
		{name: "syntax error on line 2", body: evStarted + "\n{\"type\": deployment}\n", status: http.StatusBadRequest, line: 2, index: 1},
		{name: "truncated second item", body: evStarted + "\n{\"type\": \n", status: http.StatusBadRequest, line: 2, index: 1},
		{name: "not an object", body: "[1]", status: http.StatusBadRequest, line: 1, index: 0},
		{name: "data after array", body: "[" + evStarted + "] {}", status: http.StatusBadRequest, line: 1, index: -1},
		{name: "wrong type names the field", body: `{"type":"deployment.started","time":"2026-11-27T11:00:00Z","deployment":{"id":"7","service":["api"]}}`, status: http.StatusBadRequest, field: "deployment.service", line: 1},
		{name: "float id", body: `{"type":"deployment.started","time":"2026-11-27T11:00:00Z","deployment":{"id":1.5,"service":"api"}}`, status: http.StatusBadRequest, field: "deployment.id", line: 1},
		{name: "bad nested time", body: `{"type":"step.started","time":"2026-11-27T11:00:00Z","deployment":{"id":"7","service":"api"},"step":{"name":"a","started":"11:00"}}`, status: http.StatusBadRequest, field: "step.started", line: 1},
		{name: "time without zone", body: `{"type":"deployment.started","time":"2026-11-27T11:00:00","deployment":{"id":"7","service":"api"}}`, status: http.StatusBadRequest, field: "time", line: 1},
		{name: "missing type", body: `{"time":"2026-11-27T11:00:00Z","deployment":{"id":"7","service":"api"}}`, status: http.StatusUnprocessableEntity, field: "type", line: 1},
		{name: "missing time", body: `{"type":"deployment.started","deployment":{"id":"7","service":"api"}}`, status: http.StatusUnprocessableEntity, field: "time", line: 1},
		{name: "missing deployment id", body: `{"type":"deployment.started","time":"2026-11-27T11:00:00Z","deployment":{"service":"api"}}`, status: http.StatusUnprocessableEntity, field: "deployment.id", line: 1},
		{name: "missing status on finished", body: `{"type":"deployment.finished","time":"2026-11-27T11:00:00Z","deployment":{"id":"7","service":"api"}}`, status: http.StatusUnprocessableEntity, field: "deployment.status", line: 1},
		{name: "missing step", body: `{"type":"step.started","time":"2026-11-27T11:00:00Z","deployment":{"id":"7","service":"api"}}`, status: http.StatusUnprocessableEntity, field: "step", line: 1},
		{name: "unknown step state", body: `{"type":"step.finished","time":"2026-11-27T11:00:00Z","deployment":{"id":"7","service":"api"},"step":{"name":"a","state":"done"}}`, status: http.StatusUnprocessableEntity, field: "step.state", line: 1},
		{name: "negative position", body: `{"type":"step.started","time":"2026-11-27T11:00:00Z","deployment":{"id":"7","service":"api"},"step":{"name":"a","position":-1}}`, status: http.StatusUnprocessableEntity, field: "step.position", line: 1},
		{name: "bad traceparent", body: `{"type":"deployment.started","time":"2026-11-27T11:00:00Z","deployment":{"id":"7","service":"api"},"traceparent":"00-xyz"}`, status: http.StatusUnprocessableEntity, field: "traceparent", line: 1},
		{name: "third line invalid", body: evStarted + "\n" + evFinished + "\n" + `{"type":"deployment.started","time":"2026-11-27T11:00:00Z","deployment":{"id":"8"}}`, status: http.StatusUnprocessableEntity, field: "deployment.service", line: 3, index: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			events, rerr := testDecodeLifecycle([]byte(tt.body))
			require.NotNil(t, rerr, "decoded %d events", len(events))
			assert.Nil(t, events, "a bad item refuses the whole request")
			assert.Equal(t, tt.status, rerr.status, rerr.Error())
			assert.Equal(t, tt.field, rerr.field, rerr.Error())
			assert.Equal(t, tt.line, rerr.line, rerr.Error())
			if tt.index != 0 {
				assert.Equal(t, tt.index, rerr.index, rerr.Error())
			}
		})
	}
}

func TestDecodeErrorsDoNotEchoValues(t *testing.T) {
	t.Parallel()
	const secret = "ghp_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	bodies := []string{
		`{"type":"` + secret + `","time":"2026-11-27T11:00:00Z","deployment":{"id":"7","service":"api"}}`,
		`{"type":"deployment.finished","time":"2026-11-27T11:00:00Z","deployment":{"id":"7","service":"api","status":"` + secret + `"}}`,
		`{"type":"deployment.started","time":"` + secret + `","deployment":{"id":"7","service":"api"}}`,
		`{"type":"deployment.started","time":"2026-11-27T11:00:00Z","deployment":{"id":"7","service":"api"},"traceparent":"` + secret + `"}`,
	}
	for _, b := range bodies {
		_, rerr := testDecodeLifecycle([]byte(b))
		require.NotNil(t, rerr)
		assert.NotContains(t, rerr.Error(), secret)
	}
}

func TestDecodeJSONCB(t *testing.T) {
	t.Parallel()
	line := `{"position":3,"start":"2026-02-03T10:14:04.530911","end":"2026-02-03T10:14:05.1","name":"restart","state":"failure","error_message":{"msg":"boom"},"misc":{"changed":true,"rc":9007199254740993,"results":[{"item":"a"}]}}`
	berlin, err := time.LoadLocation("Europe/Berlin")
	require.NoError(t, err)
	tasks, rerr := testDecodeJSONCB([]byte(line), berlin)
	require.Nil(t, rerr)
	require.Len(t, tasks, 1)
	task := tasks[0]
	assert.Equal(t, 3, task.Position)
	assert.Equal(t, "failure", task.State)
	assert.True(t, task.Start.Equal(time.Date(2026, 2, 3, 9, 14, 4, 530911000, time.UTC)), "zone-less time read in the given zone: %s", task.Start)
	assert.Equal(t, `{"msg":"boom"}`, task.ErrorMessage)
	require.NotNil(t, task.Changed)
	assert.True(t, *task.Changed)
	rc, ok := task.Result.Get("rc")
	require.True(t, ok)
	assert.Equal(t, int64(9007199254740993), rc.Int(), "64-bit integers survive")

	errs := []struct {
		body, field string
		status      int
	}{
		{`{"start":"2026-02-03T10:14:04","end":"2026-02-03T10:14:04","name":"x","state":"success"}`, "position", http.StatusUnprocessableEntity},
		{`{"position":1,"start":"2026-02-03T10:14:04","end":"2026-02-03T10:14:04","name":"x","state":"done"}`, "state", http.StatusUnprocessableEntity},
		{`{"position":1,"start":"yesterday","end":"2026-02-03T10:14:04","name":"x","state":"success"}`, "start", http.StatusBadRequest},
		{`{"position":1,"start":"2026-02-03T10:14:05","end":"2026-02-03T10:14:04","name":"x","state":"success"}`, "end", http.StatusUnprocessableEntity},
		{`{"position":"1","start":"2026-02-03T10:14:04","end":"2026-02-03T10:14:04","name":"x","state":"success"}`, "position", http.StatusBadRequest},
		{`{"position":1,"start":"2026-02-03T10:14:04","end":"2026-02-03T10:14:04","name":"x","state":"success","misc":[1]}`, "misc", http.StatusBadRequest},
	}
	for _, e := range errs {
		_, rerr := testDecodeJSONCB([]byte(e.body), time.UTC)
		require.NotNil(t, rerr, e.body)
		assert.Equal(t, e.field, rerr.field, e.body)
		assert.Equal(t, e.status, rerr.status, e.body)
	}
	_, rerr = testDecodeJSONCB([]byte(strings.Repeat(line+"\n", 3)+"{"), time.UTC)
	require.NotNil(t, rerr)
	assert.Equal(t, 4, rerr.line)
}

func TestDecodeImprovedJSONCB(t *testing.T) {
	t.Parallel()
	body := `{"position":2,"start":"2026-02-03T10:14:04.5+01:00","end":"2026-02-03T10:14:05+01:00","name":"install","state":"ok","host":"web1","play":"configure web","handler":false,"item":"nginx","item_index":0,"misc":{"item":"nginx"}}
{"position":3,"start":"2026-02-03T10:14:06+01:00","end":"2026-02-03T10:14:06.2+01:00","name":"reload app","state":"unreachable","host":"db1","play":"configure web","handler":true,"error_message":"ssh: connect refused","ignore_errors":true}`
	tasks, rerr := testDecodeJSONCB([]byte(body), time.UTC)
	require.Nil(t, rerr)
	require.Len(t, tasks, 2)
	assert.Equal(t, "web1", tasks[0].Host)
	assert.Equal(t, "configure web", tasks[0].Play)
	assert.Equal(t, 0, tasks[0].ItemIndex)
	assert.Equal(t, "nginx", tasks[0].Item)
	assert.True(t, tasks[0].Start.Equal(time.Date(2026, 2, 3, 9, 14, 4, 500e6, time.UTC)), "zone-aware times keep their zone")
	assert.True(t, tasks[1].Handler)
	assert.True(t, tasks[1].IgnoreErrors)
	assert.Equal(t, -1, tasks[1].ItemIndex)
	assert.Equal(t, "unreachable", tasks[1].State)
}

// TestJSONItemsFastPathAgrees checks the one-object-per-line fast path
// against the encoding/json walk on bodies of every shape, near misses of
// the fast path's shape included: same items, lines and errors.
func TestJSONItemsFastPathAgrees(t *testing.T) {
	type item struct {
		raw         string
		line, index int
	}
	walk := func(f func([]byte, *fastjson.Parser, func([]byte, int, int) *requestError) *requestError, body string) ([]item, *requestError) {
		var p fastjson.Parser
		var got []item
		rerr := f([]byte(body), &p, func(raw []byte, line, index int) *requestError {
			got = append(got, item{string(bytes.TrimSpace(raw)), line, index})
			if bytes.Contains(raw, []byte(`"refuse"`)) {
				return malformed(line, index, "refuse", "refused by the decoder")
			}
			return nil
		})
		return got, rerr
	}
	for _, body := range []string{
		`{"a":1}`,
		"{\"a\":1}\n{\"b\":2}\n",
		"\n\n{\"a\":1}\r\n\r\n{\"b\":[1,{\"c\":2}]}\n\n",
		"  {\"a\":1}  \n\t{\"b\":2}",
		"{\"a\":1}\n{\"refuse\":1}\n{\"c\":3}",
		"{\"refuse\":1}\n{\"a\":1,\"a\":2}",    // decoder error before a repeated key
		"{\"a\":1}\n{\"x\":{\"b\":1,\"b\":2}}", // repeated key in a nested object
		"{\"a\":1} {\"b\":2}",                  // two on one line
		"{\n  \"a\": 1\n}\n{\"b\":2}",          // pretty-printed
		"{\"a\":1}\n[{\"b\":2}]",               // not an object
		"{\"a\":1}\n42",                        // not an object
		"{\"a\":1}\n{\"b\":",                   // incomplete
		"{\"a\":1}\n{\"b\":2}}",                // trailing garbage
		"{\"a\":1}\u00a0\n{\"b\":2}",           // no-break space is no JSON white space
		"{\"a\":1}\v\n",                        // vertical tab neither
		"[{\"a\":1},{\"b\":2}]",                // arrays take the slow path
		"\n \n",                                // nothing
		"{\"a\":\"\\x\"}",                      // an escape encoding/json refuses
		"{\"a\":1e999}",                        // a number out of range
		"{\"a\":01}",                           // a leading zero
		"{\"a\":\"tab\there\"}",                // a control character in a string
		"{\"a\":1}\n{\"b\":\"\\x\"}",           // an escape encoding/json refuses, on a later line
	} {
		wantItems, wantErr := walk(jsonItemsSlow, body)
		gotItems, gotErr := walk(jsonItems, body)
		assert.Equal(t, wantErr, gotErr, "%q", body)
		if wantErr == nil {
			assert.Equal(t, wantItems, gotItems, "%q", body)
		}
	}
}
