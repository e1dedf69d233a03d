package fastdeployreceiver

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployattr"
)

// delayingTraces and delayingLogs hold each batch for a random moment
// before accepting it, so that requests for one deployment overlap in the
// pipeline in every order.
type delayingTraces struct {
	consumertest.TracesSink
	delay func()
}

func (d *delayingTraces) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	d.delay()
	return d.TracesSink.ConsumeTraces(ctx, td)
}

type delayingLogs struct {
	consumertest.LogsSink
	delay func()
}

func (d *delayingLogs) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	d.delay()
	return d.LogsSink.ConsumeLogs(ctx, ld)
}

func randomDelay(seed uint64) func() {
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return func() {
		mu.Lock()
		d := time.Duration(rng.IntN(800)) * time.Microsecond
		mu.Unlock()
		time.Sleep(d) // forces interleavings; nothing waits on it
	}
}

// deploymentRequests is every request one deployment sends, each in its
// own HTTP request so that they can overlap: lifecycle events from the
// deployer, json_cb and ansible.posix.jsonl posts for its steps, and
// fastdeploy domain events for one more step.
func deploymentRequests(t *testing.T, id string, jsonl []byte) []func(tr *testReceiver) reply {
	t.Helper()
	base := time.Date(2026, 11, 27, 11, 0, 0, 0, time.UTC)
	at := func(s int) string { return base.Add(time.Duration(s) * time.Second).Format(time.RFC3339Nano) }
	lifecycle := func(typ, evID, when, extra string) string {
		s := `{"type":"` + typ + `","id":"` + id + `-` + evID + `","time":"` + when + `","deployment":{"id":"` + id + `","service":"api"`
		if typ == "deployment.finished" {
			s += `,"status":"failure"`
		}
		return s + `}` + extra + `}`
	}
	var reqs []func(tr *testReceiver) reply
	events := func(lines ...string) {
		reqs = append(reqs, func(tr *testReceiver) reply { return tr.events(t, lines...) })
	}
	events(lifecycle("deployment.started", "ds", at(0), ""))
	steps := []string{"build", "configure", "migrate", "restart"}
	for pos, name := range steps {
		state := "success"
		if name == "migrate" {
			state = "failure"
		}
		step := fmt.Sprintf(`,"step":{"name":%q,"position":%d`, name, pos)
		events(lifecycle("step.started", "s"+name, at(10*pos+1), step+`}`))
		events(lifecycle("step.finished", "f"+name, at(10*pos+9), step+`,"state":"`+state+`"}`))
		var tasks []string
		for i := range 3 {
			tasks = append(tasks, fmt.Sprintf(`{"position":%d,"start":"%s","end":"%s","name":"task %d","state":"success","host":"web1"}`,
				i+1, strings.TrimSuffix(at(10*pos+2+i), "Z"), strings.TrimSuffix(at(10*pos+3+i), "Z"), i))
		}
		body, posHeader := strings.Join(tasks, "\n"), fmt.Sprint(pos)
		reqs = append(reqs, func(tr *testReceiver) reply {
			return tr.post(t, pathAnsible+"?tz=UTC", "application/x-ndjson", body,
				headerDeployment, id, headerStep, name, headerStepPosition, posHeader)
		})
	}
	reqs = append(reqs, func(tr *testReceiver) reply {
		return tr.post(t, pathAnsible, "application/x-ndjson", string(jsonl),
			headerDeployment, id, headerStep, "configure", headerStepPosition, "1")
	})
	domain := `{"type": "step", "id": 9, "name": "notify", "state": "running", "deployment_id": ` + id + `, "message": "", "started": "` + at(50) + `", "finished": null, "deleted": false}` + "\n" +
		`{"type": "step", "id": 9, "name": "notify", "state": "success", "deployment_id": ` + id + `, "message": "", "started": "` + at(50) + `", "finished": "` + at(51) + `", "deleted": false}`
	reqs = append(reqs, func(tr *testReceiver) reply {
		return tr.post(t, pathCompatEvents, "application/x-ndjson", domain)
	})
	events(lifecycle("deployment.finished", "df", at(60), ""))
	return reqs
}

