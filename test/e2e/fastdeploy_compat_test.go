//go:build e2e

package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deploytrace"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/testutil/fakefastdeploy"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/testutil/otlpsink"
)

// compatConfig puts the collector in front of a (fake) fastdeploy: its
// deploy calls are proxied and its event stream followed.
func compatConfig(upstream string) string {
	return strings.Replace(basicConfig, "    max_request_body_size: 1048576\n", `    max_request_body_size: 1048576
    fastdeploy:
      upstream:
        endpoint: `+upstream+`
        timeout: 2s
      api:
        endpoint: `+upstream+`
        username: otel-reader
        password: ${env:FASTDEPLOY_API_PASSWORD}
`, 1)
}

func generatedPassword(t *testing.T) string {
	b := make([]byte, 12)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return "generated-" + hex.EncodeToString(b)
}

type compatRun struct {
	stack *stack
	fd    *fakefastdeploy.Server
}

func startCompat(t *testing.T) compatRun {
	pw := generatedPassword(t)
	fd := fakefastdeploy.New(fakefastdeploy.Options{Users: map[string]string{"otel-reader": pw}})
	require.NoError(t, fd.Start())
	t.Cleanup(fd.Close)
	t.Setenv("FASTDEPLOY_API_PASSWORD", pw)
	s := startStack(t, compatConfig(fd.URL()))
	require.Eventually(t, func() bool { return fd.Authenticated() == 1 }, 30*time.Second, 20*time.Millisecond, "the collector subscribes to fastdeploy's events")
	return compatRun{stack: s, fd: fd}
}

func (c compatRun) task(token string) *fakefastdeploy.DeployTask {
	return &fakefastdeploy.DeployTask{StepsURL: c.stack.receiver + "/steps/", FinishURL: c.stack.receiver + "/deployments/finish/", AccessToken: token}
}

func compatSpans(sink *otlpsink.Sink, deployment string) []otlpsink.Span {
	trace := deploytrace.DeploymentTraceID(deployment)
	var out []otlpsink.Span
	for _, sp := range sink.Spans() {
		if sp.Span.TraceID() == [16]byte(trace) {
			out = append(out, sp)
		}
	}
	return out
}

// TestUnchangedFastdeployThroughTheCollector runs a deployment as
// fastdeploy does with its API_URL pointed at the collector: fastdeploy's
// server must receive every step and the finish exactly once and answer
// them itself, and the deployment must become one whole trace, its stream
// events and proxied steps merged.
func TestUnchangedFastdeployThroughTheCollector(t *testing.T) {
	c := startCompat(t)
	svc := c.fd.AddService("web", nil)
	id, token := c.fd.StartDeployment(svc, "GitHub", "alice", map[string]any{"env": map[string]any{"release": "1.4.2"}}, []string{"build", "deploy", "smoke"})
	task := c.task(token)
	ctx := context.Background()
	t0 := time.Now().UTC()
	steps := []fakefastdeploy.StepResult{
		{Name: "build", State: "success", Started: t0, Finished: t0.Add(300 * time.Millisecond)},
		{Name: "deploy", State: "success", Started: t0.Add(300 * time.Millisecond), Finished: t0.Add(700 * time.Millisecond)},
	}
	for _, s := range steps {
		out, err := task.SendStep(ctx, s)
		require.NoError(t, err)
		assert.Equal(t, []int{200}, out.Statuses, "fastdeploy's own answer, first try")
	}
	status, err := task.Finish(ctx)
	require.NoError(t, err)
	assert.Equal(t, 200, status)
	// fastdeploy's answers to a repeated finish and a late step pass through
	status, err = task.Finish(ctx)
	require.NoError(t, err)
	assert.Equal(t, 200, status)
	late, err := task.SendStep(ctx, fakefastdeploy.StepResult{Name: "late", State: "success", Started: t0, Finished: t0})
	require.NoError(t, err)
	assert.Equal(t, 400, late.Statuses[0], "a step after the finish is refused by fastdeploy, and so by the proxy")

	reqs := c.fd.Requests()
	var stepBodies []string
	finishes := 0
	for _, r := range reqs {
		switch {
		case r.Method == http.MethodPost && r.Path == "/steps/" && r.Status == 200:
			stepBodies = append(stepBodies, string(r.Body))
			assert.Equal(t, "Bearer "+token, r.Header.Get("Authorization"))
		case r.Method == http.MethodPut && r.Path == "/deployments/finish/":
			finishes++
			assert.Equal(t, []string{"0"}, r.Header["Content-Length"])
			assert.Empty(t, r.Header.Get("Content-Type"))
		}
	}
	assert.Equal(t, []string{string(task.StepBody(steps[0])), string(task.StepBody(steps[1]))}, stepBodies, "every step exactly once, byte for byte")
	assert.Equal(t, 2, finishes, "both finishes reached fastdeploy")
	names, states, finished := c.fd.DeploymentSteps(id)
	assert.Equal(t, []string{"build", "deploy"}, names)
	assert.Equal(t, []string{"success", "success"}, states)
	assert.True(t, finished)

	dep := itoa(id)
	var spans []otlpsink.Span
	require.True(t, c.stack.sink.WaitFor(30*time.Second, func() bool {
		spans = compatSpans(c.stack.sink, dep)
		return len(spans) >= 4
	}), "got %d spans", len(spans))
	var root *otlpsink.Span
	byName := map[string][]otlpsink.Span{}
	ids := map[[8]byte]int{}
	for i, sp := range spans {
		ids[sp.Span.SpanID()]++
		assert.Equal(t, "web", sp.Resource["service.name"], "the stream names the service")
		if attr(sp.Span, "fastdeploy.span.kind") == "deployment" {
			root = &spans[i]
			continue
		}
		byName[sp.Span.Name()] = append(byName[sp.Span.Name()], sp)
	}
	for id, n := range ids {
		assert.Equal(t, 1, n, "span %x emitted once", id)
	}
	require.NotNil(t, root)
	require.Len(t, byName["build"], 1)
	require.Len(t, byName["deploy"], 1)
	require.Len(t, byName["smoke"], 1, "the step fastdeploy deleted at the finish")
	assert.Empty(t, byName["late"])
	rootStart, rootEnd := root.Span.StartTimestamp().AsTime(), root.Span.EndTimestamp().AsTime()
	assert.False(t, byName["build"][0].Span.StartTimestamp().AsTime().Before(rootStart), "the first step starts inside its deployment")
	assert.Equal(t, "alice", attr(root.Span, "user.name"))
	smoke := byName["smoke"][0].Span
	assert.Equal(t, "skipped", attr(smoke, "fastdeploy.status"))
	assert.False(t, smoke.StartTimestamp().AsTime().Before(rootStart))
	assert.False(t, smoke.EndTimestamp().AsTime().After(rootEnd), "the deleted step lies inside the deployment")
	pos := func(sp otlpsink.Span) int64 {
		v, _ := sp.Span.Attributes().Get("fastdeploy.step.position")
		return v.Int()
	}
	assert.Less(t, pos(byName["build"][0]), pos(byName["deploy"][0]))
	assert.Less(t, pos(byName["deploy"][0]), pos(byName["smoke"][0]), "the deleted step keeps its place in the plan")
}

