package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// post sends a raw message request to the simulator.
func (h *simServer) post(t *testing.T, channel, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.srv.URL+"/v3/group_channels/"+channel+"/messages", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Api-Token", simToken)
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

const rawMessage = `{"message_type":"MESG","user_id":"bankbook","message":"hi","custom_type":"bill_issued","data":"{\"notification_id\":\"ntf_1\"}"}`

// TestSimRateLimitAnswer: the 429 of the rolling window, as DOMAIN.md §4
// shows it, with the real numbers.
func TestSimRateLimitAnswer(t *testing.T) {
	h := startSim(t, SimConfig{Rate: 2, Window: time.Minute})
	for i := range 2 {
		if resp := h.post(t, "store:a", rawMessage); resp.StatusCode != http.StatusOK {
			t.Fatalf("send %d: http %d", i, resp.StatusCode)
		}
	}
	resp := h.post(t, "store:a", rawMessage)
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third send: http %d, want 429", resp.StatusCode)
	}
	var body simError
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	ra := resp.Header.Get("X-RateLimit-RetryAfter")
	wait, err := strconv.ParseFloat(ra, 64)
	if err != nil || wait <= 0 || wait > 60 || !regexp.MustCompile(`^\d+\.\d{3}$`).MatchString(ra) {
		t.Fatalf("X-RateLimit-RetryAfter = %q, want seconds with milliseconds in (0, 60]", ra)
	}
	reset := resp.Header.Get("X-RateLimit-Reset")
	wantMsg := fmt.Sprintf("Too many requests (scope: user, limit: 2;w=60, remaining: 0, retry_after: %ss, reset: %ss).", ra, reset)
	if !body.Error || body.Code != CodeRateLimitExceeded || body.Message != wantMsg {
		t.Fatalf("body = %+v, want code 500910 and message %q", body, wantMsg)
	}
	if got := resp.Header.Get("Retry-After"); got != strconv.Itoa(int(wait+0.999)) {
		t.Fatalf("Retry-After = %q, want %s rounded up", got, ra)
	}
	if resp.Header.Get("X-RateLimit-Limit") != "2;w=60" || resp.Header.Get("X-RateLimit-Remaining") != "0" {
		t.Fatalf("headers %v", resp.Header)
	}
	if h.sim.Refused() != 1 || len(h.sim.Messages("")) != 2 {
		t.Fatalf("Refused = %d, stored %d; want 1 and 2", h.sim.Refused(), len(h.sim.Messages("")))
	}

	// The adapter reads the same answer.
	_, err = h.sendbird(t, nil).Send(context.Background(), message("ntf_3", "store:a"))
	rl, ok := errors.AsType[*RateLimitedError](err)
	if !ok || rl.RetryAfter <= 0 || rl.RetryAfter > time.Minute {
		t.Fatalf("Send = %v, want a *RateLimitedError within the window", err)
	}
}

