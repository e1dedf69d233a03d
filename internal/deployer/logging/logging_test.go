package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployer/logging/logschema"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployer/mask"
)

func TestJSONIsECS(t *testing.T) {
	var buf bytes.Buffer
	log, err := NewLogger(&buf, Options{Format: "json", Level: slog.LevelInfo, Masker: mask.New("hunter2-x"), ServiceVersion: "v1.2.3"})
	require.NoError(t, err)
	// The CLI and the runner both name the deployment: written once.
	log = log.With("deployment.id", "d0").With("deployment.id", "d1", "trace.id", "0af7651916cd43dd8448eb211c80319c")
	log.Info("step finished with hunter2-x", "step.name", "migrate", "step.state", "success",
		"event.action", "step.finished", "event.outcome", "success", "event.duration", 1250*time.Millisecond,
		"process.exit_code", 0, "span.id", "b7ad6b7169203331",
		"labels", map[string]string{"environment": "production", "cmd": "--password=abc"},
		"error.message", errors.New("token=abcdef"))
	log.Debug("hidden")
	line := strings.TrimSuffix(buf.String(), "\n")
	require.NoError(t, logschema.Check([]byte(line)), line)
	var got map[string]any
	require.NoError(t, json.Unmarshal([]byte(line), &got), line)
	assert.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`, got["@timestamp"])
	delete(got, "@timestamp")
	assert.Equal(t, map[string]any{
		"log.level":         "info",
		"log.logger":        LoggerName,
		"message":           "step finished with ***",
		"ecs.version":       ECSVersion,
		"service.name":      "fastdeploy",
		"service.version":   "v1.2.3",
		"event.dataset":     Dataset,
		"event.action":      "step.finished",
		"event.outcome":     "success",
		"event.duration":    float64(1250 * time.Millisecond),
		"trace.id":          "0af7651916cd43dd8448eb211c80319c",
		"span.id":           "b7ad6b7169203331",
		"process.exit_code": float64(0),
		"error.message":     "token=***",
		"labels": map[string]any{"deployment_id": "d1", "step_name": "migrate", "step_state": "success",
			"environment": "production", "cmd": "--password=***"},
	}, got)
	assert.Equal(t, 1, strings.Count(buf.String(), "\n"), "debug filtered")
	assert.Equal(t, 1, strings.Count(line, `"deployment_id"`))
}

// Near misses of the format: the checker must refuse each.
func TestSchemaRefusesNearMisses(t *testing.T) {
	good := `{"@timestamp":"2026-01-02T03:04:05.000Z","log.level":"info","message":"m","ecs.version":"8.11.0","log.logger":"fastdeploy.deployer","service.name":"fastdeploy","event.dataset":"fastdeploy.deployer"`
	require.NoError(t, logschema.Check([]byte(good+`}`)))
	for name, line := range map[string]string{
		"duplicate key":       good + `,"message":"again"}`,
		"duplicate label":     good + `,"labels":{"a":"1","a":"2"}}`,
		"dotted and nested":   good + `,"trace.id":"0af7651916cd43dd8448eb211c80319c","trace":{"id":"x"}}`,
		"not ECS":             good + `,"logger":"x"}`,
		"duration in ms name": good + `,"duration_ms":5}`,
		"exit code old name":  good + `,"process.exit.code":1}`,
		"label not keyword":   good + `,"labels":{"n":1}}`,
		"label with dot":      good + `,"labels":{"a.b":"1"}}`,
		"upper level":         strings.Replace(good, `"info"`, `"INFO"`, 1) + `}`,
		"no ecs.version":      strings.Replace(good, `"ecs.version":"8.11.0",`, "", 1) + `}`,
		"negative duration":   good + `,"event.duration":-1}`,
		"short trace id":      good + `,"trace.id":"0af7"}`,
		"two values":          good + `} {}`,
		"timestamp with zone": strings.Replace(good, `.000Z`, `.000+01:00`, 1) + `}`,
		"unknown outcome":     good + `,"event.outcome":"ok"}`,
	} {
		assert.Error(t, logschema.Check([]byte(line)), name)
	}
}

func TestTextHasEachKeyOnce(t *testing.T) {
	var buf bytes.Buffer
	log, err := New(&buf, "text", slog.LevelDebug, mask.New())
	require.NoError(t, err)
	log.With("deployment.id", "d1").With("deployment.id", "d1", "x", "1").Info("hi", "x", "2", "event.duration", 1500*time.Millisecond)
	line := buf.String()
	assert.Equal(t, 1, strings.Count(line, "deployment.id="), line)
	assert.Contains(t, line, "x=2")
	assert.NotContains(t, line, "x=1")
	assert.Contains(t, line, "event.duration=1.5s")

	buf.Reset()
	log.WithGroup("g").With("secret_thing", "password: x1").Debug("hi", "a", "b")
	assert.Contains(t, buf.String(), `g.secret_thing="password: ***"`)
	assert.Contains(t, buf.String(), `g.a=b`)
	_, err = New(&buf, "xml", slog.LevelInfo, nil)
	assert.ErrorContains(t, err, `log format "xml"`)
	_, err = ParseLevel("loud")
	assert.ErrorContains(t, err, "want debug, info, warn or error")
	l, err := ParseLevel("warn")
	require.NoError(t, err)
	assert.Equal(t, slog.LevelWarn, l)
}
