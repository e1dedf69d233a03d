package fastdeployreceiver

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSchemaAgreesWithDecoder keeps the published JSON Schema and the
// decoder telling the same story: every sample both accept or both refuse.
func TestSchemaAgreesWithDecoder(t *testing.T) {
	t.Parallel()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	schema, err := c.Compile(filepath.Join("schema", "lifecycle-event-v1.schema.json"))
	require.NoError(t, err)

	samples := readLines(t, filepath.Join("testdata", "golden", "events.ndjson"))
	samples = append(samples, readLines(t, filepath.Join("..", "..", "testdata", "deployment-failed.ndjson"))...)
	valid := len(samples)
	samples = append(samples,
		`{"time":"2026-11-27T11:00:00Z","deployment":{"id":"7","service":"api"}}`,
		`{"type":"deployment.paused","time":"2026-11-27T11:00:00Z","deployment":{"id":"7","service":"api"}}`,
		`{"type":"deployment.started","time":"2026-11-27T11:00:00","deployment":{"id":"7","service":"api"}}`,
		`{"type":"deployment.started","time":"2026-11-27T11:00:00Z","deployment":{"service":"api"}}`,
		`{"type":"deployment.started","time":"2026-11-27T11:00:00Z","deployment":{"id":1.5,"service":"api"}}`,
		`{"type":"deployment.finished","time":"2026-11-27T11:00:00Z","deployment":{"id":"7","service":"api"}}`,
		`{"type":"step.started","time":"2026-11-27T11:00:00Z","deployment":{"id":"7","service":"api"}}`,
		`{"type":"step.finished","time":"2026-11-27T11:00:00Z","deployment":{"id":"7","service":"api"},"step":{"name":"a"}}`,
		`{"type":"step.started","time":"2026-11-27T11:00:00Z","deployment":{"id":"7","service":"api"},"step":{"name":"a","position":-1}}`,
		`{"type":"deployment.started","time":"2026-11-27T11:00:00Z","deployment":{"id":"7","service":"api"},"traceparent":"00-xyz"}`,
	)
	for i, s := range samples {
		doc, err := jsonschema.UnmarshalJSON(strings.NewReader(s))
		require.NoError(t, err)
		schemaErr := schema.Validate(doc)
		_, decodeErr := testDecodeLifecycle([]byte(s))
		if i < valid {
			assert.NoError(t, schemaErr, s)
			assert.Nil(t, decodeErr, s)
			continue
		}
		assert.Error(t, schemaErr, "schema must refuse: %s", s)
		assert.NotNil(t, decodeErr, "decoder must refuse: %s", s)
	}
}
