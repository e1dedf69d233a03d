package fastdeployreceiver

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deploytrace"
)

const jwtSecret = "fastdeploy-jwt-secret-for-tests"

// mintToken makes a JWT the way fastdeploy does (HS256).
func mintToken(secret, header, claims string) string {
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(claims))
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(signing))
	return signing + "." + enc.EncodeToString(mac.Sum(nil))
}

func deploymentToken(id string, exp time.Time) string {
	return mintToken(jwtSecret, `{"alg":"HS256","typ":"JWT"}`,
		`{"type":"deployment","deployment":`+id+`,"exp":`+itoa(int(exp.Unix()))+`}`)
}

func TestVerifyDeploymentToken(t *testing.T) {
	t.Parallel()
	valid := deploymentToken("42", testNow.Add(time.Hour))
	tests := []struct {
		name  string
		auth  string
		want  string
		error error
	}{
		{name: "valid", auth: "Bearer " + valid, want: "42"},
		{name: "lower-case scheme", auth: "bearer " + valid, want: "42"},
		{name: "missing", auth: "", error: errTokenMissing},
		{name: "basic", auth: "Basic dXNlcjpwYXNz", error: errTokenMissing},
		{name: "expired", auth: "Bearer " + deploymentToken("42", testNow.Add(-time.Second)), error: errTokenExpired},
		{name: "wrong secret", auth: "Bearer " + mintToken("other", `{"alg":"HS256"}`, `{"type":"deployment","deployment":42,"exp":9999999999}`), error: errTokenSignature},
		{name: "alg none", auth: "Bearer " + mintToken(jwtSecret, `{"alg":"none"}`, `{"type":"deployment","deployment":42,"exp":9999999999}`), error: errTokenAlgorithm},
		{name: "wrong type", auth: "Bearer " + mintToken(jwtSecret, `{"alg":"HS256"}`, `{"type":"user","deployment":42,"exp":9999999999}`), error: errTokenType},
		{name: "no exp", auth: "Bearer " + mintToken(jwtSecret, `{"alg":"HS256"}`, `{"type":"deployment","deployment":42}`), error: errTokenMalformed},
		{name: "tampered claims", auth: "Bearer " + strings.Replace(valid, strings.Split(valid, ".")[1], base64.RawURLEncoding.EncodeToString([]byte(`{"type":"deployment","deployment":43,"exp":9999999999}`)), 1), error: errTokenSignature},
		{name: "two parts", auth: "Bearer a.b", error: errTokenMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tok, err := verifyDeploymentToken([]byte(jwtSecret), tt.auth, testNow)
			if tt.error != nil {
				require.ErrorIs(t, err, tt.error)
				assert.NotContains(t, err.Error(), valid)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, tok.id)
			assert.Equal(t, testNow.Add(time.Hour).Truncate(time.Second), tok.expires.UTC(), "the expiry, to the second")
		})
	}
}

