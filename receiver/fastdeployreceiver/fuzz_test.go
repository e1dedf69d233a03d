package fastdeployreceiver

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployevent"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/signature"
	"github.com/fastdeploy/otelcol-fastdeploy/receiver/fastdeployreceiver/internal/metadata"
)

// Fuzz targets for every decoder the receiver has, and for the whole
// request path (decode, signature, traceparent, tracker, pdata output).
// Seeds come from the repository's samples and the hostile inputs under
// testdata/fuzz/; `make fuzz-short` runs each for a few seconds, `make
// fuzz` longer. A crash found becomes a file under testdata/fuzz/<target>,
// which plain `go test` then replays as a regression test.

// fuzzSecret is planted in seeds: no refusal may echo it back.
const fuzzSecret = "hunter2-not-real"

func fuzzSeeds(f *testing.F, names ...string) {
	f.Helper()
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join("..", "..", n))
		if err != nil {
			b, err = os.ReadFile(n)
		}
		if err != nil {
			f.Fatalf("seed %s: %v", n, err)
		}
		// Whole files only when small: the fuzz engine minimises every new
		// interesting input, and minimising a large one takes minutes.
		lines := bytes.Split(b, []byte("\n"))
		if len(b) <= 4096 {
			f.Add(b)
		} else if len(lines) > 3 {
			f.Add(bytes.Join(lines[:3], []byte("\n")))
		}
		// Each line alone, and the first line cut short.
		for _, l := range lines {
			if len(bytes.TrimSpace(l)) > 0 {
				f.Add(l)
			}
		}
		if i := bytes.IndexByte(b, '\n'); i > 0 {
			f.Add(b[:i/2])
		}
	}
}

// hostile are small hostile inputs for the fuzz seeds (large seeds make
// the fuzz engine spend its time minimising); TestHostileInput adds the
// large ones.
var hostile = [][]byte{
	[]byte(strings.Repeat("[", 400)),
	[]byte(`{"type":"deployment.started","time":"2026-11-27T11:00:20Z","deployment":{"id":"1","service":"web","context":` + strings.Repeat(`{"a":`, 400) + `1` + strings.Repeat(`}`, 400) + `}}`),
	[]byte("{\"type\":\"deployment.started\",\"time\":\"2026-11-27T11:00:20Z\",\"deployment\":{\"id\":\"\xff\xfe\",\"service\":\"web\"}}"),
	[]byte(`{"type":"deployment.started","time":"2026-11-27T11:00:20Z","deployment":{"id":1e400,"service":"web"}}`),
	[]byte(`{"type":"deployment.started","time":"2026-11-27T11:00:20Z","deployment":{"id":99999999999999999999999,"service":"web"}}`),
	[]byte(`{"type":"deployment.started","time":"9999-12-31T23:59:59Z","deployment":{"id":"1","service":"web","started":"0001-01-01T00:00:00Z"}}`),
	[]byte(`{"type":"deployment.started","type":"step.finished","time":"2026-11-27T11:00:20Z","deployment":{"id":"1","id":"2","service":"web"}}`),
	[]byte(`{"position":99999999999999999999,"start":"2026-11-27T11:00:29.366474","end":"2026-11-27T11:00:29.612522","name":"x","state":"success"}`),
	[]byte(`{"position":1,"start":"0000-01-01T00:00:00","end":"9999-12-31T23:59:59.999999","name":"x","state":"success","misc":{"stdout":"` + fuzzSecret + `"}}`),
	[]byte(`{"_event":"v2_runner_on_ok","hosts":{"h":{"changed":true,"cmd":"echo ` + fuzzSecret + `"}},"task":{"id":"t","name":"x","duration":{"start":"2026-11-27T11:00:29Z","end":"2026-11-27T11:00:28Z"}}}`),
	[]byte(`[{"position":1},` + "\n" + `{"_event":"playbook_on_start"}]`),
	[]byte(`{"context":"` + fuzzSecret + `"` + strings.Repeat(" ", 100) + `,}`),
}

func addHostile(f *testing.F) {
	for _, h := range hostile {
		f.Add(h)
	}
}

