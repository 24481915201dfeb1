package chat

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"
)

// receiver is a webhook receiver that records what it gets.
type receiver struct {
	mu   sync.Mutex
	got  []*http.Request
	body [][]byte
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	rc.got = append(rc.got, r)
	rc.body = append(rc.body, b)
	n := len(rc.got)
	rc.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"id":"evt-` + strconv.Itoa(n) + `"}`))
}

func TestWebhookSend(t *testing.T) {
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	wh, err := NewWebhook(WebhookConfig{URL: srv.URL + "/hooks/chat", Token: "hook-token"})
	if err != nil {
		t.Fatal(err)
	}
	m := message("ntf_1", "store:st_1")
	r := mustSend(t, wh, m)
	if r.Ref != "evt-1" {
		t.Fatalf("Ref = %q, want the receiver's id evt-1", r.Ref)
	}
	mustSend(t, wh, m) // a repeat carries the same key

	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.got) != 2 {
		t.Fatalf("receiver got %d requests, want 2", len(rc.got))
	}
	for i, req := range rc.got {
		if req.Method != http.MethodPost || req.URL.Path != "/hooks/chat" {
			t.Fatalf("request %d: %s %s", i, req.Method, req.URL.Path)
		}
		if k := req.Header.Get("Idempotency-Key"); k != "ntf_1" {
			t.Fatalf("request %d: Idempotency-Key %q, want ntf_1", i, k)
		}
		if a := req.Header.Get("Authorization"); a != "Bearer hook-token" {
			t.Fatalf("request %d: Authorization %q", i, a)
		}
		var p WebhookPayload
		if err := json.Unmarshal(rc.body[i], &p); err != nil {
			t.Fatalf("request %d: body %s: %v", i, rc.body[i], err)
		}
		want := map[string]string{"amount": "150000", "bill_id": "bill_ntf_1", "notification_id": "ntf_1"}
		if p.NotificationID != "ntf_1" || p.Kind != "bill_issued" || p.Recipient != "store:st_1" || p.Message != m.Text || !maps.Equal(p.Data, want) {
			t.Fatalf("request %d: payload %+v", i, p)
		}
	}
}

func TestWebhookWithoutToken(t *testing.T) {
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	wh, err := NewWebhook(WebhookConfig{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	mustSend(t, wh, message("ntf_1", "user:u1"))
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if a := rc.got[0].Header.Get("Authorization"); a != "" {
		t.Fatalf("Authorization %q sent without a token", a)
	}
}

func TestWebhookDeliveredCannotCheck(t *testing.T) {
	wh, err := NewWebhook(WebhookConfig{URL: "http://127.0.0.1:1/hook"})
	if err != nil {
		t.Fatal(err)
	}
	_, ok, err := wh.Delivered(context.Background(), message("ntf_1", "store:a"), time.Now())
	if !errors.Is(err, ErrCannotCheck) || ok {
		t.Fatalf("Delivered = %v, %v; want ErrCannotCheck", ok, err)
	}
	if wh.Name() != "webhook" {
		t.Fatalf("Name = %q", wh.Name())
	}
}

func TestWebhookTimesOut(t *testing.T) {
	hold := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		select {
		case <-hold:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(hold) })
	wh, err := NewWebhook(WebhookConfig{URL: srv.URL, Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	_, err = wh.Send(context.Background(), message("ntf_1", "store:a"))
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send = %v, want ErrUnavailable, ErrTimeout, DeadlineExceeded", err)
	}
}

func TestWebhookConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  WebhookConfig
		bad  []string
	}{
		{"valid", WebhookConfig{URL: "https://hooks.example/chat"}, nil},
		{"valid with token", WebhookConfig{URL: "https://hooks.example/chat", Token: "t", Timeout: time.Second}, nil},
		{"no URL", WebhookConfig{}, []string{"URL is required"}},
		{"ftp", WebhookConfig{URL: "ftp://hooks.example"}, []string{"absolute http"}},
		{"token with newline", WebhookConfig{URL: "https://hooks.example", Token: "a\r\n"}, []string{"single line"}},
		{"negative timeout", WebhookConfig{URL: "https://hooks.example", Timeout: -time.Second}, []string{"negative"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkConfigErr(t, tc.cfg.Validate(), tc.bad)
			_, err := NewWebhook(tc.cfg)
			checkConfigErr(t, err, tc.bad)
		})
	}
}
