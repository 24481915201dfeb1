package firmbanking

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/bankbook/bankbook/internal/retryafter"
	"github.com/bankbook/bankbook/internal/simlimit"
)

// FakeOptions configures a FakeService. The zero value is a well-behaved,
// free, instant provider that accepts any caller.
type FakeOptions struct {
	// Token is the bearer token every request must carry (401 otherwise).
	// Empty accepts any request.
	Token string
	// Fee is charged per settled transfer, in minor units (e.g. 500 won).
	Fee int64
	// SettleAfter is how long a transfer stays pending, on the fake's clock.
	// Zero settles (or fails) it at once, so Send already answers the final
	// result.
	SettleAfter time.Duration
	// FailAccounts lists account numbers (as written in Transfer.To.Number)
	// whose transfers fail once SettleAfter has passed, with reason
	// "account_closed". No money is sent to them.
	FailAccounts []string
	// RefuseAccounts lists account numbers (as written in Transfer.To.Number)
	// the provider refuses outright: a Send to one is answered 400
	// invalid_account and nothing is accepted (Send returns ErrRefused).
	RefuseAccounts []string
	// RateLimit is how many requests per second of the fake's clock are
	// answered; the rest get 429 with Retry-After until the next second.
	// Zero is unlimited.
	RateLimit int
	// RetryAfterDate makes 429 answers carry Retry-After as an HTTP date
	// instead of seconds.
	RetryAfterDate bool
	// FailRate is the probability, in [0, 1], that a request is answered 503
	// without being processed. Draws come from a generator seeded with Seed.
	FailRate float64
	Seed     uint64
	// Latency is how long (wall clock) processing a new transfer takes.
	// Requests with the same ID that arrive meanwhile get 409 in_progress.
	Latency time.Duration
	// StatusLag is how long, on the fake's clock, a transfer's status
	// answers 404 after it was accepted: a provider whose status lags
	// behind its own acceptance.
	StatusLag time.Duration
	// Now is the fake's clock; nil means time.Now. Advance moves it forward.
	Now func() time.Time
	// WebhookURL, when set, is where DeliverWebhooks (or RunWebhooks)
	// posts each transfer's WebhookEvent once it is final, signed
	// (SignWebhook) with WebhookSecret at the wall-clock time of the post.
	WebhookURL    string
	WebhookSecret string
	// WebhookRepeat is how many more times each delivered event is posted
	// (providers deliver at least once).
	WebhookRepeat int
}

// FakeService is a fake firm-banking provider that behaves like the real
// ones: it serves the wire contract of the package documentation, is
// idempotent on the transfer ID, charges a fee, rate-limits, fails
// transiently, answers late (or not before the client gives up) and settles
// transfers some time after accepting them. Its bookkeeping (Sent, Requests,
// FeesCharged) lets tests assert what really happened to the money. It is
// safe for concurrent use.
type FakeService struct {
	opts FakeOptions
	fail map[string]bool // FailAccounts

	refuse map[string]bool // RefuseAccounts and RefuseAccount's; under mu

	mu        sync.Mutex
	now       func() time.Time
	offset    time.Duration // added by Advance
	rng       *rand.Rand
	requests  int
	limit     *simlimit.Limiter // RateLimit
	failNext  int
	hangNext  int
	hangFor   time.Duration
	transfers map[string]*fakeTransfer
	order     []string        // IDs in acceptance order
	inflight  map[string]bool // new IDs being processed (Latency)
	hooks     map[string]*hookState
	hookStats WebhookStats
}

type fakeTransfer struct {
	t        Transfer
	accepted time.Time
	ref      string
	fails    bool
}

// NewFakeService returns a fake provider configured by opts.
func NewFakeService(opts FakeOptions) *FakeService {
	s := &FakeService{
		opts:      opts,
		fail:      make(map[string]bool, len(opts.FailAccounts)),
		refuse:    make(map[string]bool, len(opts.RefuseAccounts)),
		now:       opts.Now,
		rng:       rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)),
		limit:     simlimit.NewFixed(opts.RateLimit, time.Second),
		transfers: make(map[string]*fakeTransfer),
		inflight:  make(map[string]bool),
		hooks:     make(map[string]*hookState),
	}
	if s.now == nil {
		s.now = time.Now
	}
	for _, n := range opts.FailAccounts {
		s.fail[n] = true
	}
	for _, n := range opts.RefuseAccounts {
		s.refuse[n] = true
	}
	return s
}

