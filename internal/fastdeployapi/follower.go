package fastdeployapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	cryptorand "crypto/rand"

	"github.com/coder/websocket"
	"go.uber.org/zap"
)

// Config configures a Follower.
type Config struct {
	// BaseURL is fastdeploy's API_URL, e.g. https://fastdeploy.internal.
	BaseURL  string
	Username string
	Password string
	// Client carries TLS settings; its Timeout bounds the token and services
	// calls, the websocket handshake is bounded by HandshakeTimeout.
	Client *http.Client
	// ReauthMargin is how long before the token's expiry a new one is sent
	// on the open socket (at most half the token's lifetime).
	ReauthMargin time.Duration
	// MinBackoff and MaxBackoff bound the wait between reconnects, doubled
	// after each failed session and reset by a subscribed one.
	MinBackoff, MaxBackoff time.Duration
	// ServicesRefreshInterval is the least time between two refreshes of the
	// services list caused by unknown ids.
	ServicesRefreshInterval time.Duration
	HandshakeTimeout        time.Duration
	// OnEvent receives each domain event, in the stream's order, from one
	// goroutine.
	OnEvent func(Event)
	Logger  *zap.Logger
	Now     func() time.Time
}

// Stats counts what the follower did.
type Stats struct {
	Logins, LoginFailures, Subscriptions, Reauthentications, Disconnects int64
	Events, BadFrames, ServiceRefreshes                                  int64
}

// Follower follows one fastdeploy server.
type Follower struct {
	cfg  Config
	base *url.URL

	logins, loginFailures, subscriptions, reauths, disconnects atomic.Int64
	events, badFrames, serviceRefreshes                        atomic.Int64

	mu          sync.Mutex
	token       string
	tokenExp    time.Time
	services    map[int64]string
	lastRefresh time.Time
	subscribed  chan struct{}
	isLive      bool

	refreshMu sync.Mutex
}

