package fastdeployapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/testutil/fakefastdeploy"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func password() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "test-" + hex.EncodeToString(b)
}

type recorder struct {
	mu     sync.Mutex
	events []Event
	signal chan struct{}
}

func newRecorder() *recorder { return &recorder{signal: make(chan struct{}, 1024)} }

func (r *recorder) add(e Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	r.signal <- struct{}{}
}

// waitFor waits until n events arrived.
func (r *recorder) waitFor(t *testing.T, n int) []Event {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		r.mu.Lock()
		if len(r.events) >= n {
			out := append([]Event(nil), r.events...)
			r.mu.Unlock()
			return out
		}
		r.mu.Unlock()
		select {
		case <-r.signal:
		case <-deadline:
			t.Fatalf("waited for %d events", n)
		}
	}
}

func start(t *testing.T, opts fakefastdeploy.Options, tune func(*Config)) (*fakefastdeploy.Server, *Follower, *recorder) {
	t.Helper()
	pw := password()
	opts.Users = map[string]string{"reader": pw}
	srv := fakefastdeploy.New(opts)
	require.NoError(t, srv.Start())
	t.Cleanup(srv.Close)
	rec := newRecorder()
	cfg := Config{BaseURL: srv.URL(), Username: "reader", Password: pw, OnEvent: rec.add, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}
	if tune != nil {
		tune(&cfg)
	}
	f, err := New(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-f.Subscribed():
	case <-time.After(10 * time.Second):
		t.Fatal("never subscribed")
	}
	return srv, f, rec
}

func TestFollowsADeploymentInFastdeploysOrder(t *testing.T) {
	srv, f, rec := start(t, fakefastdeploy.Options{}, nil)
	svc := srv.AddService("web", nil)
	id, token := srv.StartDeployment(svc, "GitHub", "reader", map[string]any{"env": map[string]any{}}, []string{"build", "deploy"})
	task := &fakefastdeploy.DeployTask{StepsURL: srv.URL() + "/steps/", FinishURL: srv.URL() + "/deployments/finish/", AccessToken: token}
	at := time.Now().UTC().Truncate(time.Microsecond)
	_, err := task.SendStep(context.Background(), fakefastdeploy.StepResult{Name: "build", State: "success", Started: at, Finished: at.Add(time.Second)})
	require.NoError(t, err)
	_, err = task.Finish(context.Background())
	require.NoError(t, err)

	evs := rec.waitFor(t, 8)
	require.NotNil(t, evs[0].Service)
	assert.Equal(t, "web", evs[0].Service.Name)
	require.NotNil(t, evs[1].Deployment)
	assert.EqualValues(t, id, evs[1].Deployment.ID)
	assert.EqualValues(t, svc, evs[1].Deployment.ServiceID)
	assert.Equal(t, "GitHub", evs[1].Deployment.Origin)
	assert.True(t, evs[1].Deployment.Finished.IsZero())
	assert.Equal(t, "running", evs[2].Step.State)
	assert.Equal(t, "pending", evs[3].Step.State)
	assert.Equal(t, "deploy", evs[4].Step.Name)
	assert.Equal(t, "build", evs[5].Step.Name)
	assert.True(t, at.Equal(evs[5].Step.Started), "started is the deploy process's: %v", evs[5].Step.Started)
	require.NotNil(t, evs[6].Deployment)
	assert.False(t, evs[6].Deployment.Finished.IsZero())
	require.NotNil(t, evs[7].Step)
	assert.True(t, evs[7].Step.Deleted)
	assert.Equal(t, "deploy", evs[7].Step.Name)

	name, ok := f.ServiceName(context.Background(), int64(svc))
	assert.True(t, ok)
	assert.Equal(t, "web", name)
	assert.Zero(t, f.Stats().BadFrames)
}

