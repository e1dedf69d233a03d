package fastdeployreceiver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deploytrace"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/testutil/fakefastdeploy"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/upstreamproxy"
	"github.com/fastdeploy/otelcol-fastdeploy/receiver/fastdeployreceiver/internal/metadata"
)

// compatRig is a receiver in front of a fake fastdeploy, on the real clock:
// the fake's tokens and times are live.
type compatRig struct {
	fd     *fakefastdeploy.Server
	r      *fastdeployReceiver
	traces *consumertest.TracesSink
	url    string
}

func newCompatRig(t *testing.T, stream bool, mutate func(*Config)) *compatRig {
	t.Helper()
	pw := make([]byte, 8)
	_, _ = rand.Read(pw)
	password := "generated-" + hex.EncodeToString(pw)
	fd := fakefastdeploy.New(fakefastdeploy.Options{Users: map[string]string{"reader": password}})
	require.NoError(t, fd.Start())
	t.Cleanup(fd.Close)
	cfg := createDefaultConfig()
	if stream {
		api := cfg.Fastdeploy.API.GetOrInsertDefault()
		api.Endpoint, api.Username = fd.URL(), "reader"
		api.Password = configopaque.String(password)
	}
	if mutate != nil {
		mutate(cfg)
	}
	r, err := newReceiver(receivertest.NewNopSettings(metadata.Type), cfg, nil)
	require.NoError(t, err)
	rig := &compatRig{fd: fd, r: r, traces: new(consumertest.TracesSink)}
	r.setTraces(rig.traces)
	r.setLogs(new(consumertest.LogsSink))
	r.upstream, err = upstreamproxy.New(fd.URL(), nil, 2*time.Second)
	require.NoError(t, err)
	srv := httptest.NewServer(r.handler())
	t.Cleanup(srv.Close)
	rig.url = srv.URL
	if stream {
		require.NoError(t, r.startStream(context.Background(), componenttest.NewNopHost()))
		t.Cleanup(r.shutdownStream)
		select {
		case <-r.follower.Subscribed():
		case <-time.After(10 * time.Second):
			t.Fatal("the receiver never subscribed to the stream")
		}
	}
	t.Cleanup(func() { require.NoError(t, r.Shutdown(context.Background())) })
	return rig
}

func (c *compatRig) task(token string) *fakefastdeploy.DeployTask {
	return &fakefastdeploy.DeployTask{StepsURL: c.url + "/steps/", FinishURL: c.url + "/deployments/finish/", AccessToken: token, SleepOnFail: time.Millisecond}
}

func (c *compatRig) spans(id int) []ptrace.Span {
	trace := pcommonTrace(deploytrace.DeploymentTraceID(strconv.Itoa(id)))
	var out []ptrace.Span
	for _, s := range allSpans(c.traces) {
		if s.TraceID() == trace {
			out = append(out, s)
		}
	}
	return out
}

