package fastdeployreceiver

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Behind a load balancer a deployment's events can be split over two
// collectors when one dies. Each collector closes as timed out only what
// it owns (it accepted the start and heard of it since it started), so a
// deployment never gets a second root span from the collector it left.
func TestLoadBalancedTimeoutsOnlyForOwnedDeployments(t *testing.T) {
	t.Parallel()
	hour := func(lb bool) func(*Config) {
		return func(c *Config) { c.Timeout, c.LoadBalanced = time.Hour, lb }
	}
	tests := []struct {
		name      string
		lb        bool
		events    []string
		wantSpans int // sent by the sweep after the timeout
	}{
		{"moved here mid-way: not ours", true, []string{
			stepEv("step.started", "b", "2026-11-27T11:00:01Z", "migrate", 0, ""),
			stepEv("step.finished", "c", "2026-11-27T11:00:02Z", "migrate", 0, "success"),
			stepEv("step.started", "d", "2026-11-27T11:00:03Z", "restart", 1, ""),
		}, 0},
		{"started here: ours", true, []string{
			ev("deployment.started", "a", "2026-11-27T11:00:00Z", ""),
			stepEv("step.started", "d", "2026-11-27T11:00:03Z", "restart", 1, ""),
		}, 2},
		{"one collector: every deployment closes", false, []string{
			stepEv("step.started", "d", "2026-11-27T11:00:03Z", "restart", 1, ""),
		}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTestReceiver(t, hour(tt.lb))
			tr.r.tracker.since = tr.clock.Now() // as start() sets it
			require.Equal(t, 200, tr.events(t, tt.events...).status)
			before := len(allSpans(tr.traces))
			tr.clock.Advance(61 * time.Minute)
			tr.r.sweepOnce(context.Background())
			assert.Len(t, allSpans(tr.traces)[before:], tt.wantSpans)
			assert.Zero(t, tr.r.tracker.inflight(), "nothing left in flight either way")
		})
	}
}

// A collector killed with a deployment in flight restores it; when that
// deployment finished on another collector meanwhile, nothing more is heard
// of it here and it is dropped, not closed a second time. A restored
// deployment whose events come back here after the restart is ours again.
func TestLoadBalancedRestoredDeployments(t *testing.T) {
	t.Parallel()
	cfg := func(c *Config) { c.Timeout, c.LoadBalanced = time.Hour, true }
	store := newMemStorage()
	before := restartable(t, store, cfg)
	before.r.tracker.since = before.clock.Now()
	require.Equal(t, 200, before.events(t,
		ev("deployment.started", "a", "2026-11-27T11:00:00Z", ""),
		stepEv("step.started", "b", "2026-11-27T11:00:01Z", "migrate", 0, ""),
	).status)

	// Killed; restarted ten minutes later.
	quiet := restartable(t, store, cfg)
	quiet.clock.Advance(10 * time.Minute)
	quiet.r.tracker.since = quiet.clock.Now()
	require.Equal(t, 2, quiet.r.tracker.inflight())
	quiet.clock.Advance(2 * time.Hour)
	quiet.r.sweepOnce(context.Background())
	assert.Empty(t, allSpans(quiet.traces), "finished elsewhere: no second root span")
	assert.Zero(t, quiet.r.tracker.inflight())

	// The same restored state, but the deployment's events come back here.
	store2 := newMemStorage()
	first := restartable(t, store2, cfg)
	first.r.tracker.since = first.clock.Now()
	require.Equal(t, 200, first.events(t,
		ev("deployment.started", "a", "2026-11-27T11:00:00Z", ""),
		stepEv("step.started", "b", "2026-11-27T11:00:01Z", "migrate", 0, ""),
	).status)
	again := restartable(t, store2, cfg)
	again.clock.Advance(10 * time.Minute)
	again.r.tracker.since = again.clock.Now()
	require.Equal(t, 200, again.events(t,
		stepEv("step.finished", "c", "2026-11-27T11:10:01Z", "migrate", 0, "success"),
		stepEv("step.started", "d", "2026-11-27T11:10:02Z", "restart", 1, ""),
	).status)
	sent := len(allSpans(again.traces))
	again.clock.Advance(2 * time.Hour)
	again.r.sweepOnce(context.Background())
	assert.Len(t, allSpans(again.traces)[sent:], 2, "heard of since the restart: closed here, step and root")
}
