package notify_test

import (
	"context"
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

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/api"
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

// dispatchWorld is one notification handler over a real event stream, a
// fake chat provider at 5 a second, and limiters on a NATS of their own
// (limitJS), which a test may take away (limitSrv).
type dispatchWorld struct {
	events   *eventstore.Store
	notes    *commands.Notifications
	sim      *chat.Sim
	sends    atomic.Int64 // send requests that reached the provider's address
	provider *chat.Sendbird
	limitSrv *testenv.Server
	limitJS  jetstream.JetStream
}

func newDispatchWorld(t *testing.T) *dispatchWorld {
	t.Helper()
	ctx := context.Background()
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	w := &dispatchWorld{limitSrv: testenv.Start(t, "")}
	_, w.limitJS = w.limitSrv.Connect(t)
	codec := domain.Events()
	var err error
	if w.events, err = eventstore.Open(ctx, js, eventstore.Config{Upcaster: codec}); err != nil {
		t.Fatal(err)
	}
	if w.sim, err = chat.NewSim(chat.SimConfig{Rate: 5, Token: "sim"}); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/messages") {
			w.sends.Add(1)
		}
		w.sim.Handler().ServeHTTP(rw, r)
	}))
	t.Cleanup(ts.Close)
	h, err := commands.New(commands.Deps{Events: w.events, Codec: codec, Names: commandstest.NewNames(nil), Timers: &commandstest.Timers{}, Watermarks: &commandstest.Watermarks{}},
		commands.Config{CollectAccount: domain.BankAccount{Bank: "KB", Number: "123-456-789", Holder: "bankbook"}}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	w.notes = h.Notifications
	if w.provider, err = chat.NewSendbird(chat.SendbirdConfig{URL: ts.URL, Token: "sim"}); err != nil {
		t.Fatal(err)
	}
	return w
}