// RefuseAccount makes the provider refuse, from now on, every send to the
// account number, repeats of transfers it accepted before included (as a
// provider whose validation tightened does).
func (s *FakeService) RefuseAccount(number string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuse[number] = true
}

// FailNext makes the next n requests answer 503 without being processed.
func (s *FakeService) FailNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext = n
}

// HangNext makes the next n requests be processed as usual but answered only
// after d of wall-clock time (or never, if the caller hangs up first): a
// client with a shorter timeout sees a timeout although the transfer WAS
// accepted.
func (s *FakeService) HangNext(n int, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hangNext, s.hangFor = n, d
}

// SetClock replaces the fake's clock and resets Advance's offset.
func (s *FakeService) SetClock(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now, s.offset = now, 0
}

// Advance moves the fake's clock forward by d.
func (s *FakeService) Advance(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.offset += d
}

// Now is the fake's current time.
func (s *FakeService) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nowLocked()
}

func (s *FakeService) nowLocked() time.Time { return s.now().Add(s.offset) }

// Sent returns the transfers whose money was sent or is being sent (accepted,
// not failing), once per ID, in acceptance order.
func (s *FakeService) Sent() []Transfer {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Transfer
	for _, id := range s.order {
		if ft := s.transfers[id]; !ft.fails {
			out = append(out, ft.t)
		}
	}
	return out
}

// Requests returns how many HTTP requests reached the fake, refused ones
// included.
func (s *FakeService) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// Result returns the fake's current result for id, as Status would.
func (s *FakeService) Result(id string) (Result, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ft, ok := s.transfers[id]
	if !ok {
		return Result{}, false
	}
	return s.resultLocked(ft), true
}

// FeesCharged returns the sum of the fees of the transfers settled so far.
func (s *FakeService) FeesCharged() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var sum int64
	for _, ft := range s.transfers {
		sum += s.resultLocked(ft).Fee
	}
	return sum
}

func (s *FakeService) resultLocked(ft *fakeTransfer) Result {
	r := Result{ID: ft.t.ID, Status: StatusPending, ProviderRef: ft.ref}
	if s.nowLocked().Before(ft.accepted.Add(s.opts.SettleAfter)) {
		return r
	}
	if ft.fails {
		r.Status, r.Reason = StatusFailed, "account_closed"
		return r
	}
	r.Status, r.Fee = StatusSettled, s.opts.Fee
	return r
}

// reply is an answer computed before it is written (so it can be delayed).
type reply struct {
	status int
	header http.Header
	body   any
}

type fakeError struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

func errReply(status int, code, format string, args ...any) reply {
	return reply{status: status, body: fakeError{Error: code, Message: fmt.Sprintf(format, args...)}}
}

// Handler serves the wire contract at its root: POST /transfers and
// GET /transfers/{id}.
func (s *FakeService) Handler() http.Handler {
	return http.HandlerFunc(s.serve)
}

func (s *FakeService) serve(w http.ResponseWriter, r *http.Request) {
	rep, hang := s.gate(r)
	if rep.status == 0 {
		rep = s.route(r)
	}
	if hang > 0 {
		t := time.NewTimer(hang)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return // the caller hung up; the work is done all the same
		}
	}
	for k, v := range rep.header {
		w.Header()[k] = v
	}
	if raw, ok := rep.body.(rawBody); ok {
		w.WriteHeader(rep.status)
		_, _ = io.WriteString(w, string(raw))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(rep.status)
	_ = json.NewEncoder(w).Encode(rep.body)
}

// gate applies what happens before a request is processed: counting,
// authentication, rate limiting and injected failures. A zero reply lets the
// request through; hang is how long to hold its answer.
func (s *FakeService) gate(r *http.Request) (rep reply, hang time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	if s.opts.Token != "" && r.Header.Get("Authorization") != "Bearer "+s.opts.Token {
		rep = errReply(http.StatusUnauthorized, "unauthorized", "missing or wrong bearer token")
		rep.header = http.Header{"Www-Authenticate": {`Bearer realm="firmbanking"`}}
		return rep, 0
	}
	now := s.nowLocked()
	if ok, wait := s.limit.Allow(now); !ok {
		rep = errReply(http.StatusTooManyRequests, "rate_limited",
			"Too many requests (limit: %d/s, retry_after: %.3fs)", s.opts.RateLimit, wait.Seconds())
		rep.header = http.Header{"Retry-After": {retryafter.Format(now, wait, s.opts.RetryAfterDate)}}
		return rep, 0
	}
	if s.failNext > 0 {
		s.failNext--
		return errReply(http.StatusServiceUnavailable, "unavailable", "bank network temporarily unavailable"), 0
	}
	if s.opts.FailRate > 0 && s.rng.Float64() < s.opts.FailRate {
		return errReply(http.StatusServiceUnavailable, "unavailable", "bank network temporarily unavailable"), 0
	}
	if s.hangNext > 0 {
		s.hangNext--
		hang = s.hangFor
	}
	return reply{}, hang
}

