// Package memstorage is a storage client over a map for tests: the
// components that play a collector before and after it is killed share
// one, and a test can make its batches fail as a full disk would.
package memstorage

import (
	"context"
	"errors"
	"sync"

	"go.opentelemetry.io/collector/extension/xextension/storage"
)

// ErrDiskFull is what Batch returns while the client is failing.
var ErrDiskFull = errors.New("disk full")

// Client implements storage.Client; it is safe for concurrent use.
type Client struct {
	mu      sync.Mutex
	data    map[string][]byte
	failing bool
}

var _ storage.Client = (*Client)(nil)

// New returns an empty client.
func New() *Client { return &Client{data: map[string][]byte{}} }

// SetFailing makes Batch fail (true) or succeed again (false).
func (c *Client) SetFailing(failing bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failing = failing
}

// Get returns the value stored under k, nil if none.
func (c *Client) Get(_ context.Context, k string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.data[k], nil
}

// Set stores a copy of v under k.
func (c *Client) Set(_ context.Context, k string, v []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.data[k] = append([]byte(nil), v...)
	return nil
}

// Delete removes k.
func (c *Client) Delete(_ context.Context, k string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.data, k)
	return nil
}

// Batch applies ops in order, or none while failing.
func (c *Client) Batch(ctx context.Context, ops ...*storage.Operation) error {
	c.mu.Lock()
	failing := c.failing
	c.mu.Unlock()
	if failing {
		return ErrDiskFull
	}
	for _, op := range ops {
		switch op.Type {
		case storage.Set:
			_ = c.Set(ctx, op.Key, op.Value)
		case storage.Delete:
			_ = c.Delete(ctx, op.Key)
		case storage.Get:
			op.Value, _ = c.Get(ctx, op.Key)
		}
	}
	return nil
}

// Close does nothing: the data outlives the component, as a file does.
func (c *Client) Close(context.Context) error { return nil }

// Snapshot returns a copy of everything stored, by key: what a test reads
// to check what reached the disk.
func (c *Client) Snapshot() map[string][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string][]byte, len(c.data))
	for k, v := range c.data {
		out[k] = append([]byte(nil), v...)
	}
	return out
}
