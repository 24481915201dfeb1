package firmbanking

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var hookSecret = []byte("whsec-0123456789abcdef")

func hookBody(t *testing.T, ev WebhookEvent) []byte {
	t.Helper()
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var settledEvent = WebhookEvent{EventID: "evt_FB00000001", Type: EventTransferSettled, CreatedAt: t0,
	Transfer: Result{ID: "P-1", Status: StatusSettled, Fee: 500, ProviderRef: "FB00000001"}}

func TestVerifyWebhook(t *testing.T) {
	body := hookBody(t, settledEvent)
	now := t0.Add(time.Hour)
	sig := SignWebhook(hookSecret, now, body)
	ev, err := VerifyWebhook([][]byte{hookSecret}, sig, body, now, 0)
	if err != nil || ev.EventID != settledEvent.EventID || ev.Transfer != settledEvent.Transfer || !ev.CreatedAt.Equal(t0) {
		t.Fatalf("verify: %+v, %v", ev, err)
	}
	// Rotation: an old and a new secret, signed with either, or a header
	// carrying both signatures.
	old := []byte("whsec-the-old-one-still-valid")
	for name, h := range map[string]string{
		"new secret":     sig,
		"old secret":     SignWebhook(old, now, body),
		"two signatures": SignWebhook(old, now, body) + ",v1=" + strings.Split(sig, "v1=")[1],
		"spaces":         strings.ReplaceAll(sig, ",", ", "),
		"other schemes":  sig + ",v0=abc",
	} {
		if _, err := VerifyWebhook([][]byte{hookSecret, old}, h, body, now, 0); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}

	tampered := []byte(strings.Replace(string(body), `"fee":500`, `"fee":5`, 1))
	for name, tc := range map[string]struct {
		header string
		body   []byte
		now    time.Time
	}{
		"no header":             {"", body, now},
		"wrong secret":          {SignWebhook([]byte("whsec-somebody-else-entirely"), now, body), body, now},
		"tampered body":         {sig, tampered, now},
		"signed 6 minutes ago":  {SignWebhook(hookSecret, now.Add(-6*time.Minute), body), body, now},
		"signed 6 minutes on":   {SignWebhook(hookSecret, now.Add(6*time.Minute), body), body, now},
		"replayed 6 min later":  {sig, body, now.Add(6 * time.Minute)},
		"no t":                  {"v1=" + strings.Split(sig, "v1=")[1], body, now},
		"no v1":                 {strings.Split(sig, ",")[0], body, now},
		"two t":                 {strings.Split(sig, ",")[0] + "," + sig, body, now},
		"t not a number":        {strings.Replace(sig, "t=", "t=x", 1), body, now},
		"v1 not hex":            {strings.Split(sig, "v1=")[0] + "v1=zz", body, now},
		"v1 too short":          {strings.Split(sig, "v1=")[0] + "v1=abcd", body, now},
		"nine v1":               {strings.Split(sig, ",")[0] + strings.Repeat(",v1="+strings.Split(sig, "v1=")[1], 9), body, now},
		"entry without =":       {sig + ",junk", body, now},
		"time in another field": {strings.Replace(sig, "t=", "ts=", 1), body, now},
	} {
		if _, err := VerifyWebhook([][]byte{hookSecret}, tc.header, tc.body, tc.now, 0); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s: %v, want ErrBadSignature", name, err)
		}
	}
	// Within the 5 minutes either way it verifies; a tolerance of its own
	// narrows it.
	if _, err := VerifyWebhook([][]byte{hookSecret}, SignWebhook(hookSecret, now.Add(-4*time.Minute), body), body, now, 0); err != nil {
		t.Errorf("signed 4 minutes ago: %v", err)
	}
	if _, err := VerifyWebhook([][]byte{hookSecret}, SignWebhook(hookSecret, now.Add(-4*time.Minute), body), body, now, time.Minute); !errors.Is(err, ErrBadSignature) {
		t.Errorf("signed 4 minutes ago, tolerance 1m: %v", err)
	}
}

