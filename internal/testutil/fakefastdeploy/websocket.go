package fakefastdeploy

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// uuidPattern is what a UUID path parameter accepts: with or without dashes.
var uuidPattern = regexp.MustCompile(`^(?i)[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$`)

type wsClient struct {
	id     string
	conn   *websocket.Conn
	authed bool
	user   string
	expiry *time.Timer
}

// hub is ConnectionManager: one live connection per client id, broadcasts
// only to authenticated ones, a close after the token's expiry.
type hub struct {
	srv *Server
	mu  sync.Mutex
	all map[string]*wsClient
}

func newHub(s *Server) *hub { return &hub{srv: s, all: map[string]*wsClient{}} }

// Authenticated counts the websockets that receive events.
func (s *Server) Authenticated() int {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	n := 0
	for _, c := range s.hub.all {
		if c.authed {
			n++
		}
	}
	return n
}

func (h *hub) serve(w http.ResponseWriter, r *http.Request) {
	id := strings.ToLower(strings.ReplaceAll(r.PathValue("client_id"), "-", ""))
	if !uuidPattern.MatchString(r.PathValue("client_id")) {
		// a failed path validation closes before accept: the handshake gets 403
		w.WriteHeader(http.StatusForbidden)
		return
	}
	h.mu.Lock()
	if _, taken := h.all[id]; taken {
		h.mu.Unlock()
		w.WriteHeader(http.StatusForbidden)
		return
	}
	c := &wsClient{id: id}
	h.all[id] = c
	h.mu.Unlock()
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		h.disconnect(c)
		return
	}
	h.mu.Lock()
	c.conn = conn
	h.mu.Unlock()
	ctx := context.Background()
	for {
		typ, data, err := conn.Read(ctx)
		if err != nil || typ != websocket.MessageText {
			break
		}
		var msg any
		if json.Unmarshal(data, &msg) != nil {
			break
		}
		m, ok := msg.(map[string]any)
		if !ok {
			break
		}
		if tok, ok := m["access_token"]; ok && tok != nil {
			if !h.authenticate(c, tok) {
				break
			}
		} else if h.isAuthenticated(c) {
			h.srv.publishMu.Lock()
			h.broadcast([]byte(`{"message":"message from backend!"}`))
			h.srv.publishMu.Unlock()
		}
	}
	wasAuthed := h.disconnect(c)
	_ = conn.Close(websocket.StatusNormalClosure, "")
	if wasAuthed {
		h.srv.publishMu.Lock()
		h.broadcast([]byte(`{"message":"Client left"}`))
		h.srv.publishMu.Unlock()
	}
}

func (h *hub) isAuthenticated(c *wsClient) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return c.authed && h.all[c.id] == c
}

// disconnect forgets a connection; it reports whether it was authenticated.
func (h *hub) disconnect(c *wsClient) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.all[c.id] != c {
		return false
	}
	delete(h.all, c.id)
	if c.expiry != nil {
		c.expiry.Stop()
	}
	was := c.authed
	c.authed = false
	return was
}

func (h *hub) send(c *wsClient, payload []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.conn.Write(ctx, websocket.MessageText, payload)
}

func (h *hub) reject(c *wsClient, detail string) {
	h.disconnect(c)
	h.send(c, marshalOrdered([]kv{{"type", "authentication"}, {"status", "failure"}, {"detail", detail}}))
	_ = c.conn.Close(websocket.StatusPolicyViolation, "")
}

func (h *hub) authenticate(c *wsClient, token any) bool {
	tok, _ := token.(string)
	user, exp, ok := h.srv.userFromToken(tok)
	if !ok {
		h.reject(c, "access token verification failed")
		return false
	}
	h.mu.Lock()
	if h.all[c.id] != c {
		h.mu.Unlock()
		return false
	}
	if c.user != "" && c.user != user {
		h.mu.Unlock()
		h.reject(c, "client id is bound to a different user")
		return false
	}
	c.user, c.authed = user, true
	if c.expiry != nil {
		c.expiry.Stop()
	}
	delay := exp.Sub(h.srv.now()) + h.srv.opts.ExpiryGrace
	c.expiry = time.AfterFunc(delay, func() { h.expire(c) })
	h.mu.Unlock()
	h.send(c, marshalOrdered([]kv{{"type", "authentication"}, {"status", "success"}, {"detail", fmt.Sprintf("access token verification successful for user %s", user)}}))
	return true
}

// expire is ConnectionManager.close: forget, warn, close normally.
func (h *hub) expire(c *wsClient) {
	h.mu.Lock()
	current := h.all[c.id] == c
	h.mu.Unlock()
	if !current {
		return
	}
	h.disconnect(c)
	h.send(c, []byte(`{"type":"warning","detail":"Your session has expired."}`))
	_ = c.conn.Close(websocket.StatusNormalClosure, "")
}

// broadcast sends to every authenticated connection; the caller holds
// publishMu so events keep their order.
func (h *hub) broadcast(payload []byte) {
	h.mu.Lock()
	var targets []*wsClient
	for _, c := range h.all {
		if c.authed && c.conn != nil {
			targets = append(targets, c)
		}
	}
	h.mu.Unlock()
	for _, c := range targets {
		h.send(c, payload)
	}
}

func (h *hub) closeAll() {
	h.mu.Lock()
	var all []*wsClient
	for _, c := range h.all {
		all = append(all, c)
	}
	h.all = map[string]*wsClient{}
	h.mu.Unlock()
	for _, c := range all {
		if c.expiry != nil {
			c.expiry.Stop()
		}
		if c.conn != nil {
			_ = c.conn.CloseNow()
		}
	}
}
