package ansible

import (
	"bufio"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestArgs(t *testing.T) {
	assert.Equal(t, []string{"-i", "localhost,", "--limit", "web", "--extra-vars", "@/tmp/x.json", "--diff", "site.yml"},
		Args("site.yml", "localhost,", "web", "/tmp/x.json", []string{"--diff"}))
	assert.Equal(t, []string{"site.yml"}, Args("site.yml", "", "", "", nil))
}

// TestParseRealOutput reads output recorded from a real
// ansible-playbook run of testdata/plans/playbooks/site.yml.
func TestParseRealOutput(t *testing.T) {
	f, err := os.Open("testdata/site.jsonl")
	require.NoError(t, err)
	defer f.Close()
	var lines []string
	var failures []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		l, ok := Parse(sc.Bytes())
		require.True(t, ok, sc.Text())
		lines = append(lines, Format(l)...)
		if f := l.Failure(); f != "" {
			failures = append(failures, f)
		}
	}
	require.NoError(t, sc.Err())
	assert.Equal(t, []string{
		"PLAY configure shop",
		"ok:       [localhost] show version",
		"failed:   [localhost] optional probe: non-zero return code",
		"skipped:  [localhost] only on debian 3",
		"ok:       [localhost] prepare directories (2 items)",
		"changed:  [localhost] write version",
		"ok:       [localhost] log in to database",
		"ok:       [localhost] reload shop",
		"RECAP localhost ok=6 changed=2 failed=0 skipped=1 unreachable=0 ignored=1",
	}, lines)
	assert.Equal(t, []string{`task "optional probe" failed on localhost: non-zero return code`}, failures)
}

func TestParseIgnoresOtherLines(t *testing.T) {
	for _, in := range []string{"", "[WARNING]: no inventory", "{}", `{"_event": 3}`, "[1,2]"} {
		_, ok := Parse([]byte(in))
		assert.False(t, ok, in)
	}
}

func TestParseUnreachable(t *testing.T) {
	l, ok := Parse([]byte(`{"_event":"v2_runner_on_unreachable","hosts":{"web2":{"msg":"ssh: connect to host web2 port 22: No route to host","unreachable":true}},"task":{"name":"ping"}}`))
	require.True(t, ok)
	assert.Equal(t, []string{"unreachable: [web2] ping: ssh: connect to host web2 port 22: No route to host"}, Format(l))
	assert.Equal(t, `task "ping" unreachable on web2: ssh: connect to host web2 port 22: No route to host`, l.Failure())
}
