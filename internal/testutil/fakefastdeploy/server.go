package fakefastdeploy

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Service is a row of GET /services/.
type Service struct {
	ID   int
	Name string
	Data map[string]any
}

// Options configure a Server. Zero values take fastdeploy's defaults.
type Options struct {
	// Users maps user names to passwords for POST /token.
	Users map[string]string
	// TokenTTL is access_token_expire_minutes for user tokens (30 min).
	TokenTTL time.Duration
	// DeploymentTokenTTL is the deploy process's token lifetime (30 min).
	DeploymentTokenTTL time.Duration
	// ExpiryGrace is how long after a user token's expiry its websocket is
	// closed (EXPIRY_GRACE_SECONDS, 5 s).
	ExpiryGrace time.Duration
	// Now is the server's clock.
	Now func() time.Time
}

// Request is one call of the deploy process's endpoints as the server
// answered it.
type Request struct {
	Method   string
	Path     string
	RawQuery string
	Header   http.Header
	Body     []byte
	Status   int
	Response []byte
}

type step struct {
	ID           int
	DeploymentID int
	Name         string
	State        string
	Message      string
	Started      *time.Time
	Finished     *time.Time
}

type deployment struct {
	ID        int
	ServiceID int
	Origin    string
	User      string
	Started   time.Time
	Finished  *time.Time
	Context   map[string]any
	Steps     []*step
}

// Server is the fake fastdeploy API server.
type Server struct {
	secret []byte
	opts   Options

	mu          sync.Mutex
	services    []Service
	deployments map[int]*deployment
	nextID      map[string]int
	requests    []Request
	gate        chan struct{}

	publishMu sync.Mutex
	hub       *hub

	lifeMu  sync.Mutex
	addr    string
	httpSrv *http.Server
	done    chan struct{}
}

// New makes a server with a secret key generated for this run.
func New(opts Options) *Server {
	if opts.TokenTTL == 0 {
		opts.TokenTTL = 30 * time.Minute
	}
	if opts.DeploymentTokenTTL == 0 {
		opts.DeploymentTokenTTL = 30 * time.Minute
	}
	if opts.ExpiryGrace == 0 {
		opts.ExpiryGrace = 5 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	s := &Server{
		secret:      []byte(hex.EncodeToString(secret)),
		opts:        opts,
		deployments: map[int]*deployment{},
		nextID:      map[string]int{},
	}
	s.hub = newHub(s)
	return s
}

// Secret is the server's SECRET_KEY, for a collector that verifies
// deployment tokens locally.
func (s *Server) Secret() []byte { return s.secret }

func (s *Server) now() time.Time { return s.opts.Now().UTC() }

func (s *Server) id(kind string) int {
	s.nextID[kind]++
	return s.nextID[kind]
}

// Handler routes fastdeploy's endpoints.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", s.handleToken)
	mux.HandleFunc("POST /steps/{$}", s.recorded(s.handleStep))
	mux.HandleFunc("PUT /deployments/finish/{$}", s.recorded(s.handleFinish))
	mux.HandleFunc("GET /services/{$}", s.handleServices)
	mux.HandleFunc("POST /services/sync", s.handleSync)
	mux.HandleFunc("GET /deployments/ws/{client_id}", s.hub.serve)
	mux.HandleFunc("/", s.handleOther)
	return mux
}

// handleOther answers as starlette does: a missing trailing slash is
// redirected with 307, a known path with another method gets 405.
func (s *Server) handleOther(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/steps", "/deployments/finish", "/services":
		w.Header().Set("Location", r.URL.Path+"/")
		w.WriteHeader(http.StatusTemporaryRedirect)
		return
	case "/steps/", "/deployments/finish/", "/services/", "/token":
		writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"detail": "Method Not Allowed"})
		return
	}
	writeJSON(w, http.StatusNotFound, map[string]any{"detail": "Not Found"})
}

// Start listens on a free loopback port.
func (s *Server) Start() error {
	return s.listen("127.0.0.1:0")
}

