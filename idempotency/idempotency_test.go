package idempotency_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/idempotency"
	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/internal/transient"
)

// clock is a controllable Config.Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock {
	return &clock{now: time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// openStore starts an embedded JetStream server and opens a Store on it.
func openStore(t *testing.T, cfg idempotency.Config) (*idempotency.Store, jetstream.JetStream) {
	t.Helper()
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	s, err := idempotency.Open(t.Context(), js, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s, js
}

const scope = "order_submit"

var (
	bodyA = idempotency.HashBody([]byte(`{"buyer_id":"u-1","amount":15000}`))
	bodyB = idempotency.HashBody([]byte(`{"buyer_id":"u-1","amount":16000}`))
	planA = json.RawMessage(`{"order_id":"o-A"}`)
	planB = json.RawMessage(`{"order_id":"o-B"}`)
)

// mustClaim calls Begin and requires a claim.
func mustClaim(t *testing.T, s *idempotency.Store, scope, key, hash string, plan json.RawMessage) *idempotency.Claim {
	t.Helper()
	c, r, err := s.Begin(t.Context(), scope, key, hash, plan)
	if err != nil {
		t.Fatalf("Begin(%s, %s): %v", scope, key, err)
	}
	if c == nil || r != nil {
		t.Fatalf("Begin(%s, %s) = claim %v, reply %v; want a claim only", scope, key, c, r)
	}
	return c
}

// requireBeginErr calls Begin and requires want.
func requireBeginErr(t *testing.T, s *idempotency.Store, scope, key, hash string, want error) {
	t.Helper()
	c, r, err := s.Begin(t.Context(), scope, key, hash, planB)
	if !errors.Is(err, want) {
		t.Fatalf("Begin(%s, %s) = claim %v, reply %v, err %v; want %v", scope, key, c, r, err, want)
	}
	if c != nil || r != nil {
		t.Fatalf("Begin returned claim %v, reply %v together with an error", c, r)
	}
}

// requireReply calls Begin and requires the stored reply want.
func requireReply(t *testing.T, s *idempotency.Store, scope, key, hash string, want idempotency.Reply) {
	t.Helper()
	c, r, err := s.Begin(t.Context(), scope, key, hash, planB)
	if err != nil || c != nil || r == nil {
		t.Fatalf("Begin(%s, %s) = claim %v, reply %v, err %v; want a stored reply", scope, key, c, r, err)
	}
	if r.Status != want.Status || string(r.Body) != string(want.Body) {
		t.Fatalf("stored reply = %d %s, want %d %s", r.Status, r.Body, want.Status, want.Body)
	}
}

func TestBeginFreshKey(t *testing.T) {
	s, _ := openStore(t, idempotency.Config{})
	c := mustClaim(t, s, scope, "key-1", bodyA, planA)
	if c.Resumed {
		t.Error("a fresh claim says Resumed")
	}
	if string(c.Plan) != string(planA) {
		t.Errorf("Plan = %s, want %s", c.Plan, planA)
	}
}

func TestBeginWhileInProgress(t *testing.T) {
	s, _ := openStore(t, idempotency.Config{})
	mustClaim(t, s, scope, "key-1", bodyA, planA)

	t.Run("same body is in progress", func(t *testing.T) {
		requireBeginErr(t, s, scope, "key-1", bodyA, idempotency.ErrInProgress)
	})
	t.Run("different body reuses the key", func(t *testing.T) {
		requireBeginErr(t, s, scope, "key-1", bodyB, idempotency.ErrKeyReused)
	})
}

func TestBeginAfterComplete(t *testing.T) {
	tests := []struct {
		name  string
		reply idempotency.Reply
	}{
		{"success", idempotency.Reply{Status: 200, Body: json.RawMessage(`{"order_id":"o-A","status":"awaiting_deposit"}`)}},
		{"error reply", idempotency.Reply{Status: 409, Body: json.RawMessage(`{"error":{"code":"order_exists","message":"exists","details":{}}}`)}},
		{"unicode body", idempotency.Reply{Status: 200, Body: json.RawMessage(`{"depositor_name":"김민수042"}`)}},
	}
	s, _ := openStore(t, idempotency.Config{})
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := "key-" + string(rune('a'+i))
			// Given a completed request,
			c := mustClaim(t, s, scope, key, bodyA, planA)
			if err := s.Complete(t.Context(), c, tt.reply); err != nil {
				t.Fatalf("Complete: %v", err)
			}
			// a repeat with the same body gets the stored reply,
			requireReply(t, s, scope, key, bodyA, tt.reply)
			requireReply(t, s, scope, key, bodyA, tt.reply)
			// and one with a different body is refused.
			requireBeginErr(t, s, scope, key, bodyB, idempotency.ErrKeyReused)
		})
	}
}