// stallLimit is how long one input may take: a decoder that loops on
// some input would stall a request goroutine for good. The fuzz engine
// has no per-input timeout, so the targets keep their own. It catches
// loops, not slowness: the largest hostile input takes about 0.9 s under
// -race on an idle machine and several times that when CI shares its two
// cores, so the limit leaves a wide margin (speed has its benchmarks).
const stallLimit = 15 * time.Second

// bounded runs fn and fails the input if it does not return in time.
func bounded(t *testing.T, what string, input []byte, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	timer := time.NewTimer(stallLimit)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		t.Fatalf("%s stalled for more than %s on %q", what, stallLimit, input)
	}
}

func checkRefusal(t *testing.T, body []byte, rerr *requestError) {
	t.Helper()
	if rerr.status < 400 || rerr.status >= 500 {
		t.Fatalf("a decode refusal is a client error, got %d: %v", rerr.status, rerr)
	}
	if rerr.reason == "" {
		t.Fatalf("refusal %v is not counted under a reason", rerr)
	}
	msg, err := json.Marshal(rerr.body())
	if err != nil {
		t.Fatalf("error body does not encode: %v", err)
	}
	if bytes.Contains(body, []byte(fuzzSecret)) && bytes.Contains(msg, []byte(fuzzSecret)) {
		t.Fatalf("the refusal quotes a value from the body: %s", msg)
	}
}

func FuzzDecodeLifecycle(f *testing.F) {
	fuzzSeeds(f, "testdata/deployment-events.ndjson", "testdata/deployment-failed.ndjson")
	addHostile(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		var events []deployevent.Event
		var rerr *requestError
		bounded(t, "decodeLifecycle", body, func() { events, rerr = testDecodeLifecycle(body) })
		if rerr != nil {
			checkRefusal(t, body, rerr)
			return
		}
		if len(events) == 0 {
			t.Fatal("an accepted request has at least one event")
		}
		if len(events) > bytes.Count(body, []byte("{")) {
			t.Fatalf("%d events from %d objects", len(events), bytes.Count(body, []byte("{")))
		}
		for i := range events {
			if err := events[i].Validate(); err != nil {
				t.Fatalf("accepted event %d does not validate: %v", i, err)
			}
		}
	})
}

func FuzzDecodeAnsible(f *testing.F) {
	fuzzSeeds(f, "testdata/ansible-json_cb.ndjson", "receiver/fastdeployreceiver/testdata/ansible/run.jsonl")
	addHostile(f)
	var d ansibleDecoder
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		loc = time.FixedZone("CET", 3600)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var batch *ansibleBatch
		var rerr *requestError
		bounded(t, "the Ansible decoder", body, func() { batch, rerr = testDecodeAnsible(&d, body, loc) })
		if rerr != nil {
			checkRefusal(t, body, rerr)
			return
		}
		switch batch.format {
		case formatJSONCB:
			if len(batch.events) > 0 {
				t.Fatal("a json_cb request yielded jsonl events")
			}
			for _, task := range batch.tasks {
				if task.Position < 0 {
					t.Fatalf("negative position %d accepted", task.Position)
				}
				if task.End.Before(task.Start) {
					t.Fatalf("task %q ends before it starts", task.Name)
				}
				switch task.State {
				case "success", "failure", "skipped", "unreachable":
				default:
					t.Fatalf("state %q is not one of the normalised states", task.State)
				}
			}
		case formatJSONL:
			if len(batch.tasks) > 0 {
				t.Fatal("a jsonl request yielded json_cb tasks")
			}
		default:
			t.Fatalf("accepted request of unknown format %q", batch.format)
		}
	})
}

// fuzzReceiver is one receiver shared by a fuzz run's inputs, so that
// state accumulated across requests (in-flight deployments, delivery ids)
// is fuzzed as well.
type fuzzReceiver struct {
	r      *fastdeployReceiver
	h      http.Handler
	traces *consumertest.TracesSink
	logs   *consumertest.LogsSink
	mu     sync.Mutex
	calls  int
}

