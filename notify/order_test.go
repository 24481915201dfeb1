package notify_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/chat"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/notify"
	"github.com/bankbook/bankbook/projections"
	"github.com/bankbook/bankbook/worker"
)

var errStillWaiting = errors.New("still waiting: the dispatch gave its commit back")

// One recipient's notifications go out in the order they were created, as
// the engine wires it (the read models' projections.Runner.PendingAhead): a
// dispatcher handed the later one first gives its commit back while the
// earlier one was never tried, and sends it once the earlier one was;
// another recipient's goes at once.
func TestARecipientsNotificationsGoInTheOrderTheyWereCreated(t *testing.T) {
	w := newDispatchWorld(t)
	ctx := context.Background()
	n := w.orderedNotifier(t, 10*time.Minute, time.Second, nil)
	_, first := w.pendingFrom(t, "evt-1", 0, "store:s-1", "bill 1")
	_, second := w.pendingFrom(t, "evt-2", 0, "store:s-1", "bill 2")
	_, other := w.pendingFrom(t, "evt-3", 0, "store:s-2", "bill 3")

	// One notification is queued before it (the earlier one): it waits
	// for that one's slot, a second here.
	if err := n.Dispatch(ctx, second); !isWait(err) {
		t.Fatalf("the later notification, handed first: %v; want a wait for the earlier one", err)
	} else if ra, _ := errors.AsType[*worker.RetryAfterError](err); ra.Delay != time.Second {
		t.Fatalf("the later notification waits %v, want the 1 s of the one queued before it", ra.Delay)
	}
	if err := n.Dispatch(ctx, other); err != nil {
		t.Fatalf("another recipient's notification: %v", err)
	}
	if err := n.Dispatch(ctx, first); err != nil {
		t.Fatalf("the earlier notification: %v", err)
	}
	dispatchUntilDone(t, n, second)
	if sent, want := w.sentTexts(), []string{"bill 3", "bill 1", "bill 2"}; !slices.Equal(sent, want) {
		t.Fatalf("the provider got %q, want %q", sent, want)
	}
}

// A notification waits for the one ahead of it only until MaxAheadWait
// after its creation: one that nothing sends holds up no other for longer.
func TestANotificationWaitsForTheOneAheadOnlySoLong(t *testing.T) {
	w := newDispatchWorld(t)
	n := w.orderedNotifier(t, time.Nanosecond, time.Millisecond, nil)
	w.pendingFrom(t, "evt-1", 0, "store:s-1", "bill 1")
	_, second := w.pendingFrom(t, "evt-2", 0, "store:s-1", "bill 2")
	if err := n.Dispatch(context.Background(), second); err != nil {
		t.Fatalf("the later notification, past MaxAheadWait: %v; want it sent", err)
	}
	if got := w.sim.Messages(""); len(got) != 1 || got[0].Message != "bill 2" {
		t.Fatalf("the provider got %+v, want bill 2 alone", got)
	}
}

// orderedNotifier is a dispatcher with its own limiter that keeps one
// recipient's notifications in order as the engine does: with read models
// of the world's stream, which a Runner keeps up to date
// (projections.Runner.PendingAhead), waiting up to maxWait, pace per
// notification queued before, with recorded as Config.Recorded.
func (w *dispatchWorld) orderedNotifier(t *testing.T, maxWait, pace time.Duration, recorded func(context.Context) (eventstore.Seq, eventstore.Seq, error)) *notify.Notifier {
	t.Helper()
	st, err := projections.Open(filepath.Join(t.TempDir(), "readmodels.db"), &projections.Options{Codec: domain.Events()})
	if err != nil {
		t.Fatal(err)
	}
	runner := projections.NewRunner(w.events, st, zerolog.Nop())
	ctx, stop := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- runner.Run(ctx) }()
	t.Cleanup(func() {
		stop()
		<-ran
		_ = st.Close()
	})
	n, err := notify.New(notify.Config{Codec: domain.Events(), Notifications: w.notes, Provider: w.provider, Limiter: w.limiter(t),
		AheadWait: 50 * time.Millisecond, AheadPace: pace, MaxAheadWait: maxWait, Recorded: recorded,
		Ahead: func(ctx context.Context, id domain.NotificationID, seq eventstore.Seq) (notify.Queue, error) {
			q, err := runner.PendingAhead(ctx, string(id), seq)
			return notify.Queue{Ahead: domain.NotificationID(q.Ahead), Queued: q.Queued, SourceSeq: q.SourceSeq}, err
		}})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Where several instances record notifications, a later event's may be