// limiter is another process's limiter of the shared chat limit.
func (w *dispatchWorld) limiter(t *testing.T) *ratelimit.Limiter {
	t.Helper()
	st, err := ratelimit.Open(context.Background(), w.limitJS, ratelimit.Config{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := st.Limiter("chat", ratelimit.Limit{Rate: 5, Margin: 0.07})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// notifier is a dispatcher with a limiter of its own process.
func (w *dispatchWorld) notifier(t *testing.T) *notify.Notifier {
	t.Helper()
	n, err := notify.New(notify.Config{Codec: domain.Events(), Notifications: w.notes, Provider: w.provider, Limiter: w.limiter(t)})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// pending records a notification to rcpt and returns the commit that made
// it pending, as the dispatchers get it.
func (w *dispatchWorld) pending(t *testing.T, rcpt string) (domain.NotificationID, eventstore.Commit) {
	t.Helper()
	return w.pendingFrom(t, "evt-"+rcpt, 0, rcpt, "hello")
}

// pendingFrom is pending, for the source event src in the commit at
// srcSeq (0: unknown), with the message msg.
func (w *dispatchWorld) pendingFrom(t *testing.T, src string, srcSeq uint64, rcpt, msg string) (domain.NotificationID, eventstore.Commit) {
	t.Helper()
	ctx := context.Background()
	in := domain.NotificationIntent{ID: domain.NewNotificationID(src, "bill_issued", rcpt), Kind: "bill_issued", Recipient: rcpt,
		Message: msg, SourceEventID: src, SourceType: "bill.issued", SourceSeq: srcSeq}
	if _, err := w.notes.Create(ctx, commands.Meta{Command: "reactor.notify", Actor: "reactor", CorrelationID: "c"}, in); err != nil {
		t.Fatal(err)
	}
	commits, err := w.events.Load(ctx, eventstore.Ref{Type: domain.AggregateNotification, ID: string(in.ID)}, 0)
	if err != nil || len(commits) != 1 {
		t.Fatal(err, len(commits))
	}
	return in.ID, commits[0]
}

// get returns notification id's state.
func (w *dispatchWorld) get(t *testing.T, id domain.NotificationID) domain.Notification {
	t.Helper()
	note, err := w.notes.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return note
}

// redrive redrives notification id as an operator and returns the commit
// that made it pending again, as the dispatchers get it.
func (w *dispatchWorld) redrive(t *testing.T, id domain.NotificationID, reason string) eventstore.Commit {
	t.Helper()
	ctx := context.Background()
	if _, err := w.notes.Redrive(ctx, commands.Meta{Command: "notify.redrive", Actor: "operator", CorrelationID: "r"},
		api.NotifyRedriveRequest{NotificationID: string(id), Reason: reason}); err != nil {
		t.Fatal(err)
	}
	commits, err := w.events.Load(ctx, eventstore.Ref{Type: domain.AggregateNotification, ID: string(id)}, 0)
	if err != nil {
		t.Fatal(err)
	}
	return commits[len(commits)-1]
}

// holdSlots has other take the next 1.6 s of slots (within the 2 s a
// dispatcher reserves ahead), so that the next dispatcher's slot is that
// far away, and returns the limiter's state then.
func holdSlots(t *testing.T, other *ratelimit.Limiter) ratelimit.State {
	t.Helper()
	for range 8 {
		if _, err := other.Reserve(context.Background(), 2*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	st, err := other.State(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// dispatchHeld dispatches c on its own goroutine once the limiter is
// past before, and returns when the dispatcher has claimed its slot.
func dispatchHeld(t *testing.T, n *notify.Notifier, other *ratelimit.Limiter, before ratelimit.State, c eventstore.Commit) <-chan error {
	t.Helper()
	hctx, cancel := context.WithTimeout(context.Background(), 20*time.Second) // notifyHandlerTimeout
	done := make(chan error, 1)
	go func() {
		defer cancel()
		done <- n.Dispatch(hctx, c)
	}()
	testenv.Eventually(t, 5*time.Second, "the dispatcher claims its slot", func() bool {
		st, err := other.State(context.Background())
		return err == nil && st.Next.After(before.Next)
	})
	return done
}

// wantNotSent checks that Dispatch returned a wait of at least min and
// that the notification is pending, was not sent, is not in doubt and has
// nothing counted towards dead-lettering.
func (w *dispatchWorld) wantNotSent(t *testing.T, err error, minWait time.Duration, id domain.NotificationID, rcpt string) {
	t.Helper()
	if got := w.sim.Messages(rcpt); len(got) != 0 {
		t.Fatalf("sent %d message(s)", len(got))
	}
	if wait, ok := errors.AsType[*worker.RetryAfterError](err); !ok || wait.Err != nil || wait.Delay < minWait {
		t.Errorf("dispatch returned %v, want a wait of %v or more", err, minWait)
	}
	note, err := w.notes.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if note.Status != domain.NotificationStatusPending || note.InDoubt || note.AttemptsSinceRedrive != 0 {
		t.Errorf("notification %+v, want pending, not in doubt, nothing counted", note)
	}
}

// TestLimiterUnavailableIsAWait: when the limiter's KV cannot be reached,
// a dispatch gives its commit back at once as a wait (fail closed), neither
// blocking for its whole handler time nor counting a failure.
func TestLimiterUnavailableIsAWait(t *testing.T) {
	w := newDispatchWorld(t)
	n := w.notifier(t)
	_, c := w.pending(t, "store:s-x")
	w.limitSrv.Shutdown()                                                     // the limiter's NATS goes away
	hctx, cancel := context.WithTimeout(context.Background(), 20*time.Second) // notifyHandlerTimeout
	defer cancel()
	start := time.Now()
	err := n.Dispatch(hctx, c)
	ra, ok := errors.AsType[*worker.RetryAfterError](err)
	t.Logf("Dispatch took %v and returned %v (a wait: %v)", time.Since(start).Round(time.Millisecond), err, ok && ra.Err == nil)
	if !ok || ra.Err != nil {
		t.Errorf("limiter unavailable became a counted failure, not a wait")
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("Dispatch held its handler %s on a limiter that cannot answer", took)
	}
}

// TestNoSendOnASlotLostMeanwhile: a dispatcher holds a slot 1.6 s ahead,
// its attempt recorded, when the slot is lost: another process's send is
// answered 429 (a shared pause of 3 s from then), or the limiter's NATS
// goes away. Its last look before sending (bounded by the limiter's own
// timeout, not the handler's) sees it: it does not send, records the
// attempt as not sent (not counted, not in doubt) and waits. A dispatcher
// that wakes past its slot (a loaded machine; here every wake is, with a
// MaxLateness of 1 ns) makes no last look but asks for a new slot, gets
// none, and does the same. The attempt's lease (10 s here) outlasts a
// stall of the test machine, so that a dispatcher is not past it before it
// looks (it would then, rightly, leave the attempt in doubt), and the pause
// (12 s) outlasts the lease, so that no new slot comes within it.
func TestNoSendOnASlotLostMeanwhile(t *testing.T) {
	const lease, pause = 10 * time.Second, 12 * time.Second
	for name, lose := range map[string]func(t *testing.T, w *dispatchWorld, other *ratelimit.Limiter){
		"a 429 pause": func(t *testing.T, _ *dispatchWorld, other *ratelimit.Limiter) {
			if err := other.Pause(context.Background(), pause); err != nil {
				t.Fatal(err)
			}
		},
		"the limiter unreachable": func(_ *testing.T, w *dispatchWorld, _ *ratelimit.Limiter) { w.limitSrv.Shutdown() },
	} {
		for wake, maxLateness := range map[string]time.Duration{"on time": 0, "late": time.Nanosecond} {
			t.Run(name+", waking "+wake, func(t *testing.T) {
				w := newDispatchWorld(t)
				other := w.limiter(t)
				n, err := notify.New(notify.Config{Codec: domain.Events(), Notifications: w.notes, Provider: w.provider, Limiter: w.limiter(t), MaxLateness: maxLateness, AttemptLease: lease})
				if err != nil {
					t.Fatal(err)
				}
				const rcpt = "store:s-lost"
				id, c := w.pending(t, rcpt)
				done := dispatchHeld(t, n, other, holdSlots(t, other), c)
				lose(t, w, other)
				w.wantNotSent(t, <-done, time.Second, id, rcpt)
			})
		}
	}
}

// TestFailedSendIsLoggedAsAWarning: a send the provider fails (a 500 here)
// is retried later and logged at warn, so that a provider outage shows in
// the logs before any notification goes dead.
func TestFailedSendIsLoggedAsAWarning(t *testing.T) {
	w := newDispatchWorld(t)
	var logs testenv.SyncBuffer
	n, err := notify.New(notify.Config{Codec: domain.Events(), Notifications: w.notes, Provider: w.provider, Limiter: w.limiter(t), Log: zerolog.New(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	_, c := w.pending(t, "store:s-down")
	w.sim.FailNext(1, http.StatusInternalServerError)
	err = n.Dispatch(context.Background(), c)
	if ra, ok := errors.AsType[*worker.RetryAfterError](err); !ok || ra.Err != nil {
		t.Fatalf("a failed send: %v, want a wait until its retry", err)
	}
	if !strings.Contains(logs.String(), `"level":"warn"`) || !strings.Contains(logs.String(), "notification send failed") {
		t.Fatalf("the failed send was not logged as a warning:\n%s", logs.String())
	}
}

// TestAnOutageBehindAGatewayDeadLetters: the provider is down behind a
// gateway that answers every request 502, the in-doubt check included. The
// first send's 502 leaves the notification in doubt (the provider may have
// stored it before failing), so it is not sent again while the provider
// cannot be asked; and since it cannot be, the notification is
// dead-lettered once the checks have failed as long as failing sends would
// have taken, instead of waiting out of sight. A redrive while the
// provider is still down gives the doubt a new allowance; once the
// provider is back the check finds nothing and the message is sent, once.
func TestAnOutageBehindAGatewayDeadLetters(t *testing.T) {
	w := newDispatchWorld(t)
	var logs testenv.SyncBuffer
	n := outageNotifier(t, w, &logs)
	const rcpt = "store:s-gateway"
	id, c := w.pending(t, rcpt)
	w.sim.SetDown(http.StatusBadGateway)
	dispatch := func(c eventstore.Commit, rounds int) (int, error) { return dispatchWaiting(t, n, c, rounds) }
	get := func() domain.Notification { t.Helper(); return w.get(t, id) }
	// The allowance: the waits between three failing sends at their
	// shortest, 50 + 100 ms, after the doubt's own wait of 1.101 s.
	waits, err := dispatch(c, 40)
	note := get()
	t.Logf("dead after %d waits: %+v", waits, note)
	if err != nil || note.Status != domain.NotificationStatusDead || !note.InDoubt ||
		!strings.Contains(note.LastError, "cannot ask the provider whether the message arrived") || !strings.Contains(note.LastError, "502") {
		t.Fatalf("dispatch: %v; notification %+v, want dead, in doubt, with the failed check as its last error", err, note)
	}
	// Not before the allowance: the doubt's wait and the waits between
	// three failing sends at their shortest.
	if early := note.LastAttemptAt.Add(1101*time.Millisecond + 150*time.Millisecond); note.DeadAt.Before(early) {
		t.Fatalf("dead at %v, before the allowance ran out at %v", note.DeadAt, early)
	}
	if got := w.sends.Load(); got != 1 || note.Attempts != 1 {
		t.Fatalf("%d send request(s), %d attempt(s) while the provider could not be asked, want 1 each", got, note.Attempts)
	}
	if !strings.Contains(logs.String(), `"level":"warn"`) || !strings.Contains(logs.String(), "notification dead-lettered") {
		t.Fatalf("the dead-lettering was not logged as a warning:\n%s", logs.String())
	}

	// Redriven while the gateway still fails: not dead again at its first
	// failed check, nothing sent.
	redriven := w.redrive(t, id, "provider back?")
	if waits, err := dispatch(redriven, 1); waits != 1 || get().Status != domain.NotificationStatusPending || w.sends.Load() != 1 {
		t.Fatalf("redriven during the outage: dispatch %v, notification %+v, %d send request(s); want a wait, pending, nothing sent", err, get(), w.sends.Load())
	}
	w.sim.SetDown(0)
	if _, err := dispatch(redriven, 10); err != nil || get().Status != domain.NotificationStatusSent || len(w.sim.Messages(rcpt)) != 1 {
		t.Fatalf("provider back: dispatch %v, notification %+v, %d message(s); want sent once", err, get(), len(w.sim.Messages(rcpt)))
	}
}

// outageNotifier is a Notifier whose outage allowance is short: three
// attempts, 100–400 ms of backoff (allowance 150 ms, doubt wait 1.101 s).
func outageNotifier(t *testing.T, w *dispatchWorld, log io.Writer) *notify.Notifier {
	t.Helper()
	n, err := notify.New(notify.Config{
		Codec: domain.Events(), Notifications: w.notes, Provider: w.provider, Limiter: w.limiter(t), Log: zerolog.New(log),
		MaxAttempts: 3, MinBackoff: 100 * time.Millisecond, MaxBackoff: 400 * time.Millisecond,
		MaxSlotWait: 50 * time.Millisecond, AttemptLease: 100 * time.Millisecond, SendTimeout: time.Second, ClockSkew: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// dispatchWaiting hands c to n until it is done with it (nil), at most
// rounds times, sleeping the waits it asks for; it returns how many waits
// it slept and the last answer.
func dispatchWaiting(t *testing.T, n *notify.Notifier, c eventstore.Commit, rounds int) (waits int, last error) {
	t.Helper()
	for range rounds {
		last = n.Dispatch(context.Background(), c)
		ra, ok := errors.AsType[*worker.RetryAfterError](last)
		if !ok || ra.Err != nil {
			return waits, last
		}
		waits++
		time.Sleep(ra.Delay)
	}
	return waits, last
}

// A doubt is dead-lettered once its checks have failed for the allowance,
// not at one failed check made long after the attempt (the engine was
// stopped meanwhile).
func TestOneLateFailedCheckIsNoOutage(t *testing.T) {
	w := newDispatchWorld(t)
	n := outageNotifier(t, w, io.Discard)
	id, c := w.pending(t, "store:s-late")
	w.sim.SetDown(http.StatusBadGateway)
	if _, ok := errors.AsType[*worker.RetryAfterError](n.Dispatch(context.Background(), c)); !ok {
		t.Fatal("the send answered 502 was not left to wait in doubt")
	}
	// Away past the doubt's wait and the allowance, then one check fails.
	time.Sleep(1101*time.Millisecond + 400*time.Millisecond)
	firstCheck := time.Now()
	err := n.Dispatch(context.Background(), c)
	note, gerr := w.notes.Get(context.Background(), id)
	if gerr != nil {
		t.Fatal(gerr)
	}
	if note.Status != domain.NotificationStatusPending || !note.InDoubt {
		t.Fatalf("after one failed check: %v, notification %+v; want it still pending in doubt", err, note)
	}
	// The checks go on failing: dead once they have for the allowance.
	if _, err := dispatchWaiting(t, n, c, 40); err != nil {
		t.Fatal(err)
	}
	if note, _ = w.notes.Get(context.Background(), id); note.Status != domain.NotificationStatusDead || note.DeadAt.Before(firstCheck.Add(150*time.Millisecond)) {
		t.Fatalf("notification %+v; want dead no sooner than 150 ms after the first failed check at %v", note, firstCheck)
	}
	if got := w.sends.Load(); got != 1 {
		t.Fatalf("%d send request(s), want 1", got)
	}
}

// TestAFarLimiterStillSends: the limiter's NATS is far away, so that every
// read of the shared schedule takes 80 ms, longer than the lateness the
// limit's 7 % margin allows a send (70 ms at 5 a second). The notifications
// still go out: the last look for a pause before a send is made ahead of
// the slot, by as long as such a look takes, and the send follows the
// slot. With writes as far as reads ("idle schedule"), a reservation takes
// two round trips, and on an idle schedule its slot is at once, nearer
// than a look at the limiter takes: the reservation's own read of the
// schedule is then the last look, rather than every slot being missed by a
// look made after it until the attempt's lease runs out.
func TestAFarLimiterStillSends(t *testing.T) {
	for name, writes := range map[string]bool{"reads far": false, "idle schedule": true} {
		t.Run(name, func(t *testing.T) {
			w := newDispatchWorld(t)
			st, err := ratelimit.Open(context.Background(), slowJS{JetStream: w.limitJS, delay: 80 * time.Millisecond, writes: writes}, ratelimit.Config{})
			if err != nil {
				t.Fatal(err)
			}
			lim, err := st.Limiter("chat", ratelimit.Limit{Rate: 5, Margin: 0.07})
			if err != nil {
				t.Fatal(err)
			}
			n, err := notify.New(notify.Config{Codec: domain.Events(), Notifications: w.notes, Provider: w.provider, Limiter: lim})
			if err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				_, c := w.pending(t, fmt.Sprintf("store:s-%d", i))
				dispatchUntilDone(t, n, c)
			}
			if got := len(w.sim.Messages("")); got != 3 {
				t.Errorf("the provider got %d messages, want 3", got)
			}
		})
	}
}

// slowJS is a JetStream whose key-value reads answer delay late, half on
// the way there and half on the way back, as a NATS far away does.
type slowJS struct {
	jetstream.JetStream
	delay  time.Duration
	writes bool // writes too
}

func (s slowJS) CreateOrUpdateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := s.JetStream.CreateOrUpdateKeyValue(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return slowKV{KeyValue: kv, delay: s.delay, writes: s.writes}, nil
}

type slowKV struct {
	jetstream.KeyValue
	delay  time.Duration
	writes bool
}

func (k slowKV) slow(f func() (uint64, error)) (uint64, error) {
	if !k.writes {
		return f()
	}
	time.Sleep(k.delay / 2)
	rev, err := f()
	time.Sleep(k.delay / 2)
	return rev, err
}

func (k slowKV) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	return k.slow(func() (uint64, error) { return k.KeyValue.Put(ctx, key, value) })
}

func (k slowKV) Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error) {
	return k.slow(func() (uint64, error) { return k.KeyValue.Create(ctx, key, value, opts...) })
}

func (k slowKV) Update(ctx context.Context, key string, value []byte, rev uint64) (uint64, error) {
	return k.slow(func() (uint64, error) { return k.KeyValue.Update(ctx, key, value, rev) })
}

func (k slowKV) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	time.Sleep(k.delay / 2)
	e, err := k.KeyValue.Get(ctx, key)
	time.Sleep(k.delay / 2)
	return e, err
}