var fuzzNow = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func newFuzzReceiver(f testing.TB, secret string) *fuzzReceiver {
	cfg := createDefaultConfig()
	cfg.Secret = configopaque.String(secret)
	r, err := newReceiver(receivertest.NewNopSettings(metadata.Type), cfg, nil)
	if err != nil {
		f.Fatal(err)
	}
	r.now = func() time.Time { return fuzzNow }
	fr := &fuzzReceiver{r: r, h: r.handler(), traces: new(consumertest.TracesSink), logs: new(consumertest.LogsSink)}
	r.setTraces(fr.traces)
	r.setLogs(fr.logs)
	f.Cleanup(func() { _ = r.Shutdown(f.Context()) })
	return fr
}

// serve posts one request and checks what every answer must be: JSON, and
// never a server error (the sinks accept everything, so 503 cannot come).
func (fr *fuzzReceiver) serve(t *testing.T, req *http.Request) *httptest.ResponseRecorder {
	t.Helper()
	fr.mu.Lock()
	fr.calls++
	if fr.calls%1000 == 0 { // bound the sinks' memory over long runs
		fr.traces.Reset()
		fr.logs.Reset()
	}
	fr.mu.Unlock()
	rec := httptest.NewRecorder()
	bounded(t, "the request", nil, func() { fr.h.ServeHTTP(rec, req) })
	if rec.Code >= 500 {
		t.Fatalf("server error %d: %s", rec.Code, rec.Body)
	}
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("answer %d is not JSON: %q", rec.Code, rec.Body)
	}
	if rec.Code != http.StatusOK && body["error"] == nil {
		t.Fatalf("refusal %d without an error message: %s", rec.Code, rec.Body)
	}
	if bytes.Contains(rec.Body.Bytes(), []byte(fuzzSecret)) {
		t.Fatalf("the answer quotes a secret from the request: %s", rec.Body)
	}
	return rec
}

