package fakefastdeploy

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newServer(t *testing.T, opts Options) *Server {
	t.Helper()
	if opts.Users == nil {
		opts.Users = map[string]string{"reader": "pw-" + time.Now().Format("150405.000000")}
	}
	s := New(opts)
	require.NoError(t, s.Start())
	t.Cleanup(s.Close)
	return s
}

func do(t *testing.T, method, url, token, contentType, body string) (int, map[string]any, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out, resp.Header
}

func TestTokenEndpoint(t *testing.T) {
	s := newServer(t, Options{})
	var user, pw string
	for u, p := range s.opts.Users {
		user, pw = u, p
	}
	form := func(v url.Values) string { return v.Encode() }
	tests := []struct {
		name   string
		body   string
		status int
		detail any
	}{
		{"ok", form(url.Values{"username": {user}, "password": {pw}}), 200, nil},
		{"ok with grant_type", form(url.Values{"username": {user}, "password": {pw}, "grant_type": {"password"}}), 200, nil},
		{"wrong password", form(url.Values{"username": {user}, "password": {pw + "x"}}), 401, "Incorrect username or password"},
		{"unknown user", form(url.Values{"username": {user + "x"}, "password": {pw}}), 401, "Incorrect username or password"},
		{"missing password", form(url.Values{"username": {user}}), 422, nil},
		{"other grant_type", form(url.Values{"username": {user}, "password": {pw}, "grant_type": {"client_credentials"}}), 422, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body, hdr := do(t, http.MethodPost, s.URL()+"/token", "", "application/x-www-form-urlencoded", tt.body)
			assert.Equal(t, tt.status, status)
			switch status {
			case 200:
				assert.Equal(t, "bearer", body["token_type"])
				claims, err := parseToken(s.Secret(), body["access_token"].(string), time.Now())
				require.NoError(t, err)
				assert.Equal(t, "user", claims["type"])
				assert.Equal(t, user, claims["user"])
			case 401:
				assert.Equal(t, tt.detail, body["detail"])
				assert.Equal(t, "Bearer", hdr.Get("WWW-Authenticate"))
			case 422:
				assert.IsType(t, []any{}, body["detail"])
			}
		})
	}
}

const stepJSON = `{"name":"build","state":"success","started":"2026-01-02T03:04:05.000001+00:00","finished":"2026-01-02T03:04:06+00:00","message":""}`

func TestStepsAndFinishAnswerAsFastdeploy(t *testing.T) {
	s := newServer(t, Options{})
	svc := s.AddService("web", nil)
	id, token := s.StartDeployment(svc, "GitHub", "reader", nil, []string{"build", "deploy"})
	now := time.Now()
	expired := SignToken(s.Secret(), map[string]any{"type": "deployment", "deployment": id}, now.Add(-time.Minute))
	userToken := s.UserToken("reader")
	unknown := SignToken(s.Secret(), map[string]any{"type": "deployment", "deployment": id + 100}, now.Add(time.Minute))
	otherKey := SignToken([]byte("not-the-key"), map[string]any{"type": "deployment", "deployment": id}, now.Add(time.Minute))

	for _, tt := range []struct {
		name, token, body string
		status            int
		detail            any
	}{
		{"no token", "", stepJSON, 401, "Not authenticated"},
		{"expired token", expired, stepJSON, 401, "Could not validate credentials"},
		{"user token", userToken, stepJSON, 401, "Could not validate credentials"},
		{"unknown deployment", unknown, stepJSON, 401, "Could not validate credentials"},
		{"other key", otherKey, stepJSON, 401, "Could not validate credentials"},
		{"missing message", token, `{"name":"build","state":"success","started":"2026-01-02T03:04:05Z","finished":"2026-01-02T03:04:06Z"}`, 422, nil},
		{"started null", token, `{"name":"build","state":"success","started":null,"finished":"2026-01-02T03:04:06Z","message":""}`, 422, nil},
		{"name not a string", token, `{"name":1,"state":"success","started":"2026-01-02T03:04:05Z","finished":"2026-01-02T03:04:06Z","message":""}`, 422, nil},
		{"not json", token, `{`, 422, nil},
		{"ok", token, stepJSON, 200, "step processed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, body, _ := do(t, http.MethodPost, s.URL()+"/steps/", tt.token, "application/json", tt.body)
			assert.Equal(t, tt.status, status)
			if tt.detail != nil {
				assert.Equal(t, tt.detail, body["detail"])
			}
		})
	}
	names, states, finished := s.DeploymentSteps(id)
	assert.Equal(t, []string{"build", "deploy"}, names)
	assert.Equal(t, []string{"success", "running"}, states)
	assert.False(t, finished)

	status, body, _ := do(t, http.MethodPut, s.URL()+"/deployments/finish/", token, "", "")
	assert.Equal(t, 200, status)
	assert.Equal(t, "Deployment 1 finished", body["detail"])
	names, _, finished = s.DeploymentSteps(id)
	assert.Equal(t, []string{"build"}, names, "the running step is deleted on finish")
	assert.True(t, finished)

	status, _, _ = do(t, http.MethodPut, s.URL()+"/deployments/finish/", token, "", "")
	assert.Equal(t, 200, status, "a second finish is answered 200")
	status, body, _ = do(t, http.MethodPost, s.URL()+"/steps/", token, "application/json", stepJSON)
	assert.Equal(t, 400, status, "a step after the finish")
	assert.Equal(t, "Something went wrong", body["detail"])

	status, _, hdr := do(t, http.MethodPost, s.URL()+"/steps", token, "application/json", stepJSON)
	assert.Equal(t, 307, status)
	assert.Equal(t, "/steps/", hdr.Get("Location"))
	status, _, _ = do(t, http.MethodGet, s.URL()+"/steps/", token, "", "")
	assert.Equal(t, 405, status)

	reqs := s.Requests()
	require.NotEmpty(t, reqs)
	assert.Equal(t, http.MethodPost, reqs[0].Method)
}