func TestVerifyWebhookRefusesWhatIsNotAFinalTransfer(t *testing.T) {
	now := t0
	for name, mutate := range map[string]func(*WebhookEvent){
		"pending":              func(e *WebhookEvent) { e.Transfer.Status = StatusPending },
		"type against status":  func(e *WebhookEvent) { e.Type = EventTransferFailed },
		"unknown type":         func(e *WebhookEvent) { e.Type = "transfer.created" },
		"no event id":          func(e *WebhookEvent) { e.EventID = "" },
		"event id with spaces": func(e *WebhookEvent) { e.EventID = "evt 1" },
		"long event id":        func(e *WebhookEvent) { e.EventID = strings.Repeat("e", 129) },
		"bad transfer id":      func(e *WebhookEvent) { e.Transfer.ID = "P/1" },
		"negative fee":         func(e *WebhookEvent) { e.Transfer.Fee = -1 },
		"unknown status":       func(e *WebhookEvent) { e.Transfer.Status = "done" },
	} {
		ev := settledEvent
		mutate(&ev)
		body := hookBody(t, ev)
		if _, err := VerifyWebhook([][]byte{hookSecret}, SignWebhook(hookSecret, now, body), body, now, 0); !errors.Is(err, ErrBadWebhook) {
			t.Errorf("%s: %v, want ErrBadWebhook", name, err)
		}
	}
	for name, body := range map[string]string{"not JSON": "{", "an array": "[]"} {
		if _, err := VerifyWebhook([][]byte{hookSecret}, SignWebhook(hookSecret, now, []byte(body)), []byte(body), now, 0); !errors.Is(err, ErrBadWebhook) {
			t.Errorf("%s: %v, want ErrBadWebhook", name, err)
		}
	}
	// Fields a provider adds later are ignored.
	body := []byte(`{"event_id":"evt_2","type":"transfer.failed","created_at":"2026-03-14T09:00:00Z","livemode":true,"transfer":{"id":"P-2","status":"failed","fee":0,"reason":"account_closed","bank_code":"004"}}`)
	if ev, err := VerifyWebhook([][]byte{hookSecret}, SignWebhook(hookSecret, now, body), body, now, 0); err != nil || ev.Transfer.Reason != "account_closed" {
		t.Fatalf("a webhook with more fields: %+v, %v", ev, err)
	}
}

