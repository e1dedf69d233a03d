//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tmuxSession runs one command in a detached tmux session on its own
// server socket, in a terminal of fixed size, so the deployer sees a real
// terminal (live progress) and the test reads the screen as a person would.
type tmuxSession struct {
	t      *testing.T
	socket string
	name   string
}

func newTmux(t *testing.T, command string) *tmuxSession {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux not installed (Debian package tmux; make tools installs it)")
	}
	s := &tmuxSession{t: t, socket: fmt.Sprintf("fastdeploy-e2e-%d", os.Getpid()), name: "deploy"}
	// The pane keeps its screen after the command exits, for capture.
	s.tmux("-f", "/dev/null", "new-session", "-d", "-s", s.name, "-x", "200", "-y", "60", "sh", "-c", command+`; echo "[exit $?]"; exec cat`)
	t.Cleanup(func() { _ = exec.Command("tmux", "-L", s.socket, "kill-server").Run() })
	return s
}

func (s *tmuxSession) tmux(args ...string) string {
	s.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-L", s.socket}, args...)...).CombinedOutput()
	require.NoError(s.t, err, string(out))
	return string(out)
}

// screen is the pane's text: scrollback and the visible screen, lines
// joined where the terminal wrapped them.
func (s *tmuxSession) screen() string {
	return s.tmux("capture-pane", "-p", "-J", "-S", "-500", "-t", s.name)
}

// waitFor polls the screen until re matches, within limit.
func (s *tmuxSession) waitFor(re *regexp.Regexp, limit time.Duration) string {
	s.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		scr := s.screen()
		if re.MatchString(scr) {
			return scr
		}
		if strings.Contains(scr, "[exit ") || time.Now().After(deadline) {
			s.t.Fatalf("screen never matched %s within %s:\n%s", re, limit, scr)
		}
		time.Sleep(50 * time.Millisecond) // polling a screen: nothing to wait on
	}
}

// TestDeployerInATerminal runs a plan in a real terminal and reads the
// screen: each step's output sits under its own step line, the live line
// names the running Ansible task and host, and the failure summary names
// the step, its exit code and the tail of its stderr.
func TestDeployerInATerminal(t *testing.T) {
	bin := deployerBinary(t)
	if _, err := exec.LookPath("ansible-playbook"); err != nil {
		t.Skip("ansible-playbook not installed")
	}
	dir := t.TempDir()
	gate := filepath.Join(dir, "go-on")
	files := map[string]string{
		"site.yml": fmt.Sprintf(`- hosts: all
  connection: local
  gather_facts: false
  tasks:
    - name: wait for the gate
      ansible.builtin.command: sh -c 'i=0; while [ ! -e %s ] && [ $i -lt 3000 ]; do sleep 0.1; i=$((i+1)); done'
      changed_when: false
`, gate),
		"plan.yaml": `service: shop
environment: staging
steps:
  - name: fetch
    run: 'echo "fetched release 7"' 
  - name: configure
    ansible:
      playbook: site.yml
      inventory: localhost,
  - name: build
    run: 'echo "compiled 12 files"; echo "warning: slow disk" >&2' 
  - name: migrate
    run: 'echo "applying 0042"; echo "psql: connecting" >&2; echo "ERROR: relation orders already exists" >&2; exit 3' 
  - name: switch traffic
    run: echo never
`,
	}
	for name, content := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600))
	}
	cmd := fmt.Sprintf("cd %s && FASTDEPLOY_TRACE_URL=http://127.0.0.1:16686 %s run --offline --deployment-id tmux-1 plan.yaml", dir, bin)
	s := newTmux(t, cmd)

	// While the playbook waits at its gate, the live line names the task
	// and the host.
	live := s.waitFor(regexp.MustCompile(`\[2/5\] configure\s+\S+\s+TASK \[localhost\] wait for the gate`), 3*time.Minute)
	assert.Contains(t, live, "▸ [1/5] fetch\n  │ fetched release 7\n✔ [1/5] fetch: success")
	require.NoError(t, os.WriteFile(gate, nil, 0o600))

	scr := s.waitFor(regexp.MustCompile(`\[exit \d+\]`), 3*time.Minute)
	assert.Contains(t, scr, "[exit 1]")
	lines := strings.Split(scr, "\n")
	// Output under its own step's line, closed by the step's result.
	assertInOrder(t, lines,
		"▸ [1/5] fetch", "  │ fetched release 7", "✔ [1/5] fetch: success",
		"▸ [2/5] configure", "  │ ok:       [localhost] wait for the gate", "✔ [2/5] configure: success",
		"▸ [3/5] build", "  │ ! warning: slow disk", "✔ [3/5] build: success",
		"▸ [4/5] migrate", "  │ ! ERROR: relation orders already exists", "✘ [4/5] migrate: failure",
		"– [5/5] switch traffic: skipped (not run: step migrate failed)",
		"deployment tmux-1: failure in ",
		"  migrate: exit code 3",
		"  last lines of stderr:",
		"    psql: connecting",
		"    ERROR: relation orders already exists",
		"  trace: http://127.0.0.1:16686/trace/",
	)
	// stdout and stderr are two pipes: their lines keep their order within
	// each stream, not across them, but both sit inside the step's block.
	block := func(start, end string) string {
		_, b, _ := strings.Cut(scr, start+"\n")
		b, _, _ = strings.Cut(b, end)
		return b
	}
	assert.Contains(t, block("▸ [3/5] build", "✔ [3/5] build"), "  │ compiled 12 files\n", "build's stdout sits in its block")
	assert.Contains(t, block("▸ [4/5] migrate", "✘ [4/5] migrate"), "  │ applying 0042\n", "migrate's stdout sits in its block")
	assert.Regexp(t, `deployment tmux-1: failure in \S+ at step \[4/5\] migrate \(trace [0-9a-f]{32}\)`, scr)
	assert.NotContains(t, scr, "\x1b", "no escape codes left on the screen")
	assert.NotContains(t, scr, "TASK [localhost]", "the live line is gone once the step finished")
}

// assertInOrder checks that each want starts a line, in this order.
func assertInOrder(t *testing.T, lines []string, wants ...string) {
	t.Helper()
	i := 0
	for _, want := range wants {
		found := false
		for ; i < len(lines); i++ {
			if strings.HasPrefix(strings.TrimRight(lines[i], " "), want) {
				found = true
				i++
				break
			}
		}
		if !assert.True(t, found, "line %q not found in order in:\n%s", want, strings.Join(lines, "\n")) {
			return
		}
	}
}