func TestServicesNeedsUserToken(t *testing.T) {
	s := newServer(t, Options{})
	s.AddService("web", map[string]any{"deploy_script": "deploy.sh"})
	id, deployToken := s.StartDeployment(1, "", "", nil, []string{"a"})
	_ = id
	status, _, _ := do(t, http.MethodGet, s.URL()+"/services/", "", "", "")
	assert.Equal(t, 401, status)
	status, _, _ = do(t, http.MethodGet, s.URL()+"/services/", deployToken, "", "")
	assert.Equal(t, 401, status)

	req, _ := http.NewRequest(http.MethodGet, s.URL()+"/services/", nil)
	req.Header.Set("Authorization", "Bearer "+s.UserToken("reader"))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var rows []map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&rows))
	require.Len(t, rows, 1)
	assert.Equal(t, "web", rows[0]["name"])
	assert.EqualValues(t, 1, rows[0]["id"])
}

// wsDial opens a websocket as a frontend would.
func wsDial(t *testing.T, s *Server, clientID string) (*websocket.Conn, *http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return websocket.Dial(ctx, s.URL()+"/deployments/ws/"+clientID, nil)
}

func readJSON(t *testing.T, c *websocket.Conn) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, data, err := c.Read(ctx)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(data, &m), string(data))
	return m
}

func writeJSONFrame(t *testing.T, c *websocket.Conn, v any) {
	t.Helper()
	data, _ := json.Marshal(v)
	require.NoError(t, c.Write(context.Background(), websocket.MessageText, data))
}

const clientA = "6f1c8f7e-8d7a-4b6e-9f43-0a1b2c3d4e5f"

func TestWebsocketHandshakeEventsAndExpiry(t *testing.T) {
	s := newServer(t, Options{TokenTTL: 2 * time.Second, ExpiryGrace: 100 * time.Millisecond})

	_, resp, err := wsDial(t, s, "not-a-uuid")
	require.Error(t, err)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)

	c, _, err := wsDial(t, s, clientA)
	require.NoError(t, err)
	defer c.CloseNow()
	_, resp, err = wsDial(t, s, clientA)
	require.Error(t, err, "a client id in use is refused")
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)

	writeJSONFrame(t, c, map[string]any{"access_token": s.UserToken("reader")})
	auth := readJSON(t, c)
	assert.Equal(t, map[string]any{"type": "authentication", "status": "success", "detail": "access token verification successful for user reader"}, auth)

	svc := s.AddService("web", nil)
	id, token := s.StartDeployment(svc, "GitHub", "reader", nil, []string{"build", "deploy"})
	assert.Equal(t, "service", readJSON(t, c)["type"])
	started := readJSON(t, c)
	assert.Equal(t, "deployment", started["type"])
	assert.Nil(t, started["finished"])
	first := readJSON(t, c)
	assert.Equal(t, "running", first["state"])
	assert.Equal(t, "pending", readJSON(t, c)["state"])

	task := &DeployTask{StepsURL: s.URL() + "/steps/", FinishURL: s.URL() + "/deployments/finish/", AccessToken: token}
	at := time.Now().UTC()
	out, err := task.SendStep(context.Background(), StepResult{Name: "build", State: "success", Started: at, Finished: at.Add(time.Second)})
	require.NoError(t, err)
	assert.Equal(t, []int{200}, out.Statuses)
	next := readJSON(t, c)
	assert.Equal(t, "deploy", next["name"], "the next pending step starts first")
	assert.Equal(t, "running", next["state"])
	done := readJSON(t, c)
	assert.Equal(t, "build", done["name"])
	assert.Equal(t, "success", done["state"])
	assert.Equal(t, pyTime(&at), done["started"], "started is the deploy process's")

	_, err = task.Finish(context.Background())
	require.NoError(t, err)
	fin := readJSON(t, c)
	assert.Equal(t, "deployment", fin["type"])
	assert.EqualValues(t, id, fin["id"])
	assert.NotNil(t, fin["finished"])
	del := readJSON(t, c)
	assert.Equal(t, "step", del["type"], "StepDeleted follows DeploymentFinished")
	assert.Equal(t, true, del["deleted"])
	assert.Equal(t, "deploy", del["name"])

	// no re-authentication: the socket is closed with a warning after expiry
	warning := readJSON(t, c)
	assert.Equal(t, map[string]any{"type": "warning", "detail": "Your session has expired."}, warning)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _, err = c.Read(ctx)
	assert.Equal(t, websocket.StatusNormalClosure, websocket.CloseStatus(err))
}

