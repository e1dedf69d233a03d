package fastdeployreceiver

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

// deliver hands a transaction's output to the pipelines: spans, then log
// records, each only if there are any.
func (r *fastdeployReceiver) deliver(ctx context.Context, x *txn) error {
	spans := r.traces != nil && x.out.spanCount > 0
	logs := r.logs != nil && x.out.logCount > 0
	var sum [sha256.Size]byte
	summed, skipSpans := false, false
	if spans && logs && !r.delivered.empty(r.now()) {
		// A retry after the logs pipeline refused: its spans are in.
		if sum, summed = spansSum(x.out.traces); summed {
			skipSpans = r.delivered.has(sum)
		}
	}
	if spans && !skipSpans {
		tctx := r.obsTrace.StartTracesOp(ctx)
		err := r.traces.ConsumeTraces(tctx, x.out.traces)
		r.obsTrace.EndTracesOp(tctx, "json", x.out.spanCount, err)
		if err != nil {
			return err
		}
	}
	if logs {
		lctx := r.obsLogs.StartLogsOp(ctx)
		err := r.logs.ConsumeLogs(lctx, x.out.logs)
		r.obsLogs.EndLogsOp(lctx, "json", x.out.logCount, err)
		if err != nil {
			if spans && !skipSpans {
				if !summed {
					sum, summed = spansSum(x.out.traces)
				}
				if summed {
					r.delivered.add(sum, r.now())
				}
			}
			return err
		}
	}
	if skipSpans {
		r.delivered.forget(sum)
	}
	return nil
}

// A request's spans go to the traces pipeline, then its log records to
// the logs pipeline. When the logs pipeline refuses after the traces
// pipeline took the spans, the client gets 503 and nothing is kept, but
// the spans cannot be taken back. deliveredSpans remembers them (a hash
// of the spans as built) so that the retry, which builds the same spans
// from the same state, hands over only its log records: across the 503
// and its retry, each span and each log record reaches the pipelines
// once. A retry that builds different spans (other state in between, or
// fastdeploy's finish call, timed by its arrival) delivers them all; the
// memory is per process and forgets after partialRetention, so a retry
// after a restart or much later re-exports identical spans (same ids).

const (
	partialEntries   = 256
	partialRetention = 10 * time.Minute
)

type deliveredSpans struct {
	mu    sync.Mutex
	sums  map[[sha256.Size]byte]time.Time // when the spans were accepted
	order [][sha256.Size]byte             // oldest first, for the bound
}

func spansSum(td ptrace.Traces) ([sha256.Size]byte, bool) {
	raw, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	if err != nil {
		return [sha256.Size]byte{}, false
	}
	return sha256.Sum256(raw), true
}

// empty reports whether nothing is remembered (the common case: no
// hashing then).
func (p *deliveredSpans) empty(now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expire(now)
	return len(p.sums) == 0
}

func (p *deliveredSpans) expire(now time.Time) {
	for len(p.order) > 0 {
		oldest := p.order[0]
		at, ok := p.sums[oldest]
		if ok && now.Sub(at) < partialRetention && len(p.order) <= partialEntries {
			return
		}
		if ok {
			delete(p.sums, oldest)
		}
		p.order = p.order[1:]
	}
}

func (p *deliveredSpans) add(sum [sha256.Size]byte, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sums == nil {
		p.sums = map[[sha256.Size]byte]time.Time{}
	}
	if _, ok := p.sums[sum]; !ok {
		p.order = append(p.order, sum)
	}
	p.sums[sum] = now
	p.expire(now)
}

// has reports whether these spans were accepted already.
func (p *deliveredSpans) has(sum [sha256.Size]byte) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.sums[sum]
	return ok
}

func (p *deliveredSpans) forget(sum [sha256.Size]byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.sums, sum)
}