// FuzzRequest posts fuzzed bodies, headers (deployment, step, position,
// time zone, traceparent) and content types to both ingest paths.
func FuzzRequest(f *testing.F) {
	b, _ := os.ReadFile(filepath.Join("..", "..", "testdata", "ansible-json_cb.ndjson"))
	ev, _ := os.ReadFile(filepath.Join("..", "..", "testdata", "deployment-events.ndjson"))
	f.Add(false, ev, "application/x-ndjson", "", "", "", "", "")
	f.Add(true, b, "application/x-ndjson", "42", "migrate", "1", "UTC", "")
	f.Add(true, b, "application/json", "", "", "", "Europe/Berlin", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	f.Add(true, b, "application/x-ndjson", "42", "", "-1", "../../etc/passwd", "00-00000000000000000000000000000000-0000000000000000-00")
	f.Add(true, []byte(`{"_event":"playbook_on_start"}`), "application/jsonl; charset=utf-8", "7", "deploy", "", "", "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	for _, h := range hostile {
		f.Add(false, h, "application/json", "", "", "", "", "")
		f.Add(true, h, "application/json", "1", "s", "0", "", "")
	}
	fr := newFuzzReceiver(f, "")
	f.Fuzz(func(t *testing.T, ansible bool, body []byte, contentType, deployment, step, position, tz, traceparent string) {
		path := pathEvents
		if ansible {
			path = pathAnsible
		}
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		setHeader(req, "Content-Type", contentType)
		setHeader(req, headerDeployment, deployment)
		setHeader(req, headerStep, step)
		setHeader(req, headerStepPosition, position)
		setHeader(req, headerTimezone, tz)
		setHeader(req, headerTraceparent, traceparent)
		fr.serve(t, req)
	})
}

// setHeader sets what net/http would let a client send.
func setHeader(req *http.Request, k, v string) {
	if v != "" && !strings.ContainsAny(v, "\r\n\x00") {
		req.Header.Set(k, v)
	}
}

// TestHostileInput posts the hostile inputs of issue 8 whole, large ones
// included: each is answered within stallLimit with a 4xx naming what is
// wrong, or taken when it is legitimate.
func TestHostileInput(t *testing.T) {
	event := func(deployment string) string {
		return `{"type":"deployment.started","time":"2026-11-27T11:00:20Z","deployment":` + deployment + `}`
	}
	tests := []struct {
		name string
		path string
		body string
	}{
		{name: "deeply nested context", path: pathEvents, body: event(`{"id":"1","service":"web","context":` + strings.Repeat(`{"a":`, 20000) + `1` + strings.Repeat(`}`, 20000) + `}`)},
		{name: "deeply nested array", path: pathEvents, body: strings.Repeat("[", 100000)},
		{name: "deeply nested Ansible result", path: pathAnsible, body: `{"position":1,"start":"2026-11-27T11:00:29","end":"2026-11-27T11:00:30","name":"x","state":"success","misc":` + strings.Repeat(`{"a":`, 20000) + `1` + strings.Repeat(`}`, 20000) + `}`},
		{name: "number out of range", path: pathEvents, body: event(`{"id":1e400,"service":"web"}`)},
		{name: "integer id beyond 64 bits", path: pathEvents, body: event(`{"id":99999999999999999999999,"service":"web"}`)},
		{name: "task position beyond 64 bits", path: pathAnsible, body: `{"position":99999999999999999999,"start":"2026-11-27T11:00:29","end":"2026-11-27T11:00:30","name":"x","state":"success"}`},
		{name: "unterminated string on a very long line", path: pathEvents, body: event(`{"id":"1","service":"` + strings.Repeat("a", 4<<20))},
		{name: "invalid UTF-8", path: pathEvents, body: event("{\"id\":\"\xff\xfe\",\"service\":\"web\"}")},
		{name: "time far in the future", path: pathEvents, body: `{"type":"deployment.started","time":"9999-12-31T23:59:59Z","deployment":{"id":"1","service":"web"}}`},
		{name: "time far in the past", path: pathEvents, body: `{"type":"deployment.started","time":"0001-01-01T00:00:00Z","deployment":{"id":"2","service":"web"}}`},
		{name: "Ansible task far in the future", path: pathAnsible, body: `{"position":1,"start":"9999-12-31T23:59:58","end":"9999-12-31T23:59:59","name":"x","state":"success"}`},
		{name: "only separators", path: pathEvents, body: ",\n,"},
		{name: "duplicated key", path: pathEvents, body: event(`{"id":"1","id":"2","service":"web"}`)},
	}
	fr := newFuzzReceiver(t, "")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, tt.path, strings.NewReader(tt.body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set(headerDeployment, "hostile")
			rec := fr.serve(t, req)
			if rec.Code < 400 || rec.Code >= 500 {
				t.Fatalf("got %d, want a 4xx: %s", rec.Code, rec.Body)
			}
		})
	}
}

// FuzzSignedRequest checks the signature gate on the whole request path:
// with a secret set, a request is taken only when its header verifies.
func FuzzSignedRequest(f *testing.F) {
	const secret = "s3cret-for-fuzzing"
	ev, _ := os.ReadFile(filepath.Join("..", "..", "testdata", "deployment-failed.ndjson"))
	good := signature.Sign([]byte(secret), fuzzNow, ev)
	f.Add(ev, good)
	f.Add(ev, "t=1,v1="+strings.Repeat("0", 64))
	f.Add(ev, good+",v1=00")
	f.Add(ev, strings.Replace(good, "t=", "t=-", 1))
	f.Add(ev, "t=99999999999999999999,v1=ab")
	f.Add([]byte("{}"), "")
	fr := newFuzzReceiver(f, secret)
	f.Fuzz(func(t *testing.T, body []byte, header string) {
		req := httptest.NewRequest(http.MethodPost, pathEvents, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-ndjson")
		setHeader(req, signature.Header, header)
		_, verr := signature.Verify([]byte(secret), req.Header.Get(signature.Header), body, fuzzNow, defaultSignatureTolerance)
		valid := verr == nil
		rec := fr.serve(t, req)
		if !valid && rec.Code != http.StatusUnauthorized {
			t.Fatalf("an unverified request got %d, want 401", rec.Code)
		}
		if valid && rec.Code == http.StatusUnauthorized {
			t.Fatalf("a verified request got 401: %s", rec.Body)
		}
		if strings.Contains(rec.Body.String(), secret) {
			t.Fatal("the answer quotes the secret")
		}
	})
}