// TestSimTooManyBody: the exact body of DOMAIN.md §4 for the default limit.
func TestSimTooManyBody(t *testing.T) {
	sim, err := NewSim(SimConfig{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)
	sim.lastAccepted = now.Add(-35 * time.Millisecond)
	rep := sim.tooMany(now, 164200*time.Microsecond)
	want := "Too many requests (scope: user, limit: 5;w=1, remaining: 0, retry_after: 0.165s, reset: 0.965s)."
	if b := rep.body.(simError); b.Message != want || b.Code != 500910 || !b.Error {
		t.Fatalf("body = %+v, want %q", b, want)
	}
	if got := rep.header.Get("X-RateLimit-RetryAfter"); got != "0.165" {
		t.Fatalf("X-RateLimit-RetryAfter = %q", got)
	}
	if got := rep.header.Get("Retry-After"); got != "1" {
		t.Fatalf("Retry-After = %q", got)
	}
}

// TestSimRollingWindowUnderConcurrentSenders: concurrent senders hammer the
// simulator; what it accepts never exceeds Rate in any rolling Window.
func TestSimRollingWindowUnderConcurrentSenders(t *testing.T) {
	const rate, window = 5, 100 * time.Millisecond
	h := startSim(t, SimConfig{Rate: rate, Window: window})
	sb := h.sendbird(t, nil)
	deadline := time.Now().Add(700 * time.Millisecond)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := 0; time.Now().Before(deadline); i++ {
				_, err := sb.Send(context.Background(), message(fmt.Sprintf("ntf_%d_%d", g, i), fmt.Sprintf("store:%d", g)))
				if rl, ok := errors.AsType[*RateLimitedError](err); ok {
					time.Sleep(min(rl.RetryAfter, 3*time.Millisecond)) // come back early: hammer
					continue
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Send: %v", err)
	}
	msgs := h.sim.Messages("")
	for i := rate; i < len(msgs); i++ {
		if d := msgs[i].ReceivedAt.Sub(msgs[i-rate].ReceivedAt); d < window {
			t.Fatalf("messages %d..%d accepted within %v (< %v)", i-rate, i, d, window)
		}
	}
	if len(msgs) < rate || h.sim.Refused() == 0 {
		t.Fatalf("accepted %d, refused %d: the limit was not exercised", len(msgs), h.sim.Refused())
	}
	t.Logf("accepted %d, refused %d", len(msgs), h.sim.Refused())
}

func TestSimFaults(t *testing.T) {
	h := startSim(t, SimConfig{Rate: 100})
	sb := h.sendbird(t, nil)
	ctx := context.Background()

	t.Run("FailNext", func(t *testing.T) {
		h.sim.FailNext(2, http.StatusServiceUnavailable)
		for i := range 2 {
			_, err := sb.Send(ctx, message("ntf_f", "store:f"))
			if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrTimeout) || Permanent(err) {
				t.Fatalf("send %d = %v, want ErrUnavailable", i, err)
			}
		}
		mustSend(t, sb, message("ntf_f", "store:f"))
		if got := notificationIDs(h.sim.Messages("store:f")); got != "ntf_f" {
			t.Fatalf("store:f holds %q, want one ntf_f", got)
		}
	})
	t.Run("Force429", func(t *testing.T) {
		before := h.sim.Refused()
		h.sim.Force429(1, 3*time.Second)
		_, err := sb.Send(ctx, message("ntf_r", "store:r"))
		if rl, ok := errors.AsType[*RateLimitedError](err); !ok || rl.RetryAfter != 3*time.Second {
			t.Fatalf("Send = %v, want a 429 asking for 3s", err)
		}
		if h.sim.Refused() != before+1 {
			t.Fatalf("Refused = %d, want %d", h.sim.Refused(), before+1)
		}
		mustSend(t, sb, message("ntf_r", "store:r"))
	})
	t.Run("RefuseChannel", func(t *testing.T) {
		h.sim.RefuseChannel("store:bad")
		_, err := sb.Send(ctx, message("ntf_b", "store:bad"))
		if rej, ok := errors.AsType[*RejectedError](err); !ok || rej.Status != 400 || rej.Code != CodeInvalidValue || !Permanent(err) {
			t.Fatalf("Send = %v, want a permanent 400", err)
		}
		mustSend(t, sb, message("ntf_g", "store:good"))
		h.sim.AllowChannel("store:bad")
		mustSend(t, sb, message("ntf_b", "store:bad"))
		if got := notificationIDs(h.sim.Messages("store:bad")); got != "ntf_b" {
			t.Fatalf("store:bad holds %q", got)
		}
	})
	t.Run("SetLatency", func(t *testing.T) {
		h.sim.SetLatency(300 * time.Millisecond)
		defer h.sim.SetLatency(0)
		short := h.sendbird(t, func(c *SendbirdConfig) { c.Timeout = 50 * time.Millisecond })
		if _, err := short.Send(ctx, message("ntf_l", "store:l")); !errors.Is(err, ErrTimeout) {
			t.Fatalf("Send = %v, want ErrTimeout", err)
		}
		mustSend(t, sb, message("ntf_l", "store:l"))
		if got := notificationIDs(h.sim.Messages("store:l")); got != "ntf_l" {
			t.Fatalf("store:l holds %q: the timed-out send was stored", got)
		}
	})
}

func TestSimDoesNotDedupe(t *testing.T) {
	h := startSim(t, SimConfig{})
	sb := h.sendbird(t, nil)
	m := message("ntf_1", "store:a")
	r1, r2 := mustSend(t, sb, m), mustSend(t, sb, m)
	if got := notificationIDs(h.sim.Messages("store:a")); got != "ntf_1,ntf_1" || r1 == r2 {
		t.Fatalf("stored %q with refs %q, %q; want the message twice", got, r1.Ref, r2.Ref)
	}
}

func TestSimAuth(t *testing.T) {
	h := startSim(t, SimConfig{})
	sb := h.sendbird(t, func(c *SendbirdConfig) { c.Token = "wrong" })
	_, err := sb.Send(context.Background(), message("ntf_1", "store:a"))
	if rej, ok := errors.AsType[*RejectedError](err); !ok || rej.Status != 401 || rej.Code != CodeInvalidAPIToken {
		t.Fatalf("Send = %v, want 401 code 400401", err)
	}
	if _, _, err := sb.Delivered(context.Background(), message("ntf_1", "store:a"), time.Now()); !errors.Is(err, ErrRejected) {
		t.Fatalf("Delivered = %v, want ErrRejected", err)
	}
	resp, err := h.srv.Client().Post(h.srv.URL+"/v3/group_channels/store:a/messages", "application/json", strings.NewReader(rawMessage))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("without Api-Token: http %d, want 401", resp.StatusCode)
	}
	if len(h.sim.Messages("")) != 0 {
		t.Fatal("a request without the token was stored")
	}
}