func (s *Server) listen(addr string) error {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	if s.httpSrv != nil {
		return errors.New("already listening")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	s.addr = ln.Addr().String()
	s.done = make(chan struct{})
	s.httpSrv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	srv := s.httpSrv
	go func() { _ = srv.Serve(ln) }()
	return nil
}

// URL is the server's base URL (fastdeploy's API_URL).
func (s *Server) URL() string {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	return "http://" + s.addr
}

// Down stops answering: the listener and every connection, websockets
// included, are closed, as when the server process stops.
func (s *Server) Down() {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	if s.httpSrv == nil {
		return
	}
	close(s.done)
	_ = s.httpSrv.Close()
	s.httpSrv = nil
	s.hub.closeAll()
}

// Up listens again on the address it had.
func (s *Server) Up() error {
	s.lifeMu.Lock()
	addr := s.addr
	s.lifeMu.Unlock()
	var err error
	// The port was ours a moment ago; a short bounded retry covers a
	// listener the kernel has not released yet.
	for range 50 {
		if err = s.listen(addr); err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return err
}

// Close stops the server for good.
func (s *Server) Close() { s.Down() }

// Hold makes the deploy process's endpoints wait before answering until the
// returned release is called (or the caller gives up), as a slow server does.
func (s *Server) Hold() (release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	gate := make(chan struct{})
	s.gate = gate
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			if s.gate == gate {
				s.gate = nil
			}
			s.mu.Unlock()
			close(gate)
		})
	}
}

// Requests returns the calls of POST /steps/ and PUT /deployments/finish/
// answered so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// AddService adds a service as a sync does, publishing ServiceUpdated.
func (s *Server) AddService(name string, data map[string]any) int {
	s.publishMu.Lock()
	defer s.publishMu.Unlock()
	s.mu.Lock()
	svc := Service{ID: s.id("service"), Name: name, Data: data}
	s.services = append(s.services, svc)
	s.mu.Unlock()
	s.hub.broadcast(serviceEvent(svc, false))
	return svc.ID
}

// StartDeployment starts a deployment as POST /deployments/ does: the
// steps of the service are pending, the first running, and the events
// DeploymentStarted and StepProcessed (one per step) are published. It
// returns the deployment's id and the token its deploy process gets.
func (s *Server) StartDeployment(serviceID int, origin, user string, context map[string]any, steps []string) (int, string) {
	s.publishMu.Lock()
	defer s.publishMu.Unlock()
	s.mu.Lock()
	now := s.now()
	if context == nil {
		context = map[string]any{"env": map[string]any{}}
	}
	d := &deployment{ID: s.id("deployment"), ServiceID: serviceID, Origin: origin, User: user, Started: now, Context: context}
	for i, name := range steps {
		st := &step{ID: s.id("step"), DeploymentID: d.ID, Name: name, State: "pending"}
		if i == 0 {
			started := now
			st.State, st.Started = "running", &started
		}
		d.Steps = append(d.Steps, st)
	}
	s.deployments[d.ID] = d
	events := [][]byte{deploymentEvent(d)}
	for _, st := range d.Steps {
		events = append(events, stepEvent(st, false))
	}
	token := signToken(s.secret, map[string]any{"type": "deployment", "deployment": d.ID}, now.Add(s.opts.DeploymentTokenTTL))
	s.mu.Unlock()
	for _, e := range events {
		s.hub.broadcast(e)
	}
	return d.ID, token
}

// UserToken issues a user token as POST /token does.
func (s *Server) UserToken(user string) string {
	return signToken(s.secret, map[string]any{"user": user, "type": "user"}, s.now().Add(s.opts.TokenTTL))
}

// DeploymentSteps returns a deployment's steps as the server stores them.
func (s *Server) DeploymentSteps(id int) (names, states []string, finished bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.deployments[id]
	if d == nil {
		return nil, nil, false
	}
	for _, st := range d.Steps {
		names = append(names, st.Name)
		states = append(states, st.State)
	}
	return names, states, d.Finished != nil
}

func writeJSON(w http.ResponseWriter, status int, v any) []byte {
	body, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
	return body
}

var errCredentials = map[string]any{"detail": "Could not validate credentials"}

// bearer reads the token as OAuth2PasswordBearer does; "" means none.
func bearer(r *http.Request) string {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return ""
	}
	return token
}

func unauthorized(w http.ResponseWriter, detail string) (int, []byte) {
	w.Header().Set("WWW-Authenticate", "Bearer")
	return http.StatusUnauthorized, writeJSON(w, http.StatusUnauthorized, map[string]any{"detail": detail})
}

type recordedHandler func(w http.ResponseWriter, r *http.Request, body []byte) (int, []byte)

func (s *Server) recorded(h recordedHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			return
		}
		s.mu.Lock()
		gate := s.gate
		s.mu.Unlock()
		if gate != nil {
			select {
			case <-gate:
			case <-r.Context().Done():
				return
			}
		}
		status, resp := h(w, r, body)
		s.mu.Lock()
		s.requests = append(s.requests, Request{
			Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header.Clone(),
			Body: body, Status: status, Response: resp,
		})
		s.mu.Unlock()
	}
}

