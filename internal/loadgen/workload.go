// Package loadgen replays realistic deployments against the fastdeploy
// receiver: it varies ids, services and timing of the repository's sample
// deployments, sends them with N concurrent senders at a fixed rate or as
// fast as possible, and keeps account of what was acknowledged, so that
// tests can check that every acknowledged span was exported. The fdload
// command, the end-to-end fault tests and the benchmarks share it.
package loadgen

import (
	"bufio"
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deploytrace"
)

// Receiver paths.
const (
	PathEvents  = "/v1/deployments/events"
	PathAnsible = "/v1/ansible"
)

// The templates are copies of the repository's testdata samples (a test
// keeps them equal) so that the fdload binary needs no checkout.
//
//go:embed templates/*.ndjson
var templateFS embed.FS

// Request is one HTTP request of a deployment.
type Request struct {
	Path        string
	Query       string
	ContentType string
	Header      http.Header
	Body        []byte
	// Events is how many events (log records) the request carries.
	Events int
	// Spans are the spans that a 2xx for this request makes complete: the
	// receiver has handed them to the pipeline by the time it answers.
	Spans []deploytrace.SpanID
}

// Deployment is one generated deployment: its requests are sent in order
// by one sender, as the deployer would while the deployment runs.
type Deployment struct {
	ID       string
	Service  string
	Trace    deploytrace.TraceID
	Requests []Request
}

type template struct {
	name        string
	events      []map[string]any
	ansibleStep string // step whose subprocess ran the playbook, "" for none
	tasks       []map[string]any
}

// Workload makes deployments from the templates. It is deterministic for a
// seed, so a run can be reproduced.
type Workload struct {
	templates []template
	services  []string
	runID     string
	rng       *rand.Rand
	base      time.Time
}

// NewWorkload loads the embedded templates. runID keeps the deployment ids
// of different runs (and of runs against the same storage) apart.
// Deployments start within the day before the current UTC day: what is
// posted to a running collector must be recent (it refuses events more than
// five years old or a day ahead), so the times follow the clock while the
// rest stays deterministic for a seed.
func NewWorkload(runID string, seed uint64) (*Workload, error) {
	return NewWorkloadAt(runID, seed, time.Now().UTC().Truncate(24*time.Hour).Add(-24*time.Hour))
}

// NewWorkloadAt is NewWorkload with deployments starting within a day of
// base, for tests with fixed data and a fixed clock.
func NewWorkloadAt(runID string, seed uint64, base time.Time) (*Workload, error) {
	w := &Workload{
		services: []string{"web", "api", "billing", "search", "checkout", "auth", "worker", "gateway"},
		runID:    runID,
		rng:      rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		base:     base,
	}
	succeeded, err := readNDJSON("templates/deployment-events.ndjson")
	if err != nil {
		return nil, err
	}
	failed, err := readNDJSON("templates/deployment-failed.ndjson")
	if err != nil {
		return nil, err
	}
	tasks, err := readNDJSON("templates/ansible-json_cb.ndjson")
	if err != nil {
		return nil, err
	}
	w.templates = []template{
		{name: "succeeded", events: succeeded, ansibleStep: "migrate", tasks: tasks},
		{name: "failed", events: failed},
	}
	return w, nil
}

func readNDJSON(name string) ([]map[string]any, error) {
	b, err := templateFS.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("read template %s: %w", name, err)
	}
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.UseNumber()
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			return nil, fmt.Errorf("template %s: %w", name, err)
		}
		out = append(out, m)
	}
	return out, sc.Err()
}

// Deployment returns the n-th deployment of the run. One in five fails at
// its smoke test; the others run an Ansible playbook in their migrate step.
// Times are shifted so that deployments follow each other, and stretched
// by a random factor between 0.5 and 2.
const deploymentsPerDay = 24 * 60 * 6

func (w *Workload) Deployment(n int) Deployment {
	tpl := w.templates[0]
	if n%5 == 4 {
		tpl = w.templates[1]
	}
	id := fmt.Sprintf("%s-%d", w.runID, n)
	service := w.services[w.rng.IntN(len(w.services))]
	stretch := 0.5 + 1.5*w.rng.Float64()
	t0 := eventTime(tpl.events[0])
	// Starts ten seconds apart, wrapping within one day of base: the
	// receiver refuses times more than 24 hours ahead of its clock.
	start := w.base.Add(time.Duration(n%deploymentsPerDay) * 10 * time.Second)
	shift := func(t time.Time) time.Time {
		return start.Add(time.Duration(float64(t.Sub(t0)) * stretch))
	}
	d := Deployment{ID: id, Service: service, Trace: deploytrace.DeploymentTraceID(id)}

	events := make([]map[string]any, len(tpl.events))
	for i, ev := range tpl.events {
		events[i] = rewriteEvent(ev, id, service, i, shift)
	}
	split := len(events) / 2
	if tpl.ansibleStep != "" {
		for i, ev := range events {
			if ev["type"] == "step.started" && stepField(ev, "name") == tpl.ansibleStep {
				split = i + 1
				break
			}
		}
	}
	commands := map[string]bool{} // steps known to run a command, by name and position
	d.Requests = append(d.Requests, lifecycleRequest(d, events[:split], commands))
	if tpl.ansibleStep != "" {
		d.Requests = append(d.Requests, ansibleRequest(d, events[split-1], tpl.tasks, shift))
	}
	d.Requests = append(d.Requests, lifecycleRequest(d, events[split:], commands))
	return d
}

