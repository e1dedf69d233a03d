package fastdeployreceiver

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestEveryEndpointRefusesByTheSameRules posts, to every ingest endpoint,
// one input breaking each validation rule, and a near miss that keeps just
// within it. Every endpoint goes through the one gate, so each rule refuses
// everywhere with the same status and names the field in the endpoint's
// own terms.
func TestEveryEndpointRefusesByTheSameRules(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("n", 257)   // one byte over the limit
	within := strings.Repeat("n", 256) // the near miss
	longNumber := "1" + strings.Repeat("0", 256)
	future := testNow.Add(25 * time.Hour).UTC()
	nearFuture := testNow.Add(23 * time.Hour).UTC()
	rfc := func(t time.Time) string { return t.Format(time.RFC3339) }
	naive := func(t time.Time) string { return t.Format("2006-01-02T15:04:05") }

	type endpoint struct {
		method, path string
		headers      []string
	}
	auth := []string{"Authorization", "Bearer " + deploymentToken("17", testNow.Add(time.Hour))}
	var (
		events  = endpoint{http.MethodPost, pathEvents, nil}
		jsonCB  = endpoint{http.MethodPost, pathAnsible + "?tz=UTC", []string{headerDeployment, "7"}}
		jsonl   = endpoint{http.MethodPost, pathAnsible, []string{headerDeployment, "7"}}
		steps   = endpoint{http.MethodPost, pathCompatSteps, auth}
		domain  = endpoint{http.MethodPost, pathCompatEvents, nil}
		headers = func(e endpoint, h ...string) endpoint {
			e.headers = append(append([]string{}, e.headers...), h...)
			return e
		}
	)
	lifecycle := func(deployment, when, stepName string) string {
		return `{"type":"step.started","time":"` + when + `","deployment":{"id":"` + deployment + `","service":"api"},"step":{"name":"` + stepName + `","position":0}}`
	}
	task := func(name, start string) string {
		return `{"position":1,"start":"` + start + `","end":"` + start + `","name":"` + name + `","state":"success"}`
	}
	runner := func(taskID, ts string) string {
		return `{"_event":"v2_runner_on_ok","_timestamp":"` + ts + `","hosts":{"web1":{"changed":false}},"task":{"id":"` + taskID + `","name":"t"}}`
	}
	step := func(name, started string) string {
		return `{"name":"` + name + `","state":"running","started":"` + started + `"}`
	}
	domainStep := func(deployment, name, started string) string {
		return `{"type":"step","name":"` + name + `","state":"running","deployment_id":` + deployment + `,"started":"` + started + `"}`
	}
	domainDeployment := func(id, started string) string {
		return `{"type":"deployment","id":` + id + `,"service_id":3,"started":"` + started + `"}`
	}
	now := rfc(testNow.Add(-time.Hour))
	nowNaive := naive(testNow.Add(-time.Hour))

	tests := []struct {
		rule, endpoint string
		to             endpoint
		bad, ok        string
		badTo          *endpoint // when the rule is broken in a header
		status         int
		field          string
	}{
		// A required field is missing.
		{rule: "required", endpoint: "events", to: events, bad: strings.Replace(lifecycle("7", now, "s"), `"name":"s",`, ``, 1), ok: lifecycle("7", now, "s"), status: 422, field: "step.name"},
		{rule: "required", endpoint: "json_cb", to: jsonCB, bad: strings.Replace(task("t", nowNaive), `"name":"t",`, ``, 1), ok: task("t", nowNaive), status: 422, field: "name"},
		{rule: "required", endpoint: "jsonl", to: jsonl, bad: runner("", now), ok: runner("abc", now), status: 422, field: "task.id"},
		{rule: "required", endpoint: "steps", to: steps, bad: `{"state":"running","started":"` + now + `"}`, ok: step("s", now), status: 422, field: "name"},
		{rule: "required", endpoint: "domain step", to: domain, bad: `{"type":"step","name":"s","state":"running","started":"` + now + `"}`, ok: domainStep("5", "s", now), status: 422, field: "deployment_id"},
		{rule: "required", endpoint: "domain deployment", to: domain, bad: `{"type":"deployment","service_id":3,"started":"` + now + `"}`, ok: domainDeployment("5", now), status: 422, field: "id"},

		// A time outside the accepted window.
		{rule: "time window", endpoint: "events", to: events, bad: lifecycle("7", rfc(future), "s"), ok: lifecycle("7", rfc(nearFuture), "s"), status: 422, field: "time"},
		{rule: "time window", endpoint: "json_cb", to: jsonCB, bad: task("t", naive(future)), ok: task("t", naive(nearFuture)), status: 422, field: "start"},
		{rule: "time window", endpoint: "jsonl", to: jsonl, bad: runner("abc", rfc(future)), ok: runner("abc", rfc(nearFuture)), status: 422, field: "_timestamp"},
		{rule: "time window", endpoint: "steps", to: steps, bad: step("s", rfc(future)), ok: step("s", rfc(nearFuture)), status: 422, field: "started"},
		{rule: "time window", endpoint: "domain step", to: domain, bad: domainStep("5", "s", rfc(future)), ok: domainStep("5", "s", rfc(nearFuture)), status: 422, field: "started"},
		{rule: "time window", endpoint: "domain deployment", to: domain, bad: domainDeployment("5", rfc(future)), ok: domainDeployment("5", rfc(nearFuture)), status: 422, field: "started"},
		{rule: "time window, far past", endpoint: "domain deployment", to: domain, bad: domainDeployment("5", "2019-01-01T00:00:00Z"), ok: domainDeployment("5", rfc(testNow.AddDate(-4, 0, 0))), status: 422, field: "started"},

		// A deployment id longer than 256 bytes.
		{rule: "id length", endpoint: "events", to: events, bad: lifecycle(long, now, "s"), ok: lifecycle(within, now, "s"), status: 422, field: "deployment.id"},
		{rule: "id length", endpoint: "json_cb", to: headers(jsonCB), badTo: ptr(endpoint{http.MethodPost, pathAnsible + "?tz=UTC", []string{headerDeployment, long}}),
			bad: task("t", nowNaive), ok: task("t", nowNaive), status: 422, field: headerDeployment},
		{rule: "id length", endpoint: "jsonl", to: headers(jsonl), badTo: ptr(endpoint{http.MethodPost, pathAnsible, []string{headerDeployment, long}}),
			bad: runner("abc", now), ok: runner("abc", now), status: 422, field: headerDeployment},
		{rule: "id length", endpoint: "domain step", to: domain, bad: domainStep(longNumber, "s", now), ok: domainStep("5", "s", now), status: 422, field: "deployment_id"},
		{rule: "id length", endpoint: "domain deployment", to: domain, bad: domainDeployment(longNumber, now), ok: domainDeployment("5", now), status: 422, field: "id"},
		{rule: "id length", endpoint: "jsonl task id", to: jsonl, bad: runner(long, now), ok: runner(within, now), status: 422, field: "task.id"},

		// A step name longer than 256 bytes.
		{rule: "name length", endpoint: "events", to: events, bad: lifecycle("7", now, long), ok: lifecycle("7", now, within), status: 422, field: "step.name"},
		{rule: "name length", endpoint: "json_cb", to: headers(jsonCB, headerStep, within), badTo: ptr(headers(jsonCB, headerStep, long)),
			bad: task("t", nowNaive), ok: task("t", nowNaive), status: 422, field: headerStep},
		{rule: "name length", endpoint: "jsonl", to: headers(jsonl, headerStep, within), badTo: ptr(headers(jsonl, headerStep, long)),
			bad: runner("abc", now), ok: runner("abc", now), status: 422, field: headerStep},
		{rule: "name length", endpoint: "steps", to: steps, bad: step(long, now), ok: step(within, now), status: 422, field: "name"},
		{rule: "name length", endpoint: "domain step", to: domain, bad: domainStep("5", long, now), ok: domainStep("5", within, now), status: 422, field: "name"},

		// A service or environment longer than 256 bytes: they become metric labels.
		{rule: "label length", endpoint: "events", to: events, bad: strings.Replace(lifecycle("7", now, "s"), `"service":"api"`, `"service":"`+long+`"`, 1),
			ok: strings.Replace(lifecycle("7", now, "s"), `"service":"api"`, `"service":"`+within+`"`, 1), status: 422, field: "deployment.service"},
		{rule: "label length", endpoint: "events", to: events, bad: strings.Replace(lifecycle("7", now, "s"), `"service":"api"`, `"service":"api","environment":"`+long+`"`, 1),
			ok: strings.Replace(lifecycle("7", now, "s"), `"service":"api"`, `"service":"api","environment":"`+within+`"`, 1), status: 422, field: "deployment.environment"},
		{rule: "label length", endpoint: "json_cb", to: headers(jsonCB, headerService, within), badTo: ptr(headers(jsonCB, headerService, long)),
			bad: task("t", nowNaive), ok: task("t", nowNaive), status: 422, field: headerService},

		// A key twice in one object.
		{rule: "duplicate key", endpoint: "events", to: events, bad: strings.Replace(lifecycle("7", now, "s"), `"position":0`, `"position":0,"position":1`, 1), ok: lifecycle("7", now, "s"), status: 400, field: "step.position"},
		{rule: "duplicate key", endpoint: "json_cb", to: jsonCB, bad: strings.Replace(task("t", nowNaive), `"name":"t"`, `"name":"t","name":"u"`, 1), ok: task("t", nowNaive), status: 400, field: "name"},
		{rule: "duplicate key", endpoint: "jsonl", to: jsonl, bad: strings.Replace(runner("abc", now), `"name":"t"`, `"name":"t","name":"u"`, 1), ok: runner("abc", now), status: 400, field: "task.name"},
		{rule: "duplicate key", endpoint: "steps", to: steps, bad: strings.Replace(step("s", now), `"name":"s"`, `"name":"s","name":"t"`, 1), ok: step("s", now), status: 400, field: "name"},
		{rule: "duplicate key", endpoint: "domain step", to: domain, bad: strings.Replace(domainStep("5", "s", now), `"name":"s"`, `"name":"s","name":"t"`, 1), ok: domainStep("5", "s", now), status: 400, field: "name"},
		{rule: "duplicate key", endpoint: "domain deployment", to: domain, bad: strings.Replace(domainDeployment("5", now), `"service_id":3`, `"service_id":3,"service_id":4`, 1), ok: domainDeployment("5", now), status: 400, field: "service_id"},
	}
	for _, tt := range tests {
		t.Run(tt.rule+"/"+tt.endpoint, func(t *testing.T) {
			t.Parallel()
			tr := newTestReceiver(t, func(c *Config) { c.FastdeployJWTSecret = jwtSecret })
			badTo := tt.to
			if tt.badTo != nil {
				badTo = *tt.badTo
			}
			rep := tr.do(t, badTo.method, badTo.path, tt.bad, badTo.headers...)
			assert.Equal(t, tt.status, rep.status, rep.body)
			assert.Equal(t, tt.field, rep.body["field"], rep.body)
			assert.Empty(t, allSpans(tr.traces), "a refused request builds nothing")
			assert.Empty(t, allLogs(tr.logs), "a refused request builds nothing")
			assert.Zero(t, tr.r.tracker.inflight(), "a refused request leaves nothing in flight")

			rep = tr.do(t, tt.to.method, tt.to.path, tt.ok, tt.to.headers...)
			require.Equal(t, http.StatusOK, rep.status, "near miss: %v", rep.body)
		})
	}
}

func ptr[T any](v T) *T { return &v }