func TestProxyModeRecordsOnlyWhatFastdeployAccepted(t *testing.T) {
	t.Parallel()
	c := newCompatRig(t, false, nil)
	service := c.fd.AddService("web", nil)
	beforeStart := time.Now()
	id, token := c.fd.StartDeployment(service, "GitHub", "alice", nil, []string{"build", "deploy"})
	task := c.task(token)
	ctx := context.Background()
	t0 := time.Now().UTC().Truncate(time.Microsecond)

	// a token fastdeploy refuses: its 401 is the answer, nothing recorded
	forged := fakefastdeploy.SignToken([]byte("not-fastdeploys-key"), map[string]any{"type": "deployment", "deployment": id}, t0.Add(time.Hour))
	out, err := c.task(forged).SendStep(ctx, fakefastdeploy.StepResult{Name: "build", State: "success", Started: t0, Finished: t0})
	require.NoError(t, err)
	assert.Equal(t, []int{401, 401, 401}, out.Statuses, "fastdeploy's refusal, retried by the deploy process")

	out, err = task.SendStep(ctx, fakefastdeploy.StepResult{Name: "build", State: "success", Started: t0, Finished: t0.Add(1500 * time.Millisecond)})
	require.NoError(t, err)
	assert.Equal(t, []int{200}, out.Statuses)
	out, err = task.SendStep(ctx, fakefastdeploy.StepResult{Name: "deploy", State: "failure", Message: "unit failed", Started: t0.Add(1500 * time.Millisecond), Finished: t0.Add(2 * time.Second)})
	require.NoError(t, err)
	assert.Equal(t, []int{200}, out.Statuses)
	status, err := task.Finish(ctx)
	require.NoError(t, err)
	assert.Equal(t, 200, status)
	status, err = task.Finish(ctx)
	require.NoError(t, err, "fastdeploy answers a repeated finish 200")
	assert.Equal(t, 200, status)
	out, err = task.SendStep(ctx, fakefastdeploy.StepResult{Name: "late", State: "success", Started: t0, Finished: t0})
	require.NoError(t, err)
	assert.Equal(t, 400, out.Statuses[0], "fastdeploy's answer to a step after the finish")

	spans := c.spans(id)
	require.Len(t, spans, 3, "two steps and one deployment span: no span for refused calls, none for the second finish")
	byName := map[string]ptrace.Span{}
	for _, s := range spans {
		byName[s.Name()] = s
	}
	root := byName["deploy unknown_service"]
	require.Equal(t, "deployment", spanAttr(root, "fastdeploy.span.kind"))
	// fastdeploy issued the token as it started the deployment, valid 30
	// minutes, its expiry in whole seconds: the root span starts when
	// fastdeploy started the deployment, to the second, before its steps.
	rootStart := root.StartTimestamp().AsTime()
	assert.False(t, rootStart.After(t0), "the deployment starts no later than its first step")
	assert.True(t, rootStart.After(beforeStart.Add(-time.Second)), "root starts at %s, fastdeploy started it at %s (to the second)", rootStart, beforeStart)
	assert.Equal(t, ptrace.StatusCodeError, root.Status().Code())
	assert.Equal(t, "deployment failed at step deploy", root.Status().Message())
	assert.Equal(t, t0, byName["build"].StartTimestamp().AsTime())
	assert.Equal(t, t0.Add(1500*time.Millisecond), byName["build"].EndTimestamp().AsTime())
	assert.False(t, root.EndTimestamp().AsTime().Before(byName["deploy"].EndTimestamp().AsTime()))
	assert.Equal(t, "0", spanAttr(byName["build"], "fastdeploy.step.position"))
	assert.Equal(t, "1", spanAttr(byName["deploy"], "fastdeploy.step.position"))

	// fastdeploy got everything the deploy process sent, once
	posted := 0
	for _, r := range c.fd.Requests() {
		if r.Method == http.MethodPost && r.Status == 200 {
			posted++
		}
	}
	assert.Equal(t, 2, posted)
	names, states, finished := c.fd.DeploymentSteps(id)
	assert.Equal(t, []string{"build", "deploy"}, names)
	assert.Equal(t, []string{"success", "failure"}, states)
	assert.True(t, finished)
}

func TestProxyModeDownAndSlow(t *testing.T) {
	t.Parallel()
	c := newCompatRig(t, false, nil)
	id, token := c.fd.StartDeployment(c.fd.AddService("web", nil), "", "", nil, []string{"a"})
	task := c.task(token)
	ctx := context.Background()
	t0 := time.Now().UTC()

	release := c.fd.Hold()
	out, err := task.SendStep(ctx, fakefastdeploy.StepResult{Name: "a", State: "success", Started: t0, Finished: t0})
	release()
	require.NoError(t, err)
	assert.Equal(t, []int{504, 504, 504}, out.Statuses, "slower than the upstream timeout")

	c.fd.Down()
	out, err = task.SendStep(ctx, fakefastdeploy.StepResult{Name: "a", State: "success", Started: t0, Finished: t0})
	require.NoError(t, err, "502 is a status the deploy process retries, not a transport error")
	assert.Equal(t, []int{502, 502, 502}, out.Statuses)
	require.NoError(t, c.fd.Up())
	assert.EqualValues(t, 3, c.r.upstream.Count(upstreamproxy.Unreachable))
	assert.EqualValues(t, 3, c.r.upstream.Count(upstreamproxy.TimedOut))
	assert.Empty(t, c.spans(id), "nothing fastdeploy did not accept is recorded")
	// the held requests reached fastdeploy late and were processed there:
	// fastdeploy has the step though the deploy process saw 504 — exactly
	// what a slow fastdeploy does without the collector too
}