func eventTime(ev map[string]any) time.Time {
	s, _ := ev["time"].(string)
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

func stepField(ev map[string]any, k string) string {
	st, _ := ev["step"].(map[string]any)
	s, _ := st[k].(string)
	return s
}

func stepPosition(ev map[string]any) int {
	st, _ := ev["step"].(map[string]any)
	n, _ := st["position"].(json.Number)
	p, _ := strconv.Atoi(string(n))
	return p
}

// rewriteEvent copies a template event with a new deployment id, service,
// delivery id and shifted times.
func rewriteEvent(ev map[string]any, id, service string, i int, shift func(time.Time) time.Time) map[string]any {
	out := deepCopy(ev).(map[string]any)
	out["id"] = fmt.Sprintf("%s-%d", id, i)
	shiftTime := func(m map[string]any, k string) {
		if s, ok := m[k].(string); ok {
			if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
				m[k] = shift(t).Format(time.RFC3339Nano)
			}
		}
	}
	shiftTime(out, "time")
	if dep, ok := out["deployment"].(map[string]any); ok {
		dep["id"] = id
		dep["service"] = service
		shiftTime(dep, "started")
		shiftTime(dep, "finished")
	}
	if st, ok := out["step"].(map[string]any); ok {
		shiftTime(st, "started")
		shiftTime(st, "finished")
	}
	return out
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = deepCopy(e)
		}
		return s
	default:
		return v
	}
}

func ndjson(items []map[string]any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	for _, it := range items {
		_ = enc.Encode(it) // maps of JSON values always encode
	}
	return b.Bytes()
}

// lifecycleRequest posts events as NDJSON; a 2xx completes the spans of
// the steps and deployment that finish in it. A step has a subprocess span
// when any of its events so far named a command (commands carries that
// from earlier requests of the deployment).
func lifecycleRequest(d Deployment, events []map[string]any, commands map[string]bool) Request {
	r := Request{
		Path:        PathEvents,
		ContentType: "application/x-ndjson",
		Header:      http.Header{"X-Fastdeploy-Deployment": {d.ID}},
		Body:        ndjson(events),
		Events:      len(events),
	}
	for _, ev := range events {
		name, pos := stepField(ev, "name"), stepPosition(ev)
		key := name + "\x00" + strconv.Itoa(pos)
		if stepField(ev, "command") != "" {
			commands[key] = true
		}
		switch ev["type"] {
		case "step.finished":
			r.Spans = append(r.Spans, deploytrace.StepSpanID(d.Trace, d.ID, name, pos))
			if commands[key] {
				r.Spans = append(r.Spans, deploytrace.SubprocessSpanID(d.Trace, d.ID, name, pos))
			}
		case "deployment.finished":
			r.Spans = append(r.Spans, deploytrace.DeploymentSpanID(d.Trace, d.ID))
		}
	}
	return r
}

// ansibleTimeLayout is json_cb's zone-less isoformat().
const ansibleTimeLayout = "2006-01-02T15:04:05.999999"

// ansibleRequest posts the playbook run of the step that stepStarted
// opened, with a traceparent naming the step's subprocess span (as the
// deployer sends it), so the tasks' span ids do not depend on what the
// receiver remembers.
func ansibleRequest(d Deployment, stepStarted map[string]any, tasks []map[string]any, shift func(time.Time) time.Time) Request {
	name, pos := stepField(stepStarted, "name"), stepPosition(stepStarted)
	parent := deploytrace.SubprocessSpanID(d.Trace, d.ID, name, pos)
	out := make([]map[string]any, len(tasks))
	r := Request{
		Path:        PathAnsible,
		Query:       "tz=UTC",
		ContentType: "application/x-ndjson",
		Header: http.Header{
			"X-Fastdeploy-Deployment":    {d.ID},
			"X-Fastdeploy-Service":       {d.Service},
			"X-Fastdeploy-Step":          {name},
			"X-Fastdeploy-Step-Position": {strconv.Itoa(pos)},
			"Traceparent":                {deploytrace.FormatTraceparent(d.Trace, parent)},
		},
		Events: len(tasks),
	}
	for i, t := range tasks {
		c := deepCopy(t).(map[string]any)
		for _, k := range []string{"start", "end"} {
			if s, ok := c[k].(string); ok {
				if tm, err := time.Parse(ansibleTimeLayout, s); err == nil {
					c[k] = shift(tm).Format(ansibleTimeLayout)
				}
			}
		}
		out[i] = c
		p, _ := strconv.Atoi(string(c["position"].(json.Number)))
		host, _ := c["host"].(string)
		r.Spans = append(r.Spans, deploytrace.TaskSpanID(d.Trace, parent, p, host))
	}
	r.Body = ndjson(out)
	return r
}