func (tr *testReceiver) do(t *testing.T, method, path, body string, headers ...string) reply {
	t.Helper()
	req, err := http.NewRequest(method, tr.srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := tr.srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	rep := reply{status: resp.StatusCode, header: resp.Header}
	require.NoError(t, decodeJSONBody(resp, &rep.body))
	return rep
}

// TestFastdeployDeployProcess replays what fastdeploy's deploy process
// sends with API_URL pointing at the collector.
func TestFastdeployDeployProcess(t *testing.T) {
	t.Parallel()
	tr := newTestReceiver(t, func(c *Config) { c.FastdeployJWTSecret = jwtSecret })
	auth := "Bearer " + deploymentToken("17", testNow.Add(time.Hour))
	steps := []string{
		`{"id": null, "name": "git pull", "started": "2026-11-27T11:00:00+00:00", "finished": null, "state": "running", "deployment_id": null, "message": ""}`,
		`{"id": null, "name": "git pull", "started": "2026-11-27T11:00:00+00:00", "finished": "2026-11-27T11:00:03+00:00", "state": "success", "deployment_id": null, "message": "ok"}`,
		`{"id": null, "name": "restart", "started": "2026-11-27T11:00:03+00:00", "finished": "2026-11-27T11:00:09+00:00", "state": "failure", "deployment_id": null, "message": "unit failed"}`,
		// fastdeploy matches by name: a repeated name is a new step.
		`{"id": null, "name": "git pull", "started": "2026-11-27T11:00:09+00:00", "finished": "2026-11-27T11:00:10+00:00", "state": "success", "deployment_id": null, "message": ""}`,
	}
	for _, s := range steps {
		rep := tr.do(t, http.MethodPost, pathCompatSteps, s, "Authorization", auth)
		require.Equal(t, http.StatusOK, rep.status, rep.body)
		assert.Equal(t, "step processed", rep.body["detail"])
	}
	rep := tr.do(t, http.MethodPut, pathCompatFinish, "", "Authorization", auth)
	require.Equal(t, http.StatusOK, rep.status, rep.body)
	assert.Equal(t, "Deployment 17 finished", rep.body["detail"])

	spans := allSpans(tr.traces)
	require.Len(t, spans, 4)
	trace := deploytrace.DeploymentTraceID("17")
	positions := map[string][]string{}
	for _, s := range spans[:3] {
		assert.Equal(t, pcommonTrace(trace), s.TraceID())
		positions[s.Name()] = append(positions[s.Name()], spanAttr(s, "fastdeploy.step.position"))
	}
	assert.Equal(t, map[string][]string{"git pull": {"0", "2"}, "restart": {"1"}}, positions)
	dep := spans[3]
	assert.Equal(t, ptrace.StatusCodeError, dep.Status().Code(), "a failed step fails the deployment")
	assert.Equal(t, "deployment failed at step restart", dep.Status().Message())

	// Tokens are checked on every path.
	bad := tr.do(t, http.MethodPost, pathCompatSteps, steps[0], "Authorization", "Bearer "+deploymentToken("17", testNow.Add(-time.Minute)))
	assert.Equal(t, http.StatusUnauthorized, bad.status)
	assert.Equal(t, "Authorization", bad.body["field"])
	bad = tr.do(t, http.MethodPut, pathCompatFinish, "")
	assert.Equal(t, http.StatusUnauthorized, bad.status)
}

func TestFastdeployPathsOffWithoutSecret(t *testing.T) {
	t.Parallel()
	tr := newTestReceiver(t, nil)
	rep := tr.do(t, http.MethodPost, pathCompatSteps, `{"name":"x"}`, "Authorization", "Bearer "+deploymentToken("1", testNow.Add(time.Hour)))
	assert.Equal(t, http.StatusNotFound, rep.status)
	assert.Contains(t, rep.body["error"], "fastdeploy_jwt_secret")
}

func TestFastdeployDomainEvents(t *testing.T) {
	t.Parallel()
	tr := newTestReceiver(t, func(c *Config) { c.FastdeployServices = map[string]string{"3": "shop"} })
	body := strings.Join([]string{
		`{"type": "deployment", "id": 5, "service_id": 3, "origin": "GitHub", "user": "alice", "started": "2026-11-27T11:00:00+00:00", "finished": null, "context": {"env": {"RELEASE": "7"}}}`,
		`{"type": "step", "id": 1, "name": "build", "state": "pending", "deployment_id": 5, "message": "", "started": null, "finished": null, "deleted": false}`,
		`{"type": "step", "id": 1, "name": "build", "state": "running", "deployment_id": 5, "message": "", "started": "2026-11-27T11:00:01+00:00", "finished": null, "deleted": false}`,
		`{"type": "step", "id": 1, "name": "build", "state": "success", "deployment_id": 5, "message": "", "started": "2026-11-27T11:00:01+00:00", "finished": "2026-11-27T11:00:04+00:00", "deleted": false}`,
		`{"type": "step", "id": 2, "name": "notify", "state": "pending", "deployment_id": 5, "message": "", "started": null, "finished": null, "deleted": true}`,
		`{"type": "deployment", "id": 5, "service_id": 3, "origin": "GitHub", "user": "alice", "started": "2026-11-27T11:00:00+00:00", "finished": "2026-11-27T11:00:05+00:00", "context": {}}`,
	}, "\n")
	rep := tr.post(t, pathCompatEvents, "application/x-ndjson", body)
	require.Equal(t, http.StatusOK, rep.status, rep.body)
	byName := map[string]ptrace.Span{}
	for _, s := range allSpans(tr.traces) {
		byName[s.Name()] = s
	}
	require.Contains(t, byName, "deploy shop")
	dep := byName["deploy shop"]
	assert.Equal(t, ptrace.StatusCodeOk, dep.Status().Code())
	assert.Equal(t, "alice", spanAttr(dep, "user.name"))
	assert.Equal(t, "success", spanAttr(byName["build"], "fastdeploy.status"))
	assert.Equal(t, "skipped", spanAttr(byName["notify"], "fastdeploy.status"), "a deleted step never ran")

	rep = tr.post(t, pathCompatEvents, "application/json", `{"type":"step","name":"x","state":"running"}`)
	assert.Equal(t, http.StatusUnprocessableEntity, rep.status)
	assert.Equal(t, "deployment_id", rep.body["field"])
}

// mintTokenParts is the signature part mintToken would give header.claims.
func mintTokenParts(secret, header, claims string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(header + "." + claims))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// TestFastdeployDeploymentMovedMidWay: fastdeploy issued the deployment's
// token as it started the deployment, valid 30 minutes. Collector A took
// the first steps and died; collector B takes the last step and the
// finish. B's root span must start at the deployment's start, not at the
// step it saw first, and A, had it taken everything, builds the same one.
func TestFastdeployDeploymentMovedMidWay(t *testing.T) {
	t.Parallel()
	started := testNow.Add(-10 * time.Minute).Truncate(time.Second)
	token := "Bearer " + deploymentToken("31", started.Add(30*time.Minute))
	step := func(name string, from, to time.Duration) string {
		return `{"name": "` + name + `", "started": "` + started.Add(from).Format(time.RFC3339Nano) + `", "finished": "` +
			started.Add(to).Format(time.RFC3339Nano) + `", "state": "success"}`
	}
	steps := []string{step("build", 2*time.Second, time.Minute), step("migrate", time.Minute, 2*time.Minute), step("restart", 2*time.Minute, 3*time.Minute)}
	root := func(tr *testReceiver) ptrace.Span {
		t.Helper()
		for _, s := range allSpans(tr.traces) {
			if spanAttr(s, "fastdeploy.span.kind") == "deployment" {
				return s
			}
		}
		t.Fatal("no root span")
		return ptrace.Span{}
	}
	run := func(t *testing.T, mutate func(*Config), posted []string, tok string) ptrace.Span {
		tr := newTestReceiver(t, func(c *Config) {
			c.FastdeployJWTSecret = jwtSecret
			if mutate != nil {
				mutate(c)
			}
		})
		for _, s := range posted {
			rep := tr.do(t, http.MethodPost, pathCompatSteps, s, "Authorization", tok)
			require.Equal(t, http.StatusOK, rep.status, rep.body)
		}
		rep := tr.do(t, http.MethodPut, pathCompatFinish, "", "Authorization", tok)
		require.Equal(t, http.StatusOK, rep.status, rep.body)
		return root(tr)
	}

	moved := run(t, nil, steps[2:], token)
	assert.Equal(t, started, moved.StartTimestamp().AsTime(), "B starts the root span at the deployment's start")
	alone := run(t, nil, nil, token)
	assert.Equal(t, started, alone.StartTimestamp().AsTime(), "a finish alone: the token still tells the start")
	whole := run(t, nil, steps, token)
	assert.Equal(t, whole.StartTimestamp(), moved.StartTimestamp(), "the same root span on either collector")
	assert.Equal(t, whole.SpanID(), moved.SpanID())

	// Near misses: what the token's expiry cannot tell.
	later := "Bearer " + deploymentToken("31", started.Add(2*time.Hour))
	notFastdeploys := run(t, nil, steps[2:], later)
	assert.Equal(t, started.Add(2*time.Minute), notFastdeploys.StartTimestamp().AsTime(),
		"a token issued after the steps it covers (another lifetime): the first step heard")
	off := run(t, func(c *Config) { c.Fastdeploy.DeploymentTokenLifetime = 0 }, steps[2:], token)
	assert.Equal(t, started.Add(2*time.Minute), off.StartTimestamp().AsTime(), "lifetime 0 reads nothing from the token")
	other := run(t, func(c *Config) { c.Fastdeploy.DeploymentTokenLifetime = 20 * time.Minute }, steps[2:], token)
	assert.Equal(t, started.Add(2*time.Minute), other.StartTimestamp().AsTime(),
		"a shorter configured lifetime puts the issue after the first step heard: ignored")
}
