package upstreamproxy

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type seen struct {
	mu   sync.Mutex
	reqs []*http.Request
	body [][]byte
}

func (s *seen) handler(status int, respHeader map[string]string, respBody string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.reqs = append(s.reqs, r.Clone(context.Background()))
		s.body = append(s.body, b)
		s.mu.Unlock()
		for k, v := range respHeader {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, respBody)
	}
}

func incoming(method, target string, header map[string]string, body string) *http.Request {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	for k, v := range header {
		r.Header.Set(k, v)
	}
	return r
}

func TestForwardsUnchanged(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		target     string
		header     map[string]string
		body       string
		status     int
		outcome    Outcome
		wantLength []string
	}{
		{"step", http.MethodPost, "/steps/", map[string]string{"Authorization": "Bearer deploy-token", "Content-Type": "application/json", "User-Agent": "python-httpx/0.28.1"}, `{"name":"a"}`, 200, Accepted, []string{"12"}},
		{"finish with empty body", http.MethodPut, "/deployments/finish/", map[string]string{"Authorization": "Bearer deploy-token"}, "", 200, Accepted, []string{"0"}},
		{"query kept", http.MethodPost, "/steps/?x=1&y=%20", nil, `{}`, 200, Accepted, []string{"2"}},
		{"upstream refuses", http.MethodPost, "/steps/", map[string]string{"Authorization": "Bearer bad"}, `{}`, 401, Rejected, []string{"2"}},
		{"upstream fails", http.MethodPost, "/steps/", nil, `{}`, 500, Rejected, []string{"2"}},
		{"redirect is an answer", http.MethodPost, "/steps", nil, `{}`, 307, Rejected, []string{"2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s seen
			up := httptest.NewServer(s.handler(tt.status, map[string]string{"Www-Authenticate": "Bearer", "Location": "/steps/", "Connection": "close"}, `{"detail":"x"}`))
			defer up.Close()
			p, err := New(up.URL+"/prefix/", nil, 10*time.Second)
			require.NoError(t, err)
			in := incoming(tt.method, tt.target, tt.header, tt.body)
			in.Header.Set("Connection", "keep-alive, X-Hop")
			in.Header.Set("X-Hop", "dropped")
			resp := p.Forward(context.Background(), in, []byte(tt.body))
			assert.Equal(t, tt.status, resp.Status)
			assert.Equal(t, tt.outcome, resp.Outcome)
			assert.Equal(t, `{"detail":"x"}`, string(resp.Body))
			assert.Equal(t, "Bearer", resp.Header.Get("Www-Authenticate"), "upstream headers come back")
			assert.Empty(t, resp.Header.Get("Connection"), "hop-by-hop headers do not")
			assert.EqualValues(t, 1, p.Count(tt.outcome))

			require.Len(t, s.reqs, 1)
			got := s.reqs[0]
			assert.Equal(t, tt.method, got.Method)
			assert.Equal(t, "/prefix"+in.URL.Path, got.URL.Path)
			assert.Equal(t, in.URL.RawQuery, got.URL.RawQuery)
			assert.Equal(t, tt.body, string(s.body[0]))
			assert.Equal(t, tt.wantLength, got.Header["Content-Length"])
			for k, v := range tt.header {
				assert.Equal(t, v, got.Header.Get(k), k)
			}
			if _, ok := tt.header["Content-Type"]; !ok {
				assert.Empty(t, got.Header.Get("Content-Type"), "no content type is added")
			}
			assert.Empty(t, got.Header.Get("X-Hop"))
		})
	}
}

func TestUnreachableIs502(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	p, err := New("http://"+addr, nil, 10*time.Second)
	require.NoError(t, err)
	resp := p.Forward(context.Background(), incoming(http.MethodPost, "/steps/", nil, "{}"), []byte("{}"))
	assert.Equal(t, http.StatusBadGateway, resp.Status)
	assert.Equal(t, Unreachable, resp.Outcome)
	assert.JSONEq(t, `{"error":"upstream_unreachable","detail":"fastdeploy upstream could not be reached"}`, string(resp.Body))
	assert.NotContains(t, string(resp.Body), addr)
	assert.EqualValues(t, 1, p.Count(Unreachable))
}

