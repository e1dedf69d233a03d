package ansible

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseCallback(t *testing.T) {
	for in, want := range map[string]Callback{"": CallbackBundled, "fastdeploy": CallbackBundled, "jsonl": CallbackJSONL, "ansible.posix.jsonl": CallbackJSONL} {
		got, err := ParseCallback(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	_, err := ParseCallback("yaml")
	assert.EqualError(t, err, `unknown ansible callback "yaml": want fastdeploy or jsonl`)
}

func TestSetupWritesTheBundledPlugin(t *testing.T) {
	dir := t.TempDir()
	env, err := Setup(CallbackBundled, dir, []string{"ANSIBLE_CALLBACK_PLUGINS=/etc/ansible/cb:/opt/cb"})
	require.NoError(t, err)
	pluginDir := filepath.Join(dir, "callback_plugins")
	assert.Contains(t, env, "ANSIBLE_STDOUT_CALLBACK=fastdeploy_json_cb")
	assert.Contains(t, env, "ANSIBLE_CALLBACK_PLUGINS="+pluginDir+":/etc/ansible/cb:/opt/cb", "the user's plugin directories stay searched")
	src, err := os.ReadFile(filepath.Join(pluginDir, "fastdeploy_json_cb.py"))
	require.NoError(t, err)
	onDisk, err := os.ReadFile("callback/fastdeploy_json_cb.py")
	require.NoError(t, err)
	assert.Equal(t, onDisk, src, "the embedded plugin is the repository's file")
	assert.Contains(t, string(src), "CALLBACK_NAME = 'fastdeploy_json_cb'")

	env, err = Setup(CallbackJSONL, t.TempDir(), nil)
	require.NoError(t, err)
	assert.Contains(t, env, "ANSIBLE_STDOUT_CALLBACK=ansible.posix.jsonl")
	for _, kv := range env {
		assert.NotContains(t, kv, "ANSIBLE_CALLBACK_PLUGINS")
	}
}

func TestTaskFormat(t *testing.T) {
	for _, tc := range []struct{ line, want, failure string }{
		{`{"position":0,"name":"say hello","state":"success","host":"web1","start":"a","end":"b","misc":{"changed":false}}`,
			"ok:       [web1] say hello", ""},
		{`{"position":1,"name":"write","state":"success","host":"web1","start":"a","end":"b","misc":{"changed":true}}`,
			"changed:  [web1] write", ""},
		{`{"position":2,"name":"probe","state":"failure","host":"web1","error_message":"non-zero return code","ignore_errors":true,"start":"a","end":"b"}`,
			"failed:   [web1] probe: non-zero return code (ignored)", ""},
		{`{"position":3,"name":"dirs","state":"skipped","host":"web1","item_index":2,"item":"logs","start":"a","end":"b"}`,
			"skipped:  [web1] dirs (item logs)", ""},
		{`{"position":3,"name":"dirs","state":"success","host":"web1","item_index":0,"item":{"path":"/srv"},"start":"a","end":"b"}`,
			`ok:       [web1] dirs (item {"path":"/srv"})`, ""},
		{`{"position":3,"name":"dirs","state":"success","host":"web1","start":"a","end":"b","misc":{"results":[{},{},{}]}}`,
			"ok:       [web1] dirs (3 items)", ""},
		{`{"position":4,"name":"hidden","state":"success","host":"web1","item_index":0,"start":"a","end":"b"}`,
			"ok:       [web1] hidden (item 0)", ""},
		{`{"position":5,"name":"restart","state":"success","host":"web1","handler":true,"start":"a","end":"b"}`,
			"ok:       [web1] restart (handler)", ""},
		{`{"position":6,"name":"ping","state":"unreachable","host":"down","error_message":"no route","start":"a","end":"b"}`,
			"unreachable: [down] ping: no route", `task "ping" unreachable on down: no route`},
		{`{"position":7,"name":"migrate","state":"failure","host":"db1","error_message":"exit 3","start":"a","end":"b"}`,
			"failed:   [db1] migrate: exit 3", `task "migrate" failed on db1: exit 3`},
	} {
		out, ok := NewReader(CallbackBundled).Read([]byte(tc.line))
		require.True(t, ok, tc.line)
		assert.Equal(t, []string{tc.want}, out.Lines, tc.line)
		assert.Equal(t, tc.failure, out.Failure, tc.line)
	}
	for _, in := range []string{"", "[WARNING]: no inventory", "{}", `{"position":1}`, `{"position":"1","name":"x","state":"success","start":"a","end":"b"}`,
		`{"_event":"v2_runner_on_ok","hosts":{}}`} {
		_, ok := NewReader(CallbackBundled).Read([]byte(in))
		assert.False(t, ok, in)
	}
}

func TestReaderShowsEachPlayOnce(t *testing.T) {
	r := NewReader(CallbackBundled)
	var lines []string
	for _, l := range []string{
		`{"position":0,"name":"a","state":"success","host":"h","play":"one","start":"s","end":"e"}`,
		`{"position":1,"name":"b","state":"success","host":"h","play":"one","start":"s","end":"e"}`,
		`{"position":2,"name":"c","state":"success","host":"h","play":"two","start":"s","end":"e"}`,
	} {
		out, ok := r.Read([]byte(l))
		require.True(t, ok)
		lines = append(lines, out.Lines...)
	}
	assert.Equal(t, []string{"PLAY one", "ok:       [h] a", "ok:       [h] b", "PLAY two", "ok:       [h] c"}, lines)
}

// jsonCBLine is a line of the bundled callback as the receiver reads it:
// the fields it requires and the optional ones it knows.
type jsonCBLine struct {
	Position     *int           `json:"position"`
	Name         string         `json:"name"`
	State        string         `json:"state"`
	Start        string         `json:"start"`
	End          string         `json:"end"`
	Host         string         `json:"host"`
	Play         string         `json:"play"`
	Handler      bool           `json:"handler"`
	ItemIndex    *int           `json:"item_index"`
	Item         any            `json:"item"`
	ErrorMessage any            `json:"error_message"`
	IgnoreErrors bool           `json:"ignore_errors"`
	Misc         map[string]any `json:"misc"`

	start, end time.Time
}

// TestBundledCallbackRealRun runs ansible-playbook with the bundled plugin
// over two local hosts and an unreachable one and checks every line it
// prints: the receiver's required fields, zone-aware times within the run,
// each host's and each loop item's result, handlers, plays, ignore_errors,
// and no_log results staying hidden.
func TestBundledCallbackRealRun(t *testing.T) {
	bin, err := exec.LookPath("ansible-playbook")
	if err != nil {
		t.Skip("ansible-playbook not installed (Debian package ansible; make test installs it): skipping the real run of the bundled callback")
	}
	env, err := Setup(CallbackBundled, t.TempDir(), nil)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-i", "testdata/callback/inventory.ini", "testdata/callback/playbook.yml")
	cmd.Env = append(append(os.Environ(), "ANSIBLE_HOST_KEY_CHECKING=False", "ANSIBLE_LOCAL_TEMP="+t.TempDir()), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	before := time.Now()
	runErr := cmd.Run()
	after := time.Now()
	require.Error(t, runErr, "web2 failed and down was unreachable: ansible-playbook exits non-zero")
	t.Logf("ansible-playbook took %s", after.Sub(before).Round(time.Millisecond))

	var got []jsonCBLine
	var failures []string
	reader := NewReader(CallbackBundled)
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		raw := sc.Bytes()
		var l jsonCBLine
		dec := json.NewDecoder(bytes.NewReader(raw))
		require.NoError(t, dec.Decode(&l), "stdout holds JSON lines only: %s", raw)
		require.NotNil(t, l.Position, "position: %s", raw)
		require.NotEmpty(t, l.Name, raw)
		require.Contains(t, []string{"success", "failure", "skipped", "unreachable"}, l.State, raw)
		require.NotEmpty(t, l.Host, raw)
		require.NotEmpty(t, l.Play, raw)
		// RFC 3339 demands a zone: the receiver needs no tz hint.
		l.start, err = time.Parse(time.RFC3339Nano, l.Start)
		require.NoError(t, err, "start has a zone: %s", raw)
		l.end, err = time.Parse(time.RFC3339Nano, l.End)
		require.NoError(t, err, "end has a zone: %s", raw)
		assert.False(t, l.end.Before(l.start), "end after start: %s", raw)
		assert.True(t, !l.start.Before(before.Add(-time.Second)) && !l.end.After(after.Add(time.Second)), "times within the run: %s", raw)
		if l.State == "failure" || l.State == "unreachable" {
			assert.NotEmpty(t, l.ErrorMessage, raw)
		}
		for k := range l.Misc {
			assert.False(t, strings.HasPrefix(k, "_ansible_"), "Ansible's bookkeeping is dropped: %s", k)
		}
		out, ok := reader.Read(raw)
		require.True(t, ok, "the deployer reads every line: %s", raw)
		if out.Failure != "" {
			failures = append(failures, out.Failure)
		}
		got = append(got, l)
	}
	require.NoError(t, sc.Err())
	assert.NotContains(t, stdout.String(), "hidden-value-not-real", "no_log results stay hidden")

	// What happened, per task position, host and item.
	var summary []string
	for _, l := range got {
		s := fmt.Sprintf("%d %s @%s %s", *l.Position, l.Name, l.Host, l.State)
		if l.ItemIndex != nil {
			s += fmt.Sprintf(" item=%d:%v", *l.ItemIndex, l.Item)
		}
		if l.Handler {
			s += " handler"
		}
		if l.IgnoreErrors {
			s += " ignored"
		}
		summary = append(summary, s+" play="+l.Play)
	}
	sort.Strings(summary)
	assert.Equal(t, []string{
		"0 say hello @down success play=configure web", // debug runs on the controller
		"0 say hello @web1 success play=configure web",
		"0 say hello @web2 success play=configure web",
		"1 optional probe @down unreachable play=configure web",
		"1 optional probe @web1 failure ignored play=configure web",
		"1 optional probe @web2 failure ignored play=configure web",
		"2 never runs @web1 skipped play=configure web",
		"2 never runs @web2 skipped play=configure web",
		"3 prepare directories @web1 skipped item=2:logs play=configure web",
		"3 prepare directories @web1 success item=0:releases play=configure web",
		"3 prepare directories @web1 success item=1:shared play=configure web",
		"3 prepare directories @web1 success play=configure web",
		"3 prepare directories @web2 skipped item=2:logs play=configure web",
		"3 prepare directories @web2 success item=0:releases play=configure web",
		"3 prepare directories @web2 success item=1:shared play=configure web",
		"3 prepare directories @web2 success play=configure web",
		"4 items that fail, ignored @web1 failure ignored play=configure web",
		"4 items that fail, ignored @web1 failure item=1:b ignored play=configure web",
		"4 items that fail, ignored @web1 success item=0:a play=configure web",
		"4 items that fail, ignored @web2 failure ignored play=configure web",
		"4 items that fail, ignored @web2 failure item=1:b ignored play=configure web",
		"4 items that fail, ignored @web2 success item=0:a play=configure web",
		"5 hidden loop @web1 success item=0:<nil> play=configure web",
		"5 hidden loop @web1 success play=configure web",
		"5 hidden loop @web2 success item=0:<nil> play=configure web",
		"5 hidden loop @web2 success play=configure web",
		"6 touch marker @web1 success play=configure web",
		"6 touch marker @web2 success play=configure web",
		"7 web2 breaks @web1 skipped play=configure web",
		"7 web2 breaks @web2 failure play=configure web",
		"8 restart app @web1 success handler play=configure web", // web2 failed: its handlers do not run
		"9 check @web1 success play=verify",
	}, summary)

	// Each host's result starts when the host started the task; loop items
	// tile that time, one after another.
	type hostTask struct {
		position int
		host     string
	}
	whole := map[hostTask]jsonCBLine{}
	items := map[hostTask][]jsonCBLine{}
	for _, l := range got {
		k := hostTask{*l.Position, l.Host}
		if l.ItemIndex == nil {
			whole[k] = l
		} else {
			items[k] = append(items[k], l)
		}
	}
	require.Len(t, items, 6)
	for k, its := range items {
		w, ok := whole[k]
		require.True(t, ok, "a loop's items come with the task's result: %v", k)
		assert.Equal(t, w.start, its[0].start, "the first item starts with the host's task: %v", k)
		for i := range its {
			assert.Equal(t, i, *its[i].ItemIndex, "%v", k)
			if i > 0 {
				assert.Equal(t, its[i-1].end, its[i].start, "item %d starts when item %d ended: %v", i, i-1, k)
			}
			assert.False(t, its[i].end.After(w.end), "items end within the task: %v", k)
		}
	}
	// Tasks start in order.
	var last time.Time
	for p := 0; p <= 9; p++ {
		first := time.Time{}
		for k, l := range whole {
			if k.position == p && (first.IsZero() || l.start.Before(first)) {
				first = l.start
			}
		}
		require.False(t, first.IsZero(), "task %d has results", p)
		assert.False(t, first.Before(last), "task %d starts after task %d", p, p-1)
		last = first
	}

	sort.Strings(failures)
	require.Len(t, failures, 2, "ignored failures are no failures of the step: %v", failures)
	assert.True(t, strings.HasPrefix(failures[0], `task "optional probe" unreachable on down: `), failures[0])
	assert.Equal(t, `task "web2 breaks" failed on web2: non-zero return code`, failures[1])

	assert.Contains(t, stderr.String(), "RECAP web1 ok=8 changed=4 failed=0 skipped=2 unreachable=0 ignored=2 rescued=0\n")
	assert.Contains(t, stderr.String(), "RECAP web2 ok=6 changed=4 failed=1 skipped=1 unreachable=0 ignored=2 rescued=0\n")
	assert.Contains(t, stderr.String(), "RECAP down ok=1 changed=0 failed=0 skipped=0 unreachable=1 ignored=0 rescued=0\n")
}
