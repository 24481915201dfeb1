package server_test

// A flood of requests that nobody waits for, from one client: the engine
// sheds what it cannot take instead of queueing it without bound.

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/engine"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/internal/testenv"
)

// floodSubmits publishes n order submits on conn at once, without waiting
// for answers, while during() runs, and waits until every one is
// answered. It returns the answers counted by "<status> <code>" (" " for a
// success), and the 429s whose body or Retry-After is not as api.md says
// for an identity whose share is share.
// It checks that the commits written are those of the submits executed
// (and at most those out of their budget besides).
func floodSubmits(t *testing.T, e *testEngine, conn *nats.Conn, n, share int, prefix string, during func()) (codes map[string]int, badThrottles []string) {
	t.Helper()
	var (
		mu  sync.Mutex
		got int
	)
	codes = map[string]int{}
	inbox := nats.NewInbox()
	sub, err := conn.Subscribe(inbox+".*", func(m *nats.Msg) {
		code := m.Header.Get(micro.ErrorCodeHeader) + " " + m.Header.Get(micro.ErrorHeader)
		mu.Lock()
		defer mu.Unlock()
		codes[code]++
		got++
		if code == "429 "+api.CodeThrottled {
			apiErr := api.ParseErrorBody(m.Data)
			if apiErr == nil || apiErr.Details["in_flight"] != float64(share) || apiErr.Details["retry_after_s"] != float64(1) || m.Header.Get(api.HeaderRetryAfter) != "1" {
				badThrottles = append(badThrottles, string(m.Data)+" Retry-After "+m.Header.Get(api.HeaderRetryAfter))
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		t.Fatal(err)
	}
	before := e.streamSeq(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if during != nil {
			during()
		}
	}()
	for i := range n {
		body, _ := json.Marshal(api.SubmitOrderRequest{BuyerID: fmt.Sprintf("%s-%d", prefix, i), BuyerName: fmt.Sprintf("%s%d", prefix, i), Amount: 1_000})
		if err := conn.PublishMsg(&nats.Msg{Subject: subjSubmit, Reply: fmt.Sprintf("%s.%d", inbox, i), Data: body}); err != nil {
			t.Fatal(err)
		}
	}
	<-done
	testenv.CheckFor(t, 2*time.Minute, func() error {
		mu.Lock()
		defer mu.Unlock()
		if got < n {
			return fmt.Errorf("%d of %d requests answered: %v", got, n, codes)
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	t.Logf("answers: %v", codes)
	ok, late := codes[" "], codes["503 "+api.CodeUnavailable]
	testenv.CheckFor(t, 10*time.Second, func() error {
		if wrote := e.streamSeq(t) - before; wrote < eventstore.Seq(ok) || wrote > eventstore.Seq(ok+late) {
			return fmt.Errorf("%d commits for %d executed submits and %d out of their budget", wrote, ok, late)
		}
		return nil
	})
	return codes, badThrottles
}

// Every request of a flood gets an answer: executed, or 503 overloaded
// (nothing written) once more requests wait than the instance takes; and
// only the executed ones wrote. The identity has no share of its own here,
// so that the flood meets the instance's bound, not the identity's. On a machine busy with other work some
// requests taken run out of their budget (503 unavailable: written or not,
// a repeat with the key finds out); nothing else is answered.
func TestAFloodIsShedNotQueued(t *testing.T) {
	e := startEngine(t, func(c *engine.Config) { c.MaxRequestsPerIdentity = 0 })
	app := connectAs(t, e.ClientURL(), e.SeedFile(auth.App)).Conn()
	const n = 6000
	codes, _ := floodSubmits(t, e, app, n, 0, "Flood", nil)
	ok, shed, late := codes[" "], codes["503 "+api.CodeOverloaded], codes["503 "+api.CodeUnavailable]
	if shed == 0 || ok+shed+late != n {
		t.Fatalf("answers %v: want every request executed or shed as 503 %s (or out of its budget), some shed", codes, api.CodeOverloaded)
	}
}

// TestOneIdentityCannotTakeEverySlot: an identity flooding an instance
// gets its share of the request slots executing (here 2) and 429
// throttled, at once and unexecuted, for the rest, with a Retry-After;
// another identity's requests meanwhile are executed, none throttled.
func TestOneIdentityCannotTakeEverySlot(t *testing.T) {
	e := startEngine(t, func(c *engine.Config) { c.MaxRequestsPerIdentity = 2 })
	app := connectAs(t, e.ClientURL(), e.SeedFile(auth.App)).Conn()
	operator := connectAs(t, e.ClientURL(), e.SeedFile(auth.Operator))
	const n = 600
	var opErrs []error
	codes, bad := floodSubmits(t, e, app, n, 2, "Share", func() {
		for range 40 {
			var tb map[string]any
			if _, err := operator.Call(ctxT(t), subjTrial, map[string]any{}, &tb, nil); err != nil {
				opErrs = append(opErrs, err)
			}
		}
	})
	if len(opErrs) > 0 {
		t.Fatalf("the operator's queries during the app's flood: %v", opErrs)
	}
	ok, throttled, late := codes[" "], codes["429 "+api.CodeThrottled], codes["503 "+api.CodeUnavailable]
	if throttled == 0 || ok == 0 || ok+throttled+late != n || len(bad) > 0 {
		t.Fatalf("answers %v (malformed 429s: %v): want each executed or throttled, both", codes, bad)
	}
}
