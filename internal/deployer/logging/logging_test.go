package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployer/mask"
)

func TestJSONShape(t *testing.T) {
	var buf bytes.Buffer
	log, err := New(&buf, "json", slog.LevelInfo, mask.New("hunter2-x"))
	require.NoError(t, err)
	log = log.With("deployment.id", "d1", "trace.id", "0af7651916cd43dd8448eb211c80319c")
	log.Info("step finished with hunter2-x", "step.name", "migrate", "step.state", "success", "duration_ms", int64(1250),
		"span.id", "b7ad6b7169203331", "labels", map[string]string{"environment": "production", "cmd": "--password=abc"},
		"error", errors.New("token=abcdef"))
	log.Debug("hidden")
	var got map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &got), buf.String())
	assert.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`, got["@timestamp"])
	delete(got, "@timestamp")
	assert.Equal(t, map[string]any{
		"log.level":     "info",
		"logger":        LoggerName,
		"message":       "step finished with ***",
		"deployment.id": "d1",
		"trace.id":      "0af7651916cd43dd8448eb211c80319c",
		"span.id":       "b7ad6b7169203331",
		"step.name":     "migrate",
		"step.state":    "success",
		"duration_ms":   float64(1250),
		"labels":        map[string]any{"environment": "production", "cmd": "--password=***"},
		"error":         "token=***",
	}, got)
	assert.Equal(t, 1, strings.Count(buf.String(), "\n"), "debug filtered")
}

func TestTextAndErrors(t *testing.T) {
	var buf bytes.Buffer
	log, err := New(&buf, "text", slog.LevelDebug, mask.New())
	require.NoError(t, err)
	log.WithGroup("g").With("secret_thing", "password: x1").Debug("hi", "a", "b")
	assert.Contains(t, buf.String(), `g.secret_thing="password: ***"`)
	_, err = New(&buf, "xml", slog.LevelInfo, nil)
	assert.ErrorContains(t, err, `log format "xml"`)
	_, err = ParseLevel("loud")
	assert.ErrorContains(t, err, "want debug, info, warn or error")
	l, err := ParseLevel("warn")
	require.NoError(t, err)
	assert.Equal(t, slog.LevelWarn, l)
}
