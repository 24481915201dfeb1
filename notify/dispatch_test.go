package notify_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/chat"
	"github.com/bankbook/bankbook/commands"
	"github.com/bankbook/bankbook/commands/commandstest"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/notify"
	"github.com/bankbook/bankbook/ratelimit"
	"github.com/bankbook/bankbook/worker"
)

// TestTwoDispatchersOnOneNotificationSendOnce: two dispatchers (separate
// handler caches and limiter stores, as two
// processes) handed the same pending notification at once (a redelivery
// after a stall, a redrive) send it once: the second one's attempt is
// refused, and it waits for the first one's outcome.
func TestTwoDispatchersOnOneNotificationSendOnce(t *testing.T) {
	ctx := context.Background()
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	codec := domain.Events()
	events, err := eventstore.Open(ctx, js, eventstore.Config{Upcaster: codec})
	if err != nil {
		t.Fatal(err)
	}
	sim, err := chat.NewSim(chat.SimConfig{Rate: 5, Token: "sim"})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(sim.Handler())
	defer ts.Close()
	mk := func() (*notify.Notifier, *commands.Notifications) {
		h, err := commands.New(commands.Deps{Events: events, Codec: codec, Names: commandstest.NewNames(nil), Timers: &commandstest.Timers{}, Watermarks: &commandstest.Watermarks{}},
			commands.Config{CollectAccount: domain.BankAccount{Bank: "KB", Number: "123-456-789", Holder: "bankbook"}}, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		p, err := chat.NewSendbird(chat.SendbirdConfig{URL: ts.URL, Token: "sim"})
		if err != nil {
			t.Fatal(err)
		}
		st, err := ratelimit.Open(ctx, js, ratelimit.Config{})
		if err != nil {
			t.Fatal(err)
		}
		lim, err := st.Limiter("chat", ratelimit.Limit{Rate: 5, Margin: 0.07})
		if err != nil {
			t.Fatal(err)
		}
		n, err := notify.New(notify.Config{Codec: codec, Notifications: h.Notifications, Provider: p, Limiter: lim})
		if err != nil {
			t.Fatal(err)
		}
		return n, h.Notifications
	}
	nA, hA := mk()
	nB, _ := mk()
	const rounds = 10
	dups := 0
	for i := range rounds {
		rcpt := fmt.Sprintf("store:s-%d", i)
		in := domain.NotificationIntent{ID: domain.NewNotificationID(fmt.Sprint("evt-", i), "bill_issued", rcpt), Kind: "bill_issued", Recipient: rcpt,
			Message: "hello", SourceEventID: fmt.Sprint("evt-", i), SourceType: "bill.issued"}
		if _, err := hA.Create(ctx, commands.Meta{Command: "reactor.notify", Actor: "reactor", CorrelationID: "c"}, in); err != nil {
			t.Fatal(err)
		}
		commits, err := events.Load(ctx, eventstore.Ref{Type: domain.AggregateNotification, ID: string(in.ID)}, 0)
		if err != nil || len(commits) != 1 {
			t.Fatal(err, len(commits))
		}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for j, n := range []*notify.Notifier{nA, nB} {
			wg.Go(func() {
				cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
				defer cancel()
				errs[j] = n.Dispatch(cctx, commits[0])
			})
		}
		wg.Wait()
		got := len(sim.Messages(rcpt))
		note, _ := hA.Get(ctx, in.ID)
		t.Logf("round %d: %d messages at the provider; errs %v; status %s attempts %d", i, got, errs, note.Status, note.Attempts)
		if got > 1 {
			dups++
		}
	}
	if dups > 0 {
		t.Errorf("%d of %d notifications reached the recipient twice", dups, rounds)
	}
}

// TestLimiterUnavailableIsAWait: when the limiter's KV cannot be reached,
// a dispatch gives its commit back at once as a wait (fail closed), neither
// blocking for its whole handler time nor counting a failure.
func TestLimiterUnavailableIsAWait(t *testing.T) {
	ctx := context.Background()
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	srv2 := testenv.Start(t, "")
	_, js2 := srv2.Connect(t)
	codec := domain.Events()
	events, err := eventstore.Open(ctx, js, eventstore.Config{Upcaster: codec})
	if err != nil {
		t.Fatal(err)
	}
	sim, _ := chat.NewSim(chat.SimConfig{Rate: 5, Token: "sim"})
	ts := httptest.NewServer(sim.Handler())
	defer ts.Close()
	h, err := commands.New(commands.Deps{Events: events, Codec: codec, Names: commandstest.NewNames(nil), Timers: &commandstest.Timers{}, Watermarks: &commandstest.Watermarks{}},
		commands.Config{CollectAccount: domain.BankAccount{Bank: "KB", Number: "123-456-789", Holder: "bankbook"}}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	p, _ := chat.NewSendbird(chat.SendbirdConfig{URL: ts.URL, Token: "sim"})
	st, err := ratelimit.Open(ctx, js2, ratelimit.Config{})
	if err != nil {
		t.Fatal(err)
	}
	lim, _ := st.Limiter("chat", ratelimit.Limit{Rate: 5, Margin: 0.07})
	n, err := notify.New(notify.Config{Codec: codec, Notifications: h.Notifications, Provider: p, Limiter: lim})
	if err != nil {
		t.Fatal(err)
	}
	in := domain.NotificationIntent{ID: domain.NewNotificationID("evt-x", "bill_issued", "store:s-x"), Kind: "bill_issued", Recipient: "store:s-x",
		Message: "hello", SourceEventID: "evt-x", SourceType: "bill.issued"}
	if _, err := h.Notifications.Create(ctx, commands.Meta{Command: "reactor.notify", Actor: "reactor", CorrelationID: "c"}, in); err != nil {
		t.Fatal(err)
	}
	commits, _ := events.Load(ctx, eventstore.Ref{Type: domain.AggregateNotification, ID: string(in.ID)}, 0)
	srv2.Shutdown()                                          // the limiter's NATS goes away
	hctx, cancel := context.WithTimeout(ctx, 20*time.Second) // notifyHandlerTimeout
	defer cancel()
	start := time.Now()
	err = n.Dispatch(hctx, commits[0])
	ra, ok := errors.AsType[*worker.RetryAfterError](err)
	t.Logf("Dispatch took %v and returned %v (a wait: %v)", time.Since(start).Round(time.Millisecond), err, ok && ra.Err == nil)
	if !ok || ra.Err != nil {
		t.Errorf("limiter unavailable became a counted failure, not a wait")
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("Dispatch held its handler %s on a limiter that cannot answer", took)
	}
}

// TestPauseAfterTheSlotHoldsTheSend: a dispatcher holding a slot a second
// ahead when another process's send is answered 429 (a shared pause of 3 s
// from then) does not send in that slot: it records the attempt as not
// sent, not counted, and waits out the pause.
func TestPauseAfterTheSlotHoldsTheSend(t *testing.T) {
	ctx := context.Background()
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	codec := domain.Events()
	events, err := eventstore.Open(ctx, js, eventstore.Config{Upcaster: codec})
	if err != nil {
		t.Fatal(err)
	}
	sim, _ := chat.NewSim(chat.SimConfig{Rate: 5, Token: "sim"})
	ts := httptest.NewServer(sim.Handler())
	defer ts.Close()
	h, err := commands.New(commands.Deps{Events: events, Codec: codec, Names: commandstest.NewNames(nil), Timers: &commandstest.Timers{}, Watermarks: &commandstest.Watermarks{}},
		commands.Config{CollectAccount: domain.BankAccount{Bank: "KB", Number: "123-456-789", Holder: "bankbook"}}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	p, _ := chat.NewSendbird(chat.SendbirdConfig{URL: ts.URL, Token: "sim"})
	limit := ratelimit.Limit{Rate: 5, Margin: 0.07}
	limiter := func() *ratelimit.Limiter {
		st, err := ratelimit.Open(ctx, js, ratelimit.Config{})
		if err != nil {
			t.Fatal(err)
		}
		l, err := st.Limiter("chat", limit)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	other := limiter() // another process's dispatchers
	n, err := notify.New(notify.Config{Codec: codec, Notifications: h.Notifications, Provider: p, Limiter: limiter()})
	if err != nil {
		t.Fatal(err)
	}
	const rcpt = "store:s-paused"
	in := domain.NotificationIntent{ID: domain.NewNotificationID("evt-p", "bill_issued", rcpt), Kind: "bill_issued", Recipient: rcpt,
		Message: "hello", SourceEventID: "evt-p", SourceType: "bill.issued"}
	if _, err := h.Notifications.Create(ctx, commands.Meta{Command: "reactor.notify", Actor: "reactor", CorrelationID: "c"}, in); err != nil {
		t.Fatal(err)
	}
	commits, err := events.Load(ctx, eventstore.Ref{Type: domain.AggregateNotification, ID: string(in.ID)}, 0)
	if err != nil || len(commits) != 1 {
		t.Fatal(err, len(commits))
	}
	// The other process holds the next second's slots, so the dispatcher's
	// slot is about a second away.
	for range 5 {
		if _, err := other.Reserve(ctx, 2*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	before, err := other.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- n.Dispatch(ctx, commits[0]) }()
	testenv.Eventually(t, 5*time.Second, "the dispatcher claims its slot", func() bool {
		st, err := other.State(ctx)
		return err == nil && st.Next.After(before.Next)
	})
	if err := other.Pause(ctx, 3*time.Second); err != nil { // its send was answered 429
		t.Fatal(err)
	}
	paused := time.Now()
	var err2 error
	select {
	case err2 = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the dispatch did not return")
	}
	if got := sim.Messages(rcpt); len(got) != 0 {
		t.Fatalf("sent %d message(s) %v after the pause began, inside the provider's retry-after", len(got), time.Since(paused))
	}
	var wait *worker.RetryAfterError
	if !errors.As(err2, &wait) || wait.Err != nil || wait.Delay < time.Second {
		t.Errorf("dispatch returned %v, want a wait for the rest of the pause", err2)
	}
	note, err := h.Notifications.Get(ctx, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	if note.Status != domain.NotificationStatusPending || note.InDoubt || note.AttemptsSinceRedrive != 0 || !note.RetryAt.After(paused.Add(time.Second)) {
		t.Errorf("notification %+v, want pending, not in doubt, nothing counted, due after the pause", note)
	}
}
