//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deploytrace"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/testutil/collectorproc"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/testutil/fakefastdeploy"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/testutil/otlpsink"
)

// scaleoutCollectorConfig is one of the collectors behind HAProxy: state
// and sending queue on its own file_storage, deployment metrics on its own
// Prometheus endpoint and a shared_ledger directory all of them write,
// traces to its own sink so the test knows which collector sent what.
const scaleoutCollectorConfig = storageHead + `    storage: file_storage
    fastdeploy_jwt_secret: {{jwt}}
    load_balanced: true
connectors:
  deploy_metrics:
    metrics_flush_interval: 300ms
    storage: file_storage
    shared_ledger:
      directory: {{ledger}}
` + sinkExporter + `    sending_queue:
      enabled: true
      storage: file_storage
    retry_on_failure:
      max_elapsed_time: 0
  prometheus:
    endpoint: 127.0.0.1:{{metrics}}
service:
  extensions: [health_check, file_storage]
  pipelines:
    traces:
      receivers: [fastdeploy]
      exporters: [otlp_http, deploy_metrics]
    logs:
      receivers: [fastdeploy]
      exporters: [deploy_metrics]
    metrics:
      receivers: [deploy_metrics]
      exporters: [prometheus]
  telemetry:
    metrics:
      level: none
`

// scaleoutCollector is one collector of the group, restartable on the
// same ports and storage.
type scaleoutCollector struct {
	name     string
	bin      string
	config   string
	health   string
	receiver int
	metrics  int
	sink     *otlpsink.Sink
	proc     *collectorproc.Process
}

func startScaleoutCollector(t *testing.T, bin, name, jwt, ledger string) *scaleoutCollector {
	t.Helper()
	sink, err := otlpsink.Start()
	require.NoError(t, err)
	t.Cleanup(func() { _ = sink.Close() })
	c := &scaleoutCollector{name: name, bin: bin, sink: sink}
	health := collectorproc.FreePort(t)
	c.receiver, c.metrics = collectorproc.FreePort(t), collectorproc.FreePort(t)
	c.health = fmt.Sprintf("http://127.0.0.1:%d/", health)
	c.config = fillConfig(t, scaleoutCollectorConfig, map[string]any{
		"health": health, "receiver": c.receiver, "metrics": c.metrics, "sink": sink.Endpoint(), "jwt": jwt,
		"dir": filepath.ToSlash(t.TempDir()), "ledger": filepath.ToSlash(ledger),
	})
	c.start(t)
	return c
}

func (c *scaleoutCollector) start(t *testing.T) {
	t.Helper()
	c.proc = collectorproc.Start(t, c.bin, c.config, c.health)
}

func (c *scaleoutCollector) addr() string { return fmt.Sprintf("127.0.0.1:%d", c.receiver) }

// startScaleoutGroup starts three collectors sharing a ledger and the JWT
// secret jwt, HAProxy in front of them and a Prometheus scraping each.
func startScaleoutGroup(t *testing.T, jwt string) ([]*scaleoutCollector, *haproxy, *prometheus) {
	t.Helper()
	bin := collectorproc.Binary(t)
	ledger := t.TempDir()
	var collectors []*scaleoutCollector
	var addrs []string
	for i := range 3 {
		c := startScaleoutCollector(t, bin, fmt.Sprintf("collector%d", i+1), jwt, ledger)
		collectors = append(collectors, c)
		addrs = append(addrs, c.addr())
	}
	return collectors, startHAProxy(t, addrs), startScaleoutPrometheus(t, collectors)
}

// haproxyBinary finds Debian's haproxy (in /usr/sbin, often not on PATH).
func haproxyBinary(t *testing.T) string {
	t.Helper()
	if bin, err := exec.LookPath("haproxy"); err == nil {
		return bin
	}
	if _, err := os.Stat("/usr/sbin/haproxy"); err == nil {
		return "/usr/sbin/haproxy"
	}
	t.Skip("haproxy is not installed: run `make tools` (Debian package haproxy)")
	return ""
}

type haproxy struct {
	url   string // the frontend deployers post to
	stats string
}