// New checks the configuration and fills defaults.
func New(cfg Config) (*Follower, error) {
	base, err := url.Parse(strings.TrimRight(cfg.BaseURL, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("base URL must be http(s)://host[:port][/path], got %q", cfg.BaseURL)
	}
	if cfg.Username == "" || cfg.Password == "" {
		return nil, errors.New("username and password are required")
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.ReauthMargin <= 0 {
		cfg.ReauthMargin = time.Minute
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 500 * time.Millisecond
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(30*time.Second, cfg.MinBackoff)
	}
	if cfg.ServicesRefreshInterval <= 0 {
		cfg.ServicesRefreshInterval = 5 * time.Second
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = 30 * time.Second
	}
	if cfg.OnEvent == nil {
		cfg.OnEvent = func(Event) {}
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Follower{cfg: cfg, base: base, services: map[int64]string{}, subscribed: make(chan struct{})}, nil
}

// Stats returns the counts so far.
func (f *Follower) Stats() Stats {
	return Stats{
		Logins: f.logins.Load(), LoginFailures: f.loginFailures.Load(), Subscriptions: f.subscriptions.Load(),
		Reauthentications: f.reauths.Load(), Disconnects: f.disconnects.Load(), Events: f.events.Load(),
		BadFrames: f.badFrames.Load(), ServiceRefreshes: f.serviceRefreshes.Load(),
	}
}

// Subscribed is closed once the first subscription is authenticated.
func (f *Follower) Subscribed() <-chan struct{} { return f.subscribed }

// Live reports whether a subscription is open and authenticated now.
func (f *Follower) Live() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.isLive
}

func (f *Follower) endpoint(path string) string {
	u := *f.base
	u.Path = f.base.Path + path
	return u.String()
}

// Run follows the stream until ctx ends.
func (f *Follower) Run(ctx context.Context) {
	backoff := f.cfg.MinBackoff
	for ctx.Err() == nil {
		subscribed, err := f.session(ctx)
		f.setLive(false)
		if ctx.Err() != nil {
			return
		}
		f.disconnects.Add(1)
		if subscribed {
			backoff = f.cfg.MinBackoff
		}
		f.cfg.Logger.Warn("fastdeploy event stream interrupted; reconnecting", zap.Error(err), zap.Duration("backoff", backoff))
		// jitter keeps many collectors from reconnecting in step
		wait := backoff/2 + rand.N(backoff/2+1)
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		backoff = min(backoff*2, f.cfg.MaxBackoff)
	}
}

func (f *Follower) setLive(v bool) {
	f.mu.Lock()
	f.isLive = v
	f.mu.Unlock()
}

type tokenAnswer struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
}

// login is POST /token with the OAuth2 password form.
func (f *Follower) login(ctx context.Context) (string, time.Time, error) {
	form := url.Values{"username": {f.cfg.Username}, "password": {f.cfg.Password}, "grant_type": {"password"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.endpoint("/token"), strings.NewReader(form.Encode()))
	if err != nil {
		return "", time.Time{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := f.cfg.Client.Do(req)
	if err != nil {
		f.loginFailures.Add(1)
		return "", time.Time{}, fmt.Errorf("login: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		f.loginFailures.Add(1)
		return "", time.Time{}, fmt.Errorf("login: fastdeploy answered %d", resp.StatusCode)
	}
	var answer tokenAnswer
	if err := json.Unmarshal(body, &answer); err != nil || answer.AccessToken == "" {
		f.loginFailures.Add(1)
		return "", time.Time{}, errors.New("login: answer has no access_token")
	}
	f.logins.Add(1)
	exp := tokenExpiry(answer.AccessToken, f.cfg.Now())
	f.mu.Lock()
	f.token, f.tokenExp = answer.AccessToken, exp
	f.mu.Unlock()
	return answer.AccessToken, exp, nil
}

// tokenExpiry reads exp from the token's payload without verifying it: the
// follower only needs to know when to renew. Without one it assumes
// a short lifetime and renews early.
func tokenExpiry(token string, now time.Time) time.Time {
	fallback := now.Add(15 * time.Minute)
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return fallback
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return fallback
	}
	var claims struct {
		Exp json.Number `json:"exp"`
	}
	if json.Unmarshal(raw, &claims) != nil {
		return fallback
	}
	sec, err := claims.Exp.Float64()
	if err != nil || sec <= 0 {
		return fallback
	}
	return time.Unix(int64(sec), 0)
}

// currentToken returns a token valid for a while, logging in if needed.
func (f *Follower) currentToken(ctx context.Context) (string, error) {
	f.mu.Lock()
	tok, exp := f.token, f.tokenExp
	f.mu.Unlock()
	if tok != "" && f.cfg.Now().Add(5*time.Second).Before(exp) {
		return tok, nil
	}
	tok, _, err := f.login(ctx)
	return tok, err
}

func newClientID() string {
	var b [16]byte
	_, _ = cryptorand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

type controlFrame struct {
	Type   string `json:"type"`
	Status string `json:"status"`
	Detail string `json:"detail"`
}

// session runs one subscription; it reports whether it got authenticated.
func (f *Follower) session(ctx context.Context) (bool, error) {
	token, exp, err := f.login(ctx)
	if err != nil {
		return false, err
	}
	if err := f.refreshServices(ctx, token); err != nil {
		f.cfg.Logger.Warn("fastdeploy services list unavailable", zap.Error(err))
	}
	dialClient := *f.cfg.Client
	dialClient.Timeout = 0 // the websocket library wants the context to bound the handshake
	hctx, cancel := context.WithTimeout(ctx, f.cfg.HandshakeTimeout)
	conn, _, err := websocket.Dial(hctx, f.endpoint("/deployments/ws/"+newClientID()), &websocket.DialOptions{HTTPClient: &dialClient})
	cancel()
	if err != nil {
		return false, fmt.Errorf("websocket: %w", err)
	}
	defer conn.CloseNow()
	conn.SetReadLimit(4 << 20)

	sctx, stop := context.WithCancel(ctx)
	defer stop()
	if err := f.sendToken(sctx, conn, token); err != nil {
		return false, err
	}
	_, frame, err := conn.Read(sctx)
	if err != nil {
		return false, fmt.Errorf("websocket: waiting for authentication: %w", err)
	}
	var ctl controlFrame
	if json.Unmarshal(frame, &ctl) != nil || ctl.Type != "authentication" || ctl.Status != "success" {
		return false, fmt.Errorf("websocket: authentication refused: %s", ctl.Detail)
	}
	f.subscriptions.Add(1)
	f.setLive(true)
	f.mu.Lock()
	select {
	case <-f.subscribed:
	default:
		close(f.subscribed)
	}
	f.mu.Unlock()

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		f.reauthLoop(sctx, conn, exp)
	}()
	defer wg.Wait()
	defer stop()

	for {
		_, frame, err := conn.Read(sctx)
		if err != nil {
			return true, fmt.Errorf("websocket: %w", err)
		}
		ev, err := DecodeEvent(frame)
		if errors.Is(err, ErrNotDomainEvent) {
			if json.Unmarshal(frame, &ctl) == nil {
				switch {
				case ctl.Type == "warning":
					f.cfg.Logger.Info("fastdeploy warns", zap.String("detail", ctl.Detail))
				case ctl.Type == "authentication" && ctl.Status != "success":
					return true, fmt.Errorf("websocket: re-authentication refused: %s", ctl.Detail)
				}
			}
			continue
		}
		if err != nil {
			f.badFrames.Add(1)
			f.cfg.Logger.Warn("fastdeploy event not understood", zap.Error(err))
			continue
		}
		if ev.Service != nil {
			f.mu.Lock()
			if ev.Service.Deleted {
				delete(f.services, ev.Service.ID)
			} else {
				f.services[ev.Service.ID] = ev.Service.Name
			}
			f.mu.Unlock()
		}
		f.events.Add(1)
		f.cfg.OnEvent(ev)
	}
}

func (f *Follower) sendToken(ctx context.Context, conn *websocket.Conn, token string) error {
	msg, _ := json.Marshal(map[string]string{"access_token": token})
	wctx, cancel := context.WithTimeout(ctx, f.cfg.HandshakeTimeout)
	defer cancel()
	if err := conn.Write(wctx, websocket.MessageText, msg); err != nil {
		return fmt.Errorf("websocket: sending token: %w", err)
	}
	return nil
}

// reauthLoop sends a fresh token before the current one expires; fastdeploy
// then moves the socket's close to the new expiry.
func (f *Follower) reauthLoop(ctx context.Context, conn *websocket.Conn, exp time.Time) {
	for {
		lifetime := exp.Sub(f.cfg.Now())
		wait := lifetime - min(f.cfg.ReauthMargin, lifetime/2)
		timer := time.NewTimer(max(wait, 0))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		token, newExp, err := f.login(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			f.cfg.Logger.Warn("fastdeploy re-authentication failed; the stream will reconnect", zap.Error(err))
			conn.CloseNow()
			return
		}
		if err := f.sendToken(ctx, conn, token); err != nil {
			conn.CloseNow()
			return
		}
		f.reauths.Add(1)
		exp = newExp
	}
}

type serviceRow struct {
	ID   json.Number `json:"id"`
	Name string      `json:"name"`
}

func (f *Follower) refreshServices(ctx context.Context, token string) error {
	f.refreshMu.Lock()
	defer f.refreshMu.Unlock()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.endpoint("/services/"), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	resp, err := f.cfg.Client.Do(req)
	f.mu.Lock()
	f.lastRefresh = f.cfg.Now()
	f.mu.Unlock()
	if err != nil {
		return fmt.Errorf("services: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("services: fastdeploy answered %d", resp.StatusCode)
	}
	var rows []serviceRow
	if err := json.Unmarshal(body, &rows); err != nil {
		return fmt.Errorf("services: %w", err)
	}
	names := make(map[int64]string, len(rows))
	for _, r := range rows {
		if id, err := r.ID.Int64(); err == nil && r.Name != "" {
			names[id] = r.Name
		}
	}
	f.serviceRefreshes.Add(1)
	f.mu.Lock()
	f.services = names
	f.mu.Unlock()
	return nil
}

// ServiceName names a service id from the cached list; an unknown id
// refreshes the list, at most once per ServicesRefreshInterval.
func (f *Follower) ServiceName(ctx context.Context, id int64) (string, bool) {
	f.mu.Lock()
	name, ok := f.services[id]
	stale := f.cfg.Now().Sub(f.lastRefresh) >= f.cfg.ServicesRefreshInterval
	f.mu.Unlock()
	if ok || !stale {
		return name, ok
	}
	token, err := f.currentToken(ctx)
	if err == nil {
		err = f.refreshServices(ctx, token)
	}
	if err != nil {
		f.cfg.Logger.Warn("fastdeploy services list unavailable", zap.Error(err))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	name, ok = f.services[id]
	return name, ok
}
