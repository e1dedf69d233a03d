package deploymetricsconnector

import (
	"context"
	"encoding/hex"
	"errors"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/claimledger"
)

// sharedClaims is what the shared ledger said of one batch's spans: which
// another collector counted, and the claims this one is to commit once
// its counts are written through.
type sharedClaims struct {
	counted map[spanKey]bool
	claims  []*claimledger.Claim
}

// elsewhere reports whether another collector counted the span.
func (s *sharedClaims) elsewhere(k spanKey) bool {
	return s != nil && s.counted[k]
}

// claimShared asks the shared ledger about every deployment and step span
// of td. It runs before the engine lock is taken, so file system calls and
// the wait for a dead collector's claim hold up no other batch; it reads
// only the configuration and the ledger, which do not change once started.
// The span's start places the claim: it is the same on every collector, as
// the span is. A ledger that fails counts the span (at least once).
func (e *engine) claimShared(ctx context.Context, td ptrace.Traces, c *counts) *sharedClaims {
	if e.ledger == nil {
		return nil
	}
	s := &sharedClaims{}
	// A span twice in one batch is asked about once: the second ask would
	// wait for the claim the first one made.
	asked := map[spanKey]bool{}
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, span := range ss.Spans().All() {
				if e.classify(span.Attributes()) == spanIgnored {
					continue
				}
				k := newSpanKey(span.TraceID(), span.SpanID())
				if asked[k] {
					continue
				}
				asked[k] = true
				res, cl, err := e.ledger.Claim(ctx, hex.EncodeToString(k[:]), span.StartTimestamp().AsTime())
				switch {
				case err != nil:
					c.ledgerError(err)
				case res == claimledger.Counted:
					if s.counted == nil {
						s.counted = map[spanKey]bool{}
					}
					s.counted[k] = true
				case cl != nil:
					s.claims = append(s.claims, cl)
				}
			}
		}
	}
	return s
}

// commitShared marks the batch's claimed spans counted in the shared
// ledger, after the counts were written (or failed to be: they are in
// memory and go with the next save either way). A span this collector
// already counted before (its own redelivery) is committed too: it was
// counted, here.
func (e *engine) commitShared(s *sharedClaims, c *counts) {
	if s == nil {
		return
	}
	for _, cl := range s.claims {
		switch err := e.ledger.Commit(cl); {
		case errors.Is(err, claimledger.ErrCountedTwice):
			c.countedTwice++
		case err != nil:
			c.ledgerError(err)
		}
	}
}
