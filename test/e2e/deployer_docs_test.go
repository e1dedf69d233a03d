//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployer/fakereceiver"
)

func repoRoot() string {
	_, here, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(here), "..", "..")
}

// docExample is one command a document shows, and the exit status its
// comment promises ("# ... exit 1"), 0 when it promises none.
type docExample struct {
	source  string
	command string
	exit    int
}

var exitComment = regexp.MustCompile(`#.*\bexit (\d+)`)

func parseExample(source, line string) docExample {
	ex := docExample{source: source, command: line}
	if m := exitComment.FindStringSubmatch(line); m != nil {
		ex.exit, _ = strconv.Atoi(m[1])
	}
	return ex
}

// readmeExamples are the deployer commands of the READMEs' sh blocks.
func readmeExamples(t *testing.T, path string) []docExample {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var out []docExample
	inSh := false
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "```sh"):
			inSh = true
		case strings.HasPrefix(line, "```"):
			inSh = false
		case inSh && regexp.MustCompile(`^([A-Z_]+=\S+ )*bin/fastdeploy `).MatchString(line):
			out = append(out, parseExample(path+":"+strconv.Itoa(n), line))
		}
	}
	return out
}

// helpExamples are the lines under "Examples:" of a help text.
func helpExamples(t *testing.T, bin string, args ...string) []docExample {
	t.Helper()
	out, err := exec.Command(bin, args...).Output()
	require.NoError(t, err)
	_, rest, ok := strings.Cut(string(out), "\nExamples:\n")
	require.True(t, ok, "%v has examples", args)
	var exs []docExample
	for _, line := range strings.Split(rest, "\n") {
		if !strings.HasPrefix(line, "  fastdeploy ") {
			break
		}
		exs = append(exs, parseExample("fastdeploy "+strings.Join(args, " "), "bin/"+strings.TrimPrefix(line, "  ")))
	}
	require.NotEmpty(t, exs, "%v has examples", args)
	return exs
}

// TestDocExamplesRun runs every deployer command the READMEs and the help
// texts show, from the repository root as a reader would, against a
// collector receiver (the faithful fake), and checks each ends as its
// comment says.
func TestDocExamplesRun(t *testing.T) {
	bin := deployerBinary(t)
	root := repoRoot()
	rcv := fakereceiver.Start()
	defer rcv.Close()

	examples := readmeExamples(t, filepath.Join(root, "README.md"))
	examples = append(examples, readmeExamples(t, filepath.Join(root, "cmd", "fastdeploy", "README.md"))...)
	require.GreaterOrEqual(t, len(examples), 8, "the READMEs' deployer examples were found")
	for _, args := range [][]string{{"help"}, {"help", "run"}, {"help", "validate"}, {"help", "flush"}} {
		examples = append(examples, helpExamples(t, bin, args...)...)
	}
	home := t.TempDir()
	for _, ex := range examples {
		if strings.Contains(ex.command, "ansible") && !strings.Contains(ex.command, "--dry-run") {
			if _, err := exec.LookPath("ansible-playbook"); err != nil {
				t.Logf("%s: skipped, ansible-playbook not installed", ex.source)
				continue
			}
		}
		// The documents' collector address is the default one; the test's
		// receiver listens elsewhere.
		cmdline := strings.ReplaceAll(ex.command, "http://127.0.0.1:8088", rcv.URL())
		cmdline = strings.Replace(cmdline, "bin/fastdeploy", bin, 1)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		cmd := exec.CommandContext(ctx, "sh", "-c", cmdline)
		cmd.Dir = root
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "FASTDEPLOY_COLLECTOR_URL=" + rcv.URL(),
			"FASTDEPLOY_SPOOL_DIR=" + filepath.Join(home, "spool"), "TMPDIR=" + os.TempDir()}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		cancel()
		code := 0
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			code = exit.ExitCode()
		} else {
			require.NoError(t, err, ex.source)
		}
		assert.Equal(t, ex.exit, code, "%s: %s\n%s", ex.source, ex.command, out.String())
		assert.NotContains(t, out.String(), "Run \"fastdeploy help", "%s: a usage error", ex.source)
	}
}