// startHAProxy runs the shipped config/haproxy/haproxy.cfg in front of the
// collectors, keeping only as many server lines as there are collectors.
func startHAProxy(t *testing.T, collectors []string) *haproxy {
	t.Helper()
	bin := haproxyBinary(t)
	raw, err := os.ReadFile(repoPath(t, "config/haproxy/haproxy.cfg"))
	require.NoError(t, err)
	var cfg strings.Builder
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	for sc.Scan() {
		line := sc.Text()
		if f := strings.Fields(line); len(f) > 1 && f[0] == "server" {
			n, _ := strconv.Atoi(strings.TrimPrefix(f[1], "collector"))
			if n < 1 || n > len(collectors) {
				continue
			}
		}
		cfg.WriteString(line + "\n")
	}
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	require.NoError(t, os.WriteFile(path, []byte(cfg.String()), 0o600))
	ports := map[string]int{}
	startOnFreePorts(t, ports, []string{"bind", "stats"}, func() (*exec.Cmd, string) {
		cmd := exec.Command(bin, "-db", "-f", path)
		cmd.Env = append(os.Environ(),
			fmt.Sprintf("FASTDEPLOY_LB_BIND=127.0.0.1:%d", ports["bind"]),
			fmt.Sprintf("FASTDEPLOY_LB_STATS_BIND=127.0.0.1:%d", ports["stats"]))
		for i, c := range collectors {
			cmd.Env = append(cmd.Env, fmt.Sprintf("FASTDEPLOY_COLLECTOR_%d=%s", i+1, c))
		}
		return cmd, fmt.Sprintf("http://127.0.0.1:%d/metrics", ports["stats"])
	})
	h := &haproxy{url: fmt.Sprintf("http://127.0.0.1:%d", ports["bind"]), stats: fmt.Sprintf("http://127.0.0.1:%d", ports["stats"])}
	require.True(t, poll(30*time.Second, func() bool { return h.upServers() == len(collectors) }), "every collector UP in HAProxy")
	return h
}

// upServers counts the collectors HAProxy's health checks consider UP.
func (h *haproxy) upServers() int {
	resp, err := http.Get(h.stats + "/stats;csv")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	up := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		f := strings.Split(sc.Text(), ",")
		if len(f) > 17 && f[0] == "collectors" && strings.HasPrefix(f[1], "collector") && strings.HasPrefix(f[17], "UP") {
			up++
		}
	}
	return up
}

// startScaleoutPrometheus scrapes every collector's deployment metrics.
func startScaleoutPrometheus(t *testing.T, collectors []*scaleoutCollector) *prometheus {
	t.Helper()
	bin := prometheusBinary(t)
	dir := t.TempDir()
	ports := map[string]int{}
	var targets []string
	for _, c := range collectors {
		targets = append(targets, fmt.Sprintf("'127.0.0.1:%d'", c.metrics))
	}
	startOnFreePorts(t, ports, []string{"prometheus"}, func() (*exec.Cmd, string) {
		config := fmt.Sprintf(`
global:
  scrape_interval: 250ms
  scrape_timeout: 250ms
  evaluation_interval: 1s
rule_files:
  - %s
scrape_configs:
  - job_name: otelcol-fastdeploy
    static_configs:
      - targets: [%s]
`, repoPath(t, "config/prometheus/deploy_metrics.rules.yml"), strings.Join(targets, ", "))
		path := filepath.Join(dir, "prometheus.yml")
		require.NoError(t, os.WriteFile(path, []byte(config), 0o600))
		cmd := exec.Command(bin, "--config.file="+path, "--storage.tsdb.path="+filepath.Join(dir, "data"),
			fmt.Sprintf("--web.listen-address=127.0.0.1:%d", ports["prometheus"]), "--log.level=warn")
		return cmd, fmt.Sprintf("http://127.0.0.1:%d/-/ready", ports["prometheus"])
	})
	return &prometheus{url: fmt.Sprintf("http://127.0.0.1:%d", ports["prometheus"])}
}

// scaleoutRuns is how many deployments each client worker runs.
const scaleoutRuns = 8

const scaleoutPlan = `service: scale-web
environment: production
revision: 5e1f00d
steps:
  - name: fetch
    run: sleep 0.3
  - name: migrate
    command: [sleep, "0.3"]
  - name: switch
    run: sleep 0.2
`