// TestFastdeployDownTenSeconds: while fastdeploy is down the collector
// answers 502 and the deploy process retries as it would; what fastdeploy
// finally accepted is exactly what becomes spans.
func TestFastdeployDownTenSeconds(t *testing.T) {
	c := startCompat(t)
	svc := c.fd.AddService("api", nil)
	id, token := c.fd.StartDeployment(svc, "cli", "bob", nil, []string{"one", "two", "three"})
	task := c.task(token)
	ctx := context.Background()
	t0 := time.Now().UTC()
	out, err := task.SendStep(ctx, fakefastdeploy.StepResult{Name: "one", State: "success", Started: t0, Finished: t0.Add(time.Millisecond)})
	require.NoError(t, err)
	require.True(t, out.Delivered)

	c.fd.Down()
	down := time.Now()
	// the deploy process's 3 tries, 3 s apart, all fall into the outage
	out, err = task.SendStep(ctx, fakefastdeploy.StepResult{Name: "two", State: "success", Started: t0, Finished: t0.Add(2 * time.Millisecond)})
	require.NoError(t, err, "a 502 is retried, not an error that ends the deploy process")
	assert.Equal(t, []int{502, 502, 502}, out.Statuses)
	time.Sleep(time.Until(down.Add(10 * time.Second))) // the outage lasts 10 s
	require.NoError(t, c.fd.Up())
	require.Eventually(t, func() bool { return c.fd.Authenticated() == 1 }, 60*time.Second, 50*time.Millisecond, "the stream reconnects")

	out, err = task.SendStep(ctx, fakefastdeploy.StepResult{Name: "three", State: "success", Started: t0, Finished: t0.Add(3 * time.Millisecond)})
	require.NoError(t, err)
	require.True(t, out.Delivered)
	_, err = task.Finish(ctx)
	require.NoError(t, err)

	names, _, _ := c.fd.DeploymentSteps(id)
	assert.Equal(t, []string{"one", "three"}, names, "fastdeploy lost step two, as it would without the collector")
	var spans []otlpsink.Span
	require.True(t, c.stack.sink.WaitFor(30*time.Second, func() bool {
		spans = compatSpans(c.stack.sink, itoa(id))
		return len(spans) >= 4
	}))
	got := map[string]int{}
	for _, sp := range spans {
		got[sp.Span.Name()]++
	}
	assert.Equal(t, 1, got["one"])
	assert.Equal(t, 1, got["three"])
	assert.Equal(t, 1, got["two"], "fastdeploy deleted the unfinished step two at the finish: a skipped span")
}

func itoa(n int) string { return strconv.Itoa(n) }