func TestWebhookReceiverAnswers(t *testing.T) {
	var (
		mu   sync.Mutex
		got  []WebhookEvent
		next error
	)
	rc := &WebhookReceiver{Secrets: [][]byte{hookSecret}, Now: func() time.Time { return t0 }, Notify: func(_ context.Context, ev WebhookEvent) error {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, ev)
		return next
	}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	body := hookBody(t, settledEvent)
	post := func(method string, body []byte, sig string) (int, http.Header, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL, strings.NewReader(string(body)))
		if sig != "" {
			req.Header.Set(SignatureHeader, sig)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	sig := SignWebhook(hookSecret, t0, body)
	for _, tc := range []struct {
		notify error
		code   int
		want   string
	}{
		{nil, http.StatusOK, `{"received":true}`},
		{fmt.Errorf("payout P-1: %w", ErrUnknownTransfer), http.StatusNotFound, `"unknown_transfer"`},
		{fmt.Errorf("%w: recorded failed", ErrResultContradicts), http.StatusConflict, `"contradicts"`},
		{fmt.Errorf("status says pending: %w", ErrPending), http.StatusServiceUnavailable, `"pending"`},
		{errors.New("nats: timeout, internal detail"), http.StatusInternalServerError, `"error"`},
	} {
		next = tc.notify
		code, h, text := post(http.MethodPost, body, sig)
		if code != tc.code || !strings.Contains(text, tc.want) || strings.Contains(text, "internal detail") {
			t.Errorf("Notify %v: %d %s, want %d %s", tc.notify, code, text, tc.code, tc.want)
		}
		if code == http.StatusServiceUnavailable && h.Get("Retry-After") == "" {
			t.Errorf("503 without Retry-After")
		}
	}
	n := len(got)
	for _, tc := range []struct {
		name   string
		method string
		body   []byte
		sig    string
		code   int
	}{
		{"GET", http.MethodGet, nil, "", http.StatusMethodNotAllowed},
		{"unsigned", http.MethodPost, body, "", http.StatusUnauthorized},
		{"stale", http.MethodPost, body, SignWebhook(hookSecret, t0.Add(-time.Hour), body), http.StatusUnauthorized},
		{"signed, not an event", http.MethodPost, []byte(`{"x":1}`), SignWebhook(hookSecret, t0, []byte(`{"x":1}`)), http.StatusBadRequest},
		{"too large", http.MethodPost, make([]byte, maxWebhookBody+1), "t=1,v1=00", http.StatusRequestEntityTooLarge},
	} {
		if code, _, text := post(tc.method, tc.body, tc.sig); code != tc.code {
			t.Errorf("%s: %d %s, want %d", tc.name, code, text, tc.code)
		}
	}
	if len(got) != n {
		t.Fatalf("Notify was told of %d refused webhooks", len(got)-n)
	}
}

// TestFakeDeliversWebhooksLikeAProvider: final transfers only, each until
// a receiver answers 2xx, again after a failure only once its wait has
// passed (growing, or the receiver's Retry-After), never again after a 4xx
// that is not worth repeating, and signed so VerifyWebhook accepts them.
func TestFakeDeliversWebhooksLikeAProvider(t *testing.T) {
	var (
		mu      sync.Mutex
		answers = map[string][]int{} // per transfer ID, the codes to answer in turn
		seen    []WebhookEvent
	)
	recv := httptest.NewServer(&WebhookReceiver{Secrets: [][]byte{hookSecret}, Notify: func(_ context.Context, ev WebhookEvent) error {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, ev)
		codes := answers[ev.Transfer.ID]
		if len(codes) == 0 {
			return nil
		}
		answers[ev.Transfer.ID] = codes[1:]
		switch codes[0] {
		case http.StatusNotFound:
			return ErrUnknownTransfer
		case http.StatusServiceUnavailable:
			return ErrPending
		}
		return errors.New("down")
	}})
	defer recv.Close()
	h := newHarness(t, FakeOptions{SettleAfter: time.Minute, FailAccounts: []string{"444-000-444"}, WebhookURL: recv.URL, WebhookSecret: string(hookSecret)})
	ctx := context.Background()
	send := func(id, number string) {
		t.Helper()
		tr := transfer(id)
		tr.To.Number = number
		mustSend(t, h.client, tr)
	}
	answers["P-retry"] = []int{http.StatusInternalServerError}
	answers["P-unknown"] = []int{http.StatusNotFound}
	answers["P-later"] = []int{http.StatusServiceUnavailable}
	send("P-ok", "110-123-456789")
	send("P-fail", "444-000-444")
	send("P-retry", "110-123-456789")
	send("P-unknown", "110-123-456789")
	send("P-later", "110-123-456789")

	if n := h.fake.DeliverWebhooks(ctx); n != 0 || len(seen) != 0 {
		t.Fatalf("pending transfers told: %d delivered, %d seen", n, len(seen))
	}
	h.fake.Advance(time.Minute)
	if n := h.fake.DeliverWebhooks(ctx); n != 2 {
		t.Fatalf("%d delivered, want P-ok and P-fail", n)
	}
	byID := map[string]WebhookEvent{}
	for _, ev := range seen {
		byID[ev.Transfer.ID] = ev
	}
	if ev := byID["P-ok"]; ev.Type != EventTransferSettled || ev.Transfer.Fee != 0 || ev.EventID == "" || !ev.CreatedAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("P-ok: %+v", ev)
	}
	if ev := byID["P-fail"]; ev.Type != EventTransferFailed || ev.Transfer.Reason != "account_closed" {
		t.Errorf("P-fail: %+v", ev)
	}
	// At once again: only what failed is due, and not yet (a second, or
	// the 30 s the 503 asked for).
	if n := h.fake.DeliverWebhooks(ctx); n != 0 || len(seen) != 5 {
		t.Fatalf("a second pass right away: %d delivered, %d seen", n, len(seen))
	}
	st := h.fake.WebhookStats()
	if st.Delivered != 2 || st.Posts != 5 || st.Failed != 3 || st.GivenUp != 1 {
		t.Fatalf("stats %+v", st)
	}
	// A second on, P-retry is due again and delivered; P-later waits for
	// its Retry-After; P-unknown was given up.
	time.Sleep(1100 * time.Millisecond)
	if n := h.fake.DeliverWebhooks(ctx); n != 1 || len(seen) != 6 || seen[5].Transfer.ID != "P-retry" {
		t.Fatalf("a second later: %d delivered, seen %+v", n, seen[5:])
	}
}

