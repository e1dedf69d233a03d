package fastdeployreceiver

import (
	"sync"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/boundedset"
)

// maxRememberedSignatures bounds the replay cache. A signature older than
// signature_tolerance is refused anyway, so the cache only has to cover the
// requests of one tolerance window.
const maxRememberedSignatures = 65536

// replayCache remembers the signature headers of signed requests that were
// ingested, so that the same request sent again is acknowledged without
// being ingested twice.
type replayCache struct {
	mu  sync.Mutex
	set *boundedset.Set[string]
}

func (c *replayCache) seen(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.set.Contains(key)
}

func (c *replayCache) add(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.set.Add(key)
}
