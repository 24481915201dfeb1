package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestSendbirdSend(t *testing.T) {
	h := startSim(t, SimConfig{Rate: 100})
	sb := h.sendbird(t, nil)
	m := message("ntf_1", "store:st_1")
	m.Data[DataNotificationID] = "someone else's" // the adapter's ID wins
	r := mustSend(t, sb, m)

	msgs := h.sim.Messages("store:st_1")
	if len(msgs) != 1 {
		t.Fatalf("Messages = %+v, want 1", msgs)
	}
	got := msgs[0]
	if got.CustomType != "bill_issued" || got.Message != m.Text || got.UserID != DefaultSenderID || got.Channel != "store:st_1" {
		t.Fatalf("stored %+v", got)
	}
	var data map[string]string
	if err := json.Unmarshal([]byte(got.Data), &data); err != nil {
		t.Fatalf("data %q is not a JSON object of strings: %v", got.Data, err)
	}
	want := map[string]string{"amount": "150000", "bill_id": "bill_ntf_1", "notification_id": "ntf_1"}
	if !maps.Equal(data, want) {
		t.Fatalf("data = %v, want %v", data, want)
	}
	if r.Ref != fmt.Sprint(got.ID) {
		t.Fatalf("Ref = %q, want the message_id %d", r.Ref, got.ID)
	}
	if m.Data[DataNotificationID] != "someone else's" {
		t.Fatal("Send changed the caller's Data")
	}
	if reqs := h.requests(); !slices.Equal(reqs, []string{"POST /v3/group_channels/store:st_1/messages"}) {
		t.Fatalf("requests = %q, want one send", reqs)
	}
}

func TestSendbirdCreatesMissingChannel(t *testing.T) {
	h := startSim(t, SimConfig{Rate: 100, RequireChannels: true})
	sb := h.sendbird(t, func(c *SendbirdConfig) { c.ChannelURL = SafeChannelURL; c.SenderID = "bankbook_bot" })
	if _, err := sb.Send(t.Context(), message("ntf_1", "store:st_1")); !errors.Is(err, ErrChannelCreated) {
		t.Fatalf("first send to a new channel: %v, want ErrChannelCreated", err)
	}
	mustSend(t, sb, message("ntf_1", "store:st_1"))
	mustSend(t, sb, message("ntf_2", "store:st_1"))

	const ch = "bb_store_3Ast__1"
	if got := notificationIDs(h.sim.Messages(ch)); got != "ntf_1,ntf_2" {
		t.Fatalf("channel %s holds %q, want ntf_1,ntf_2", ch, got)
	}
	want := []string{
		"POST /v3/group_channels/" + ch + "/messages", // 400201
		"POST /v3/group_channels",
		"POST /v3/group_channels/" + ch + "/messages",
		"POST /v3/group_channels/" + ch + "/messages", // the channel exists now
	}
	if reqs := h.requests(); !slices.Equal(reqs, want) {
		t.Fatalf("requests = %q, want %q", reqs, want)
	}
}