func TestReauthenticatesBeforeExpiry(t *testing.T) {
	// tokens live 2-3 s (exp is whole seconds); without a renewal the server
	// closes the socket 100 ms after expiry
	srv, f, rec := start(t, fakefastdeploy.Options{TokenTTL: 3 * time.Second, ExpiryGrace: 100 * time.Millisecond}, func(c *Config) { c.ReauthMargin = time.Second })
	require.Eventually(t, func() bool { return f.Stats().Reauthentications >= 3 }, 20*time.Second, 20*time.Millisecond)
	assert.Zero(t, f.Stats().Disconnects, "renewed in time, never closed")
	svc := srv.AddService("late", nil)
	evs := rec.waitFor(t, 1)
	assert.EqualValues(t, svc, evs[0].Service.ID)
}

func TestReconnectsAfterTheServerWasDown(t *testing.T) {
	srv, f, rec := start(t, fakefastdeploy.Options{}, nil)
	srv.Down()
	require.Eventually(t, func() bool { return !f.Live() }, 5*time.Second, 5*time.Millisecond)
	require.NoError(t, srv.Up())
	require.Eventually(t, func() bool { return f.Stats().Subscriptions >= 2 && f.Live() }, 10*time.Second, 10*time.Millisecond)
	assert.GreaterOrEqual(t, f.Stats().Disconnects, int64(1))
	srv.AddService("after", nil)
	evs := rec.waitFor(t, 1)
	assert.Equal(t, "after", evs[0].Service.Name)
}

func TestWrongPasswordNeverSubscribes(t *testing.T) {
	srv := fakefastdeploy.New(fakefastdeploy.Options{Users: map[string]string{"reader": password()}})
	require.NoError(t, srv.Start())
	defer srv.Close()
	f, err := New(Config{BaseURL: srv.URL(), Username: "reader", Password: password(), MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.Run(ctx) }()
	require.Eventually(t, func() bool { return f.Stats().LoginFailures >= 3 }, 10*time.Second, 5*time.Millisecond)
	cancel()
	<-done
	assert.Zero(t, f.Stats().Subscriptions)
	select {
	case <-f.Subscribed():
		t.Fatal("subscribed with a wrong password")
	default:
	}
}

func TestServiceNameRefreshesOnUnknownID(t *testing.T) {
	pw := password()
	srv := fakefastdeploy.New(fakefastdeploy.Options{Users: map[string]string{"reader": pw}})
	require.NoError(t, srv.Start())
	defer srv.Close()
	first := srv.AddService("web", nil)
	clock := time.Now()
	var mu sync.Mutex
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	f, err := New(Config{BaseURL: srv.URL(), Username: "reader", Password: pw, ServicesRefreshInterval: time.Minute, Now: now})
	require.NoError(t, err)
	ctx := context.Background()

	name, ok := f.ServiceName(ctx, int64(first))
	assert.True(t, ok)
	assert.Equal(t, "web", name)
	assert.EqualValues(t, 1, f.Stats().ServiceRefreshes)

	second := srv.AddService("api", nil)
	_, ok = f.ServiceName(ctx, int64(second))
	assert.False(t, ok, "within the refresh interval the list is not fetched again")
	assert.EqualValues(t, 1, f.Stats().ServiceRefreshes)

	mu.Lock()
	clock = clock.Add(time.Minute)
	mu.Unlock()
	name, ok = f.ServiceName(ctx, int64(second))
	assert.True(t, ok)
	assert.Equal(t, "api", name)
	assert.EqualValues(t, 2, f.Stats().ServiceRefreshes)
	assert.EqualValues(t, 1, f.Stats().Logins, "the token is reused while valid")
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, c := range []Config{
		{BaseURL: "", Username: "u", Password: "p"},
		{BaseURL: "ftp://x", Username: "u", Password: "p"},
		{BaseURL: "http://", Username: "u", Password: "p"},
		{BaseURL: "http://x", Username: "", Password: "p"},
		{BaseURL: "http://x", Username: "u", Password: ""},
	} {
		_, err := New(c)
		assert.Error(t, err, "%+v", c.BaseURL)
	}
	_, err := New(Config{BaseURL: "https://fastdeploy.internal/api/", Username: "u", Password: "p"})
	assert.NoError(t, err)
}
