package memstorage

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/extension/xextension/storage"
)

func TestBatchAppliesInOrderAndFailsWhole(t *testing.T) {
	ctx := context.Background()
	c := New()
	get := storage.GetOperation("a")
	require.NoError(t, c.Batch(ctx, storage.SetOperation("a", []byte("1")), get, storage.SetOperation("b", []byte("2")), storage.DeleteOperation("b")))
	assert.Equal(t, []byte("1"), get.Value, "a get sees the set before it")
	b, _ := c.Get(ctx, "b")
	assert.Nil(t, b, "deleted after it was set")

	c.SetFailing(true)
	assert.ErrorIs(t, c.Batch(ctx, storage.SetOperation("a", []byte("2"))), ErrDiskFull)
	a, _ := c.Get(ctx, "a")
	assert.Equal(t, []byte("1"), a, "a failed batch changes nothing")
	c.SetFailing(false)
	require.NoError(t, c.Batch(ctx, storage.SetOperation("a", []byte("3"))))
	a, _ = c.Get(ctx, "a")
	assert.Equal(t, []byte("3"), a)

	v := []byte("x")
	require.NoError(t, c.Set(ctx, "c", v))
	v[0] = 'y'
	got, _ := c.Get(ctx, "c")
	assert.Equal(t, []byte("x"), got, "Set keeps a copy")
	snap := c.Snapshot()
	assert.Equal(t, map[string][]byte{"a": []byte("3"), "c": []byte("x")}, snap)
	snap["a"][0] = 'z'
	a, _ = c.Get(ctx, "a")
	assert.Equal(t, []byte("3"), a, "a snapshot is a copy")
}