// TestConcurrentRequestsForOneDeployment posts every request of a few
// deployments at once, in random order, through a pipeline that holds each
// batch for a random moment. Requests for one deployment must apply as if
// one after the other: every span is exported exactly once, nothing stays
// in flight, and a timeout sweep afterwards finds nothing to close.
func TestConcurrentRequestsForOneDeployment(t *testing.T) {
	t.Parallel()
	jsonl, err := os.ReadFile(filepath.Join("testdata", "ansible", "run.jsonl"))
	require.NoError(t, err)
	const (
		deployments = 4
		repetitions = 12
	)
	requests := 0
	for rep := range repetitions {
		seed := uint64(rep + 1)
		tr := newTestReceiver(t, func(c *Config) {
			c.MaxConcurrentRequests = 1024
			c.MaxConnections = 1024
			c.Timeout = time.Hour
		})
		traces := &delayingTraces{delay: randomDelay(seed)}
		logs := &delayingLogs{delay: randomDelay(seed + 1000)}
		tr.r.setTraces(traces)
		tr.r.setLogs(logs)

		var all []func(tr *testReceiver) reply
		for d := range deployments {
			all = append(all, deploymentRequests(t, fmt.Sprint(100+d), jsonl)...)
		}
		rng := rand.New(rand.NewPCG(seed, 7))
		rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
		requests += len(all)

		var wg sync.WaitGroup
		statuses := make([]int, len(all))
		for i, send := range all {
			wg.Go(func() { statuses[i] = send(tr).status })
		}
		wg.Wait()
		for i, s := range statuses {
			require.Equal(t, http.StatusOK, s, "request %d of repetition %d", i, rep)
		}
		assert.Zero(t, tr.r.tracker.inflight(), "repetition %d (seed %d): in-flight spans left", rep, seed)

		// Nothing may be left for the timeout to close.
		tr.clock.Advance(2 * time.Hour)
		tr.r.sweepOnce(context.Background())

		seen := map[string]int{}
		stepSpans := map[string]int{}
		for _, s := range allSpans(&traces.TracesSink) {
			seen[s.SpanID().String()]++
			if spanAttr(s, deployattr.SpanKind) == deployattr.SpanKindStep {
				stepSpans[spanAttr(s, deployattr.DeploymentID)]++
			}
		}
		duplicates := 0
		for id, n := range seen {
			if n != 1 {
				duplicates++
				t.Errorf("repetition %d (seed %d): span %s exported %d times", rep, seed, id, n)
			}
		}
		require.Zero(t, duplicates)
		for d := range deployments {
			assert.Equal(t, 5, stepSpans[fmt.Sprint(100+d)], "four lifecycle steps and one fastdeploy step")
		}
	}
	t.Logf("%d requests for %d deployments over %d repetitions: no span exported twice", requests, deployments, repetitions)
}

// TestDifferentDeploymentsRunInParallel holds one deployment's request in
// the pipeline; a request for another deployment must still complete.
func TestDifferentDeploymentsRunInParallel(t *testing.T) {
	t.Parallel()
	tr := newTestReceiver(t, nil)
	entered, release := make(chan struct{}), make(chan struct{})
	var first atomic.Bool
	tr.r.setTraces(&gatedTraces{gate: func() {
		if first.CompareAndSwap(false, true) {
			close(entered)
			<-release
		}
	}})
	done := make(chan reply)
	go func() {
		done <- tr.events(t, ev("deployment.started", "a", "2026-11-27T11:00:00Z", ""), ev("deployment.finished", "b", "2026-11-27T11:00:10Z", ""))
	}()
	<-entered
	other := `{"type":"deployment.started","time":"2026-11-27T11:00:00Z","deployment":{"id":"8","service":"api"}}` + "\n" +
		`{"type":"deployment.finished","time":"2026-11-27T11:00:05Z","deployment":{"id":"8","service":"api","status":"success"}}`
	rep := tr.post(t, pathEvents, "application/x-ndjson", other)
	assert.Equal(t, http.StatusOK, rep.status, "deployment 8 is not held up by deployment 7")
	close(release)
	assert.Equal(t, http.StatusOK, (<-done).status)
}

type gatedTraces struct {
	consumertest.TracesSink
	gate func()
}

func (g *gatedTraces) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	g.gate()
	return g.TracesSink.ConsumeTraces(ctx, td)
}
