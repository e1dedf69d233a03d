package upstreamproxy

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
)

// A step as fastdeploy's deploy process posts it.
var benchStep = []byte(`{"id":null,"name":"build","started":"2026-01-02T03:04:05.123456+00:00","finished":"2026-01-02T03:04:06+00:00","state":"success","deployment_id":null,"message":""}`)

func benchUpstream(b *testing.B) *httptest.Server {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"detail":"step processed"}`))
	}))
	b.Cleanup(up.Close)
	return up
}

// BenchmarkForward is a step through Proxy; compare with
// BenchmarkStdlibReverseProxy, the standard library's proxy doing the same.
func BenchmarkForward(b *testing.B) {
	up := benchUpstream(b)
	p, err := New(up.URL, &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}, 0)
	if err != nil {
		b.Fatal(err)
	}
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		Write(w, p.Forward(r.Context(), r, body))
	}))
	defer front.Close()
	benchPost(b, front.URL)
}

func BenchmarkStdlibReverseProxy(b *testing.B) {
	up := benchUpstream(b)
	target, _ := url.Parse(up.URL)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = &http.Transport{MaxIdleConnsPerHost: 16}
	front := httptest.NewServer(rp)
	defer front.Close()
	benchPost(b, front.URL)
}

func benchPost(b *testing.B, base string) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req, _ := http.NewRequest(http.MethodPost, base+"/steps/", bytes.NewReader(benchStep))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer t")
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatal(resp.StatusCode)
		}
	}
}
