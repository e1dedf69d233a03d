// Package claimledger lets several processes agree which one of them counts
// a thing, through a directory they all write: the first to claim a key
// counts it, the others see the claim and do not. It is how collectors
// behind a load balancer keep a span redelivered to a second collector
// (a retry after failover) from being counted twice.
//
// The directory needs what POSIX file systems give: creating a file with
// O_EXCL fails when it exists, atomically, for every process that shares
// the directory (one host's local disk, or NFSv3 and later, CephFS).
// Buckets and claims are made group-writable (as the umask allows), for
// claimers that run as different users of one group.
//
// A key's files live in a bucket directory named after a time the claimers
// agree on (the span's start), so old keys go by removing whole buckets:
//
//	<dir>/<width>-<bucket>/<key>.0   claim, generation 0: "<unix nanos>"
//	<dir>/<width>-<bucket>/<key>.1   claim taken over from a stalled claimer
//	<dir>/<width>-<bucket>/<key>     committed: counted for good
//
// A claimer that dies between its claim and its commit leaves the claim
// pending; another waits up to the claim timeout for the commit, then
// takes the claim over with the next generation (only one can create it)
// and counts. If the first was not dead but stalled for longer than the
// timeout, both count: Commit reports it.
package claimledger

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// maxGenerations bounds the takeovers of one key: each needs a claimer to
// stall for a whole claim timeout, so more than a few means the ledger is
// being misused, and the key is then counted rather than waited for.
const maxGenerations = 16

// ErrCountedTwice is Commit's answer when another claimer committed the
// key first: it took the claim over while this one stalled, and both
// counted.
var ErrCountedTwice = errors.New("key committed by another claimer that took the claim over")

// Config configures a Ledger.
type Config struct {
	// Dir is the directory every claimer shares.
	Dir string
	// Retention is how long a key is remembered at least (at most twice
	// that): keys whose time lies further back are not checked.
	Retention time.Duration
	// ClaimTimeout is how long a pending claim is waited for before it is
	// taken over.
	ClaimTimeout time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Wait pauses between two looks at a pending claim; a timer when nil.
	// Tests replace it to force interleavings.
	Wait func(ctx context.Context) error
}

// Ledger is one claimer's view of the shared directory. It is safe for
// concurrent use.
type Ledger struct {
	dir          string
	width        time.Duration
	claimTimeout time.Duration
	now          func() time.Time
	wait         func(ctx context.Context) error
}

// Claim is a key this claimer is to count, then commit.
type Claim struct {
	path string // the committed file's path
}

// Result is what Claim found.
type Result int

const (
	// Claimed: count the key, then Commit.
	Claimed Result = iota
	// Counted: another claimer counted the key (or is about to commit it).
	Counted
	// TooOld: the key's time lies outside the retention; not checked.
	TooOld
)

// Open prepares the directory and checks that it can be written.
func Open(cfg Config) (*Ledger, error) {
	if cfg.Dir == "" {
		return nil, errors.New("directory must be set")
	}
	if cfg.Retention < time.Second {
		return nil, fmt.Errorf("retention must be at least 1s, got %s", cfg.Retention)
	}
	if cfg.ClaimTimeout <= 0 || cfg.ClaimTimeout >= cfg.Retention {
		return nil, fmt.Errorf("claim timeout must be positive and shorter than the retention, got %s", cfg.ClaimTimeout)
	}
	if err := os.MkdirAll(cfg.Dir, 0o770); err != nil {
		return nil, fmt.Errorf("create ledger directory: %w", err)
	}
	probe, err := os.CreateTemp(cfg.Dir, ".probe-*")
	if err != nil {
		return nil, fmt.Errorf("ledger directory is not writable: %w", err)
	}
	_ = probe.Close()
	_ = os.Remove(probe.Name())
	l := &Ledger{dir: cfg.Dir, width: cfg.Retention.Truncate(time.Second), claimTimeout: cfg.ClaimTimeout, now: cfg.Now, wait: cfg.Wait}
	if l.now == nil {
		l.now = time.Now
	}
	if l.wait == nil {
		poll := min(max(cfg.ClaimTimeout/50, time.Millisecond), 50*time.Millisecond)
		l.wait = func(ctx context.Context) error {
			t := time.NewTimer(poll)
			defer t.Stop()
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-t.C:
				return nil
			}
		}
	}
	return l, nil
}

func (l *Ledger) bucket(t time.Time) int64 {
	return t.Unix() / int64(l.width/time.Second)
}