// lockedDeployment is the deployment-token dependency of the step and
// finish routes: the token's deployment, returned with s.mu held; else
// fastdeploy's 401 (no token, or one that does not validate), with s.mu
// released.
func (s *Server) lockedDeployment(w http.ResponseWriter, r *http.Request) (*deployment, int, []byte) {
	s.mu.Lock()
	if bearer(r) == "" {
		s.mu.Unlock()
		status, resp := unauthorized(w, "Not authenticated")
		return nil, status, resp
	}
	d, ok := s.deploymentFromToken(r)
	if !ok {
		s.mu.Unlock()
		status, resp := unauthorized(w, "Could not validate credentials")
		return nil, status, resp
	}
	return d, 0, nil
}

// authorizedUser is the user-token dependency: a valid user token, else
// fastdeploy's 401.
func (s *Server) authorizedUser(w http.ResponseWriter, r *http.Request) bool {
	token := bearer(r)
	if token == "" {
		unauthorized(w, "Not authenticated")
		return false
	}
	if _, _, ok := s.userFromToken(token); !ok {
		unauthorized(w, "Could not validate credentials")
		return false
	}
	return true
}

// deploymentFromToken is deployment_from_token: a valid deployment token
// naming a deployment that exists.
func (s *Server) deploymentFromToken(r *http.Request) (*deployment, bool) {
	claims, err := parseToken(s.secret, bearer(r), s.now())
	if err != nil || claims["type"] != "deployment" {
		return nil, false
	}
	n, ok := claims["deployment"].(json.Number)
	if !ok {
		return nil, false
	}
	id, err := n.Int64()
	if err != nil {
		return nil, false
	}
	d := s.deployments[int(id)]
	return d, d != nil
}

func validationError(w http.ResponseWriter, errs []map[string]any) (int, []byte) {
	return http.StatusUnprocessableEntity, writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"detail": errs})
}

type stepResult struct {
	name, state, message string
	started, finished    time.Time
}

// decodeStepResult validates the body as the StepResult model does.
func decodeStepResult(body []byte) (stepResult, []map[string]any) {
	var res stepResult
	if len(bytes.TrimSpace(body)) == 0 {
		return res, []map[string]any{{"type": "missing", "loc": []any{"body"}, "msg": "Field required", "input": nil}}
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		var anyValue any
		if json.Unmarshal(body, &anyValue) == nil {
			return res, []map[string]any{{"type": "model_attributes_type", "loc": []any{"body"}, "msg": "Input should be a valid dictionary or object to extract fields from"}}
		}
		return res, []map[string]any{{"type": "json_invalid", "loc": []any{"body", 0}, "msg": "JSON decode error"}}
	}
	var errs []map[string]any
	str := func(name string, dst *string) {
		raw, ok := fields[name]
		if !ok {
			errs = append(errs, map[string]any{"type": "missing", "loc": []any{"body", name}, "msg": "Field required"})
			return
		}
		if string(raw) == "null" || json.Unmarshal(raw, dst) != nil {
			errs = append(errs, map[string]any{"type": "string_type", "loc": []any{"body", name}, "msg": "Input should be a valid string"})
		}
	}
	tm := func(name string, dst *time.Time) {
		raw, ok := fields[name]
		if !ok {
			errs = append(errs, map[string]any{"type": "missing", "loc": []any{"body", name}, "msg": "Field required"})
			return
		}
		t, err := parsePyTime(raw)
		if err != nil {
			errs = append(errs, map[string]any{"type": "datetime_type", "loc": []any{"body", name}, "msg": err.Error()})
			return
		}
		*dst = t
	}
	str("name", &res.name)
	str("state", &res.state)
	tm("started", &res.started)
	tm("finished", &res.finished)
	str("message", &res.message)
	return res, errs
}

// handleStep is process_step_result.
func (s *Server) handleStep(w http.ResponseWriter, r *http.Request, body []byte) (int, []byte) {
	s.publishMu.Lock()
	defer s.publishMu.Unlock()
	d, status, resp := s.lockedDeployment(w, r)
	if d == nil {
		return status, resp
	}
	res, errs := decodeStepResult(body)
	if errs != nil {
		s.mu.Unlock()
		return validationError(w, errs)
	}
	if d.Finished != nil {
		s.mu.Unlock()
		return http.StatusBadRequest, writeJSON(w, http.StatusBadRequest, map[string]any{"detail": "Something went wrong"})
	}
	modified := s.processStep(d, res)
	var events [][]byte
	for _, st := range modified {
		events = append(events, stepEvent(st, false))
	}
	s.mu.Unlock()
	for _, e := range events {
		s.hub.broadcast(e)
	}
	return http.StatusOK, writeJSON(w, http.StatusOK, map[string]any{"detail": "step processed"})
}