func TestSimBadBody(t *testing.T) {
	h := startSim(t, SimConfig{Rate: 100})
	for _, body := range []string{
		`{`,
		`{"message_type":"FILE","user_id":"u","message":"m"}`,
		`{"message_type":"MESG","message":"m"}`,
		`{"message_type":"MESG","user_id":"u"}`,
		`{"message_type":"MESG","user_id":"u","message":"m","data":{"a":1}}`,
	} {
		resp := h.post(t, "store:a", body)
		var e simError
		_ = json.NewDecoder(resp.Body).Decode(&e)
		if resp.StatusCode != http.StatusBadRequest || e.Code != CodeInvalidValue {
			t.Fatalf("body %s: http %d %+v, want 400 code 400111", body, resp.StatusCode, e)
		}
	}
	if len(h.sim.Messages("")) != 0 {
		t.Fatal("a bad body was stored")
	}
}

// TestSimListMessages checks the list API's reference points and limits on
// a clock the test controls.
func TestSimListMessages(t *testing.T) {
	h := startSim(t, SimConfig{Rate: 100})
	base := time.UnixMilli(1_000_000)
	var mu sync.Mutex
	at := base
	h.sim.mu.Lock()
	h.sim.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return at }
	h.sim.mu.Unlock()
	set := func(ms int64) { mu.Lock(); at = base.Add(time.Duration(ms) * time.Millisecond); mu.Unlock() }
	sb := h.sendbird(t, nil)
	for i, ms := range []int64{1000, 2000, 2000, 3000} { // message_ids 1..4
		set(ms)
		mustSend(t, sb, message(fmt.Sprintf("ntf_%d", i+1), "store:a"))
	}
	mustSend(t, sb, message("ntf_other", "store:b"))
	ts := func(ms int64) string { return strconv.FormatInt(base.UnixMilli()+ms, 10) }

	tests := []struct {
		query  string
		status int
		code   int
		ids    []int64
	}{
		{"message_ts=" + ts(2000) + "&prev_limit=0&next_limit=200", 200, 0, []int64{2, 3, 4}},
		{"message_ts=" + ts(2000) + "&prev_limit=0&next_limit=200&include=false", 200, 0, []int64{4}},
		{"message_ts=" + ts(2000) + "&prev_limit=1&next_limit=0", 200, 0, []int64{1}},
		{"message_ts=" + ts(2000), 200, 0, []int64{1, 2, 3, 4}},
		{"message_ts=" + ts(2000) + "&prev_limit=0&next_limit=1", 200, 0, []int64{2}},
		{"message_ts=" + ts(9000) + "&prev_limit=0", 200, 0, nil},
		{"message_id=2&prev_limit=0&next_limit=1&include=false", 200, 0, []int64{3}},
		{"message_id=2&prev_limit=5&next_limit=0", 200, 0, []int64{1}},
		{"message_id=2&prev_limit=0&next_limit=200", 200, 0, []int64{2, 3, 4}},
		{"message_ts=" + ts(0) + "&next_limit=201", 400, CodeInvalidValue, nil},
		{"message_ts=" + ts(0) + "&prev_limit=-1", 400, CodeInvalidValue, nil},
		{"message_ts=" + ts(0) + "&include=maybe", 400, CodeInvalidValue, nil},
		{"message_ts=soon", 400, CodeInvalidValue, nil},
		{"prev_limit=0", 400, CodeMissingParameter, nil},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, h.srv.URL+"/v3/group_channels/store:a/messages?"+tc.query, nil)
			req.Header.Set("Api-Token", simToken)
			resp, err := h.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var out struct {
				Messages []simMessageOut `json:"messages"`
				simError
			}
			if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
				t.Fatal(err)
			}
			var ids []int64
			for _, m := range out.Messages {
				ids = append(ids, m.MessageID)
				if m.ChannelURL != "store:a" {
					t.Fatalf("message %d of channel %q listed", m.MessageID, m.ChannelURL)
				}
			}
			if resp.StatusCode != tc.status || out.Code != tc.code || !slices.Equal(ids, tc.ids) {
				t.Fatalf("http %d code %d ids %v; want %d, %d, %v", resp.StatusCode, out.Code, ids, tc.status, tc.code, tc.ids)
			}
		})
	}
}

