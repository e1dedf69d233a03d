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
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fastjson"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/jsoncb"
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
		{`{"position":0,"name":"say hello","state":"success","host":"web1","start":"2026-02-03T10:14:04.5+01:00","end":"2026-02-03T10:14:05+01:00","misc":{"changed":false}}`,
			"ok:       [web1] say hello", ""},
		{`{"position":1,"name":"write","state":"success","host":"web1","start":"2026-02-03T10:14:04.5+01:00","end":"2026-02-03T10:14:05+01:00","misc":{"changed":true}}`,
			"changed:  [web1] write", ""},
		{`{"position":2,"name":"probe","state":"failure","host":"web1","error_message":"non-zero return code","ignore_errors":true,"start":"2026-02-03T10:14:04.5+01:00","end":"2026-02-03T10:14:05+01:00"}`,
			"failed:   [web1] probe: non-zero return code (ignored)", ""},
		{`{"position":3,"name":"dirs","state":"skipped","host":"web1","item_index":2,"item":"logs","start":"2026-02-03T10:14:04.5+01:00","end":"2026-02-03T10:14:05+01:00"}`,
			"skipped:  [web1] dirs (item logs)", ""},
		{`{"position":3,"name":"dirs","state":"success","host":"web1","item_index":0,"item":{"path":"/srv"},"start":"2026-02-03T10:14:04.5+01:00","end":"2026-02-03T10:14:05+01:00"}`,
			`ok:       [web1] dirs (item {"path":"/srv"})`, ""},
		{`{"position":3,"name":"dirs","state":"success","host":"web1","start":"2026-02-03T10:14:04.5+01:00","end":"2026-02-03T10:14:05+01:00","misc":{"results":[{},{},{}]}}`,
			"ok:       [web1] dirs (3 items)", ""},
		{`{"position":4,"name":"hidden","state":"success","host":"web1","item_index":0,"start":"2026-02-03T10:14:04.5+01:00","end":"2026-02-03T10:14:05+01:00"}`,
			"ok:       [web1] hidden (item 0)", ""},
		{`{"position":5,"name":"restart","state":"success","host":"web1","handler":true,"start":"2026-02-03T10:14:04.5+01:00","end":"2026-02-03T10:14:05+01:00"}`,
			"ok:       [web1] restart (handler)", ""},
		{`{"position":6,"name":"ping","state":"unreachable","host":"down","error_message":"no route","start":"2026-02-03T10:14:04.5+01:00","end":"2026-02-03T10:14:05+01:00"}`,
			"unreachable: [down] ping: no route", `task "ping" unreachable on down: no route`},
		{`{"position":7,"name":"migrate","state":"failure","host":"db1","error_message":"exit 3","start":"2026-02-03T10:14:04.5+01:00","end":"2026-02-03T10:14:05+01:00"}`,
			"failed:   [db1] migrate: exit 3", `task "migrate" failed on db1: exit 3`},
	} {
		out, ok := NewReader(CallbackBundled).Read([]byte(tc.line))
		require.True(t, ok, tc.line)
		assert.Equal(t, []string{tc.want}, out.Lines, tc.line)
		assert.Equal(t, tc.failure, out.Failure, tc.line)
	}
	for _, in := range []string{"", "[WARNING]: no inventory", "{}", `{"position":1}`, `{"position":"1","name":"x","state":"success","start":"2026-02-03T10:14:04.5+01:00","end":"2026-02-03T10:14:05+01:00"}`,
		`{"_event":"v2_runner_on_ok","hosts":{}}`} {
		_, ok := NewReader(CallbackBundled).Read([]byte(in))
		assert.False(t, ok, in)
	}
}