func (s *FakeService) route(r *http.Request) reply {
	path := r.URL.Path
	switch {
	case path == "/transfers":
		if r.Method != http.MethodPost {
			return reply{status: http.StatusMethodNotAllowed, header: http.Header{"Allow": {http.MethodPost}},
				body: fakeError{Error: "method_not_allowed", Message: "use POST"}}
		}
		return s.send(r)
	case strings.HasPrefix(path, "/transfers/") && !strings.Contains(path[len("/transfers/"):], "/"):
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			return reply{status: http.StatusMethodNotAllowed, header: http.Header{"Allow": {http.MethodGet}},
				body: fakeError{Error: "method_not_allowed", Message: "use GET"}}
		}
		return s.status(path[len("/transfers/"):])
	case path == "/reports/transfers":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			return reply{status: http.StatusMethodNotAllowed, header: http.Header{"Allow": {http.MethodGet}},
				body: fakeError{Error: "method_not_allowed", Message: "use GET"}}
		}
		return s.report(r)
	}
	return errReply(http.StatusNotFound, "not_found", "no route for %s %s", r.Method, path)
}

func (s *FakeService) status(id string) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	ft, ok := s.transfers[id]
	if !ok || s.nowLocked().Before(ft.accepted.Add(s.opts.StatusLag)) {
		return errReply(http.StatusNotFound, "unknown_transfer", "no transfer %q", id)
	}
	return reply{status: http.StatusOK, body: s.resultLocked(ft)}
}

func (s *FakeService) send(r *http.Request) reply {
	// Read the whole body: that also lets the server notice a caller that
	// hangs up while the answer is held back.
	data, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return errReply(http.StatusBadRequest, "bad_request", "read body: %v", err)
	}
	if len(data) > maxBody {
		return errReply(http.StatusRequestEntityTooLarge, "too_large", "body exceeds %d bytes", maxBody)
	}
	t, err := decodeTransfer(data)
	if err != nil {
		return errReply(http.StatusBadRequest, "bad_request", "%v", err)
	}
	if key := r.Header.Get("Idempotency-Key"); key != t.ID {
		return errReply(http.StatusBadRequest, "bad_idempotency_key", "Idempotency-Key %q must equal the transfer id %q", key, t.ID)
	}
	s.mu.Lock()
	if s.refuse[t.To.Number] {
		s.mu.Unlock()
		return errReply(http.StatusBadRequest, "invalid_account", "account %q cannot receive transfers", t.To.Number)
	}
	if s.inflight[t.ID] {
		s.mu.Unlock()
		return errReply(http.StatusConflict, "in_progress", "transfer %q is being processed", t.ID)
	}
	if ft, ok := s.transfers[t.ID]; ok {
		defer s.mu.Unlock()
		if ft.t != t {
			return errReply(http.StatusUnprocessableEntity, "idempotency_mismatch", "transfer %q was submitted with a different body", t.ID)
		}
		return reply{status: http.StatusOK, header: http.Header{"Idempotent-Replayed": {"true"}}, body: s.resultLocked(ft)}
	}
	if s.opts.Latency > 0 {
		s.inflight[t.ID] = true
		s.mu.Unlock()
		time.Sleep(s.opts.Latency) // the bank is slow; a caller hanging up does not stop it
		s.mu.Lock()
		delete(s.inflight, t.ID)
	}
	defer s.mu.Unlock()
	ft := &fakeTransfer{
		t:        t,
		accepted: s.nowLocked(),
		ref:      fmt.Sprintf("FB%08d", len(s.order)+1),
		fails:    s.fail[t.To.Number],
	}
	s.transfers[t.ID] = ft
	s.order = append(s.order, t.ID)
	return reply{status: http.StatusAccepted, body: s.resultLocked(ft)}
}

// decodeTransfer parses and validates a POST /transfers body strictly.
func decodeTransfer(data []byte) (Transfer, error) {
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	var t Transfer
	if err := dec.Decode(&t); err != nil {
		return Transfer{}, fmt.Errorf("decode transfer: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Transfer{}, errors.New("decode transfer: trailing data after the JSON object")
	}
	if err := t.Validate(); err != nil {
		return Transfer{}, err
	}
	return t, nil
}
