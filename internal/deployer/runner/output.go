package runner

import (
	"bytes"
	"strconv"
	"strings"
	"sync"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployer/ansible"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployer/delivery"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployer/plan"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/deploytrace"
)

// maxLine bounds one output line; longer ones are cut into pieces so a
// step printing without newlines cannot exhaust memory.
const maxLine = 64 << 10

// lineWriter splits a subprocess's output into lines.
type lineWriter struct {
	mu  sync.Mutex
	buf []byte
	fn  func(string)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			if len(w.buf) >= maxLine {
				w.fn(string(w.buf[:maxLine]))
				w.buf = w.buf[maxLine:]
				continue
			}
			break
		}
		w.fn(strings.TrimSuffix(string(w.buf[:i]), "\r"))
		w.buf = w.buf[i+1:]
	}
	return len(p), nil
}

// Flush emits a last line without newline.
func (w *lineWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.fn(string(w.buf))
		w.buf = nil
	}
}

// Ansible output is sent per step in as few requests as possible, so the
// receiver sees a playbook's tasks together; very long runs are cut.
const (
	ansibleBatchLines = 1000
	ansibleBatchBytes = 1 << 20
)

// ansibleForwarder reads the callback's JSON lines from a playbook's
// stdout: it forwards them to /v1/ansible and shows them as progress.
type ansibleForwarder struct {
	r        *run
	position int
	step     *plan.Step
	reader   *ansible.Reader // used by the stdout writer alone
	tail     *tailBuffer     // the step's stderr tail

	mu      sync.Mutex
	lines   []string
	size    int
	failure string // the last failed task, for the step's message
}

func (f *ansibleForwarder) line(raw string) {
	if f.r.o.AnsibleCallback == ansible.CallbackJSONL {
		// jsonl announces each task as it starts.
		if l, ok := ansible.Parse([]byte(raw)); ok && (l.Event == "v2_playbook_on_task_start" || l.Event == "v2_playbook_on_handler_task_start") {
			f.r.activity(f.position, "TASK "+f.r.o.Masker.String(l.Task))
		}
	}
	out, ok := f.reader.Read([]byte(raw))
	if !ok {
		f.r.output(f.position, "stdout", raw)
		return
	}
	for _, text := range out.Lines {
		f.r.output(f.position, "ansible", text)
	}
	f.mu.Lock()
	if out.Failure != "" {
		f.failure = out.Failure
	}
	f.lines = append(f.lines, f.r.o.Masker.Values(raw))
	f.size += len(raw)
	full := len(f.lines) >= ansibleBatchLines || f.size >= ansibleBatchBytes
	f.mu.Unlock()
	if full {
		f.flush()
	}
}

// stderrLine shows the bundled plugin's recap as Ansible output, and the
// rest of stderr (warnings, errors) as such.
func (f *ansibleForwarder) stderrLine(raw string) {
	// The bundled plugin announces each host's start of a task, for the
	// live status line only.
	if running, ok := strings.CutPrefix(raw, ansible.RunningPrefix); ok {
		f.r.activity(f.position, "TASK "+f.r.o.Masker.String(running))
		return
	}
	if strings.HasPrefix(raw, "RECAP ") {
		f.r.output(f.position, "ansible", raw)
		return
	}
	f.tail.add(f.r.output(f.position, "stderr", raw))
}

// flush hands the collected lines to the sink: headers name the deployment
// and step, and traceparent the step's subprocess span, under which the
// receiver hangs the task spans.
func (f *ansibleForwarder) flush() {
	f.mu.Lock()
	lines := f.lines
	f.lines, f.size = nil, 0
	f.mu.Unlock()
	if len(lines) == 0 || f.r.o.Sink == nil {
		return
	}
	sub := deploytrace.SubprocessSpanID(f.r.trace, f.r.o.DeploymentID, f.step.Name, f.position)
	f.r.o.Sink.Enqueue(&delivery.Request{
		Path:        delivery.PathAnsible,
		ContentType: delivery.ContentTypeNDJSON,
		Header: map[string]string{
			"X-Fastdeploy-Deployment":    f.r.o.DeploymentID,
			"X-Fastdeploy-Step":          f.step.Name,
			"X-Fastdeploy-Step-Position": strconv.Itoa(f.position),
			"X-Fastdeploy-Service":       f.r.p.Service,
			"traceparent":                deploytrace.FormatTraceparent(f.r.trace, sub),
		},
		Body:       strings.Join(lines, "\n") + "\n",
		Items:      len(lines),
		Deployment: f.r.o.DeploymentID,
	})
}
