package firmbanking

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bankbook/bankbook/domain"
)

// t0 is where the fake's clock starts: second-aligned, so Retry-After
// dates resolve to whole seconds.
var t0 = time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)

const token = "s3cret"

// harness is a FakeService behind a real HTTP server and a Client whose
// waits are recorded instead of slept: each wait advances the fake's clock
// by the same amount, as if the time had passed.
type harness struct {
	fake   *FakeService
	srv    *httptest.Server
	client *Client

	mu     sync.Mutex
	sleeps []time.Duration
}

// newHarness starts a fake with opts (Token and Now default to token and a
// clock stuck at t0) and a client with deterministic backoff: 100ms·2ⁿ up to
// 1s, no jitter, 5 attempts of 2s each.
func newHarness(t *testing.T, opts FakeOptions) *harness {
	t.Helper()
	return newHarnessBehind(t, opts, nil)
}

// newHarnessBehind is newHarness with the fake behind a middleman (a proxy,
// say); nil means none.
func newHarnessBehind(t *testing.T, opts FakeOptions, middle func(http.Handler) http.Handler) *harness {
	t.Helper()
	if opts.Token == "" {
		opts.Token = token
	}
	if opts.Now == nil {
		opts.Now = func() time.Time { return t0 }
	}
	h := &harness{fake: NewFakeService(opts)}
	handler := h.fake.Handler()
	if middle != nil {
		handler = middle(handler)
	}
	h.srv = httptest.NewServer(handler)
	t.Cleanup(h.srv.Close)
	h.client = &Client{
		BaseURL:     h.srv.URL,
		Token:       opts.Token,
		HTTP:        h.srv.Client(),
		Timeout:     2 * time.Second,
		MaxAttempts: 5,
		BaseBackoff: 100 * time.Millisecond,
		MaxBackoff:  time.Second,
		sleep:       h.sleep,
		jitter:      func(d time.Duration) time.Duration { return d },
		now:         h.fake.Now,
	}
	return h
}

// sleep records d and advances the fake's clock by it.
func (h *harness) sleep(ctx context.Context, d time.Duration) error {
	h.mu.Lock()
	h.sleeps = append(h.sleeps, d)
	h.mu.Unlock()
	h.fake.Advance(d)
	return ctx.Err()
}

func (h *harness) slept() []time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]time.Duration(nil), h.sleeps...)
}

// settler returns Settle's hooks wired to the harness: no jitter, and waits
// that advance the fake's clock.
func (h *harness) settler() settler {
	return settler{sleep: h.sleep, jitter: func(d time.Duration) time.Duration { return d }}
}

// transfer returns a valid transfer with the given ID.
func transfer(id string) Transfer {
	return Transfer{
		ID:     id,
		Amount: 50_000,
		To:     domain.BankAccount{Bank: "KB", Number: "123-456-789", Holder: "김민수"},
		Memo:   "bankbook 출금",
	}
}

func mustSend(t *testing.T, p Provider, tr Transfer) Result {
	t.Helper()
	res, err := p.Send(context.Background(), tr)
	if err != nil {
		t.Fatalf("Send(%s): %v", tr.ID, err)
	}
	return res
}

func mustStatus(t *testing.T, p Provider, id string) Result {
	t.Helper()
	res, err := p.Status(context.Background(), id)
	if err != nil {
		t.Fatalf("Status(%s): %v", id, err)
	}
	return res
}

// wantSent checks that the fake sent exactly the transfers with these IDs,
// in this order.
func wantSent(t *testing.T, f *FakeService, ids ...string) {
	t.Helper()
	sent := f.Sent()
	got := make([]string, len(sent))
	for i, tr := range sent {
		got[i] = tr.ID
	}
	if strings.Join(got, ",") != strings.Join(ids, ",") {
		t.Fatalf("Sent() = %v, want %v", got, ids)
	}
}

func wantSleeps(t *testing.T, h *harness, want ...time.Duration) {
	t.Helper()
	got := h.slept()
	if len(got) != len(want) {
		t.Fatalf("slept %v, want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("slept %v, want %v", got, want)
		}
	}
}