func (l *Ledger) bucketDir(b int64) string {
	return filepath.Join(l.dir, strconv.FormatInt(int64(l.width/time.Second), 10)+"s-"+strconv.FormatInt(b, 10))
}

// Claim tries to become the claimer that counts key; at is a time every
// claimer derives the same from the thing counted (a span's start), which
// places the key in its bucket. key must be a file name ([0-9a-f] is safe).
// A pending claim of another is waited for up to the claim timeout, then
// taken over.
func (l *Ledger) Claim(ctx context.Context, key string, at time.Time) (Result, *Claim, error) {
	now := l.now()
	b := l.bucket(at)
	if b < l.bucket(now)-1 {
		return TooOld, nil, nil
	}
	dir := l.bucketDir(b)
	committed := filepath.Join(dir, key)
	// The common case first: nobody claimed it (a key is committed only
	// after its first claim, which stays).
	created, err := l.create(dir, committed+".0")
	if err != nil {
		return Claimed, nil, err
	}
	if created {
		return Claimed, &Claim{path: committed}, nil
	}
	for {
		if exists(committed) {
			return Counted, nil, nil
		}
		gen, age, err := l.latest(committed)
		if err != nil {
			return Claimed, nil, err
		}
		switch {
		case gen < 0:
			// Nobody claimed it yet.
		case age < l.claimTimeout:
			if err := l.wait(ctx); err != nil {
				return Claimed, nil, err
			}
			continue
		case gen+1 >= maxGenerations:
			return Claimed, nil, fmt.Errorf("key %s taken over %d times", key, maxGenerations)
		}
		created, err := l.create(dir, committed+"."+strconv.Itoa(gen+1))
		if err != nil {
			return Claimed, nil, err
		}
		if !created {
			continue // another claimer was quicker; look again
		}
		if gen >= 0 && exists(committed) {
			// The stalled claimer committed while this one took over.
			return Counted, nil, nil
		}
		return Claimed, &Claim{path: committed}, nil
	}
}

// latest returns the newest generation claimed and its age; -1 when none.
func (l *Ledger) latest(committed string) (gen int, age time.Duration, err error) {
	gen = -1
	var path string
	for g := 0; g < maxGenerations; g++ {
		p := committed + "." + strconv.Itoa(g)
		if !exists(p) {
			break
		}
		gen, path = g, p
	}
	if gen < 0 {
		return -1, 0, nil
	}
	return gen, l.age(path), nil
}

// age reads the claim time a claimer wrote; a claim still empty (its
// claimer between create and write, or dead there) is aged by its mtime.
func (l *Ledger) age(path string) time.Duration {
	if b, err := os.ReadFile(path); err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil {
			return l.now().Sub(time.Unix(0, n))
		}
	}
	if fi, err := os.Stat(path); err == nil {
		return l.now().Sub(fi.ModTime())
	}
	return 0
}

// create makes path exclusively, with the claim time; false when it
// exists.
func (l *Ledger) create(dir, path string) (bool, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o660)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o770); err != nil {
			return false, fmt.Errorf("create ledger bucket: %w", err)
		}
		f, err = os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o660)
	}
	if errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("claim: %w", err)
	}
	_, werr := f.WriteString(strconv.FormatInt(l.now().UnixNano(), 10))
	return true, errors.Join(werr, f.Close())
}

// Commit marks the claimed key counted for good. ErrCountedTwice: another
// claimer took the claim over and committed first.
func (l *Ledger) Commit(c *Claim) error {
	f, err := os.OpenFile(c.path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o660)
	if errors.Is(err, fs.ErrExist) {
		return ErrCountedTwice
	}
	if err != nil {
		return fmt.Errorf("commit claim: %w", err)
	}
	return f.Close()
}

// Prune removes the buckets no key can be claimed in any more; every
// claimer may prune, concurrently.
func (l *Ledger) Prune() error {
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		return fmt.Errorf("read ledger directory: %w", err)
	}
	prefix := strconv.FormatInt(int64(l.width/time.Second), 10) + "s-"
	oldest := l.bucket(l.now()) - 1
	var errs []error
	for _, e := range entries {
		name, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok || !e.IsDir() {
			continue // another retention's buckets are its claimers' to prune
		}
		b, err := strconv.ParseInt(name, 10, 64)
		if err != nil || b >= oldest {
			continue
		}
		if err := os.RemoveAll(filepath.Join(l.dir, e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