// TestSimServe: Serve on a real listener; ending the context ends Serve
// promptly even with a send held open, and that caller gets an error.
func TestSimServe(t *testing.T) {
	sim, err := NewSim(SimConfig{Token: simToken})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- sim.Serve(ctx, ln) }()

	sb, err := NewSendbird(SendbirdConfig{URL: "http://" + ln.Addr().String(), Token: simToken, Timeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	mustSend(t, sb, message("ntf_1", "store:a"))
	sim.HangNext(1, time.Hour, true)
	sent := make(chan error, 1)
	go func() { _, err := sb.Send(context.Background(), message("ntf_2", "store:a")); sent <- err }()
	checkFor(t, 5*time.Second, "the held send is stored", func() bool { return len(sim.Messages("store:a")) == 2 })

	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	select {
	case err := <-sent:
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("held Send = %v, want ErrUnavailable", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the held Send did not end")
	}
}

func TestSimListenAndServeBadAddress(t *testing.T) {
	sim, err := NewSim(SimConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.ListenAndServe(context.Background(), "127.0.0.1:-1"); err == nil {
		t.Fatal("ListenAndServe on a bad address succeeded")
	}
}

func TestSimCreateChannel(t *testing.T) {
	h := startSim(t, SimConfig{RequireChannels: true})
	create := func(body string) (int, simError) {
		req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/v3/group_channels", strings.NewReader(body))
		req.Header.Set("Api-Token", simToken)
		resp, err := h.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e simError
		_ = json.NewDecoder(resp.Body).Decode(&e)
		return resp.StatusCode, e
	}
	tests := []struct {
		body   string
		status int
		code   int
	}{
		{`{"channel_url":"store_st_1","user_ids":["bankbook"]}`, 200, 0},
		{`{"channel_url":"store_st_1","user_ids":["bankbook"]}`, 400, CodeResourceAlreadyExists},
		{`{"channel_url":"store:st_1"}`, 400, CodeInvalidValue},
		{`{"channel_url":"abc"}`, 400, CodeInvalidValue},
		{`{"channel_url":"` + strings.Repeat("a", 101) + `"}`, 400, CodeInvalidValue},
		{`{}`, 200, 0}, // a generated channel_url
		{`[`, 400, CodeInvalidValue},
	}
	for _, tc := range tests {
		if status, e := create(tc.body); status != tc.status || e.Code != tc.code {
			t.Fatalf("create %s: http %d code %d; want %d, %d", tc.body, status, e.Code, tc.status, tc.code)
		}
	}
	if resp := h.post(t, "store_st_1", rawMessage); resp.StatusCode != 200 {
		t.Fatalf("send to the created channel: http %d", resp.StatusCode)
	}
}

func TestSimConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  SimConfig
		bad  []string
	}{
		{"defaults", SimConfig{}, nil},
		{"custom", SimConfig{Rate: 10, Window: time.Minute, Token: "t", Latency: time.Millisecond}, nil},
		{"negative", SimConfig{Rate: -1, Window: -1, Latency: -1}, []string{"rate", "window", "latency"}},
		{"token with newline", SimConfig{Token: "a\nb"}, []string{"single line"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkConfigErr(t, tc.cfg.Validate(), tc.bad)
			_, err := NewSim(tc.cfg)
			checkConfigErr(t, err, tc.bad)
		})
	}
}

func TestSimMessageJSON(t *testing.T) {
	m := SimMessage{ID: 7, Channel: "store:a", CustomType: "bill_issued", Message: "hi", Data: `{"notification_id":"ntf_1"}`,
		UserID: "bankbook", ReceivedAt: time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"channel":"store:a","custom_type":"bill_issued","message":"hi","data":"{\"notification_id\":\"ntf_1\"}","received_at":"2026-03-14T09:00:00Z"}`
	if string(b) != want {
		t.Fatalf("JSON %s, want %s", b, want)
	}
	if m.NotificationID() != "ntf_1" {
		t.Fatalf("NotificationID = %q", m.NotificationID())
	}
}