func TestWebsocketRejectsBadToken(t *testing.T) {
	s := newServer(t, Options{})
	for _, tok := range []any{"garbage", SignToken(s.Secret(), map[string]any{"type": "deployment", "deployment": 1}, time.Now().Add(time.Minute)), 42} {
		c, _, err := wsDial(t, s, clientA)
		require.NoError(t, err)
		writeJSONFrame(t, c, map[string]any{"access_token": tok})
		got := readJSON(t, c)
		assert.Equal(t, "failure", got["status"])
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, _, err = c.Read(ctx)
		cancel()
		assert.Equal(t, websocket.StatusPolicyViolation, websocket.CloseStatus(err))
		c.CloseNow()
		// the id is free again once the server has forgotten the connection
		require.Eventually(t, func() bool { return s.Authenticated() == 0 && len(s.hub.all) == 0 }, 5*time.Second, 10*time.Millisecond)
	}
}

func TestDeployTaskRetriesAsTasksPy(t *testing.T) {
	var calls atomic.Int32
	var lastFinish *http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			lastFinish = r.Clone(context.Background())
			w.WriteHeader(500)
			return
		}
		calls.Add(1)
		w.WriteHeader(502)
	}))
	defer srv.Close()
	task := &DeployTask{StepsURL: srv.URL + "/steps/", FinishURL: srv.URL + "/deployments/finish/", AccessToken: "t", SleepOnFail: time.Millisecond}
	start := time.Now()
	out, err := task.SendStep(context.Background(), StepResult{Name: "x", State: "success", Started: start, Finished: start})
	require.NoError(t, err, "a dropped step is no error for the deploy process")
	assert.Equal(t, []int{502, 502, 502}, out.Statuses)
	assert.False(t, out.Delivered)
	assert.EqualValues(t, 3, calls.Load())

	status, err := task.Finish(context.Background())
	assert.Equal(t, 500, status)
	assert.True(t, errors.Is(err, ErrStatus))
	require.NotNil(t, lastFinish)
	assert.Equal(t, []string{"0"}, lastFinish.Header["Content-Length"])
	assert.Empty(t, lastFinish.Header.Get("Content-Type"))
	assert.Equal(t, "Bearer t", lastFinish.Header.Get("Authorization"))

	srv.Close()
	out, err = task.SendStep(context.Background(), StepResult{Name: "x", State: "success", Started: start, Finished: start})
	assert.Error(t, err, "a transport error escapes the retry loop")
	assert.Empty(t, out.Statuses)
}

func TestStepBodyIsTasksPyJSON(t *testing.T) {
	task := &DeployTask{}
	at := time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)
	body := task.StepBody(StepResult{Name: "büld", State: "success", Started: at, Finished: at.Add(time.Second - 123456000)})
	assert.Equal(t, `{"id":null,"name":"büld","started":"2026-01-02T03:04:05.123456+00:00","finished":"2026-01-02T03:04:06+00:00","state":"success","deployment_id":null,"message":""}`, string(body))
	long := strings.Repeat("ä", maxStepMessage+10)
	var m map[string]any
	require.NoError(t, json.Unmarshal(task.StepBody(StepResult{Name: "x", Message: long, Started: at, Finished: at}), &m))
	assert.Len(t, []rune(m["message"].(string)), maxStepMessage)
}

func TestDownAndUpKeepsTheAddress(t *testing.T) {
	s := newServer(t, Options{})
	before := s.URL()
	s.Down()
	_, err := http.Get(before + "/services/")
	require.Error(t, err)
	require.NoError(t, s.Up())
	assert.Equal(t, before, s.URL())
	resp, err := http.Get(before + "/services/")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 401, resp.StatusCode)
}
