package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/timeshift"
)

// The shipped samples, moved to a date years from now, keep their intervals
// and end on that date.
func TestMovesSamplesTogether(t *testing.T) {
	t.Parallel()
	out := t.TempDir()
	events := filepath.Join("..", "..", "testdata", "deployment-events.ndjson")
	run := filepath.Join("..", "..", "testdata", "ansible-json_cb.ndjson")
	require.NoError(t, run2(t, "-o", out, "-now", "2033-03-04T05:06:07Z", events, run))

	var spans [2]time.Duration
	var latest time.Time
	for i, f := range []string{events, run} {
		before, err := os.ReadFile(f)
		require.NoError(t, err)
		after, err := os.ReadFile(filepath.Join(out, filepath.Base(f)))
		require.NoError(t, err)
		b0, b1, ok := timeshift.Bounds(before)
		require.True(t, ok)
		a0, a1, ok := timeshift.Bounds(after)
		require.True(t, ok)
		assert.Equal(t, b1.Sub(b0), a1.Sub(a0), "intervals inside %s are kept", f)
		spans[i] = a0.Sub(b0)
		if a1.After(latest) {
			latest = a1
		}
		assert.Equal(t, bytes.Count(before, []byte("\n")), bytes.Count(after, []byte("\n")))
	}
	assert.Equal(t, spans[0], spans[1], "both files moved by one offset")
	assert.Equal(t, time.Date(2033, 3, 4, 5, 6, 7, 0, time.UTC), latest)
}

func TestUsage(t *testing.T) {
	t.Parallel()
	assert.Error(t, run2(t))
	assert.Error(t, run2(t, "a", "b"), "several files need -o")
	assert.Error(t, run2(t, "-now", "yesterday", "a"))
}

func run2(t *testing.T, args ...string) error {
	t.Helper()
	var stdout bytes.Buffer
	return run(args, &stdout, time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
}