func TestStreamAndProxyMakeOneTrace(t *testing.T) {
	t.Parallel()
	c := newCompatRig(t, true, nil)
	svc := c.fd.AddService("web", nil)
	id, token := c.fd.StartDeployment(svc, "GitHub", "alice", map[string]any{"env": map[string]any{"RELEASE": "7"}}, []string{"build", "deploy", "smoke"})
	task := c.task(token)
	ctx := context.Background()
	t0 := time.Now().UTC().Truncate(time.Microsecond)
	for i, name := range []string{"build", "deploy"} {
		out, err := task.SendStep(ctx, fakefastdeploy.StepResult{Name: name, State: "success", Started: t0.Add(time.Duration(i) * time.Second), Finished: t0.Add(time.Duration(i+1) * time.Second)})
		require.NoError(t, err)
		require.True(t, out.Delivered)
	}
	_, err := task.Finish(ctx)
	require.NoError(t, err)

	// the stream's last event is the deleted step, after DeploymentFinished
	require.Eventually(t, func() bool {
		for _, s := range c.spans(id) {
			if s.Name() == "smoke" {
				return true
			}
		}
		return false
	}, 10*time.Second, 5*time.Millisecond)
	spans := c.spans(id)
	ids := map[[8]byte]bool{}
	byName := map[string]ptrace.Span{}
	for _, s := range spans {
		assert.False(t, ids[s.SpanID()], "span %s emitted twice (pos %s, %v-%v)", s.Name(), spanAttr(s, "fastdeploy.step.position"), s.StartTimestamp(), s.EndTimestamp())
		ids[s.SpanID()] = true
		byName[s.Name()] = s
	}
	require.Len(t, spans, 4, "root, build, deploy, smoke")
	root, ok := byName["deploy web"]
	require.True(t, ok, "the stream names the service: %v", byName)
	assert.Equal(t, "alice", spanAttr(root, "user.name"))
	assert.Equal(t, "GitHub", spanAttr(root, "fastdeploy.origin"))
	smoke := byName["smoke"]
	assert.Equal(t, "skipped", spanAttr(smoke, "fastdeploy.status"))
	assert.Equal(t, "2", spanAttr(smoke, "fastdeploy.step.position"), "its place in the plan")
	assert.False(t, smoke.StartTimestamp().AsTime().Before(root.StartTimestamp().AsTime()))
	assert.False(t, smoke.EndTimestamp().AsTime().After(root.EndTimestamp().AsTime()), "inside the deployment")
	assert.False(t, byName["build"].StartTimestamp().AsTime().Before(root.StartTimestamp().AsTime()))
	for _, s := range spans {
		if s.Name() != root.Name() {
			assert.Equal(t, root.SpanID(), s.ParentSpanID())
		}
	}
}