// TestReplyBodyIsEquivalentJSON: the stored body is re-encoded as JSON, so it
// comes back compacted (and with <, >, & escaped) but means the same.
func TestReplyBodyIsStoredByteForByte(t *testing.T) {
	s, _ := openStore(t, idempotency.Config{})
	c := mustClaim(t, s, scope, "key-1", bodyA, planA)
	// Layout, HTML characters and even non-JSON bytes come back unchanged:
	// a replay is the original reply to the byte.
	body := []byte("{\n  \"memo\": \"<b>&</b>\",\n  \"amount\": 15000\n}\x00\xff")
	if err := s.Complete(t.Context(), c, idempotency.Reply{Status: 201, Body: body}); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	_, r, err := s.Begin(t.Context(), scope, "key-1", bodyA, planA)
	if err != nil || r == nil {
		t.Fatalf("Begin = %v, %v; want a stored reply", r, err)
	}
	if r.Status != 201 || !bytes.Equal(r.Body, body) {
		t.Fatalf("stored reply = %d %q, want 201 %q", r.Status, r.Body, body)
	}
}

// A reply of compact JSON whose record would not fit in a message in
// base64 (a third larger) is stored as it is: one of 900 KiB, which a NATS
// message carries, is kept for its repeats, byte for byte; so is one with
// characters JSON encoders escape, large or not.
func TestLargeReplyIsKept(t *testing.T) {
	s, _ := openStore(t, idempotency.Config{})
	pad := strings.Repeat("x", 300<<10)
	for i, body := range [][]byte{
		[]byte(`{"items":["` + strings.Repeat("x", 900<<10) + `"]}`),
		[]byte(`{"memo":"<b>&</b>\u2028"}`),
		[]byte(`{"memo":"<b>&</b>` + "\u2028" + `"}`),
		[]byte(`{"memo":"<b>&</b>` + "\u2028" + pad + `"}`),
	} {
		key := fmt.Sprintf("key-%d", i)
		c := mustClaim(t, s, scope, key, bodyA, planA)
		if err := s.Complete(t.Context(), c, idempotency.Reply{Status: 200, Body: body}); err != nil {
			t.Fatalf("Complete of a %d-byte reply: %v", len(body), err)
		}
		requireReply(t, s, scope, key, bodyA, idempotency.Reply{Status: 200, Body: body})
	}
}

