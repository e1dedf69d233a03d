//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/loadgen"
)

// TestAttack5InflightFlood (issue 17 item 5, and item 8 on the real state
// file): an authenticated client floods the collector with
// deployment.started, 0.6 KB of context each, far beyond
// max_inflight_deployments. Honest deployments, during the flood, after
// it and after a restart, must all be answered 200 and end as success;
// RSS and the state file stay bounded by the cap; a request that alone
// exceeds the cap gets 413 naming the limit. Secrets planted in contexts
// and step messages are not in any file under file_storage's directory.
func TestAttack5InflightFlood(t *testing.T) {
	maxInflight := scaled(300, 1000)
	flood := scaled(3000, 100_000) // the attack: about 97k
	const batch = 100
	s := startAttackStackWith(t, 1024, fmt.Sprintf("    max_inflight_deployments: %d\n", maxInflight))
	client := s.client(true, true)
	defer client.CloseIdleConnections()
	run := randomHex(t, 4)
	// Planted secrets, generated: a GitHub-style token and a value under a
	// secret-looking key.
	token := "ghp" + "_" + randomHex(t, 18)
	password := "pw" + randomHex(t, 10)

	post := func(lines ...string) (int, map[string]any) {
		body := []byte(strings.Join(lines, "\n"))
		req, err := http.NewRequest(http.MethodPost, s.url+"/v1/deployments/events", bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-ndjson")
		s.sign(req, body)
		resp, err := client.Do(req)
		if err != nil {
			return 0, nil
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var reply map[string]any
		_ = json.Unmarshal(raw, &reply)
		return resp.StatusCode, reply
	}
	event := func(typ, dep, fields, extra string) string {
		return fmt.Sprintf(`{"type":%q,"time":%q,"deployment":{"id":%q,"service":"attack5"%s}%s}`, typ, nowRFC3339(), dep, fields, extra)
	}
	pad := strings.Repeat("p", 560)
	floodEvent := func(i int) string {
		ctx := fmt.Sprintf(`,"context":{"pad":%q,"n":%d}`, pad, i)
		if i%10 == 0 {
			ctx = fmt.Sprintf(`,"context":{"pad":%q,"note":"uses %s","db_password":%q}`, pad, token, password)
		}
		return event("deployment.started", fmt.Sprintf("flood-%s-%d", run, i), ctx, "")
	}

	// honest runs one deployment start to finish, one request per event,
	// and reports how many requests got 200 of the four.
	honest := func(id string) int {
		ok := 0
		for _, line := range []string{
			event("deployment.started", id, fmt.Sprintf(`,"context":{"db_password":%q}`, password), ""),
			event("step.started", id, "", fmt.Sprintf(`,"step":{"name":"migrate","position":0,"message":"auth %s"}`, token)),
			event("step.finished", id, "", `,"step":{"name":"migrate","position":0,"state":"success"}`),
			event("deployment.finished", id, `,"status":"success"`, ""),
		} {
			if status, _ := post(line); status == http.StatusOK {
				ok++
			}
		}
		return ok
	}
	// succeeded counts the honest deployments whose span arrived with
	// status OK (not closed early as timed out).
	succeeded := func(ids []string) int {
		want := map[string]bool{}
		for _, id := range ids {
			want[id] = true
		}
		var n int
		s.sink.WaitFor(30*time.Second, func() bool {
			n = 0
			for _, sp := range s.sink.Spans() {
				id, _ := sp.Span.Attributes().Get("deployment.id")
				if strings.HasPrefix(sp.Span.Name(), "deploy ") && want[id.Str()] && sp.Span.Status().Code() == ptrace.StatusCodeOk {
					n++
				}
			}
			return n == len(ids)
		})
		return n
	}
	stateBytes := func() (total int64, files []string) {
		require.NoError(t, filepath.WalkDir(s.stateDir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			total += info.Size()
			files = append(files, path)
			return nil
		}))
		return total, files
	}

	// One request starting more than the cap: refused, the limit named.
	var tooMany []string
	for i := range maxInflight + 1 {
		tooMany = append(tooMany, event("deployment.started", fmt.Sprintf("toomany-%s-%d", run, i), "", ""))
	}
	tooManyStatus, tooManyReply := post(tooMany...)

	// The flood, with honest deployments alongside.
	sampler := loadgen.SampleRSS(s.proc.PID(), 50*time.Millisecond)
	var during []string
	var duringOK, duringRequests atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			id := fmt.Sprintf("during-%s-%d", run, i)
			during = append(during, id)
			duringOK.Add(int64(honest(id)))
			duringRequests.Add(4)
		}
	}()
	floodStatuses := map[int]int{}
	start := time.Now()
	for i := 0; i < flood; i += batch {
		lines := make([]string, 0, batch)
		for j := i; j < min(i+batch, flood); j++ {
			lines = append(lines, floodEvent(j))
		}
		status, _ := post(lines...)
		floodStatuses[status]++
	}
	floodTook := time.Since(start)
	close(stop)
	wg.Wait()
	peak := sampler.Stop()
	rssAfterFlood, _, err := loadgen.ProcessMemory(s.proc.PID())
	require.NoError(t, err)
	stateAfterFlood, _ := stateBytes()

	// After the flood.
	const honestAfter = 20
	var after []string
	afterOK := 0
	for i := range honestAfter {
		id := fmt.Sprintf("after-%s-%d", run, i)
		after = append(after, id)
		afterOK += honest(id)
	}
	// One honest deployment left open across the restart, its secrets in
	// the state file's reach.
	open := fmt.Sprintf("open-%s", run)
	openStart, _ := post(event("deployment.started", open, fmt.Sprintf(`,"context":{"note":"uses %s","db_password":%q}`, token, password), ""))
	openStep, _ := post(event("step.started", open, "", fmt.Sprintf(`,"step":{"name":"deploy","position":0,"message":"auth %s"}`, token)))
	require.Equal(t, http.StatusOK, openStart)
	require.Equal(t, http.StatusOK, openStep)

	s.restart()
	stateAtRestart, files := stateBytes()
	var leaked []string
	for _, f := range files {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		for name, secret := range map[string]string{"token": token, "password": password} {
			if bytes.Contains(raw, []byte(secret)) {
				leaked = append(leaked, name+" in "+filepath.Base(f))
			}
		}
	}
	var restarted []string
	restartedOK := 0
	for i := range honestAfter {
		id := fmt.Sprintf("restarted-%s-%d", run, i)
		restarted = append(restarted, id)
		restartedOK += honest(id)
	}
	status, _ := post(event("step.finished", open, "", `,"step":{"name":"deploy","position":0,"state":"success"}`))
	require.Equal(t, http.StatusOK, status)
	status, _ = post(event("deployment.finished", open, `,"status":"success"`, ""))
	require.Equal(t, http.StatusOK, status)
	rssAfterRestart, _, err := loadgen.ProcessMemory(s.proc.PID())
	require.NoError(t, err)
	stateAfterRestart, _ := stateBytes()

	duringDone := succeeded(during)
	afterDone := succeeded(after)
	restartedDone := succeeded(append(restarted, open))
	mib := func(b int64) float64 { return float64(b) / (1 << 20) }
	t.Logf("ITEM 5: %d deployment.started (0.6 KB context each) in %s against max_inflight_deployments %d: flood answers %v; "+
		"honest during the flood: %d/%d requests 200, %d/%d deployments ended success; after: %d/%d requests, %d/%d deployments; "+
		"after a restart: %d/%d requests, %d/%d deployments (the one open across it included); "+
		"RSS peak %.0f MiB, after the flood %.0f MiB, after the restart %.0f MiB; state files %.2f MiB after the flood, %.2f MiB at restart, %.2f MiB after; "+
		"one request starting %d deployments: %d %v",
		flood, floodTook.Round(time.Millisecond), maxInflight, floodStatuses,
		duringOK.Load(), duringRequests.Load(), duringDone, len(during), afterOK, 4*honestAfter, afterDone, honestAfter,
		restartedOK, 4*honestAfter, restartedDone, honestAfter+1,
		mib(peak), mib(rssAfterFlood), mib(rssAfterRestart), mib(stateAfterFlood), mib(stateAtRestart), mib(stateAfterRestart),
		maxInflight+1, tooManyStatus, tooManyReply)
	t.Logf("ITEM 8: planted secrets found in the state files at restart: %v", leaked)

	assert.Equal(t, http.StatusRequestEntityTooLarge, tooManyStatus)
	assert.Equal(t, "max_inflight_deployments", tooManyReply["limit"])
	assert.Equal(t, (flood+batch-1)/batch, floodStatuses[http.StatusOK], "the flood itself is admitted: nothing is refused for want of room")
	assert.Equal(t, duringRequests.Load(), duringOK.Load(), "honest requests during the flood: all 200")
	assert.Equal(t, 4*honestAfter, afterOK, "honest requests after the flood: all 200")
	assert.Equal(t, 4*honestAfter, restartedOK, "honest requests after the restart: all 200")
	assert.Equal(t, honestAfter, afterDone)
	assert.Equal(t, honestAfter+1, restartedDone, "after the restart, the open deployment completes too")
	// Each in-flight deployment stores about 0.8 KB: the state is bounded by
	// the cap, not by the flood (the run: 534 MB).
	assert.Less(t, mib(stateAfterFlood), float64(maxInflight)*4/1024+2, "state bounded by the cap")
	assert.Less(t, mib(peak), float64(attackLimitMiB+attackMarginMiB), "RSS within memory_limiter's limit plus the margin")
	assert.Empty(t, leaked, "no planted secret in any file file_storage wrote")
}