func TestSlowIs504(t *testing.T) {
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer up.Close()
	defer close(release)
	p, err := New(up.URL, nil, 50*time.Millisecond)
	require.NoError(t, err)
	resp := p.Forward(context.Background(), incoming(http.MethodPut, "/deployments/finish/", nil, ""), nil)
	assert.Equal(t, http.StatusGatewayTimeout, resp.Status)
	assert.Equal(t, TimedOut, resp.Outcome)
	assert.EqualValues(t, 1, p.Count(TimedOut))
}

func TestOversizedAnswerIs502(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write(make([]byte, DefaultMaxResponseBody+1))
	}))
	defer up.Close()
	p, err := New(up.URL, nil, 10*time.Second)
	require.NoError(t, err)
	resp := p.Forward(context.Background(), incoming(http.MethodPost, "/steps/", nil, "{}"), []byte("{}"))
	assert.Equal(t, http.StatusBadGateway, resp.Status)
}

func TestTLSThroughConfighttp(t *testing.T) {
	var s seen
	up := httptest.NewTLSServer(s.handler(200, nil, `{"detail":"step processed"}`))
	defer up.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	cert, err := x509.ParseCertificate(up.TLS.Certificates[0].Certificate[0])
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600))

	untrusted := confighttp.NewDefaultClientConfig()
	client, err := untrusted.ToClient(context.Background(), nil, componenttest.NewNopTelemetrySettings())
	require.NoError(t, err)
	p, err := New(up.URL, client, 10*time.Second)
	require.NoError(t, err)
	resp := p.Forward(context.Background(), incoming(http.MethodPost, "/steps/", nil, "{}"), []byte("{}"))
	assert.Equal(t, http.StatusBadGateway, resp.Status, "an unknown CA fails as unreachable: %v", resp.Err)
	client.CloseIdleConnections()

	trusted := confighttp.NewDefaultClientConfig()
	trusted.TLS.CAFile = caFile
	client, err = trusted.ToClient(context.Background(), nil, componenttest.NewNopTelemetrySettings())
	require.NoError(t, err)
	defer client.CloseIdleConnections()
	p, err = New(up.URL, client, 10*time.Second)
	require.NoError(t, err)
	resp = p.Forward(context.Background(), incoming(http.MethodPost, "/steps/", nil, "{}"), []byte("{}"))
	assert.Equal(t, 200, resp.Status)
	assert.Equal(t, `{"detail":"step processed"}`, string(resp.Body))
}

func TestNewRejectsBadUpstream(t *testing.T) {
	for _, u := range []string{"", "fastdeploy.internal", "ftp://x", "http://", "http://x/?a=1", "http://x/#f", "://x"} {
		_, err := New(u, nil, 10*time.Second)
		assert.Error(t, err, u)
	}
	p, err := New("https://fastdeploy.internal/api/", nil, 0)
	require.NoError(t, err)
	assert.Equal(t, "https://fastdeploy.internal/api/steps/?a=b", p.Target("/steps/", "a=b"))
}

func TestWriteSendsTheAnswer(t *testing.T) {
	rec := httptest.NewRecorder()
	Write(rec, Response{Status: 401, Header: http.Header{"Www-Authenticate": {"Bearer"}}, Body: []byte(`{"detail":"Could not validate credentials"}`)})
	assert.Equal(t, 401, rec.Code)
	assert.Equal(t, "Bearer", rec.Header().Get("WWW-Authenticate"))
	assert.Equal(t, "43", rec.Header().Get("Content-Length"))
	assert.Equal(t, `{"detail":"Could not validate credentials"}`, rec.Body.String())
}