// TestSendbirdChannelCreatedMeanwhile: another sender creates the channel
// between this one's 400201 and its creation (400202): the send goes on.
func TestSendbirdChannelCreatedMeanwhile(t *testing.T) {
	sim, err := NewSim(SimConfig{Rate: 100, RequireChannels: true})
	if err != nil {
		t.Fatal(err)
	}
	var seen atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/messages") && !seen.Swap(true) {
			create := httptest.NewRequest(http.MethodPost, "/v3/group_channels", strings.NewReader(`{"channel_url":"store_1","user_ids":["other"]}`))
			sim.Handler().ServeHTTP(httptest.NewRecorder(), create)
			writeReply(w, simErr(http.StatusBadRequest, CodeResourceNotFound, "\"Channel\" not found."))
			return
		}
		sim.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	sb, err := NewSendbird(SendbirdConfig{URL: srv.URL, Token: "any"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sb.Send(t.Context(), message("ntf_1", "store_1")); !errors.Is(err, ErrChannelCreated) {
		t.Fatalf("send while another creates the channel: %v, want ErrChannelCreated", err)
	}
	mustSend(t, sb, message("ntf_1", "store_1"))
	if got := notificationIDs(sim.Messages("store_1")); got != "ntf_1" {
		t.Fatalf("store_1 holds %q, want ntf_1", got)
	}
}

// TestSendbirdRecipientAsChannelOnStrictService: the default channel_url (the
// recipient, with its colon) is refused by a service that checks it, as
// Sendbird does: a permanent refusal, nothing stored.
func TestSendbirdRecipientAsChannelOnStrictService(t *testing.T) {
	h := startSim(t, SimConfig{Rate: 100, RequireChannels: true})
	_, err := h.sendbird(t, nil).Send(context.Background(), message("ntf_1", "store:st_1"))
	rej, ok := errors.AsType[*RejectedError](err)
	if !ok || rej.Status != http.StatusBadRequest || rej.Code != CodeInvalidValue || !Permanent(err) {
		t.Fatalf("Send = %v, want a permanent 400 code %d", err, CodeInvalidValue)
	}
	if msgs := h.sim.Messages(""); len(msgs) != 0 {
		t.Fatalf("stored %+v", msgs)
	}
}

func TestSendbirdChannelEscaping(t *testing.T) {
	h := startSim(t, SimConfig{Rate: 100})
	sb := h.sendbird(t, nil)
	for i, rcpt := range []string{"store:st_1", "user:a/b?c#d e", "user:김민수", "user:%2F..", "distributor:d+1&x=2"} {
		t.Run(rcpt, func(t *testing.T) {
			m := message(fmt.Sprintf("ntf_%d", i), rcpt)
			r := mustSend(t, sb, m)
			if got := notificationIDs(h.sim.Messages(rcpt)); got != m.ID {
				t.Fatalf("channel %q holds %q, want %s", rcpt, got, m.ID)
			}
			got, ok, err := sb.Delivered(context.Background(), m, time.Now().Add(-time.Minute))
			if err != nil || !ok || got != r {
				t.Fatalf("Delivered = %+v, %v, %v; want %+v, true", got, ok, err, r)
			}
		})
	}
}

func TestSendbirdDelivered(t *testing.T) {
	h := startSim(t, SimConfig{Rate: 100})
	sb := h.sendbird(t, nil)
	start := time.Now().Add(-time.Minute)
	var sent []Receipt
	for _, id := range []string{"ntf_1", "ntf_2", "ntf_3"} {
		sent = append(sent, mustSend(t, sb, message(id, "store:a")))
	}
	mustSend(t, sb, message("ntf_4", "store:b"))

	tests := []struct {
		name  string
		m     Message
		since time.Time
		want  bool
		ref   string
	}{
		{"sent", message("ntf_2", "store:a"), start, true, sent[1].Ref},
		{"the first of the channel", message("ntf_1", "store:a"), start, true, sent[0].Ref},
		{"never sent", message("ntf_9", "store:a"), start, false, ""},
		{"sent to another recipient", message("ntf_4", "store:a"), start, false, ""},
		{"sent before since", message("ntf_2", "store:a"), time.Now().Add(time.Hour), false, ""},
		{"a channel with no messages", message("ntf_1", "store:none"), start, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, ok, err := sb.Delivered(context.Background(), tc.m, tc.since)
			if err != nil || ok != tc.want || r.Ref != tc.ref {
				t.Fatalf("Delivered = %+v, %v, %v; want ref %q, %v", r, ok, err, tc.ref, tc.want)
			}
		})
	}

	t.Run("a channel that does not exist", func(t *testing.T) {
		strict := startSim(t, SimConfig{RequireChannels: true})
		r, ok, err := strict.sendbird(t, nil).Delivered(context.Background(), message("ntf_1", "store_x"), start)
		if err != nil || ok {
			t.Fatalf("Delivered = %+v, %v, %v; want false, nil", r, ok, err)
		}
	})
	t.Run("provider failing", func(t *testing.T) {
		down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "down", http.StatusServiceUnavailable)
		}))
		t.Cleanup(down.Close)
		sb, _ := NewSendbird(SendbirdConfig{URL: down.URL, Token: "t"})
		if _, _, err := sb.Delivered(context.Background(), message("ntf_1", "store:a"), start); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Delivered = %v, want ErrUnavailable", err)
		}
	})
}

func TestSendbirdDeliveredReadsPages(t *testing.T) {
	h := startSim(t, SimConfig{Rate: 100_000})
	sb := h.sendbird(t, nil)
	const n = 2*deliveredPage + 50
	for i := range n {
		mustSend(t, sb, message(fmt.Sprintf("ntf_%d", i), "store:busy"))
	}
	last := message(fmt.Sprintf("ntf_%d", n-1), "store:busy")
	before := len(h.requests())
	r, ok, err := sb.Delivered(context.Background(), last, time.Now().Add(-time.Minute))
	if err != nil || !ok || r.Ref != fmt.Sprint(n) {
		t.Fatalf("Delivered = %+v, %v, %v; want message %d", r, ok, err, n)
	}
	if reqs := h.requests()[before:]; len(reqs) != 3 {
		t.Fatalf("Delivered made %d requests, want 3 pages: %q", len(reqs), reqs)
	}

	sb.maxPages = 2
	_, ok, err = sb.Delivered(context.Background(), last, time.Now().Add(-time.Minute))
	if !errors.Is(err, ErrCannotCheck) || ok {
		t.Fatalf("Delivered with 2 pages = %v, %v; want ErrCannotCheck", ok, err)
	}
	if Permanent(nil) {
		t.Fatal("Permanent(nil)")
	}
}

