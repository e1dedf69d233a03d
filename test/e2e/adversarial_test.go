//go:build e2e

// The adversarial suite of issue 17: one test per item of the attack run
// against the built collector with production.yaml's receiver settings
// (TLS, secret, storage, fastdeploy_jwt_secret, memory_limiter first).
// Each test prints its figure as "ITEM n: ..." so a run can be compared
// with docs/SECURITY.md. `make test` runs them short; `make soak` at the
// issue's full size.

package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/loadgen"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/signature"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/testutil/collectorproc"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/testutil/otlpsink"
)

// attackConfig is production.yaml's receiver, pointed at a local sink.
const attackConfig = storageHead + `    tls:
      cert_file: {{cert}}
      key_file: {{key}}
      min_version: "1.2"
    secret: {{secret}}
    signature_tolerance: 5m
    fastdeploy_jwt_secret: {{jwt}}
    storage: file_storage
    max_connections: {{max_connections}}
{{receiver_extra}}processors:
  memory_limiter:
    check_interval: 100ms
    limit_mib: {{limit_mib}}
    spike_limit_mib: 64
` + sinkExporter + `service:
  extensions: [health_check, file_storage]
  pipelines:
    traces:
      receivers: [fastdeploy]
      processors: [memory_limiter]
      exporters: [otlp_http]
    logs:
      receivers: [fastdeploy]
      processors: [memory_limiter]
      exporters: [otlp_http]
  telemetry:
    metrics:
      level: none
`

// attackLimitMiB is memory_limiter's limit; attackMarginMiB what the
// process may hold beyond it (runtime, buffers of requests in flight).
const attackLimitMiB, attackMarginMiB = 256, 96

type attackStack struct {
	t        *testing.T
	secret   []byte
	url      string // https://127.0.0.1:port
	addr     string // 127.0.0.1:port
	tls      *tls.Config
	sink     *otlpsink.Sink
	proc     *collectorproc.Process
	maxConns int
	// what restart needs: the binary, the config, health's URL, and the
	// file_storage directory, kept across restarts
	bin, cfg, health, stateDir string
}

// restart stops the collector with SIGTERM and starts it again on the
// same ports, config and storage.
func (s *attackStack) restart() {
	s.t.Helper()
	s.proc.Stop(s.t)
	s.proc = collectorproc.Start(s.t, s.bin, s.cfg, s.health)
}

// randomHex is an obviously generated value: no literal in the tests
// looks like a credential.
func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}

func startAttackStack(t *testing.T, maxConns int) *attackStack {
	t.Helper()
	return startAttackStackWith(t, maxConns, "")
}

// startAttackStackWith adds receiverExtra (YAML lines indented for the
// receiver's section) to the receiver's settings.
func startAttackStackWith(t *testing.T, maxConns int, receiverExtra string) *attackStack {
	t.Helper()
	bin := collectorproc.Binary(t)
	sink, err := otlpsink.Start()
	require.NoError(t, err)
	t.Cleanup(func() { _ = sink.Close() })
	dir := t.TempDir()
	cert := writeSelfSignedCert(t, dir)
	s := &attackStack{t: t, secret: []byte(randomHex(t, 32)), sink: sink, maxConns: maxConns}
	health, receiver := collectorproc.FreePort(t), collectorproc.FreePort(t)
	state := filepath.Join(dir, "state")
	require.NoError(t, os.MkdirAll(state, 0o700))
	cfg := fillConfig(t, attackConfig, map[string]any{
		"health": health, "receiver": receiver,
		"dir": state, "cert": cert.certFile, "key": cert.keyFile,
		"secret": string(s.secret), "jwt": randomHex(t, 32),
		"max_connections": maxConns, "limit_mib": attackLimitMiB,
		"sink": sink.Endpoint(), "receiver_extra": receiverExtra,
	})
	s.bin, s.cfg, s.health, s.stateDir = bin, cfg, fmt.Sprintf("http://127.0.0.1:%d/", health), state
	s.proc = collectorproc.Start(t, bin, cfg, s.health)
	s.addr = fmt.Sprintf("127.0.0.1:%d", receiver)
	s.url = "https://" + s.addr
	s.tls = cert.clientTLS(t)
	return s
}

// sign signs req (body is its body) as the deployer does.
func (s *attackStack) sign(req *http.Request, body []byte) {
	signature.SignHTTP(s.secret, time.Now(), req, body)
}