// TestFastdeployStepPositionsSurviveARestart: the plan fastdeploy announced
// before a restart still fixes where its steps go after it.
func TestFastdeployStepPositionsSurviveARestart(t *testing.T) {
	t.Parallel()
	store := newMemStorage()
	post := func(tr *testReceiver, lines ...string) {
		t.Helper()
		rep := tr.post(t, pathCompatEvents, "application/x-ndjson", joinLines(lines))
		require.Equal(t, http.StatusOK, rep.status, rep.body)
	}
	before := restartable(t, store, nil)
	post(before,
		`{"type":"deployment","id":9,"service_id":3,"origin":"GitHub","user":"alice","started":"2026-11-27T11:00:00Z","finished":null,"context":{}}`,
		`{"type":"step","id":1,"name":"build","state":"running","deployment_id":9,"message":"","started":"2026-11-27T11:00:00Z","finished":null}`,
		`{"type":"step","id":2,"name":"deploy","state":"pending","deployment_id":9,"message":"","started":null,"finished":null}`,
		`{"type":"step","id":3,"name":"smoke","state":"pending","deployment_id":9,"message":"","started":null,"finished":null}`,
	)
	after := restartable(t, store, nil)
	post(after,
		`{"type":"step","id":2,"name":"deploy","state":"success","deployment_id":9,"message":"","started":"2026-11-27T11:00:02Z","finished":"2026-11-27T11:00:04Z"}`,
		`{"type":"deployment","id":9,"service_id":3,"origin":"GitHub","user":"alice","started":"2026-11-27T11:00:00Z","finished":"2026-11-27T11:00:05Z","context":{}}`,
		`{"type":"step","id":1,"name":"build","state":"running","deployment_id":9,"message":"","started":"2026-11-27T11:00:00Z","finished":null,"deleted":true}`,
		`{"type":"step","id":3,"name":"smoke","state":"pending","deployment_id":9,"message":"","started":null,"finished":null,"deleted":true}`,
		// fastdeploy's finish told twice: no second deployment span
		`{"type":"deployment","id":9,"service_id":3,"origin":"GitHub","user":"alice","started":"2026-11-27T11:00:00Z","finished":"2026-11-27T11:00:05Z","context":{}}`,
	)
	byName := map[string]ptrace.Span{}
	for _, s := range allSpans(after.traces) {
		_, dup := byName[s.Name()]
		assert.False(t, dup, "%s emitted twice", s.Name())
		byName[s.Name()] = s
	}
	require.Len(t, byName, 4)
	assert.Equal(t, "0", spanAttr(byName["build"], "fastdeploy.step.position"))
	assert.Equal(t, "1", spanAttr(byName["deploy"], "fastdeploy.step.position"), "the plan from before the restart")
	assert.Equal(t, "2", spanAttr(byName["smoke"], "fastdeploy.step.position"))
	root := byName["deploy service-3"]
	for _, name := range []string{"build", "smoke"} {
		s := byName[name]
		assert.Equal(t, "skipped", spanAttr(s, "fastdeploy.status"))
		assert.False(t, s.StartTimestamp().AsTime().Before(root.StartTimestamp().AsTime()), name)
		assert.Equal(t, root.EndTimestamp(), s.EndTimestamp(), "%s ends with its deployment", name)
	}
	assert.Equal(t, time.Date(2026, 11, 27, 11, 0, 0, 0, time.UTC), byName["build"].StartTimestamp().AsTime(), "a deleted running step keeps its start")
}

func joinLines(lines []string) string {
	out := ""
	for i, l := range lines {
		if i > 0 {
			out += "\n"
		}
		out += l
	}
	return out
}

// TestProxyModeForwardsOnlyFastdeploysAPIURLPaths: the deploy calls and the
// services sync reach fastdeploy; nothing else of its API is exposed.
func TestProxyModeForwardsOnlyFastdeploysAPIURLPaths(t *testing.T) {
	t.Parallel()
	c := newCompatRig(t, false, nil)
	for _, tt := range []struct {
		method, path string
		forwarded    bool
	}{
		{http.MethodPost, "/services/sync", true},
		{http.MethodGet, "/services/", false},
		{http.MethodPost, "/token", false},
		{http.MethodGet, "/deployments/", false},
		{http.MethodPost, "/services/sync/extra", false},
	} {
		before := len(c.fd.Requests())
		req, err := http.NewRequest(tt.method, c.url+tt.path, nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		if tt.forwarded {
			// fastdeploy's answer to a call without a user token
			assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, tt.path)
		} else {
			assert.Equal(t, http.StatusNotFound, resp.StatusCode, tt.path)
			assert.Equal(t, before, len(c.fd.Requests()))
		}
	}
}