// recorded before an earlier one's: one recipient's notifications still go
// in the order of their events. The later one waits until every event
// before its own is recorded (Config.Recorded), then for the earlier
// one's notification, recorded after it.
func TestARecipientsNotificationsGoInTheOrderOfTheirEvents(t *testing.T) {
	w := newDispatchWorld(t)
	ctx := context.Background()
	var upTo atomic.Uint64 // react-notify's acknowledged events
	n := w.orderedNotifier(t, 10*time.Minute, time.Millisecond, func(ctx context.Context) (eventstore.Seq, eventstore.Seq, error) {
		last, err := w.events.LastSeq(ctx)
		return eventstore.Seq(upTo.Load()), last, err
	})
	// Events at 20 and 30; the notification of 30 is recorded first.
	_, later := w.pendingFrom(t, "evt-30", 30, "store:s-1", "bill 2")
	upTo.Store(20) // 20 is being recorded elsewhere
	if err := n.Dispatch(ctx, later); !isWait(err) {
		t.Fatalf("a notification whose earlier events are not all recorded: %v; want a wait", err)
	}
	_, earlier := w.pendingFrom(t, "evt-20", 20, "store:s-1", "bill 1")
	upTo.Store(30)
	if err := n.Dispatch(ctx, later); !isWait(err) {
		t.Fatalf("the later notification, the earlier one recorded and pending: %v; want a wait", err)
	}
	if err := n.Dispatch(ctx, earlier); err != nil {
		t.Fatalf("the earlier notification: %v", err)
	}
	dispatchUntilDone(t, n, later)
	if sent, want := w.sentTexts(), []string{"bill 1", "bill 2"}; !slices.Equal(sent, want) {
		t.Fatalf("the provider got %q, want %q", sent, want)
	}
}

// dispatchUntilDone hands c to n until it no longer waits.
func dispatchUntilDone(t *testing.T, n *notify.Notifier, c eventstore.Commit) {
	t.Helper()
	testenv.CheckFor(t, 10*time.Second, func() error {
		if err := n.Dispatch(context.Background(), c); isWait(err) {
			return errStillWaiting
		} else if err != nil {
			t.Fatal(err)
		}
		return nil
	})
}

// sentTexts lists the texts the provider got, in order.
func (w *dispatchWorld) sentTexts() []string {
	var sent []string
	for _, m := range w.sim.Messages("") {
		sent = append(sent, m.Message)
	}
	return sent
}

// The first message to a recipient whose channel does not exist yet is not
// stored: the adapter creates the channel and it is sent again at once,
// not counted (a throttled failure, due at once). Meanwhile it still goes
// before the recipient's later ones: a store's first two bills do not
// arrive the wrong way round because its channel was new.
func TestANewChannelsFirstMessageStillGoesFirst(t *testing.T) {
	w := newDispatchWorld(t)
	sim, err := chat.NewSim(chat.SimConfig{Rate: 5, Token: "sim", RequireChannels: true})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(sim.Handler())
	t.Cleanup(ts.Close)
	if w.provider, err = chat.NewSendbird(chat.SendbirdConfig{URL: ts.URL, Token: "sim"}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	n := w.orderedNotifier(t, 10*time.Minute, time.Millisecond, func(ctx context.Context) (eventstore.Seq, eventstore.Seq, error) {
		last, err := w.events.LastSeq(ctx)
		return last, last, err
	})
	_, first := w.pendingFrom(t, "evt-1", 1, "store_s1", "bill 1")
	_, second := w.pendingFrom(t, "evt-2", 2, "store_s1", "bill 2")

	if err := n.Dispatch(ctx, first); !isWait(err) {
		t.Fatalf("the first message to a new channel: %v; want it sent again soon", err)
	}
	// However often the second is handed over before the first is sent
	// again, it waits.
	for range 10 {
		if err := n.Dispatch(ctx, second); !isWait(err) {
			t.Fatalf("the second message, the first sent again soon: %v; want a wait for the first", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, c := range []eventstore.Commit{first, second} {
		testenv.CheckFor(t, 10*time.Second, func() error {
			if err := n.Dispatch(ctx, c); isWait(err) {
				return errStillWaiting
			} else if err != nil {
				t.Fatal(err)
			}
			return nil
		})
	}
	var sent []string
	for _, m := range sim.Messages("") {
		sent = append(sent, m.Message)
	}
	if want := []string{"bill 1", "bill 2"}; !slices.Equal(sent, want) {
		t.Fatalf("the provider got %q, want %q", sent, want)
	}
}