func TestReaderShowsEachPlayOnce(t *testing.T) {
	r := NewReader(CallbackBundled)
	var lines []string
	for _, l := range []string{
		`{"position":0,"name":"a","state":"success","host":"h","play":"one","start":"2026-02-03T10:14:04+01:00","end":"2026-02-03T10:14:05+01:00"}`,
		`{"position":1,"name":"b","state":"success","host":"h","play":"one","start":"2026-02-03T10:14:04+01:00","end":"2026-02-03T10:14:05+01:00"}`,
		`{"position":2,"name":"c","state":"success","host":"h","play":"two","start":"2026-02-03T10:14:04+01:00","end":"2026-02-03T10:14:05+01:00"}`,
	} {
		out, ok := r.Read([]byte(l))
		require.True(t, ok)
		lines = append(lines, out.Lines...)
	}
	assert.Equal(t, []string{"PLAY one", "ok:       [h] a", "ok:       [h] b", "PLAY two", "ok:       [h] c"}, lines)
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

	var got []jsoncb.Record
	var failures []string
	seen := map[string]bool{}
	reader := NewReader(CallbackBundled)
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(nil, 1<<20)
	var p fastjson.Parser
	for sc.Scan() {
		raw := sc.Bytes()
		v, err := p.ParseBytes(raw)
		require.NoError(t, err, "stdout holds JSON lines only: %s", raw)
		// The one definition reads every line: no field unknown to it,
		// none missing; the plugin writes zones, so loc does not matter.
		assert.Empty(t, jsoncb.Unknown(v), "fields the plugin writes that jsoncb.Record does not define: %s", raw)
		l, ferr := jsoncb.Decode(v, time.FixedZone("elsewhere", 5*3600))
		require.Nil(t, ferr, "%s", raw)
		require.Empty(t, l.Missing, "%s", raw)
		for _, k := range recordHolds(t, v, l) {
			seen[k] = true
		}
		require.Contains(t, jsoncb.States, l.State, raw)
		require.NotEmpty(t, l.Name, raw)
		require.NotEmpty(t, l.Host, raw)
		require.NotEmpty(t, l.Play, raw)
		assert.False(t, l.End.Before(l.Start), "end after start: %s", raw)
		assert.True(t, !l.Start.Before(before.Add(-time.Second)) && !l.End.After(after.Add(time.Second)), "times within the run: %s", raw)
		if l.State == jsoncb.StateFailure || l.State == jsoncb.StateUnreachable {
			assert.NotEmpty(t, l.ErrorMessage, raw)
		}
		if l.Misc != nil {
			l.Misc.Visit(func(k []byte, _ *fastjson.Value) {
				assert.False(t, strings.HasPrefix(string(k), "_ansible_"), "Ansible's bookkeeping is dropped: %s", k)
			})
		}
		l.Misc = nil // p reads the next line
		out, ok := reader.Read(raw)
		require.True(t, ok, "the deployer reads every line: %s", raw)
		if out.Failure != "" {
			failures = append(failures, out.Failure)
		}
		got = append(got, l)
	}
	require.NoError(t, sc.Err())
	var unseen []string
	for _, f := range jsoncb.Fields {
		if !seen[f] {
			unseen = append(unseen, f)
		}
	}
	assert.Empty(t, unseen, "the run exercises every field of the record, so the plugin and the definition agree both ways")
	assert.NotContains(t, stdout.String(), "hidden-value-not-real", "no_log results stay hidden")

	// What happened, per task position, host and item.
	var summary []string
	for _, l := range got {
		s := fmt.Sprintf("%d %s @%s %s", l.Position, l.Name, l.Host, l.State)
		if l.ItemIndex >= 0 {
			s += fmt.Sprintf(" item=%d:%s", l.ItemIndex, l.Item)
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
		"5 hidden loop @web1 success item=0: play=configure web",
		"5 hidden loop @web1 success play=configure web",
		"5 hidden loop @web2 success item=0: play=configure web",
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
	whole := map[hostTask]jsoncb.Record{}
	items := map[hostTask][]jsoncb.Record{}
	for _, l := range got {
		k := hostTask{l.Position, l.Host}
		if l.ItemIndex < 0 {
			whole[k] = l
		} else {
			items[k] = append(items[k], l)
		}
	}
	require.Len(t, items, 6)
	for k, its := range items {
		w, ok := whole[k]
		require.True(t, ok, "a loop's items come with the task's result: %v", k)
		assert.Equal(t, w.Start, its[0].Start, "the first item starts with the host's task: %v", k)
		for i := range its {
			assert.Equal(t, i, its[i].ItemIndex, "%v", k)
			if i > 0 {
				assert.Equal(t, its[i-1].End, its[i].Start, "item %d starts when item %d ended: %v", i, i-1, k)
			}
			assert.False(t, its[i].End.After(w.End), "items end within the task: %v", k)
		}
	}
	// Tasks start in order.
	var last time.Time
	for p := 0; p <= 9; p++ {
		first := time.Time{}
		for k, l := range whole {
			if k.position == p && (first.IsZero() || l.Start.Before(first)) {
				first = l.Start
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

// recordHolds checks that r holds each field of the line v with the value
// the line has, read independently of jsoncb, and returns the fields seen.
// A field of the definition without a check here fails the test.
func recordHolds(t *testing.T, v *fastjson.Value, r jsoncb.Record) []string {
	t.Helper()
	sameTime := func(f *fastjson.Value, got time.Time) bool {
		want, err := time.Parse(time.RFC3339Nano, string(f.GetStringBytes()))
		return err == nil && want.Equal(got)
	}
	sameJSON := func(f *fastjson.Value, text string) bool {
		if f.Type() == fastjson.TypeString {
			return string(f.GetStringBytes()) == text
		}
		var a, b any
		return json.Unmarshal(f.MarshalTo(nil), &a) == nil && json.Unmarshal([]byte(text), &b) == nil && reflect.DeepEqual(a, b)
	}
	checks := map[string]func(f *fastjson.Value) bool{
		jsoncb.FieldPosition:     func(f *fastjson.Value) bool { return f.GetInt() == r.Position },
		jsoncb.FieldName:         func(f *fastjson.Value) bool { return string(f.GetStringBytes()) == r.Name },
		jsoncb.FieldState:        func(f *fastjson.Value) bool { return string(f.GetStringBytes()) == r.State },
		jsoncb.FieldStart:        func(f *fastjson.Value) bool { return sameTime(f, r.Start) },
		jsoncb.FieldEnd:          func(f *fastjson.Value) bool { return sameTime(f, r.End) },
		jsoncb.FieldHost:         func(f *fastjson.Value) bool { return string(f.GetStringBytes()) == r.Host },
		jsoncb.FieldPlay:         func(f *fastjson.Value) bool { return string(f.GetStringBytes()) == r.Play },
		jsoncb.FieldHandler:      func(f *fastjson.Value) bool { return f.GetBool() == r.Handler },
		jsoncb.FieldItemIndex:    func(f *fastjson.Value) bool { return f.GetInt() == r.ItemIndex },
		jsoncb.FieldItem:         func(f *fastjson.Value) bool { return sameJSON(f, r.Item) },
		jsoncb.FieldErrorMessage: func(f *fastjson.Value) bool { return sameJSON(f, r.ErrorMessage) },
		jsoncb.FieldIgnoreErrors: func(f *fastjson.Value) bool { return f.GetBool() == r.IgnoreErrors },
		jsoncb.FieldMisc: func(f *fastjson.Value) bool {
			obj := f.GetObject()
			if obj == nil || r.Misc == nil || obj.Len() != r.Misc.Len() {
				return false
			}
			c := obj.Get("changed")
			return c == nil || (r.Changed != nil && c.GetBool() == *r.Changed)
		},
	}
	require.Len(t, checks, len(jsoncb.Fields), "a check for every field of the definition")
	var seen []string
	v.GetObject().Visit(func(k []byte, f *fastjson.Value) {
		check, ok := checks[string(k)]
		if !assert.True(t, ok, "field %q the plugin writes has no place in jsoncb.Record", k) {
			return
		}
		assert.True(t, check(f), "field %q: jsoncb.Record holds another value than the line's %s", k, f)
		seen = append(seen, string(k))
	})
	return seen
}
