package ansible

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The real ansible-playbook reads the extra vars, and the file is gone as
// soon as it has: nothing with the secret outlives the read.
func TestExtraVarsFileGoneOnceAnsibleReadIt(t *testing.T) {
	if _, err := exec.LookPath("ansible-playbook"); err != nil {
		t.Skip("ansible-playbook not installed (make tools installs it)")
	}
	dir := t.TempDir()
	value := "gen-" + strconv.Itoa(os.Getpid()) + "-extra"
	f, err := WriteExtraVars(dir, map[string]any{"planted": value})
	require.NoError(t, err)
	defer f.Close()
	playbook := filepath.Join(dir, "pb.yml")
	require.NoError(t, os.WriteFile(playbook, []byte("- hosts: localhost\n  gather_facts: false\n  tasks:\n    - debug: {msg: \"got {{ planted }}\"}\n"), 0o600))
	cmd := exec.Command("ansible-playbook", Args(playbook, "localhost,", "", f.Path(), []string{"-c", "local"})...)
	cmd.Env = append(os.Environ(), "ANSIBLE_NOCOLOR=1", "ANSIBLE_LOCALHOST_WARNING=0")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	assert.Contains(t, string(out), "got "+value)
	<-f.Read()
	_, err = os.Stat(f.Path())
	assert.ErrorIs(t, err, os.ErrNotExist)
	require.NoError(t, f.Close())
}

func TestExtraVarsFileRemovedByCloseWhenNeverRead(t *testing.T) {
	f, err := WriteExtraVars(t.TempDir(), map[string]any{"a": "b"})
	require.NoError(t, err)
	_, err = os.Stat(f.Path())
	require.NoError(t, err)
	require.NoError(t, f.Close())
	_, err = os.Stat(f.Path())
	assert.ErrorIs(t, err, os.ErrNotExist)
	require.NoError(t, f.Close(), "closing twice is harmless")
}

// A deployer killed with SIGKILL leaves its directory; the next start
// removes it, and leaves those of live deployers and unrelated ones.
func TestSweepStaleRemovesDeadDeployersDirs(t *testing.T) {
	root := t.TempDir()
	dead := exec.Command("true")
	require.NoError(t, dead.Run())
	deadPID := dead.ProcessState.Pid()
	mk := func(name string) string {
		p := filepath.Join(root, name)
		require.NoError(t, os.MkdirAll(p, 0o700))
		require.NoError(t, os.WriteFile(filepath.Join(p, "extra-vars.json"), []byte("{}"), 0o600))
		return p
	}
	stale := mk(tempPrefix + strconv.Itoa(deadPID) + "-123")
	mine := mk(tempPrefix + strconv.Itoa(os.Getpid()) + "-456")
	parent := mk(tempPrefix + strconv.Itoa(os.Getppid()) + "-789")
	other := mk("fastdeploy-ansible-notapid")
	unrelated := mk("something-else")
	assert.Equal(t, 1, SweepStale(root))
	for _, p := range []string{mine, parent, other, unrelated} {
		assert.DirExists(t, p)
	}
	assert.NoDirExists(t, stale)

	dir, err := TempDir()
	require.NoError(t, err)
	defer os.RemoveAll(dir)
	assert.True(t, strings.HasPrefix(filepath.Base(dir), tempPrefix+strconv.Itoa(os.Getpid())+"-"))
}