// Records are what engines before and after the "json" form both read:
// a reply whose record fits in a message in base64 (400 KiB does) is
// stored so, under "body", which an older engine replays; one it stored
// so is replayed too.
func TestRepliesStayReadableAcrossVersions(t *testing.T) {
	s, js := openStore(t, idempotency.Config{})
	kv, err := js.KeyValue(t.Context(), "bankbook_idempotency")
	if err != nil {
		t.Fatal(err)
	}
	type olderReply struct {
		Status int    `json:"status"`
		Body   []byte `json:"body"`
	}
	type olderRecord struct {
		State    string      `json:"state"`
		BodyHash string      `json:"body_hash"`
		Reply    *olderReply `json:"reply,omitempty"`
	}
	body := []byte(`{"order_id":"o-A","status":"awaiting_deposit"}`)
	c := mustClaim(t, s, scope, "key-new", bodyA, planA)
	if err := s.Complete(t.Context(), c, idempotency.Reply{Status: 200, Body: body}); err != nil {
		t.Fatal(err)
	}
	large := []byte(`{"items":["` + strings.Repeat("x", 400<<10) + `"]}`)
	c = mustClaim(t, s, scope, "key-large", bodyA, planA)
	if err := s.Complete(t.Context(), c, idempotency.Reply{Status: 200, Body: large}); err != nil {
		t.Fatal(err)
	}
	keys, err := kv.ListKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for k := range keys.Keys() {
		e, err := kv.Get(t.Context(), k)
		if err != nil {
			t.Fatal(err)
		}
		var rec olderRecord
		err = json.Unmarshal(e.Value(), &rec)
		if rec.Reply == nil {
			rec.Reply = &olderReply{}
		}
		if err != nil || !bytes.Equal(rec.Reply.Body, body) && !bytes.Equal(rec.Reply.Body, large) {
			t.Fatalf("an older engine reads the %d-byte record of %s as a %d-byte body (%v)", len(e.Value()), k, len(rec.Reply.Body), err)
		}
		// What an older engine stored, this one replays.
		old, _ := json.Marshal(olderRecord{State: "done", BodyHash: bodyA, Reply: &olderReply{Status: 201, Body: body}})
		if _, err := kv.Put(t.Context(), k, old); err != nil {
			t.Fatal(err)
		}
	}
	requireReply(t, s, scope, "key-new", bodyA, idempotency.Reply{Status: 201, Body: body})
	requireReply(t, s, scope, "key-large", bodyA, idempotency.Reply{Status: 201, Body: body})
}

func TestScopesAreIndependent(t *testing.T) {
	s, _ := openStore(t, idempotency.Config{})
	c := mustClaim(t, s, "order_submit", "key-1", bodyA, planA)
	if err := s.Complete(t.Context(), c, idempotency.Reply{Status: 200, Body: json.RawMessage(`{}`)}); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	// The same key (and even a different body) in another scope is a new claim.
	other := mustClaim(t, s, "order_cancel", "key-1", bodyB, planB)
	if other.Resumed || string(other.Plan) != string(planB) {
		t.Errorf("claim in other scope = plan %s, resumed %v; want plan %s, not resumed", other.Plan, other.Resumed, planB)
	}
	// And the first scope is unaffected.
	requireReply(t, s, "order_submit", "key-1", bodyA, idempotency.Reply{Status: 200, Body: json.RawMessage(`{}`)})
}

func TestKeysAreIndependent(t *testing.T) {
	s, _ := openStore(t, idempotency.Config{})
	mustClaim(t, s, scope, "key-1", bodyA, planA)
	mustClaim(t, s, scope, "key-2", bodyA, planB)
	// Keys that differ only in case are different keys.
	mustClaim(t, s, scope, "KEY-1", bodyA, planB)
}

func TestAbandonResumesWithOriginalPlan(t *testing.T) {
	s, _ := openStore(t, idempotency.Config{})
	// Given a claim that was abandoned,
	first := mustClaim(t, s, scope, "key-1", bodyA, planA)
	if err := s.Abandon(t.Context(), first); err != nil {
		t.Fatalf("Abandon: %v", err)
	}
	// when the request is repeated with a new plan,
	second := mustClaim(t, s, scope, "key-1", bodyA, planB)
	// then it resumes with the first plan.
	if !second.Resumed {
		t.Error("claim after Abandon is not Resumed")
	}
	if string(second.Plan) != string(planA) {
		t.Errorf("Plan = %s, want the original %s", second.Plan, planA)
	}
	// The resumed claim is in progress for everyone else,
	requireBeginErr(t, s, scope, "key-1", bodyA, idempotency.ErrInProgress)
	// still refuses another body,
	requireBeginErr(t, s, scope, "key-1", bodyB, idempotency.ErrKeyReused)
	// and completes normally.
	reply := idempotency.Reply{Status: 200, Body: json.RawMessage(`{"order_id":"o-A"}`)}
	if err := s.Complete(t.Context(), second, reply); err != nil {
		t.Fatalf("Complete of resumed claim: %v", err)
	}
	requireReply(t, s, scope, "key-1", bodyA, reply)
}

