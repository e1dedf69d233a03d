package ansible

import (
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/valyala/fastjson"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/jsoncb"
)

// Callback names the stdout callback an ansible step runs with.
type Callback string

const (
	// CallbackBundled is fastdeploy_json_cb, the plugin shipped inside the
	// deployer: one json_cb line per host result, loop item and handler run.
	CallbackBundled Callback = "fastdeploy"
	// CallbackJSONL is Ansible's stock ansible.posix.jsonl callback.
	CallbackJSONL Callback = "jsonl"
)

// ParseCallback reads a --ansible-callback value; empty means the default.
func ParseCallback(s string) (Callback, error) {
	switch Callback(s) {
	case "", CallbackBundled:
		return CallbackBundled, nil
	case CallbackJSONL, JSONLCallback:
		return CallbackJSONL, nil
	}
	return "", fmt.Errorf("unknown ansible callback %q: want %s or %s", s, CallbackBundled, CallbackJSONL)
}

// RunningPrefix starts the stderr line the bundled plugin prints when a
// host starts a task ("RUNNING [web1] migrate"), which the deployer shows
// in its live status line.
const RunningPrefix = "RUNNING "

// BundledName is the bundled plugin's name, as ANSIBLE_STDOUT_CALLBACK
// selects it; its file is <name>.py.
const BundledName = "fastdeploy_json_cb"

//go:embed callback/fastdeploy_json_cb.py
var bundledSource []byte

// BundledSource is the bundled plugin's Python source.
func BundledSource() []byte { return append([]byte(nil), bundledSource...) }

// Setup prepares a run of ansible-playbook with callback c: for the bundled
// plugin it writes the plugin into dir (a private temporary directory of
// the step). It returns the environment to add to the step's, given the
// step's environment so far (environ), whose own callback plugin
// directories stay searched.
func Setup(c Callback, dir string, environ []string) ([]string, error) {
	env := []string{
		"ANSIBLE_NOCOLOR=1",
		"ANSIBLE_FORCE_COLOR=0",
		"ANSIBLE_RETRY_FILES_ENABLED=0",
		"PYTHONUNBUFFERED=1",
	}
	if c == CallbackJSONL {
		return append(env, "ANSIBLE_STDOUT_CALLBACK="+JSONLCallback, "ANSIBLE_JSON_INDENT=0"), nil
	}
	pluginDir := filepath.Join(dir, "callback_plugins")
	if err := os.MkdirAll(pluginDir, 0o700); err != nil {
		return nil, fmt.Errorf("create callback plugin directory: %w", err)
	}
	if err := os.WriteFile(filepath.Join(pluginDir, BundledName+".py"), bundledSource, 0o600); err != nil {
		return nil, fmt.Errorf("write callback plugin: %w", err)
	}
	paths := pluginDir
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "ANSIBLE_CALLBACK_PLUGINS="); ok && v != "" {
			paths = pluginDir + string(os.PathListSeparator) + v
		}
	}
	return append(env, "ANSIBLE_CALLBACK_PLUGINS="+paths, "ANSIBLE_STDOUT_CALLBACK="+BundledName), nil
}

// Output is what one line of callback output means to a person.
type Output struct {
	// Lines to show on the terminal.
	Lines []string
	// Failure summarises a failed or unreachable host that Ansible did
	// not carry on past, for the step's message; empty otherwise.
	Failure string
}

// Reader reads a playbook's stdout, one line at a time, for one step.
type Reader struct {
	callback Callback
	play     string // the play of the last json_cb line
}

// NewReader reads output of callback c.
func NewReader(c Callback) *Reader { return &Reader{callback: c} }

// Read interprets one stdout line; ok is false for lines that are not the
// callback's JSON (warnings, output of a misconfigured callback): they are
// shown as they are and not forwarded.
func (r *Reader) Read(raw []byte) (out Output, ok bool) {
	if r.callback == CallbackJSONL {
		l, ok := Parse(raw)
		if !ok {
			return Output{}, false
		}
		return Output{Lines: Format(l), Failure: l.Failure()}, true
	}
	t, ok := ParseTask(raw)
	if !ok {
		return Output{}, false
	}
	if t.Play != "" && t.Play != r.play {
		r.play = t.Play
		out.Lines = append(out.Lines, "PLAY "+t.Play)
	}
	out.Lines = append(out.Lines, t.Format())
	if (t.State == jsoncb.StateFailure || t.State == jsoncb.StateUnreachable) && !t.IgnoreErrors && t.ItemIndex < 0 {
		out.Failure = fmt.Sprintf("task %q %s on %s", t.Name, t.Status(), t.Host)
		if t.ErrorMessage != "" {
			out.Failure += ": " + t.ErrorMessage
		}
	}
	return out, true
}

// Task is one json_cb line of the bundled plugin, read with the record
// definition the receiver reads it with.
type Task struct{ jsoncb.Record }

// ParseTask reads one json_cb line; ok is false unless it is a record the
// receiver would read: valid JSON, the fields every json_cb line has, each
// of its type.
func ParseTask(raw []byte) (Task, bool) {
	// A parser of its own: the record's misc points into it.
	var p fastjson.Parser
	r, err := jsoncb.Parse(&p, raw, time.Local)
	if err != nil || r.Missing != "" {
		return Task{}, false
	}
	return Task{r}, true
}

// Status is the word Ansible's own output uses: ok, changed, failed,
// skipped or unreachable.
func (t Task) Status() string {
	switch t.State {
	case jsoncb.StateFailure:
		return "failed"
	case jsoncb.StateSkipped, jsoncb.StateUnreachable:
		return t.State
	}
	if t.Changed != nil && *t.Changed {
		return "changed"
	}
	return "ok"
}

// Format renders t as a terminal line, like Ansible's default callback but
// shorter.
func (t Task) Format() string {
	s := fmt.Sprintf("%-9s [%s] %s", t.Status()+":", t.Host, t.Name)
	if t.Handler {
		s += " (handler)"
	}
	if t.ItemIndex >= 0 {
		if t.Item != "" {
			s += fmt.Sprintf(" (item %s)", t.Item)
		} else {
			s += fmt.Sprintf(" (item %d)", t.ItemIndex)
		}
	} else if items := t.loopResults(); items != nil && items.Type() == fastjson.TypeArray {
		s += fmt.Sprintf(" (%d items)", len(items.GetArray()))
	}
	if t.ErrorMessage != "" && (t.State == jsoncb.StateFailure || t.State == jsoncb.StateUnreachable) {
		s += ": " + t.ErrorMessage
	}
	if t.IgnoreErrors {
		s += " (ignored)"
	}
	return s
}

// loopResults is misc.results, the results of a loop's items on the
// task's summary line; nil when there is none.
func (t Task) loopResults() *fastjson.Value {
	if t.Misc == nil {
		return nil
	}
	return t.Misc.Get("results")
}
