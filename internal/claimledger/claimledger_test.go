package claimledger

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/testutil/fakeclock"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// t0 starts the fakeclock.Clock the claimers of one test share: fixed
// times, never posted anywhere.
var t0 = time.Date(2025, 3, 4, 10, 30, 0, 0, time.UTC)

func open(t *testing.T, dir string, clk *fakeclock.Clock, wait func(context.Context) error) *Ledger {
	t.Helper()
	l, err := Open(Config{Dir: dir, Retention: time.Hour, ClaimTimeout: 2 * time.Second, Now: clk.Now, Wait: wait})
	require.NoError(t, err)
	return l
}

func noWait(context.Context) error { panic("nothing should wait") }

func TestFirstClaimerCountsTheOthersDoNot(t *testing.T) {
	dir := t.TempDir()
	clk := fakeclock.New(t0)
	a, b := open(t, dir, clk, noWait), open(t, dir, clk, noWait)

	res, claim, err := a.Claim(context.Background(), "k1", t0)
	require.NoError(t, err)
	require.Equal(t, Claimed, res)
	require.NoError(t, a.Commit(claim))

	res, claim, err = b.Claim(context.Background(), "k1", t0)
	require.NoError(t, err)
	assert.Equal(t, Counted, res, "the second collector sees the first one's count")
	assert.Nil(t, claim)

	// Near misses: another key, the same key at another time bucket.
	res, _, err = b.Claim(context.Background(), "k2", t0)
	require.NoError(t, err)
	assert.Equal(t, Claimed, res, "another key is its own")
	res, _, err = b.Claim(context.Background(), "k1", t0.Add(-time.Hour))
	require.NoError(t, err)
	assert.Equal(t, Claimed, res, "a key is placed by its time: another bucket, another key")
}

// TestPendingClaimIsWaitedFor forces the interleaving of a failover: A
// has claimed and not committed yet when B gets the same span; B waits,
// A commits, B does not count.
func TestPendingClaimIsWaitedFor(t *testing.T) {
	dir := t.TempDir()
	clk := fakeclock.New(t0)
	a := open(t, dir, clk, noWait)
	res, claim, err := a.Claim(context.Background(), "k", t0)
	require.NoError(t, err)
	require.Equal(t, Claimed, res)

	waiting := make(chan struct{})
	proceed := make(chan struct{})
	var waits atomic.Int64
	b := open(t, dir, clk, func(context.Context) error {
		if waits.Add(1) == 1 {
			close(waiting)
			<-proceed
		}
		return nil
	})
	done := make(chan Result)
	go func() {
		res, _, err := b.Claim(context.Background(), "k", t0)
		assert.NoError(t, err)
		done <- res
	}()
	<-waiting
	select {
	case <-done:
		t.Fatal("B decided while A's claim was pending")
	default:
	}
	require.NoError(t, a.Commit(claim))
	close(proceed)
	assert.Equal(t, Counted, <-done)
}

// TestStaleClaimIsTakenOver: A claimed and died before committing (the
// request it was counting never answered). B waits out the claim timeout,
// takes the claim over and counts; had A only stalled and commits later,
// Commit tells it was counted twice.
func TestStaleClaimIsTakenOver(t *testing.T) {
	dir := t.TempDir()
	clk := fakeclock.New(t0)
	a := open(t, dir, clk, noWait)
	_, claimA, err := a.Claim(context.Background(), "k", t0)
	require.NoError(t, err)

	var waits atomic.Int64
	b := open(t, dir, clk, func(context.Context) error {
		waits.Add(1)
		clk.Advance(500 * time.Millisecond) // time passes while B waits
		return nil
	})
	res, claimB, err := b.Claim(context.Background(), "k", t0)
	require.NoError(t, err)
	assert.Equal(t, Claimed, res, "B counts what A never committed")
	assert.EqualValues(t, 4, waits.Load(), "B waited the claim timeout (2s) out, no more")
	assert.FileExists(t, filepath.Join(b.bucketDir(b.bucket(t0)), "k.1"))

	errWouldWait := errors.New("would wait")
	c := open(t, dir, clk, func(context.Context) error { return errWouldWait })
	_, _, err = c.Claim(context.Background(), "k", t0)
	require.ErrorIs(t, err, errWouldWait, "C waits while B's fresh claim is pending")

	require.NoError(t, b.Commit(claimB))
	assert.ErrorIs(t, a.Commit(claimA), ErrCountedTwice, "A stalled, was taken over, and counted too")
	res, _, err = c.Claim(context.Background(), "k", t0)
	require.NoError(t, err)
	assert.Equal(t, Counted, res)
}