// client returns an HTTPS client; h2 picks HTTP/2, keepAlive whether
// connections are reused.
func (s *attackStack) client(h2, keepAlive bool) *http.Client {
	tr := &http.Transport{TLSClientConfig: s.tls.Clone(), ForceAttemptHTTP2: h2, DisableKeepAlives: !keepAlive,
		MaxIdleConnsPerHost: 128}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return &http.Client{Transport: tr, Timeout: 60 * time.Second}
}

// ansibleBody is one task result in fastdeploy's json_cb format, named
// uniquely so that no two tests' bodies are the same request.
func ansibleBody(name string) []byte {
	now := time.Now().UTC()
	const layout = "2006-01-02T15:04:05.000000"
	return []byte(fmt.Sprintf(`{"position":1,"start":%q,"end":%q,"name":%q,"state":"success","error_message":"","misc":{"changed":false}}`+"\n",
		now.Add(-time.Second).Format(layout), now.Format(layout), name))
}

type ack struct {
	Accepted int  `json:"accepted"`
	Replay   bool `json:"replay"`
}

// TestAttack1ReplayRace: 32 copies of one signed /v1/ansible request sent
// at once, each naming a different deployment in an unsigned header, and
// 32 identical copies. With v2 signatures the header is signed, so only
// the copy it was signed for can be ingested, and only once; a v1
// signature (body only) on a request with routing headers is refused.
func TestAttack1ReplayRace(t *testing.T) {
	s := startAttackStack(t, 1024)
	const copies = 32
	body := ansibleBody("race-" + randomHex(t, 4))

	race := func(sign func(req *http.Request), deployment func(i int) string) (ingested int, statuses map[int]int) {
		statuses = map[int]int{}
		var mu sync.Mutex
		var start, done sync.WaitGroup
		start.Add(1)
		client := s.client(true, true)
		defer client.CloseIdleConnections()
		for i := range copies {
			done.Add(1)
			go func() {
				defer done.Done()
				req, err := http.NewRequest(http.MethodPost, s.url+"/v1/ansible", bytes.NewReader(body))
				if err != nil {
					return
				}
				req.Header.Set("Content-Type", "application/json")
				sign(req)
				req.Header.Set("X-Fastdeploy-Deployment", deployment(i))
				start.Wait()
				resp, err := client.Do(req)
				if err != nil {
					return
				}
				defer resp.Body.Close()
				var a ack
				_ = json.NewDecoder(resp.Body).Decode(&a)
				mu.Lock()
				defer mu.Unlock()
				statuses[resp.StatusCode]++
				if resp.StatusCode == http.StatusOK && a.Accepted > 0 && !a.Replay {
					ingested++
				}
			}()
		}
		start.Done()
		done.Wait()
		return ingested, statuses
	}

	// v1: the attack as it was made.
	v1 := signature.Sign(s.secret, time.Now(), body)
	each := func(i int) string { return fmt.Sprintf("race-%d", i) }
	ingestedV1, statusesV1 := race(func(req *http.Request) { req.Header.Set(signature.Header, v1) }, each)
	// v2 signed for race-0: the other 31 changed a signed header.
	body = ansibleBody("race-" + randomHex(t, 4)) // a new request, not a replay of the first
	v2req, err := http.NewRequest(http.MethodPost, s.url+"/v1/ansible", bytes.NewReader(body))
	require.NoError(t, err)
	v2req.Header.Set("X-Fastdeploy-Deployment", "race-0")
	v2 := signature.SignRequest(s.secret, time.Now(), signature.RequestOf(v2req, body))
	ingestedV2, statusesV2 := race(func(req *http.Request) { req.Header.Set(signature.Header, v2) }, each)
	// 32 identical copies of a new signed request: one reserves the key,
	// the others are told it is in progress (429) or was ingested (200
	// replay).
	body = ansibleBody("race-" + randomHex(t, 4))
	v2req, err = http.NewRequest(http.MethodPost, s.url+"/v1/ansible", bytes.NewReader(body))
	require.NoError(t, err)
	v2req.Header.Set("X-Fastdeploy-Deployment", "race-same")
	v2 = signature.SignRequest(s.secret, time.Now(), signature.RequestOf(v2req, body))
	ingestedSame, statusesSame := race(func(req *http.Request) { req.Header.Set(signature.Header, v2) }, func(int) string { return "race-same" })

	t.Logf("ITEM 1: replay race, %d copies with different X-Fastdeploy-Deployment: v1 signature ingested %d (statuses %v), v2 signature ingested %d (statuses %v); %d identical copies ingested %d (statuses %v)",
		copies, ingestedV1, statusesV1, ingestedV2, statusesV2, copies, ingestedSame, statusesSame)
	assert.Equal(t, 1, ingestedSame, "identical copies at once: ingested exactly once")
	assert.Equal(t, copies, statusesSame[http.StatusOK]+statusesSame[http.StatusTooManyRequests], "the others: replay or in progress")
	assert.Zero(t, ingestedV1, "a v1 signature does not cover the routing header: refused")
	assert.Equal(t, 1, ingestedV2, "exactly the copy the v2 signature was made for is ingested, once")
	assert.Equal(t, copies-1, statusesV2[http.StatusUnauthorized], "the copies with a changed signed header are refused")
}

