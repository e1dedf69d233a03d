package fastdeployreceiver

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// FuzzDeploymentToken: no token panics the verifier or is accepted unless it
// carries a valid HS256 signature over a deployment claim, and no error
// quotes the token.
func FuzzDeploymentToken(f *testing.F) {
	f.Add("Bearer " + deploymentToken("42", testNow.Add(time.Hour)))
	f.Add("Bearer " + mintToken(jwtSecret, `{"alg":"none"}`, `{"type":"deployment","deployment":42,"exp":9999999999}`))
	f.Add("Bearer a.b.c")
	f.Add("Basic x")
	f.Fuzz(func(t *testing.T, auth string) {
		var id string
		var err error
		bounded(t, "verifyDeploymentToken", []byte(auth), func() {
			var tok deploymentJWT
			tok, err = verifyDeploymentToken([]byte(jwtSecret), auth, testNow)
			id = tok.id
		})
		if err != nil {
			if _, token, ok := strings.Cut(auth, " "); ok && len(token) > 8 && strings.Contains(err.Error(), token) {
				t.Fatalf("error quotes the token: %v", err)
			}
			return
		}
		// Accepted: it must be exactly what the secret signs.
		parts := strings.Split(strings.TrimSpace(strings.SplitN(strings.TrimSpace(auth), " ", 2)[1]), ".")
		if len(parts) != 3 || mintTokenParts(jwtSecret, parts[0], parts[1]) != parts[2] {
			t.Fatalf("accepted a token not signed with the secret: %q", auth)
		}
		if id == "" {
			t.Fatal("accepted without a deployment id")
		}
	})
}

// FuzzFastdeployDomainEvents runs fastdeploy domain events through the whole
// handler: never a panic, a stall or a 5xx, and refusals name no values.
func FuzzFastdeployDomainEvents(f *testing.F) {
	f.Add([]byte(`{"type": "deployment", "id": 5, "service_id": 3, "origin": "GitHub", "user": "alice", "started": "2026-11-27T11:00:00+00:00", "finished": null, "context": {}}`))
	f.Add([]byte(`{"type": "step", "id": 1, "name": "build", "state": "success", "deployment_id": 5, "started": "2026-11-27T11:00:01+00:00", "finished": "2026-11-27T11:00:04+00:00", "deleted": false}` + "\n" +
		`{"type": "step", "id": 2, "name": "notify", "state": "pending", "deployment_id": 5, "deleted": true}`))
	f.Add([]byte(`[{"type":"deployment","id":"x"}]`))
	fr := newFuzzReceiver(f, "")
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, pathCompatEvents, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-ndjson")
		fr.serve(t, req)
	})
}