func TestTakeoverLosesToACommitInBetween(t *testing.T) {
	dir := t.TempDir()
	clk := fakeclock.New(t0)
	a := open(t, dir, clk, noWait)
	_, claimA, err := a.Claim(context.Background(), "k", t0)
	require.NoError(t, err)
	clk.Advance(3 * time.Second)
	// B reads A's claim as stale; A commits before B's takeover lands.
	b := open(t, dir, clk, noWait)
	gen, age, err := b.latest(filepath.Join(b.bucketDir(b.bucket(t0)), "k"))
	require.NoError(t, err)
	require.Equal(t, 0, gen)
	require.GreaterOrEqual(t, age, 2*time.Second)
	require.NoError(t, a.Commit(claimA))
	res, claim, err := b.Claim(context.Background(), "k", t0)
	require.NoError(t, err)
	assert.Equal(t, Counted, res)
	assert.Nil(t, claim)
}

func TestEmptyClaimIsAgedByItsModificationTime(t *testing.T) {
	dir := t.TempDir()
	clk := fakeclock.New(time.Now()) // mtimes are the file system's: the real clock
	l := open(t, dir, clk, noWait)
	bucket := l.bucketDir(l.bucket(clk.Now()))
	require.NoError(t, os.MkdirAll(bucket, 0o750))
	path := filepath.Join(bucket, "k.0")
	require.NoError(t, os.WriteFile(path, nil, 0o640)) // a claimer died between create and write
	old := clk.Now().Add(-time.Minute)
	require.NoError(t, os.Chtimes(path, old, old))
	res, _, err := l.Claim(context.Background(), "k", clk.Now())
	require.NoError(t, err)
	assert.Equal(t, Claimed, res, "an empty claim a minute old is stale")
}

func TestConcurrentClaimersCountEachKeyOnce(t *testing.T) {
	dir := t.TempDir()
	clk := fakeclock.New(t0)
	const claimers, keys = 6, 200
	var claimed [keys]atomic.Int64
	var wg sync.WaitGroup
	for range claimers {
		l, err := Open(Config{Dir: dir, Retention: time.Hour, ClaimTimeout: time.Minute, Now: clk.Now,
			Wait: func(context.Context) error { return nil }})
		require.NoError(t, err)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range keys {
				res, claim, err := l.Claim(context.Background(), fmt.Sprintf("key%03d", k), t0)
				if !assert.NoError(t, err) {
					return
				}
				if res == Claimed {
					claimed[k].Add(1)
					assert.NoError(t, l.Commit(claim))
				}
			}
		}()
	}
	wg.Wait()
	for k := range keys {
		assert.EqualValues(t, 1, claimed[k].Load(), "key %d counted by exactly one claimer", k)
	}
}