// TestAttack2ConnectionFlood: a client at 127.0.0.2 keeps twice
// max_connections of TCP connections open without sending a TLS hello,
// reopening each as the server closes it; signed requests from
// 127.0.0.1, each on a new connection, must succeed (≥ 99%), and the
// handshake failures must not be logged one by one.
func TestAttack2ConnectionFlood(t *testing.T) {
	const maxConns = 128
	s := startAttackStack(t, maxConns)
	flooders := 2 * maxConns
	attacker := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 5 * time.Second}
	stop := make(chan struct{})
	var flood sync.WaitGroup
	var opened atomic.Int64
	for range flooders {
		flood.Add(1)
		go func() {
			defer flood.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				conn, err := attacker.Dial("tcp", s.addr)
				if err != nil {
					select {
					case <-stop:
						return
					case <-time.After(10 * time.Millisecond):
					}
					continue
				}
				opened.Add(1)
				closed := make(chan struct{})
				go func() {
					select {
					case <-stop:
					case <-closed:
					}
					conn.Close()
				}()
				_, _ = conn.Read(make([]byte, 1)) // until the server closes it
				close(closed)
			}
		}()
	}
	defer func() { close(stop); flood.Wait() }()
	require.Eventually(t, func() bool { return opened.Load() >= int64(flooders) }, 30*time.Second, 10*time.Millisecond)

	requests := scaled(60, 400)
	ok := 0
	for i := range requests {
		body := []byte(fmt.Sprintf(`{"type":"deployment.started","time":%q,"deployment":{"id":"flood-%d","service":"flood"}}`, nowRFC3339(), i))
		req, err := http.NewRequest(http.MethodPost, s.url+"/v1/deployments/events", bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		s.sign(req, body)
		client := s.client(i%2 == 0, false)
		client.Timeout = 10 * time.Second
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				ok++
			}
		}
	}
	handshakeLines := strings.Count(s.proc.Output(), "TLS handshake error")
	rate := float64(ok) / float64(requests)
	t.Logf("ITEM 2: connection flood (%d silent connections from one source, max_connections %d, %d opened): %d of %d legitimate requests succeeded (%.1f%%); %d handshake-error log lines",
		flooders, maxConns, opened.Load(), ok, requests, 100*rate, handshakeLines)
	assert.GreaterOrEqual(t, rate, 0.99)
	assert.Less(t, handshakeLines, 10, "handshake errors are counted, not logged one by one")
}

// TestAttack3UnauthenticatedMemory: 60 concurrent 10 MiB bodies without
// credentials, to the JWT paths and to a signed path with a wrong MAC,
// over HTTP/1.1 (one connection each) and HTTP/2 (60 streams on one
// connection). All are refused; the collector's peak RSS stays within
// memory_limiter's limit plus the margin.
func TestAttack3UnauthenticatedMemory(t *testing.T) {
	s := startAttackStack(t, 1024)
	const concurrent, size = 60, 10 << 20
	body := bytes.Repeat([]byte("x"), size)
	sampler := loadgen.SampleRSS(s.proc.PID(), 20*time.Millisecond)
	statuses := map[string]map[int]int{}
	var mu sync.Mutex
	for _, proto := range []string{"HTTP/1.1", "HTTP/2"} {
		for _, target := range []struct{ method, path string }{
			{http.MethodPut, "/deployments/finish/"},
			{http.MethodPost, "/steps/"},
			{http.MethodPost, "/v1/ansible"},
		} {
			key := proto + " " + target.method + " " + target.path
			statuses[key] = map[int]int{}
			var client *http.Client
			if proto == "HTTP/2" {
				client = &http.Client{Timeout: 60 * time.Second, Transport: &http2.Transport{TLSClientConfig: s.tls.Clone()}}
			} else {
				client = s.client(false, false)
			}
			var wg sync.WaitGroup
			for range concurrent {
				wg.Add(1)
				go func() {
					defer wg.Done()
					req, err := http.NewRequest(target.method, s.url+target.path, bytes.NewReader(body))
					if err != nil {
						return
					}
					req.Header.Set("Content-Type", "application/json")
					if target.path == "/v1/ansible" {
						// Current and well-formed, wrong MAC: passes every check
						// that does not need the body.
						req.Header.Set(signature.Header, fmt.Sprintf("t=%d,v2=%s", time.Now().Unix(), strings.Repeat("0", 64)))
						req.Header.Set("X-Fastdeploy-Deployment", "memory")
					}
					resp, err := client.Do(req)
					status := 0
					if err == nil {
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						status = resp.StatusCode
					}
					mu.Lock()
					statuses[key][status]++
					mu.Unlock()
				}()
			}
			wg.Wait()
			client.CloseIdleConnections()
		}
	}
	peak := float64(sampler.Stop()) / (1 << 20)
	t.Logf("ITEM 3: %d concurrent unauthenticated 10 MiB bodies per path and protocol: peak RSS %.0f MiB (memory_limiter %d MiB + margin %d); answers %v",
		concurrent, peak, attackLimitMiB, attackMarginMiB, statuses)
	for key, byStatus := range statuses {
		for status := range byStatus {
			assert.Contains(t, []int{http.StatusUnauthorized, http.StatusServiceUnavailable, http.StatusTooManyRequests, 0}, status, "%s: refused, never ingested", key)
		}
		// Some got past the buffer bound and were refused for their
		// credentials: a 401, or (HTTP/1.1) a connection the server closed
		// after answering 401 while the client was still sending the body.
		assert.Positive(t, byStatus[http.StatusUnauthorized]+byStatus[0], "%s: at least some refused for their credentials, not only for the buffer bound", key)
	}
	assert.Less(t, peak, float64(attackLimitMiB+attackMarginMiB), "peak RSS within memory_limiter's limit plus the margin")
}

