package cli

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployer/plan"
)

// revisionInfo is the deployed revision and its commit time, from which
// the collector's DORA lead time runs.
type revisionInfo struct {
	revision string
	time     *time.Time
}

func (r revisionInfo) timePtr() *time.Time { return r.time }

// resolveRevision finds the deployed revision and its commit time, first
// source that has each: the flags (or their environment variables), the
// plan (revision, revision_time), then git when the plan's directory is a
// checkout: the plan's revision resolved there, or HEAD.
func resolveRevision(planPath string, p *plan.Plan, flagRev, flagTime string) (revisionInfo, error) {
	var out revisionInfo
	out.revision = flagRev
	if out.revision == "" {
		out.revision = p.Revision
	}
	if flagTime != "" {
		t, err := time.Parse(time.RFC3339, flagTime)
		if err != nil {
			return out, fmt.Errorf("--revision-time %q: want an RFC 3339 time with zone such as 2026-11-27T10:00:00Z", flagTime)
		}
		out.time = &t
	} else if p.RevisionTime != nil && (flagRev == "" || flagRev == p.Revision) {
		t := *p.RevisionTime
		out.time = &t
	}
	if out.revision != "" && out.time != nil {
		return out, nil
	}
	rev, t, ok := gitCommit(filepath.Dir(planPath), out.revision)
	if !ok {
		return out, nil
	}
	if out.revision == "" {
		out.revision = rev
	}
	if out.time == nil {
		out.time = &t
	}
	return out, nil
}

// gitCommit reads the full hash and committer time of rev (HEAD when
// empty) in the git checkout holding dir. ok is false when dir is no
// checkout, git is missing, or rev is unknown there: the deployment goes
// on without.
func gitCommit(dir, rev string) (string, time.Time, bool) {
	if rev == "" {
		rev = "HEAD"
	}
	if strings.HasPrefix(rev, "-") {
		return "", time.Time{}, false // never an option to git
	}
	if _, err := exec.LookPath("git"); err != nil {
		return "", time.Time{}, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", "-C", dir, "log", "-1", "--format=%H %cI", rev+"^{commit}", "--")
	// The checkout is the plan's, not one a caller's GIT_DIR points at.
	cmd.Env = withoutGitEnv(os.Environ())
	out, err := cmd.Output()
	if err != nil {
		return "", time.Time{}, false
	}
	hash, when, ok := strings.Cut(strings.TrimSpace(string(out)), " ")
	if !ok {
		return "", time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, when)
	if err != nil {
		return "", time.Time{}, false
	}
	return hash, t, true
}

func withoutGitEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if strings.HasPrefix(kv, "GIT_DIR=") || strings.HasPrefix(kv, "GIT_WORK_TREE=") || strings.HasPrefix(kv, "GIT_INDEX_FILE=") {
			continue
		}
		out = append(out, kv)
	}
	return out
}
