package chat

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

const simToken = "s3cret"

// simServer is a Sim behind a real loopback HTTP server that also records
// the requests it gets ("POST /v3/group_channels").
type simServer struct {
	sim *Sim
	srv *httptest.Server

	mu   sync.Mutex
	reqs []string
}

// startSim starts a simulator (Token defaults to simToken), closed when the
// test ends.
func startSim(t *testing.T, cfg SimConfig) *simServer {
	t.Helper()
	if cfg.Token == "" {
		cfg.Token = simToken
	}
	sim, err := NewSim(cfg)
	if err != nil {
		t.Fatalf("NewSim: %v", err)
	}
	h := &simServer{sim: sim}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.reqs = append(h.reqs, r.Method+" "+r.URL.EscapedPath())
		h.mu.Unlock()
		sim.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// requests returns the requests so far, "METHOD /escaped/path".
func (h *simServer) requests() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.reqs...)
}

// sendbird returns an adapter for the simulator; mod may change its config.
func (h *simServer) sendbird(t *testing.T, mod func(*SendbirdConfig)) *Sendbird {
	t.Helper()
	cfg := SendbirdConfig{URL: h.srv.URL, Token: simToken, Timeout: 2 * time.Second, Client: h.srv.Client()}
	if mod != nil {
		mod(&cfg)
	}
	sb, err := NewSendbird(cfg)
	if err != nil {
		t.Fatalf("NewSendbird: %v", err)
	}
	return sb
}

// message returns a valid message.
func message(id, recipient string) Message {
	return Message{
		ID:        id,
		Kind:      "bill_issued",
		Recipient: recipient,
		Text:      "[청구서] 150,000원이 청구되었습니다.",
		Data:      map[string]string{"amount": "150000", "bill_id": "bill_" + id},
	}
}

func mustSend(t *testing.T, p Provider, m Message) Receipt {
	t.Helper()
	r, err := p.Send(context.Background(), m)
	if err != nil {
		t.Fatalf("Send(%s): %v", m.ID, err)
	}
	return r
}

// notificationIDs lists the notification_id of each message.
func notificationIDs(msgs []SimMessage) string {
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.NotificationID()
	}
	return strings.Join(ids, ",")
}

// checkFor polls cond until it holds or timeout passes.
func checkFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