// TestScaleOutFailover runs deployments through HAProxy in front of three
// collectors at a steady rate, from the bundled deployer (lifecycle
// events) and from a client that sends what fastdeploy's deploy process
// sends (steps and finish with a deployment JWT). One collector is
// SIGKILLed mid-run and restarted later. Every deployment must arrive as
// one whole trace with one root span, Prometheus's sum of
// deployments_total over the collectors must equal the deployments run,
// and no client may see an error it did not retry.
func TestScaleOutFailover(t *testing.T) {
	deployerBin := deployerBinary(t)
	jwt := "scaleout-test-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	collectors, lb, prom := startScaleoutGroup(t, jwt)
	planPath := filepath.Join(t.TempDir(), "plan.yaml")
	require.NoError(t, os.WriteFile(planPath, []byte(scaleoutPlan), 0o600))

	const (
		deployerWorkers   = 3
		deploysPerWorker  = scaleoutRuns
		fastdeployWorkers = 2
		fastdeployRuns    = scaleoutRuns
		fastdeploySteps   = 3
	)
	total := deployerWorkers*deploysPerWorker + fastdeployWorkers*fastdeployRuns
	var done atomic.Int64
	var mu sync.Mutex
	var clientErrors []string
	clientError := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		clientErrors = append(clientErrors, fmt.Sprintf(format, args...))
	}
	var deployerIDs, fastdeployIDs []string
	// When each fastdeploy deployment really started: the client's clock
	// when it "started" it, as fastdeploy's server would.
	var fdStartMu sync.Mutex
	fastdeployStarted := map[string]time.Time{}
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	for w := range deployerWorkers {
		for i := range deploysPerWorker {
			deployerIDs = append(deployerIDs, fmt.Sprintf("scale-%d-%d", w, i))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			spool := t.TempDir()
			for i := range deploysPerWorker {
				id := fmt.Sprintf("scale-%d-%d", w, i)
				cmd := exec.CommandContext(ctx, deployerBin, "run", "--collector-url", lb.url, "--deployment-id", id,
					"--spool-dir", spool, "--progress", "plain", planPath)
				out, err := cmd.CombinedOutput()
				switch {
				case err != nil:
					clientError("deployer %s: %v\n%s", id, err, out)
				case strings.Contains(string(out), "spooled"):
					clientError("deployer %s did not deliver everything live:\n%s", id, out)
				}
				done.Add(1)
			}
			// Nothing waits in the spool for a later flush.
			err := filepath.WalkDir(spool, func(path string, d os.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					clientError("deployer worker %d left %s in its spool", w, path)
				}
				return err
			})
			if err != nil {
				clientError("spool of worker %d: %v", w, err)
			}
		}()
	}
	for w := range fastdeployWorkers {
		for i := range fastdeployRuns {
			fastdeployIDs = append(fastdeployIDs, strconv.Itoa(7000+w*1000+i))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range fastdeployRuns {
				id := 7000 + w*1000 + i
				// fastdeploy starts the deployment and issues its token, valid
				// 30 minutes; its deploy process starts a moment later.
				deploymentStart := time.Now()
				fdStartMu.Lock()
				fastdeployStarted[deploytrace.DeploymentTraceID(strconv.Itoa(id)).String()] = deploymentStart
				fdStartMu.Unlock()
				task := &fakefastdeploy.DeployTask{
					StepsURL: lb.url + "/steps/", FinishURL: lb.url + "/deployments/finish/",
					AccessToken: fakefastdeploy.SignToken([]byte(jwt), map[string]any{"type": "deployment", "deployment": id}, deploymentStart.Add(30*time.Minute)),
					SleepOnFail: 200 * time.Millisecond,
				}
				time.Sleep(50 * time.Millisecond) // the deploy process starts
				start := time.Now()
				for s := range fastdeploySteps {
					time.Sleep(300 * time.Millisecond) // the step runs, as long as the deployer's run so both clients overlap the kill
					out, err := task.SendStep(ctx, fakefastdeploy.StepResult{Name: fmt.Sprintf("step %d", s), State: "success",
						Started: start, Finished: time.Now()})
					if err != nil || !out.Delivered {
						clientError("fastdeploy %d step %d: %v %v", id, s, out.Statuses, err)
					}
					start = time.Now()
				}
				if status, err := task.Finish(ctx); err != nil {
					clientError("fastdeploy %d finish: %d %v", id, status, err)
				}
				done.Add(1)
			}
		}()
	}

	// Mid-run, SIGKILL the first collector; restart it later.
	victim := collectors[0]
	waitDone := func(n int) {
		require.True(t, poll(5*time.Minute, func() bool { return done.Load() >= int64(n) }), "%d deployments done", n)
	}
	waitDone(total / 3)
	// Kill it while one of its fastdeploy deployments is under way: steps
	// exported, no root span yet anywhere. fastdeploy's is the harder case:
	// its calls carry no start, the deployer's events do.
	roots := func() map[string]bool {
		out := map[string]bool{}
		for _, c := range collectors {
			for _, s := range c.sink.Spans() {
				if attr(s.Span, "fastdeploy.span.kind") == "deployment" {
					out[s.Span.TraceID().String()] = true
				}
			}
		}
		return out
	}
	var underWay string
	require.True(t, poll(60*time.Second, func() bool {
		finished := roots()
		fdStartMu.Lock()
		defer fdStartMu.Unlock()
		for _, s := range victim.sink.Spans() {
			tr := s.Span.TraceID().String()
			if _, fd := fastdeployStarted[tr]; fd && !finished[tr] {
				underWay = tr
				return true
			}
		}
		return false
	}), "a fastdeploy deployment under way on %s", victim.name)
	// A probe asks HAProxy for /health as the deployment under way, so it
	// is placed on the victim until the victim dies: the failover gap is
	// how long after the kill its requests succeed again.
	idOfTrace := map[string]string{}
	for _, id := range append(append([]string(nil), deployerIDs...), fastdeployIDs...) {
		idOfTrace[deploytrace.DeploymentTraceID(id).String()] = id
	}
	probe := startFailoverProbe(lb.url, idOfTrace[underWay])
	killedAt := time.Now()
	victim.proc.Kill()
	t.Logf("SIGKILLed %s after %d of %d deployments", victim.name, done.Load(), total)
	waitDone(2 * total / 3)
	gap := probe.stop(killedAt)
	t.Logf("failover: first probe request after the kill answered 200 after %s; %d probe requests failed; slowest probe request %s",
		gap.firstOK, gap.failed, gap.slowest)
	assert.Zero(t, gap.failed, "HAProxy retried every probe request on a live collector")
	victim.start(t)
	t.Logf("restarted %s after %s, %d deployments done", victim.name, time.Since(killedAt).Round(time.Millisecond), done.Load())
	wg.Wait()
	require.Empty(t, clientErrors, "no client saw an error it did not retry")

	// Every deployment: one whole trace, one root span, every span once.
	type copyOf struct {
		kind, parent string
		start, end   time.Time
		from         []string
	}
	spansByTrace := func() map[string]map[string]*copyOf {
		out := map[string]map[string]*copyOf{}
		for _, c := range collectors {
			for _, s := range c.sink.Spans() {
				tr := s.Span.TraceID().String()
				if out[tr] == nil {
					out[tr] = map[string]*copyOf{}
				}
				id := s.Span.SpanID().String()
				if out[tr][id] == nil {
					out[tr][id] = &copyOf{kind: attr(s.Span, "fastdeploy.span.kind"), parent: s.Span.ParentSpanID().String(),
						start: s.Span.StartTimestamp().AsTime(), end: s.Span.EndTimestamp().AsTime()}
				}
				out[tr][id].from = append(out[tr][id].from, c.name)
			}
		}
		return out
	}
	want := map[string]int{} // trace id -> spans
	selfContained := map[string]bool{}
	for _, id := range deployerIDs {
		want[deploytrace.DeploymentTraceID(id).String()] = 1 + 3 + 3 // root, steps, their subprocesses
		selfContained[deploytrace.DeploymentTraceID(id).String()] = true
	}
	for _, id := range fastdeployIDs {
		want[deploytrace.DeploymentTraceID(id).String()] = 1 + fastdeploySteps
	}
	complete := func() (bool, string) {
		got := spansByTrace()
		for tr, n := range want {
			if len(got[tr]) < n {
				return false, fmt.Sprintf("trace %s has %d of %d spans", tr, len(got[tr]), n)
			}
		}
		return true, ""
	}
	var last string
	ok := poll(90*time.Second, func() bool {
		var whole bool
		whole, last = complete()
		return whole
	})
	require.True(t, ok, last)
	got := spansByTrace()
	duplicates := 0
	for tr, n := range want {
		spans := got[tr]
		assert.Len(t, spans, n, "trace %s: every span, nothing extra", tr)
		roots := 0
		for id, s := range spans {
			if s.kind == "deployment" {
				roots++
			} else if _, ok := spans[s.parent]; !ok {
				t.Errorf("trace %s: span %s (%s) has no parent %s in the trace", tr, id, s.kind, s.parent)
			}
			if len(s.from) > 1 {
				duplicates++
				t.Logf("trace %s span %s (%s) exported %d times, by %v", tr, id, s.kind, len(s.from), s.from)
			}
		}
		assert.Equal(t, 1, roots, "trace %s: one root span", tr)
		// The deployer's events carry the deployment's start, fastdeploy's
		// token tells it: the root span encloses every step whichever
		// collector built it, and a fastdeploy root starts when the
		// deployment did, to the second of the token's expiry.
		if started, ok := fastdeployStarted[tr]; ok {
			for _, s := range spans {
				if s.kind != "deployment" {
					continue
				}
				assert.False(t, s.start.After(started), "trace %s: root starts at %s, after the deployment's start %s", tr, s.start, started)
				assert.Less(t, started.Sub(s.start), time.Second, "trace %s: root starts at %s, the deployment at %s", tr, s.start, started)
			}
		} else if !selfContained[tr] {
			continue
		}
		for id, s := range spans {
			if s.kind != "deployment" {
				continue
			}
			for cid, c := range spans {
				if c.start.Before(s.start) || c.end.After(s.end) {
					t.Errorf("trace %s: span %s (%s) lies outside its root %s", tr, cid, c.kind, id)
				}
			}
		}
	}
	assert.Zero(t, duplicates, "every span exported exactly once")
	from := map[string]bool{}
	for _, s := range got[underWay] {
		for _, c := range s.from {
			from[c] = true
		}
	}
	t.Logf("deployment under way at the kill (trace %s) exported by %v", underWay, from)
	assert.Greater(t, len(from), 1, "the deployment under way moved to another collector")
	for _, s := range got[underWay] {
		if s.kind == "deployment" {
			t.Logf("moved fastdeploy deployment: root span from %s starts %s after the deployment's start",
				s.from, s.start.Sub(fastdeployStarted[underWay]))
		}
	}

	// The metrics add up across collectors: three instances, one total.
	prom.waitForValue(t, `sum(deployments_total)`, float64(total))
	prom.waitForValue(t, `count(count by (instance) (deployments_total))`, 3)
}