// TestSendbirdHangTimesOut: the provider holds its answer past the
// adapter's timeout. Send says the outcome is unknown (ErrTimeout), and
// Delivered tells whether the message arrived.
func TestSendbirdHangTimesOut(t *testing.T) {
	tests := []struct {
		name   string
		accept bool
	}{
		{"stored, answer lost", true},
		{"not stored", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := startSim(t, SimConfig{Rate: 100})
			sb := h.sendbird(t, func(c *SendbirdConfig) { c.Timeout = 100 * time.Millisecond })
			h.sim.HangNext(1, time.Minute, tc.accept)
			m := message("ntf_1", "store:a")
			_, err := sb.Send(context.Background(), m)
			if !errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) || Permanent(err) {
				t.Fatalf("Send = %v, want ErrUnavailable, ErrTimeout and DeadlineExceeded", err)
			}
			_, ok, err := sb.Delivered(context.Background(), m, time.Now().Add(-time.Minute))
			if err != nil || ok != tc.accept {
				t.Fatalf("Delivered = %v, %v; want %v", ok, err, tc.accept)
			}
			// The next send is answered at once.
			mustSend(t, sb, message("ntf_2", "store:a"))
		})
	}
	t.Run("the caller's context ends first", func(t *testing.T) {
		h := startSim(t, SimConfig{Rate: 100})
		sb := h.sendbird(t, nil)
		h.sim.HangNext(1, time.Minute, true)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if _, err := sb.Send(ctx, message("ntf_1", "store:a")); !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Send = %v, want ErrTimeout and DeadlineExceeded", err)
		}
	})
}

func TestSendbirdConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  SendbirdConfig
		bad  []string // fragments of the expected errors; none = valid
	}{
		{"valid", SendbirdConfig{URL: "https://api-APP.sendbird.com", Token: "t"}, nil},
		{"trailing slash", SendbirdConfig{URL: "http://127.0.0.1:8090/", Token: "t"}, nil},
		{"missing everything", SendbirdConfig{}, []string{"URL is required", "token is required"}},
		{"with /v3", SendbirdConfig{URL: "https://api-APP.sendbird.com/v3", Token: "t"}, []string{"without /v3"}},
		{"relative URL", SendbirdConfig{URL: "api.sendbird.com", Token: "t"}, []string{"absolute"}},
		{"query", SendbirdConfig{URL: "https://x.example?a=1", Token: "t"}, []string{"query"}},
		{"token with newline", SendbirdConfig{URL: "https://x.example", Token: "t\nX: y"}, []string{"single line"}},
		{"negative timeout", SendbirdConfig{URL: "https://x.example", Token: "t", Timeout: -1}, []string{"negative"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkConfigErr(t, tc.cfg.Validate(), tc.bad)
			_, err := NewSendbird(tc.cfg)
			checkConfigErr(t, err, tc.bad)
		})
	}
}

// checkConfigErr requires err to be nil when bad is empty, and otherwise to
// match ErrInvalidConfig and mention every fragment.
func checkConfigErr(t *testing.T, err error, bad []string) {
	t.Helper()
	if len(bad) == 0 {
		if err != nil {
			t.Fatalf("err = %v, want nil", err)
		}
		return
	}
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("err = %v, want ErrInvalidConfig", err)
	}
	for _, frag := range bad {
		if !strings.Contains(err.Error(), frag) {
			t.Fatalf("err = %v, want it to mention %q", err, frag)
		}
	}
}

func TestMessageValidate(t *testing.T) {
	h := startSim(t, SimConfig{})
	sb := h.sendbird(t, nil)
	for _, m := range []Message{
		{Recipient: "store:a", Text: "x"},
		{ID: "ntf_1", Text: "x"},
		{ID: "ntf_1", Recipient: "store:a"},
	} {
		if _, err := sb.Send(context.Background(), m); !errors.Is(err, ErrInvalidMessage) || !Permanent(err) {
			t.Fatalf("Send(%+v) = %v, want ErrInvalidMessage", m, err)
		}
		if _, _, err := sb.Delivered(context.Background(), m, time.Now()); !errors.Is(err, ErrInvalidMessage) {
			t.Fatalf("Delivered(%+v) = %v, want ErrInvalidMessage", m, err)
		}
	}
	if reqs := h.requests(); len(reqs) != 0 {
		t.Fatalf("invalid messages made requests: %q", reqs)
	}
}