// TestFakeGivesUpOnAContradiction: a receiver answers a result that
// contradicts its record 409 (ErrResultContradicts), which is mended by
// hand and not worth delivering again: the fake gives it up at once, as a
// provider does, instead of posting it again for as long as it runs.
func TestFakeGivesUpOnAContradiction(t *testing.T) {
	var notified atomic.Int32
	recv := httptest.NewServer(&WebhookReceiver{Secrets: [][]byte{hookSecret}, Notify: func(context.Context, WebhookEvent) error {
		notified.Add(1)
		return fmt.Errorf("payout P-contra: %w", ErrResultContradicts)
	}})
	defer recv.Close()
	h := newHarness(t, FakeOptions{SettleAfter: time.Minute, WebhookURL: recv.URL, WebhookSecret: string(hookSecret)})
	mustSend(t, h.client, transfer("P-contra"))
	h.fake.Advance(time.Minute)
	if n := h.fake.DeliverWebhooks(context.Background()); n != 0 {
		t.Fatalf("%d delivered, want none (answered 409)", n)
	}
	if st := h.fake.WebhookStats(); notified.Load() != 1 || st.Posts != 1 || st.Failed != 1 || st.GivenUp != 1 {
		t.Fatalf("after a 409: %d notified, stats %+v; want it posted once and given up", notified.Load(), st)
	}
}

// TestWebhookErrorsNameNoInternals: a signed body that is not the
// provider's JSON is answered 400 with what is wrong in the provider's
// terms (the field, the JSON it must be), not the engine's Go types or
// packages.
func TestWebhookErrorsNameNoInternals(t *testing.T) {
	rc := &WebhookReceiver{Secrets: [][]byte{hookSecret}, Now: func() time.Time { return t0 }, Notify: func(context.Context, WebhookEvent) error {
		t.Error("Notify was told of a malformed webhook")
		return nil
	}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	for name, tc := range map[string]struct{ body, want string }{
		"an array":              {`[1]`, "must be a JSON object, not array"},
		"a string":              {`"x"`, "must be a JSON object, not string"},
		"a fee as a string":     {`{"event_id":"e1","type":"transfer.settled","transfer":{"id":"P-1","status":"settled","fee":"500"}}`, "transfer.fee: must be a JSON number, not string"},
		"a transfer as a list":  {`{"event_id":"e1","type":"transfer.settled","transfer":[]}`, "transfer: must be a JSON object, not array"},
		"a time that is not":    {`{"event_id":"e1","type":"transfer.settled","created_at":"yesterday","transfer":{"id":"P-1","status":"settled"}}`, `created_at: \"yesterday\" is not an RFC 3339 time`},
		"truncated":             {`{"event_id":"e1"`, "malformed JSON"},
		"an event ID as a list": {`{"event_id":["e1"]}`, "event_id: must be a JSON string, not array"},
	} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(tc.body))
		req.Header.Set(SignatureHeader, SignWebhook(hookSecret, t0, []byte(tc.body)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), tc.want) {
			t.Errorf("%s: %d %s, want 400 saying %q", name, resp.StatusCode, b, tc.want)
		}
		for _, internal := range []string{"firmbanking", "Go ", "int64", "Result", "WebhookEvent", "2006"} {
			if strings.Contains(string(b), internal) {
				t.Errorf("%s: %s names %q", name, b, internal)
			}
		}
	}
}
