package signature

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testSecret is generated per run: no literal that looks like a credential.
func testSecret(t testing.TB) []byte {
	t.Helper()
	b := make([]byte, 32)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return []byte(hex.EncodeToString(b))
}

func ansibleRequest() Request {
	h := http.Header{}
	h.Set("Content-Type", "application/x-ndjson")
	h.Set("X-Fastdeploy-Deployment", "42")
	h.Set("X-Fastdeploy-Step", "migrate")
	h.Set("X-Fastdeploy-Step-Position", "3")
	h.Set("X-Fastdeploy-Service", "web")
	h.Set("Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	return Request{Method: "POST", Path: "/v1/ansible", RawQuery: "tz=Europe%2FBerlin", Header: h, Body: []byte(`{"event":"x"}` + "\n")}
}

func (r Request) clone() Request {
	r.Header = r.Header.Clone()
	r.Body = bytes.Clone(r.Body)
	return r
}

// TestV2CoversRouting: every part that decides where data goes is signed;
// everything else may change on the way.
func TestV2CoversRouting(t *testing.T) {
	t.Parallel()
	secret := testSecret(t)
	now := time.Unix(1_800_000_000, 0)
	signed := ansibleRequest()
	header := SignRequest(secret, now, signed)
	v := &Verifier{Secret: secret, Tolerance: 5 * time.Minute}

	tests := []struct {
		name   string
		change func(r *Request)
		want   error
	}{
		{name: "unchanged", change: func(*Request) {}},
		// Near misses that must still verify.
		{name: "other User-Agent", change: func(r *Request) { r.Header.Set("User-Agent", "curl") }},
		{name: "other Content-Type", change: func(r *Request) { r.Header.Set("Content-Type", "application/json") }},
		{name: "tracestate added (not routing)", change: func(r *Request) { r.Header.Set("Tracestate", "a=b") }},
		{name: "value with surrounding spaces", change: func(r *Request) { r.Header["X-Fastdeploy-Step"] = []string{" migrate\t"} }},
		{name: "non-canonical header case", change: func(r *Request) {
			r.Header.Del("X-Fastdeploy-Service")
			r.Header["x-fastdeploy-service"] = []string{"web"}
		}},
		{name: "empty routing header added", change: func(r *Request) { r.Header.Set("X-Fastdeploy-Timezone", "") }},
		{name: "method in lower case", change: func(r *Request) { r.Method = "post" }},
		// Everything that routes data must not change.
		{name: "deployment changed", change: func(r *Request) { r.Header.Set("X-Fastdeploy-Deployment", "43") }, want: ErrMismatch},
		{name: "deployment removed", change: func(r *Request) { r.Header.Del("X-Fastdeploy-Deployment") }, want: ErrMismatch},
		{name: "deployment sent twice", change: func(r *Request) { r.Header.Add("X-Fastdeploy-Deployment", "43") }, want: ErrMismatch},
		{name: "step changed", change: func(r *Request) { r.Header.Set("X-Fastdeploy-Step", "Migrate") }, want: ErrMismatch},
		{name: "step position changed", change: func(r *Request) { r.Header.Set("X-Fastdeploy-Step-Position", "4") }, want: ErrMismatch},
		{name: "service changed", change: func(r *Request) { r.Header.Set("X-Fastdeploy-Service", "db") }, want: ErrMismatch},
		{name: "timezone header added", change: func(r *Request) { r.Header.Set("X-Fastdeploy-Timezone", "UTC") }, want: ErrMismatch},
		{name: "unknown X-Fastdeploy header added", change: func(r *Request) { r.Header.Set("X-Fastdeploy-Future", "1") }, want: ErrMismatch},
		{name: "traceparent changed", change: func(r *Request) {
			r.Header.Set("Traceparent", "00-0af7651916cd43dd8448eb211c80319d-b7ad6b7169203331-01")
		}, want: ErrMismatch},
		{name: "traceparent removed", change: func(r *Request) { r.Header.Del("Traceparent") }, want: ErrMismatch},
		{name: "query changed", change: func(r *Request) { r.RawQuery = "tz=UTC" }, want: ErrMismatch},
		{name: "query removed", change: func(r *Request) { r.RawQuery = "" }, want: ErrMismatch},
		{name: "path changed", change: func(r *Request) { r.Path = "/v1/deployments/events" }, want: ErrMismatch},
		{name: "method changed", change: func(r *Request) { r.Method = "PUT" }, want: ErrMismatch},
		{name: "body changed", change: func(r *Request) { r.Body = append(r.Body, ' ') }, want: ErrMismatch},
	}
	var keyUnchanged string
	for _, tt := range tests {
		r := signed.clone()
		tt.change(&r)
		got, err := v.Verify(header, r, now)
		if tt.want != nil {
			require.ErrorIs(t, err, tt.want, tt.name)
			require.NotContains(t, err.Error(), string(secret))
			continue
		}
		require.NoError(t, err, tt.name)
		require.NoError(t, v.Precheck(header, r, now), tt.name)
		assert.Equal(t, SchemeV2, got.Scheme)
		assert.Equal(t, "1800000000", got.Timestamp)
		if keyUnchanged == "" {
			keyUnchanged = got.Key
		}
		// What the MAC covers is the same, so the replay key is too.
		assert.Equal(t, keyUnchanged, got.Key, tt.name)
	}
}

func TestV2HeaderShapes(t *testing.T) {
	t.Parallel()
	secret := testSecret(t)
	other := testSecret(t)
	now := time.Unix(1_800_000_000, 0)
	r := ansibleRequest()
	good := SignRequest(secret, now, r)
	goodMAC := strings.SplitN(good, "v2=", 2)[1]
	otherMAC := strings.SplitN(SignRequest(other, now, r), "v2=", 2)[1]
	v1 := Sign(secret, now, r.Body)
	v := &Verifier{Secret: secret, Tolerance: 5 * time.Minute}

	tests := []struct {
		name   string
		header string
		now    time.Time
		want   error
	}{
		{name: "valid", header: good, now: now},
		{name: "rotation: second v2 matches", header: "t=1800000000,v2=" + otherMAC + ",v2=" + goodMAC, now: now},
		{name: "spaces and order", header: " v2=" + goodMAC + " , t=1800000000", now: now},
		{name: "tolerance edge", header: good, now: now.Add(5 * time.Minute)},
		{name: "stale", header: good, now: now.Add(5*time.Minute + time.Second), want: ErrExpired},
		{name: "future", header: good, now: now.Add(-6 * time.Minute), want: ErrExpired},
		{name: "other secret", header: "t=1800000000,v2=" + otherMAC, now: now, want: ErrMismatch},
		{name: "timestamp changed", header: "t=1800000001,v2=" + goodMAC, now: now, want: ErrMismatch},
		// A correct v1 does not rescue a wrong v2: v2 present means v1 is ignored.
		{name: "wrong v2 beside right v1", header: v1 + ",v2=" + otherMAC, now: now, want: ErrMismatch},
		{name: "v1 only, request has routing", header: v1, now: now, want: ErrV1Routing},
		{name: "short v2", header: "t=1800000000,v2=abcd", now: now, want: ErrMalformed},
		{name: "too many MACs", header: "t=1800000000" + strings.Repeat(",v2="+otherMAC, maxCandidates) + ",v2=" + goodMAC, now: now, want: ErrMalformed},
		{name: "no MAC", header: "t=1800000000", now: now, want: ErrMalformed},
		{name: "missing", header: "", now: now, want: ErrMissing},
	}
	for _, tt := range tests {
		_, err := v.Verify(tt.header, r, tt.now)
		if tt.want == nil {
			require.NoError(t, err, tt.name)
			continue
		}
		require.ErrorIs(t, err, tt.want, tt.name)
	}
}

// TestV1Policy: v1 covers the body only, so it is enough only where
// nothing else routes the data, and configuration can refuse it.
func TestV1Policy(t *testing.T) {
	t.Parallel()
	secret := testSecret(t)
	now := time.Unix(1_800_000_000, 0)
	plain := Request{Method: "POST", Path: "/v1/deployments/events", Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{"type":"deployment.started"}`)}
	withQuery := plain.clone()
	withQuery.RawQuery = "tz=UTC"
	withStep := plain.clone()
	withStep.Header.Set("X-Fastdeploy-Step", "a")
	withTraceparent := plain.clone()
	withTraceparent.Header.Set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	withEmpty := plain.clone()
	withEmpty.Header.Set("X-Fastdeploy-Step", "")
	header := Sign(secret, now, plain.Body)

	tests := []struct {
		name   string
		policy V1Policy
		r      Request
		want   error
	}{
		{name: "no routing", policy: V1WithoutRouting, r: plain},
		{name: "empty routing header is no routing", policy: V1WithoutRouting, r: withEmpty},
		{name: "query", policy: V1WithoutRouting, r: withQuery, want: ErrV1Routing},
		{name: "X-Fastdeploy header", policy: V1WithoutRouting, r: withStep, want: ErrV1Routing},
		{name: "traceparent", policy: V1WithoutRouting, r: withTraceparent, want: ErrV1Routing},
		{name: "refused by configuration", policy: V1Refused, r: plain, want: ErrV1Refused},
	}
	for _, tt := range tests {
		v := &Verifier{Secret: secret, Tolerance: time.Minute, V1: tt.policy}
		got, err := v.Verify(header, tt.r, now)
		perr := v.Precheck(header, tt.r, now)
		if tt.want == nil {
			require.NoError(t, err, tt.name)
			require.NoError(t, perr, tt.name)
			assert.Equal(t, SchemeV1, got.Scheme)
			continue
		}
		require.ErrorIs(t, err, tt.want, tt.name)
		require.ErrorIs(t, perr, tt.want, tt.name, "refused before the body is read")
	}

	// The v1 replay key names the path: the same body on another path is
	// another request.
	v := &Verifier{Secret: secret, Tolerance: time.Minute}
	a, err := v.Verify(header, plain, now)
	require.NoError(t, err)
	other := plain.clone()
	other.Path = "/v1/fastdeploy/events"
	b, err := v.Verify(header, other, now)
	require.NoError(t, err)
	assert.NotEqual(t, a.Key, b.Key)
	padded, err := v.Verify(header+",v1="+strings.Repeat("0", 64), plain, now)
	require.NoError(t, err)
	assert.Equal(t, a.Key, padded.Key)
}

// TestSignHTTPRoundTrip signs with SignHTTP as a client and verifies what a
// real server received, over HTTP/1.1 and HTTP/2: the wire does not change
// what is signed (path escaping, query, header case and order).
func TestSignHTTPRoundTrip(t *testing.T) {
	t.Parallel()
	secret := testSecret(t)
	v := &Verifier{Secret: secret, Tolerance: time.Minute}
	for _, h2 := range []bool{false, true} {
		results := make(chan error, 1)
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			body, _ := io.ReadAll(req.Body)
			_, err := v.Verify(req.Header.Get(Header), RequestOf(req, body), time.Now())
			results <- err
		}))
		srv.EnableHTTP2 = h2
		srv.StartTLS()
		body := []byte(`{"event":"x"}`)
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/ans%69ble/a%2Fb?tz=Europe%2FBerlin&x=1", bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("X-Fastdeploy-Deployment", "42")
		req.Header.Add("X-Fastdeploy-Step", "one")
		req.Header.Add("X-Fastdeploy-Step", "two")
		req.Header.Set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
		SignHTTP(secret, time.Now(), req, body)
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, h2, resp.ProtoMajor == 2)
		require.NoError(t, <-results, "HTTP/2: %v", h2)
		srv.Close()
	}
}

// TestDocsShellSigner runs the fdpost shell function from
// docs/operations.md (bash, openssl, curl) against a server that verifies
// with this package: the documented recipe is the wire format.
func TestDocsShellSigner(t *testing.T) {
	for _, tool := range []string{"bash", "openssl", "curl", "sha256sum"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "operations.md"))
	require.NoError(t, err)
	fn := regexp.MustCompile(`(?s)fdpost\(\) \{.*?\n\}\n`).Find(doc)
	require.NotNil(t, fn, "fdpost() not found in docs/operations.md")

	secret := testSecret(t)
	v := &Verifier{Secret: secret, Tolerance: time.Minute, V1: V1Refused}
	type seen struct {
		err    error
		target string
	}
	results := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		_, err := v.Verify(req.Header.Get(Header), RequestOf(req, body), time.Now())
		results <- seen{err: err, target: req.URL.RequestURI() + " " + req.Header.Get("X-Fastdeploy-Step")}
	}))
	defer srv.Close()

	file := filepath.Join(t.TempDir(), "run.jsonl")
	require.NoError(t, os.WriteFile(file, []byte("{\"_event\":\"v2_playbook_on_start\"}\n{\"a\":1}\n"), 0o600))
	// The function posts to https://127.0.0.1:8088; point it at the test
	// server instead, and drop the CA (plain HTTP here).
	script := strings.ReplaceAll(string(fn), "https://127.0.0.1:8088", srv.URL)
	script = strings.ReplaceAll(script, `--cacert "$FASTDEPLOY_CA" `, "")
	script += `fdpost '/v1/ansible?tz=Europe/Berlin' "$FILE" 'X-Fastdeploy-Step: migrate now' 'X-Fastdeploy-Deployment: 42' 'traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'` + "\n"
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Env = append(os.Environ(), "FASTDEPLOY_SECRET="+string(secret), "FILE="+file)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	got := <-results
	require.NoError(t, got.err, "docs' fdpost signs what the receiver verifies")
	assert.Equal(t, "/v1/ansible?tz=Europe/Berlin migrate now", got.target)
}