// processStep is Deployment.process_step: a running or pending step of the
// same name is updated (the next pending one starts unless this one
// failed), an unknown one is added; finished is the server's clock.
func (s *Server) processStep(d *deployment, res stepResult) []*step {
	now := s.now()
	var known *step
	for _, st := range d.Steps {
		if st.State == "running" && st.Name == res.name {
			known = st
			break
		}
	}
	var pending []*step
	for _, st := range d.Steps {
		if st.State == "pending" {
			pending = append(pending, st)
		}
	}
	var modified []*step
	if known == nil {
		for _, st := range pending {
			if st.Name == res.name {
				known = st
				break
			}
		}
	} else if len(pending) > 0 && res.state != "failure" {
		pending[0].State = "running"
		modified = append(modified, pending[0])
	}
	started := res.started
	if known == nil {
		st := &step{ID: s.id("step"), DeploymentID: d.ID, Name: res.name, State: res.state, Message: res.message, Started: &started, Finished: &now}
		d.Steps = append(d.Steps, st)
		modified = append(modified, st)
	} else {
		known.Started, known.Finished, known.State, known.Message = &started, &now, res.state, res.message
		modified = append(modified, known)
	}
	return modified
}

// handleFinish is finish_deployment: DeploymentFinished, then StepDeleted
// for each step still running or pending; a repeat changes nothing.
func (s *Server) handleFinish(w http.ResponseWriter, r *http.Request, _ []byte) (int, []byte) {
	s.publishMu.Lock()
	defer s.publishMu.Unlock()
	d, status, resp := s.lockedDeployment(w, r)
	if d == nil {
		return status, resp
	}
	var events [][]byte
	if d.Finished == nil {
		now := s.now()
		d.Finished = &now
		events = append(events, deploymentEvent(d))
		kept := d.Steps[:0]
		var removed []*step
		for _, st := range d.Steps {
			if st.State == "running" || st.State == "pending" {
				removed = append(removed, st)
				continue
			}
			kept = append(kept, st)
		}
		d.Steps = kept
		for _, st := range removed {
			events = append(events, stepEvent(st, true))
		}
	}
	s.mu.Unlock()
	for _, e := range events {
		s.hub.broadcast(e)
	}
	return http.StatusOK, writeJSON(w, http.StatusOK, map[string]any{"detail": fmt.Sprintf("Deployment %d finished", d.ID)})
}

// userFromToken is user_from_token: a valid user token of a known user.
func (s *Server) userFromToken(token string) (string, time.Time, bool) {
	claims, err := parseToken(s.secret, token, s.now())
	if err != nil || claims["type"] != "user" {
		return "", time.Time{}, false
	}
	name, ok := claims["user"].(string)
	if !ok {
		return "", time.Time{}, false
	}
	if _, known := s.opts.Users[name]; !known {
		return "", time.Time{}, false
	}
	exp, _ := claims["exp"].(json.Number).Int64()
	return name, time.Unix(exp, 0), true
}

func (s *Server) handleServices(w http.ResponseWriter, r *http.Request) {
	if !s.authorizedUser(w, r) {
		return
	}
	s.mu.Lock()
	out := make([]map[string]any, 0, len(s.services))
	for _, svc := range s.services {
		data := svc.Data
		if data == nil {
			data = map[string]any{}
		}
		out = append(out, map[string]any{"id": svc.ID, "name": svc.Name, "data": data})
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

// handleToken is login_for_access_token with OAuth2PasswordRequestForm.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		validationError(w, []map[string]any{{"type": "missing", "loc": []any{"body", "username"}, "msg": "Field required"}})
		return
	}
	var errs []map[string]any
	for _, f := range []string{"username", "password"} {
		if _, ok := r.PostForm[f]; !ok {
			errs = append(errs, map[string]any{"type": "missing", "loc": []any{"body", f}, "msg": "Field required"})
		}
	}
	if gt, ok := r.PostForm["grant_type"]; ok && gt[0] != "password" {
		errs = append(errs, map[string]any{"type": "string_pattern_mismatch", "loc": []any{"body", "grant_type"}, "msg": "String should match pattern '^password$'"})
	}
	if errs != nil {
		validationError(w, errs)
		return
	}
	user, password := r.PostForm.Get("username"), r.PostForm.Get("password")
	want, ok := s.opts.Users[user]
	if !ok || want != password {
		unauthorized(w, "Incorrect username or password")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"access_token": s.UserToken(user), "token_type": "bearer"})
}

// handleSync is sync_services (routers/services.py) for a services
// directory that matches the database: nothing to change.
func (s *Server) handleSync(w http.ResponseWriter, r *http.Request) {
	if !s.authorizedUser(w, r) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"detail": "Services synced", "updated": []string{}, "deleted": []string{}, "skipped": []any{}})
}