func TestRetentionAndPrune(t *testing.T) {
	dir := t.TempDir()
	clk := fakeclock.New(t0)
	l := open(t, dir, clk, noWait)
	for _, at := range []time.Time{t0, t0.Add(-time.Hour), t0.Add(-2 * time.Hour)} {
		res, claim, err := l.Claim(context.Background(), "k", at)
		require.NoError(t, err)
		if at.Before(t0.Add(-time.Hour).Truncate(time.Hour)) {
			assert.Equal(t, TooOld, res, "%s lies outside the retention", at)
			continue
		}
		require.Equal(t, Claimed, res, "%s", at)
		require.NoError(t, l.Commit(claim))
	}
	other, err := Open(Config{Dir: dir, Retention: 2 * time.Hour, ClaimTimeout: time.Second, Now: func() time.Time { return t0.Add(-24 * time.Hour) }})
	require.NoError(t, err)
	_, claim, err := other.Claim(context.Background(), "k", t0.Add(-24*time.Hour))
	require.NoError(t, err)
	require.NoError(t, other.Commit(claim))

	clk.Advance(time.Hour)
	require.NoError(t, l.Prune())
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	cur := l.bucket(clk.Now())
	assert.ElementsMatch(t, []string{
		fmt.Sprintf("3600s-%d", cur-1),                               // t0's bucket: still within the retention
		fmt.Sprintf("7200s-%d", other.bucket(t0.Add(-24*time.Hour))), // another retention's: not ours to prune
	}, names)
}

func TestOpenRefusesWhatCannotWork(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no directory", Config{Retention: time.Hour, ClaimTimeout: time.Second}},
		{"retention under a second", Config{Dir: t.TempDir(), Retention: time.Millisecond, ClaimTimeout: time.Microsecond}},
		{"no claim timeout", Config{Dir: t.TempDir(), Retention: time.Hour}},
		{"claim timeout as long as the retention", Config{Dir: t.TempDir(), Retention: time.Hour, ClaimTimeout: time.Hour}},
		{"directory is a file", Config{Dir: file, Retention: time.Hour, ClaimTimeout: time.Second}},
	}
	for _, tt := range tests {
		_, err := Open(tt.cfg)
		assert.Error(t, err, tt.name)
	}
	_, err := Open(Config{Dir: filepath.Join(t.TempDir(), "new", "dir"), Retention: time.Hour, ClaimTimeout: time.Second})
	assert.NoError(t, err, "a missing directory is created")
}

func TestWaitIsCancelled(t *testing.T) {
	dir := t.TempDir()
	clk := fakeclock.New(t0)
	a := open(t, dir, clk, noWait)
	_, _, err := a.Claim(context.Background(), "k", t0)
	require.NoError(t, err)
	l, err := Open(Config{Dir: dir, Retention: time.Hour, ClaimTimeout: 2 * time.Second, Now: clk.Now})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err = l.Claim(ctx, "k", t0)
	assert.ErrorIs(t, err, context.Canceled, "the default wait stops with the request")
}

// BenchmarkClaimCommit is the ledger's cost per counted span on this
// machine's disk: the first claim and its commit, and a second
// collector's look that finds it counted.
func BenchmarkClaimCommit(b *testing.B) {
	ctx := context.Background()
	at := time.Now()
	l, err := Open(Config{Dir: b.TempDir(), Retention: time.Hour, ClaimTimeout: 2 * time.Second})
	require.NoError(b, err)
	key := func(i int) string { return fmt.Sprintf("%048x", i) }
	var n int
	b.Run("claim+commit", func(b *testing.B) {
		for b.Loop() {
			res, claim, err := l.Claim(ctx, key(n), at)
			if err != nil || res != Claimed {
				b.Fatal(res, err)
			}
			if err := l.Commit(claim); err != nil {
				b.Fatal(err)
			}
			n++
		}
	})
	other, err := Open(Config{Dir: l.dir, Retention: time.Hour, ClaimTimeout: 2 * time.Second})
	require.NoError(b, err)
	var i int
	b.Run("found counted", func(b *testing.B) {
		for b.Loop() {
			if res, _, err := other.Claim(ctx, key(i%n), at); err != nil || res != Counted {
				b.Fatal(res, err)
			}
			i++
		}
	})
}