// processCPU is the collector's user+system CPU time so far.
func processCPU(t *testing.T, pid int) time.Duration {
	t.Helper()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	require.NoError(t, err)
	// Fields after the command name (which may hold spaces) in parentheses.
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+2:]))
	utime, err := strconv.ParseInt(fields[11], 10, 64)
	require.NoError(t, err)
	stime, err := strconv.ParseInt(fields[12], 10, 64)
	require.NoError(t, err)
	const ticksPerSecond = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticksPerSecond
}

// TestAttack4DuplicateKeyCPU: a lifecycle event whose context has 40k and
// then 80k keys (about 1 MiB): the collector's CPU for the larger is about
// twice the smaller's, not four times, and the client gets its answer.
func TestAttack4DuplicateKeyCPU(t *testing.T) {
	s := startAttackStack(t, 1024)
	client := s.client(true, true)
	defer client.CloseIdleConnections()
	send := func(keys int) (time.Duration, int) {
		var ctx strings.Builder
		for i := range keys {
			if i > 0 {
				ctx.WriteByte(',')
			}
			fmt.Fprintf(&ctx, `"k%07d":0`, i)
		}
		body := []byte(fmt.Sprintf(`{"type":"deployment.started","time":%q,"deployment":{"id":"keys-%d-%s","service":"keys"},"context":{%s}}`,
			nowRFC3339(), keys, randomHex(t, 4), ctx.String()))
		req, err := http.NewRequest(http.MethodPost, s.url+"/v1/deployments/events", bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		s.sign(req, body)
		before := processCPU(t, s.proc.PID())
		resp, err := client.Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return processCPU(t, s.proc.PID()) - before, resp.StatusCode
	}
	// Best of three each: other processes' load only adds.
	best := func(keys int) (time.Duration, int) {
		b, status := send(keys)
		for range 2 {
			d, st := send(keys)
			if d < b {
				b = d
			}
			status = st
		}
		return b, status
	}
	// Other processes on the machine can only make a measurement look
	// worse (the collector's CPU also counts its GC and exporters), so the
	// claim holds if one of three attempts shows it; the old quadratic
	// check measured about 4× every time.
	ratio := 1e9
	for attempt := 0; attempt < 3 && ratio >= 3; attempt++ {
		small, smallStatus := best(40_000)
		large, largeStatus := best(80_000)
		r := float64(large) / float64(max(small, 10*time.Millisecond))
		t.Logf("ITEM 4: CPU for 40k keys %s (status %d), for 80k keys (1 MiB) %s (status %d): ratio %.2f",
			small, smallStatus, large, largeStatus, r)
		assert.Equal(t, http.StatusOK, smallStatus)
		assert.Equal(t, http.StatusOK, largeStatus)
		assert.Less(t, large, 5*time.Second, "1 MiB of keys is cheap")
		ratio = min(ratio, r)
	}
	assert.Less(t, ratio, 3.0, "linear in the number of keys")
}