func TestAbandonTwiceKeepsPlan(t *testing.T) {
	s, _ := openStore(t, idempotency.Config{})
	c := mustClaim(t, s, scope, "key-1", bodyA, planA)
	for i := range 3 {
		if err := s.Abandon(t.Context(), c); err != nil {
			t.Fatalf("Abandon #%d: %v", i, err)
		}
		c = mustClaim(t, s, scope, "key-1", bodyA, json.RawMessage(`{"order_id":"o-other"}`))
		if !c.Resumed || string(c.Plan) != string(planA) {
			t.Fatalf("attempt %d: resumed %v, plan %s; want resumed with %s", i+2, c.Resumed, c.Plan, planA)
		}
	}
}

func TestExpiredLeaseIsTakenOver(t *testing.T) {
	clk := newClock()
	s, _ := openStore(t, idempotency.Config{Lease: time.Second, Now: clk.Now})
	// Given a claim whose executor went silent,
	first := mustClaim(t, s, scope, "key-1", bodyA, planA)

	// within the lease a repeat is told to wait,
	clk.Advance(999 * time.Millisecond)
	requireBeginErr(t, s, scope, "key-1", bodyA, idempotency.ErrInProgress)

	// once the lease has run out it takes over with the first plan.
	clk.Advance(time.Millisecond)
	second := mustClaim(t, s, scope, "key-1", bodyA, planB)
	if !second.Resumed || string(second.Plan) != string(planA) {
		t.Fatalf("takeover = resumed %v, plan %s; want resumed with %s", second.Resumed, second.Plan, planA)
	}

	// The takeover has a lease of its own.
	requireBeginErr(t, s, scope, "key-1", bodyA, idempotency.ErrInProgress)

	// The stale claim can neither complete nor abandon: its revision is gone.
	if err := s.Complete(t.Context(), first, idempotency.Reply{Status: 200, Body: json.RawMessage(`{"by":"first"}`)}); err == nil {
		t.Fatal("Complete of a claim taken over by someone else succeeded")
	} else if !errors.Is(err, idempotency.ErrClaimLost) {
		t.Errorf("Complete of stale claim: err = %v, want ErrClaimLost", err)
	}
	if err := s.Abandon(t.Context(), first); !errors.Is(err, idempotency.ErrClaimLost) {
		t.Fatalf("Abandon of a claim taken over by someone else: %v, want ErrClaimLost", err)
	}
	// and did not disturb the record: the takeover is still in progress
	requireBeginErr(t, s, scope, "key-1", bodyA, idempotency.ErrInProgress)

	// and its reply is the one repeats get.
	want := idempotency.Reply{Status: 200, Body: json.RawMessage(`{"by":"second"}`)}
	if err := s.Complete(t.Context(), second, want); err != nil {
		t.Fatalf("Complete of the takeover: %v", err)
	}
	requireReply(t, s, scope, "key-1", bodyA, want)
}

func TestCompleteTwiceFails(t *testing.T) {
	s, _ := openStore(t, idempotency.Config{})
	c := mustClaim(t, s, scope, "key-1", bodyA, planA)
	first := idempotency.Reply{Status: 200, Body: json.RawMessage(`{"n":1}`)}
	if err := s.Complete(t.Context(), c, first); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if err := s.Complete(t.Context(), c, idempotency.Reply{Status: 200, Body: json.RawMessage(`{"n":2}`)}); err == nil {
		t.Fatal("second Complete of one claim succeeded")
	}
	requireReply(t, s, scope, "key-1", bodyA, first)
}

func TestDoneRecordIsNotTakenOverAfterLease(t *testing.T) {
	clk := newClock()
	s, _ := openStore(t, idempotency.Config{Lease: time.Second, Now: clk.Now})
	c := mustClaim(t, s, scope, "key-1", bodyA, planA)
	reply := idempotency.Reply{Status: 200, Body: json.RawMessage(`{}`)}
	if err := s.Complete(t.Context(), c, reply); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	clk.Advance(time.Hour)
	requireReply(t, s, scope, "key-1", bodyA, reply)
}