// failoverProbe sends GET /health through HAProxy, placed as one
// deployment, every 10 ms.
type failoverProbe struct {
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	calls  []probeCall
}

type probeCall struct {
	start, end time.Time
	ok         bool
}

type failoverGap struct {
	firstOK time.Duration // from the kill to the end of the first successful request sent after it
	failed  int
	slowest time.Duration
}

func startFailoverProbe(lbURL, deploymentID string) *failoverProbe {
	ctx, cancel := context.WithCancel(context.Background())
	p := &failoverProbe{cancel: cancel, done: make(chan struct{})}
	client := &http.Client{Timeout: 10 * time.Second}
	go func() {
		defer close(p.done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, lbURL+"/health", nil)
			req.Header.Set("X-Fastdeploy-Deployment", deploymentID)
			c := probeCall{start: time.Now()}
			resp, err := client.Do(req)
			if err == nil {
				c.ok = resp.StatusCode == http.StatusOK
				resp.Body.Close()
			}
			c.end = time.Now()
			if ctx.Err() != nil {
				return
			}
			p.mu.Lock()
			p.calls = append(p.calls, c)
			p.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return p
}

func (p *failoverProbe) stop(killedAt time.Time) failoverGap {
	p.cancel()
	<-p.done
	var g failoverGap
	g.firstOK = -1
	for _, c := range p.calls {
		if !c.ok {
			g.failed++
		}
		if c.end.After(killedAt) {
			g.slowest = max(g.slowest, c.end.Sub(c.start))
			if c.ok && g.firstOK < 0 && !c.start.Before(killedAt) {
				g.firstOK = c.end.Sub(killedAt)
			}
		}
	}
	return g
}

// TestScaleOutRetriedFinishCountsOnce sends the same finishing request to
// two collectors through HAProxy, as a client does that never heard the
// answer of a collector that then died: deployments finish on their
// collectors, the busiest one is SIGKILLed, and every finishing request is
// sent again. The deployments of the dead collector reach another one,
// which builds their root spans again; the shared ledger keeps it from
// counting them, so Prometheus's sum of deployments_total over the three
// collectors (the dead one restarted with its stored counts) equals the
// deployments run.
func TestScaleOutRetriedFinishCountsOnce(t *testing.T) {
	collectors, lb, prom := startScaleoutGroup(t, "scaleout-dup-"+strconv.FormatInt(time.Now().UnixNano(), 36))

	const deployments = 12
	send := func(id string, body []byte) {
		t.Helper()
		r := post(t, lb.url+"/v1/deployments/events", "application/x-ndjson", body, map[string]string{"X-Fastdeploy-Deployment": id})
		require.Equal(t, http.StatusOK, r.status, "deployment %s: %v", id, r.body)
	}
	finishes := map[string][]byte{}
	for i := range deployments {
		id := fmt.Sprintf("dup-%d", i)
		started := time.Now().UTC()
		ts := func(d time.Duration) string { return started.Add(d).Format(time.RFC3339Nano) }
		send(id, []byte(fmt.Sprintf(`{"type":"deployment.started","id":"%[1]s-0","time":%[2]q,"deployment":{"id":%[1]q,"service":"dup-web","environment":"production","started":%[2]q}}
{"type":"step.finished","id":"%[1]s-1","time":%[3]q,"deployment":{"id":%[1]q,"service":"dup-web","environment":"production"},"step":{"name":"build","position":0,"state":"success","started":%[2]q,"finished":%[3]q}}
`, id, ts(0), ts(time.Millisecond))))
		finishes[id] = []byte(fmt.Sprintf(`{"type":"deployment.finished","id":"%[1]s-2","time":%[3]q,"deployment":{"id":%[1]q,"service":"dup-web","environment":"production","started":%[2]q,"finished":%[3]q,"status":"success"}}
`, id, ts(0), ts(2*time.Millisecond)))
		send(id, finishes[id])
	}
	rootsOn := func(c *scaleoutCollector) map[string]bool {
		out := map[string]bool{}
		for _, s := range c.sink.Spans() {
			if attr(s.Span, "fastdeploy.span.kind") == "deployment" {
				out[s.Span.TraceID().String()] = true
			}
		}
		return out
	}
	require.True(t, poll(30*time.Second, func() bool {
		n := 0
		for _, c := range collectors {
			n += len(rootsOn(c))
		}
		return n == deployments
	}), "every deployment's root span exported once")
	prom.waitForValue(t, `sum(deployments_total)`, deployments)

	victim := collectors[0]
	for _, c := range collectors[1:] {
		if len(rootsOn(c)) > len(rootsOn(victim)) {
			victim = c
		}
	}
	moved := rootsOn(victim)
	require.NotEmpty(t, moved)
	victim.proc.Kill()
	t.Logf("SIGKILLed %s, which had counted %d of %d deployments", victim.name, len(moved), deployments)

	// The client heard no answer and sends every finish again.
	for id, body := range finishes {
		send(id, body)
	}
	var survivors []*scaleoutCollector
	for _, c := range collectors {
		if c != victim {
			survivors = append(survivors, c)
		}
	}
	// The dead collector's deployments reached a second collector, which
	// built their root spans again: the same finish on two instances.
	require.True(t, poll(30*time.Second, func() bool {
		again := 0
		for tr := range moved {
			for _, c := range survivors {
				if rootsOn(c)[tr] {
					again++
				}
			}
		}
		return again == len(moved)
	}), "the finishes of %s's deployments reached another collector", victim.name)

	victim.start(t)
	prom.waitForValue(t, `count(count by (instance) (deployments_total))`, 3)
	// Counted once: the restarted collector reports what it stored, the
	// others did not count the retries, and the sum never went past the
	// deployments run at any scrape since the kill.
	prom.waitForValue(t, `sum(deployments_total)`, deployments)
	prom.waitForValue(t, `max_over_time(sum(deployments_total)[20s:250ms])`, deployments)
	prom.waitForValue(t, `sum(deployments_total{instance="`+fmt.Sprintf("127.0.0.1:%d", victim.metrics)+`"})`, float64(len(moved)))
}
