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