func TestConcurrentBeginOneClaim(t *testing.T) {
	s, _ := openStore(t, idempotency.Config{})
	const n = 50
	var (
		wg       sync.WaitGroup
		start    = make(chan struct{})
		mu       sync.Mutex
		claims   int
		inFlight int
		others   []error
	)
	for range n {
		wg.Go(func() {
			<-start
			c, r, err := s.Begin(t.Context(), scope, "key-1", bodyA, planA)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil && c != nil && r == nil:
				claims++
			case errors.Is(err, idempotency.ErrInProgress):
				inFlight++
			default:
				others = append(others, errors.Join(err, errors.New("unexpected outcome")))
			}
		})
	}
	close(start)
	wg.Wait()
	if claims != 1 || inFlight != n-1 || len(others) != 0 {
		t.Fatalf("%d claims, %d in progress, other outcomes %v; want 1 claim and %d in progress", claims, inFlight, others, n-1)
	}
}

func TestConcurrentTakeoverOneClaim(t *testing.T) {
	clk := newClock()
	s, _ := openStore(t, idempotency.Config{Lease: time.Second, Now: clk.Now})
	mustClaim(t, s, scope, "key-1", bodyA, planA)
	clk.Advance(2 * time.Second)

	const n = 20
	var (
		wg      sync.WaitGroup
		start   = make(chan struct{})
		mu      sync.Mutex
		resumed []*idempotency.Claim
		waiting int
		others  []error
	)
	for range n {
		wg.Go(func() {
			<-start
			c, _, err := s.Begin(t.Context(), scope, "key-1", bodyA, planB)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil && c != nil:
				resumed = append(resumed, c)
			case errors.Is(err, idempotency.ErrInProgress):
				waiting++
			default:
				others = append(others, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if len(resumed) != 1 || waiting != n-1 || len(others) != 0 {
		t.Fatalf("%d takeovers, %d in progress, other outcomes %v; want exactly 1 takeover", len(resumed), waiting, others)
	}
	if c := resumed[0]; !c.Resumed || string(c.Plan) != string(planA) {
		t.Errorf("takeover = resumed %v, plan %s; want resumed with %s", c.Resumed, c.Plan, planA)
	}
}

func TestBeginRejectsInvalidKey(t *testing.T) {
	s, _ := openStore(t, idempotency.Config{})
	for _, key := range []string{"", strings.Repeat("k", 256), "bad\nkey", "키"} {
		c, r, err := s.Begin(t.Context(), scope, key, bodyA, planA)
		if !errors.Is(err, idempotency.ErrInvalidKey) || c != nil || r != nil {
			t.Errorf("Begin(%q) = %v, %v, %v; want ErrInvalidKey", key, c, r, err)
		}
	}
}

func TestValidKey(t *testing.T) {
	tests := []struct {
		name string
		key  string
		ok   bool
	}{
		{"uuid", "0190f1f2-7c3a-7b1e-9d2f-3a4b5c6d7e8f", true},
		{"one byte", "k", true},
		{"255 bytes", strings.Repeat("k", 255), true},
		{"space inside", "my key", true},
		{"only a space", " ", true},
		{"punctuation", "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", true},
		{"empty", "", false},
		{"256 bytes", strings.Repeat("k", 256), false},
		{"newline", "key\n", false},
		{"tab", "key\t1", false},
		{"NUL", "key\x00", false},
		{"DEL", "key\x7f", false},
		{"non-ASCII letter", "kéy", false},
		{"Hangul", "키", false},
		{"invalid UTF-8", "key\xff", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := idempotency.ValidKey(tt.key); got != tt.ok {
				t.Errorf("ValidKey(%q) = %v, want %v", tt.key, got, tt.ok)
			}
		})
	}
}

func TestHashBody(t *testing.T) {
	if got := idempotency.HashBody(nil); got != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Errorf("HashBody(nil) = %s, want the SHA-256 of nothing", got)
	}
	if a1, a2 := idempotency.HashBody([]byte("a")), idempotency.HashBody([]byte{'a'}); a1 != a2 {
		t.Error("HashBody is not deterministic")
	}
	if bodyA == bodyB {
		t.Error("different bodies hash equal")
	}
}

func TestRecordsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	clk := newClock()
	cfg := idempotency.Config{Lease: time.Second, Now: clk.Now}
	reply := idempotency.Reply{Status: 200, Body: json.RawMessage(`{"order_id":"o-A"}`)}

	// Given a completed key and an in-progress key,
	srv := testenv.Start(t, dir)
	_, js := srv.Connect(t)
	s, err := idempotency.Open(t.Context(), js, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	done := mustClaim(t, s, scope, "done", bodyA, planA)
	if err := s.Complete(t.Context(), done, reply); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	mustClaim(t, s, scope, "running", bodyA, planA)

	// when the server restarts on the same directory,
	srv.Shutdown()
	srv = testenv.Start(t, dir)
	_, js = srv.Connect(t)
	if s, err = idempotency.Open(t.Context(), js, cfg); err != nil {
		t.Fatalf("reopen: %v", err)
	}

	// then the completed key replays its reply,
	requireReply(t, s, scope, "done", bodyA, reply)
	requireBeginErr(t, s, scope, "done", bodyB, idempotency.ErrKeyReused)
	// the running key is still leased,
	requireBeginErr(t, s, scope, "running", bodyA, idempotency.ErrInProgress)
	// and after its lease it resumes with its plan.
	clk.Advance(2 * time.Second)
	c := mustClaim(t, s, scope, "running", bodyA, planB)
	if !c.Resumed || string(c.Plan) != string(planA) {
		t.Errorf("resumed %v, plan %s; want resumed with %s", c.Resumed, c.Plan, planA)
	}
}

func TestOpenBucketDefaults(t *testing.T) {
	_, js := openStore(t, idempotency.Config{})
	kv, err := js.KeyValue(t.Context(), "bankbook_idempotency")
	if err != nil {
		t.Fatalf("default bucket: %v", err)
	}
	st, err := kv.Status(t.Context())
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	if st.TTL() != 7*24*time.Hour {
		t.Errorf("bucket TTL = %v, want 7 days", st.TTL())
	}
	// Opening again binds the same bucket.
	if _, err := idempotency.Open(t.Context(), js, idempotency.Config{}); err != nil {
		t.Errorf("second Open: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  idempotency.Config
		ok   bool
	}{
		{"defaults", idempotency.Config{TTL: 7 * 24 * time.Hour, Lease: 30 * time.Second}, true},
		{"minimum TTL and lease", idempotency.Config{TTL: time.Minute, Lease: time.Second}, true},
		{"lease just under TTL", idempotency.Config{TTL: time.Minute, Lease: time.Minute - time.Nanosecond}, true},
		{"TTL under a minute", idempotency.Config{TTL: time.Minute - time.Nanosecond, Lease: time.Second}, false},
		{"zero TTL", idempotency.Config{Lease: time.Second}, false},
		{"lease equal to TTL", idempotency.Config{TTL: time.Minute, Lease: time.Minute}, false},
		{"lease over TTL", idempotency.Config{TTL: time.Minute, Lease: time.Hour}, false},
		{"lease under a second", idempotency.Config{TTL: time.Hour, Lease: time.Millisecond}, false},
		{"attempt timeout within the timeout", idempotency.Config{TTL: time.Hour, Lease: time.Second, AttemptTimeout: time.Second, Timeout: 3 * time.Second}, true},
		{"attempt timeout over the timeout", idempotency.Config{TTL: time.Hour, Lease: time.Second, AttemptTimeout: 4 * time.Second, Timeout: 3 * time.Second}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("Validate(%+v) = %v, want ok %v", tt.cfg, err, tt.ok)
			}
		})
	}
	t.Run("reports every problem", func(t *testing.T) {
		err := idempotency.Config{TTL: time.Second, Lease: time.Hour}.Validate()
		if err == nil || !strings.Contains(err.Error(), "TTL") || !strings.Contains(err.Error(), "lease") {
			t.Fatalf("Validate = %v, want both the TTL and the lease problem", err)
		}
	})
}

func TestOpenRejectsInvalidConfig(t *testing.T) {
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	for _, cfg := range []idempotency.Config{
		{TTL: 30 * time.Second},
		{TTL: time.Hour, Lease: time.Hour},
	} {
		if _, err := idempotency.Open(t.Context(), js, cfg); err == nil {
			t.Errorf("Open(%+v) succeeded, want a validation error", cfg)
		}
	}
}

// After the executing instance died, a key answers ErrInProgress for at most
// the default lease (15s), each time saying how long is left, rounded up to
// whole seconds; then a repeat takes the claim over.
func TestInProgressIsBoundedByTheDefaultLease(t *testing.T) {
	clk := newClock()
	s, _ := openStore(t, idempotency.Config{Now: clk.Now})
	mustClaim(t, s, scope, "key-1", bodyA, planA) // its instance dies now

	for _, step := range []struct {
		after, retry time.Duration
	}{
		{0, 15 * time.Second},
		{4500 * time.Millisecond, 11 * time.Second},
		{10 * time.Second, 1 * time.Second}, // 0.5s left
	} {
		clk.Advance(step.after)
		_, _, err := s.Begin(t.Context(), scope, "key-1", bodyA, planB)
		var ip *idempotency.InProgressError
		if !errors.Is(err, idempotency.ErrInProgress) || !errors.As(err, &ip) {
			t.Fatalf("Begin = %v, want an *InProgressError", err)
		}
		if ip.RetryAfter != step.retry {
			t.Errorf("RetryAfter = %v, want %v", ip.RetryAfter, step.retry)
		}
	}
	clk.Advance(500 * time.Millisecond) // 15s after the claim
	if c := mustClaim(t, s, scope, "key-1", bodyA, planB); !c.Resumed || string(c.Plan) != string(planA) {
		t.Fatalf("after the lease: resumed %v, plan %s", c.Resumed, c.Plan)
	}
	if idempotency.DefaultLease != 15*time.Second {
		t.Errorf("DefaultLease = %v; docs/api.md says 15s", idempotency.DefaultLease)
	}
}

// TestUnavailableWhenNATSIsGone: with the server shut down, Begin,
// Complete and Abandon try until their deadline and fail with an error
// matching transient.ErrUnavailable (the API's 503), never another.
func TestUnavailableWhenNATSIsGone(t *testing.T) {
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	s, err := idempotency.Open(t.Context(), js, idempotency.Config{AttemptTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	c := mustClaim(t, s, scope, "key-1", bodyA, planA)
	srv.Shutdown()
	within := func() context.Context {
		ctx, cancel := context.WithTimeout(t.Context(), 400*time.Millisecond)
		t.Cleanup(cancel)
		return ctx
	}
	_, _, beginErr := s.Begin(within(), scope, "key-2", bodyA, planA)
	completeErr := s.Complete(within(), c, idempotency.Reply{Status: 200, Body: json.RawMessage(`{}`)})
	abandonErr := s.Abandon(within(), c)
	for name, err := range map[string]error{"Begin": beginErr, "Complete": completeErr, "Abandon": abandonErr} {
		if !errors.Is(err, transient.ErrUnavailable) {
			t.Errorf("%s with NATS gone: %v, want transient.ErrUnavailable", name, err)
		}
	}
}

// TestAClaimKeepsWhenItWasFirstMade: a resumed claim, after an Abandon or
// a lease that ran out, says when the key's claim was first made, so that
// a command does not take an older use of the key for its own attempt.
func TestAClaimKeepsWhenItWasFirstMade(t *testing.T) {
	clk := newClock()
	s, _ := openStore(t, idempotency.Config{Lease: time.Second, Now: clk.Now})
	first := mustClaim(t, s, scope, "key-1", bodyA, planA)
	if !first.Since.Equal(clk.Now()) {
		t.Fatalf("a new claim: since %v, want %v", first.Since, clk.Now())
	}
	made := clk.Now()
	clk.Advance(time.Minute)
	if err := s.Abandon(t.Context(), first); err != nil {
		t.Fatal(err)
	}
	second := mustClaim(t, s, scope, "key-1", bodyA, planB)
	clk.Advance(time.Minute) // its lease runs out
	third := mustClaim(t, s, scope, "key-1", bodyA, planB)
	for i, c := range []*idempotency.Claim{second, third} {
		if !c.Resumed || !c.Since.Equal(made) {
			t.Errorf("resumed claim %d: resumed %v, since %v; want since %v", i+2, c.Resumed, c.Since, made)
		}
	}
}
