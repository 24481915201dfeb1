package ratelimit_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/ratelimit"
)

// TestConcurrentAcquirersNeverExceedBudget: nine acquirers over three
// connections share one key; no rolling second ever holds more than Rate
// slots, or uses, and nobody acts before its slot.
func TestConcurrentAcquirersNeverExceedBudget(t *testing.T) {
	_, stores := openStores(t, 3, ratelimit.Config{})
	lim := ratelimit.Limit{Rate: 10}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	uses, stale := acquirers(t, ctx, limiters(t, stores, "chat", lim), acquire{per: 3, maxWait: time.Second})
	checkBudget(t, uses, lim, 10)
	if len(uses) < 10 {
		t.Fatalf("%d uses in 2s at 10/s", len(uses))
	}
	var reserved uint64
	for _, s := range stores {
		reserved += s.Stats().Reserved
	}
	if reserved != uint64(len(uses)+stale) {
		t.Fatalf("stores counted %d reservations, acquirers %d", reserved, len(uses)+stale)
	}
	t.Logf("%d uses, %d stale, max %d in a rolling second", len(uses), stale, maxInWindow(slotsOf(uses), time.Second))
}

func slotsOf(uses []use) []time.Time {
	var out []time.Time
	for _, u := range uses {
		out = append(out, u.at)
	}
	return out
}

// TestUtilisationUnderSaturation: with more acquirers than the rate needs,
// the slots granted cover at least 95% of what the emission interval allows
// (none is lost to contention between processes). A slot granted to an
// acquirer that woke too late to use it (stale: the machine was busy) was
// granted all the same: it counts.
func TestUtilisationUnderSaturation(t *testing.T) {
	_, stores := openStores(t, 2, ratelimit.Config{})
	lim := ratelimit.Limit{Rate: 50}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	uses, stale := acquirers(t, ctx, limiters(t, stores, "chat", lim), acquire{per: 4, maxWait: time.Second})
	checkBudget(t, uses, lim, 50)
	if len(uses) < 20 {
		t.Fatalf("%d uses", len(uses))
	}
	span := uses[len(uses)-1].at.Sub(uses[0].at)
	util := float64(len(uses)+stale-1) * float64(lim.Interval()) / float64(span)
	nominal := float64(len(uses)-1) / span.Seconds() / lim.Rate
	t.Logf("%d uses over %v (%d stale): %.1f%% of the emission rate granted, %.1f%% of the nominal rate used", len(uses), span, stale, 100*util, 100*nominal)
	if util < 0.95 {
		t.Fatalf("slots granted: %.1f%% of the emission rate, want at least 95%%", 100*util)
	}
}

// TestReserveWithinMaxWait: a slot further than maxWait is not claimed and
// the error says how far it is; a longer maxWait claims it.
func TestReserveWithinMaxWait(t *testing.T) {
	srv, stores := openStores(t, 1, ratelimit.Config{})
	lim := ratelimit.Limit{Rate: 1}
	l := limiters(t, stores, "chat", lim)[0]
	first, err := l.Reserve(t.Context(), 0)
	if err != nil || first.Delay != 0 {
		t.Fatalf("first Reserve = %+v, %v; want a slot now", first, err)
	}
	before, err := l.State(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	_, err = l.Reserve(t.Context(), 100*time.Millisecond)
	w, ok := errors.AsType[*ratelimit.WaitError](err)
	if !ok || !errors.Is(err, ratelimit.ErrNotYet) || w.Wait <= 100*time.Millisecond || w.Wait > lim.Interval() {
		t.Fatalf("second Reserve: %v; want a *WaitError matching ErrNotYet, wait in (100ms, %v]", err, lim.Interval())
	}
	after, err := l.State(t.Context())
	if err != nil || after.Revision != before.Revision {
		t.Fatalf("revision %d after a refused Reserve, want %d unchanged (%v)", after.Revision, before.Revision, err)
	}
	second, err := l.Reserve(t.Context(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if second.At.Sub(first.At) != lim.Interval() || second.Delay <= 0 || second.Delay > lim.Interval() {
		t.Fatalf("second slot %v after the first with delay %v; want exactly %v after, delay in (0, %v]", second.At.Sub(first.At), second.Delay, lim.Interval(), lim.Interval())
	}
	// Another process sees the same schedule.
	_, js := srv.Connect(t)
	other, err := ratelimit.Open(t.Context(), js, ratelimit.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ol, err := other.Limiter("chat", lim)
	if err != nil {
		t.Fatal(err)
	}
	third, err := ol.Reserve(t.Context(), 3*time.Second)
	if err != nil || third.At.Sub(second.At) != lim.Interval() {
		t.Fatalf("other process's slot %v after the second (%v); want %v", third.At.Sub(second.At), err, lim.Interval())
	}
}

// TestBurst: Burst slots are free at once after a quiet time; the next
// waits.
func TestBurst(t *testing.T) {
	_, stores := openStores(t, 1, ratelimit.Config{})
	l := limiters(t, stores, "chat", ratelimit.Limit{Rate: 1, Burst: 3})[0]
	for i := range 3 {
		if r, err := l.Reserve(t.Context(), 0); err != nil || r.Delay != 0 {
			t.Fatalf("reservation %d of the burst: %+v, %v; want now", i+1, r, err)
		}
	}
	if _, err := l.Reserve(t.Context(), 0); !errors.Is(err, ratelimit.ErrNotYet) {
		t.Fatalf("fourth Reserve: %v, want ErrNotYet", err)
	}
}

// TestPauseSeenByAll: a pause by one process holds every process's slots
// back until it ends, and a shorter pause does not cut it short.
func TestPauseSeenByAll(t *testing.T) {
	_, stores := openStores(t, 2, ratelimit.Config{})
	ls := limiters(t, stores, "chat", ratelimit.Limit{Rate: 100})
	a, b := ls[0], ls[1]
	if err := a.Pause(t.Context(), 400*time.Millisecond); err != nil {
		t.Fatalf("Pause: %v", err)
	}
	st, err := b.State(t.Context())
	if err != nil || st.PausedUntil == nil {
		t.Fatalf("other process's State = %+v, %v; want a pause", st, err)
	}
	until := *st.PausedUntil
	if err := a.Pause(t.Context(), 10*time.Millisecond); err != nil {
		t.Fatalf("shorter Pause: %v", err)
	}
	if st, err := b.State(t.Context()); err != nil || st.PausedUntil == nil || !st.PausedUntil.Equal(until) {
		t.Fatalf("after a shorter pause: %+v, %v; want the pause until %v kept", st, err, until)
	}
	_, err = b.Reserve(t.Context(), 0)
	if w, ok := errors.AsType[*ratelimit.WaitError](err); !ok || w.Wait <= 0 || w.Wait > 400*time.Millisecond {
		t.Fatalf("Reserve while paused: %v; want a wait of at most the pause", err)
	}
	r, err := b.Reserve(t.Context(), time.Second)
	if err != nil || r.At.Before(until) {
		t.Fatalf("Reserve through the pause: %+v, %v; want a slot at or after %v", r, err, until)
	}
	testenv.CheckFor(t, 5*time.Second, func() error {
		st, err := a.State(t.Context())
		if err != nil {
			return err
		}
		if st.PausedUntil != nil {
			return fmt.Errorf("still paused until %v", st.PausedUntil)
		}
		return nil
	})
	if st := stores[0].Stats(); st.Pauses != 1 {
		t.Fatalf("stats %+v, want 1 pause written (the shorter one changed nothing)", st)
	}
}

// TestReservationValid: a reservation is valid from its slot until Margin
// after it; a process that stalls past that reserves again.
func TestReservationValid(t *testing.T) {
	_, stores := openStores(t, 1, ratelimit.Config{})
	lim := ratelimit.Limit{Rate: 2, Margin: 0.1}
	l := limiters(t, stores, "chat", lim)[0]
	if (ratelimit.Reservation{}).Valid(time.Now()) {
		t.Fatal("the zero Reservation is valid")
	}
	now, err := l.Reserve(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if !now.Valid(t0) {
		t.Fatal("a slot for now is not valid now")
	}
	if now.Valid(t0.Add(100*time.Millisecond + time.Millisecond)) {
		t.Fatal("valid after its margin (a stalled process)")
	}
	later, err := l.Reserve(t.Context(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t1 := time.Now()
	if later.Valid(t1) {
		t.Fatalf("valid %v before its slot", later.Delay)
	}
	if !later.Valid(t1.Add(later.Delay)) {
		t.Fatal("not valid at its slot")
	}
}

// TestContentionGivesUpCleanly: with MaxConflicts 1, contended
// reservations fail with ErrContended, and the budget holds.
func TestContentionGivesUpCleanly(t *testing.T) {
	_, stores := openStores(t, 4, ratelimit.Config{MaxConflicts: 1})
	lim := ratelimit.Limit{Rate: 40}
	var (
		mu        sync.Mutex
		contended int
	)
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	uses, _ := acquirers(t, ctx, limiters(t, stores, "chat", lim), acquire{per: 2, maxWait: time.Second, onErr: func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if !errors.Is(err, ratelimit.ErrContended) {
			t.Errorf("Reserve: %v, want only ErrContended", err)
		}
		contended++
	}})
	checkBudget(t, uses, lim, 40)
	var conflicts uint64
	for _, s := range stores {
		conflicts += s.Stats().Conflicts
	}
	if conflicts < uint64(contended) {
		t.Fatalf("%d conflicts counted, %d calls contended", conflicts, contended)
	}
	t.Logf("%d uses, %d conflicts, %d calls gave up", len(uses), conflicts, contended)
}

// TestCorruptStateFailsClosed: a value that cannot be decoded stops the
// limiter (no slot) until the key is deleted.
func TestCorruptStateFailsClosed(t *testing.T) {
	srv, stores := openStores(t, 1, ratelimit.Config{})
	l := limiters(t, stores, "chat", ratelimit.Limit{Rate: 5})[0]
	kv := rawKV(t, srv)
	if _, err := kv.Put(t.Context(), "chat", []byte("not json")); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Reserve(t.Context(), time.Second); !errors.Is(err, ratelimit.ErrCorrupt) {
		t.Fatalf("Reserve: %v, want ErrCorrupt", err)
	}
	if err := l.Pause(t.Context(), time.Second); !errors.Is(err, ratelimit.ErrCorrupt) {
		t.Fatalf("Pause: %v, want ErrCorrupt", err)
	}
	if _, err := l.State(t.Context()); !errors.Is(err, ratelimit.ErrCorrupt) {
		t.Fatalf("State: %v, want ErrCorrupt", err)
	}
	if err := kv.Delete(t.Context(), "chat"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Reserve(t.Context(), 0); err != nil {
		t.Fatalf("Reserve after the key was deleted: %v", err)
	}
	if st := stores[0].Stats(); st.Failures != 3 || st.Reserved != 1 {
		t.Fatalf("stats %+v, want 3 failures and 1 reservation", st)
	}
}

// A schedule or pause further ahead than any pause could have put it (a
// value written by hand, or by a server whose clock jumped ahead and came
// back) would hold every slot for as long as it says, years here: the
// limiters restart the schedule after the slots other processes may
// still hold, and count it.
func TestAScheduleFarAheadIsRestarted(t *testing.T) {
	srv, stores := openStores(t, 1, ratelimit.Config{})
	l := limiters(t, stores, "chat", ratelimit.Limit{Rate: 5})[0]
	kv := rawKV(t, srv)
	for i, v := range []string{
		`{"tat":0,"paused_until":9000000000000000000,"rate":5,"burst":1,"by":"x"}`,
		`{"tat":9000000000000000000,"rate":5,"burst":1,"by":"x"}`,
	} {
		if _, err := kv.Put(t.Context(), "chat", []byte(v)); err != nil {
			t.Fatal(err)
		}
		r, err := l.Reserve(t.Context(), 2*time.Second)
		if err != nil {
			t.Fatalf("Reserve on %s: %v", v, err)
		}
		if r.Delay < time.Second || r.Delay > 2*time.Second {
			t.Fatalf("Reserve on %s: a slot in %s, want one just after the 2s other processes may hold", v, r.Delay)
		}
		if st := stores[0].Stats(); st.Restarts != uint64(i+1) {
			t.Fatalf("stats %+v, want %d restarts", st, i+1)
		}
	}
	// A pause on such a schedule moves it to the pause, not beyond.
	if _, err := kv.Put(t.Context(), "chat", []byte(`{"tat":0,"paused_until":9000000000000000000,"rate":5,"burst":1,"by":"x"}`)); err != nil {
		t.Fatal(err)
	}
	if err := l.Pause(t.Context(), 3*time.Second); err != nil {
		t.Fatal(err)
	}
	st, err := l.State(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.PausedUntil == nil {
		t.Fatal("no pause")
	}
	if until := time.Until(*st.PausedUntil); until < 2*time.Second || until > 4*time.Second {
		t.Fatalf("paused until %s (in %s), want about 3s from now", st.PausedUntil, until)
	}
}

func TestInvalidConfiguration(t *testing.T) {
	srv, stores := openStores(t, 1, ratelimit.Config{})
	for _, scope := range []string{"", "_clock", "-x", "a.b", "a b", strings.Repeat("a", 65)} {
		if _, err := stores[0].Limiter(scope, ratelimit.Limit{Rate: 1}); !errors.Is(err, ratelimit.ErrInvalidConfig) {
			t.Errorf("scope %q: %v, want ErrInvalidConfig", scope, err)
		}
	}
	if _, err := stores[0].Limiter("chat", ratelimit.Limit{}); !errors.Is(err, ratelimit.ErrInvalidConfig) {
		t.Errorf("zero rate: %v, want ErrInvalidConfig", err)
	}
	_, js := srv.Connect(t)
	for _, cfg := range []ratelimit.Config{{Replicas: 7}, {MaxConflicts: -1}, {AttemptTimeout: time.Millisecond}} {
		if _, err := ratelimit.Open(t.Context(), js, cfg); !errors.Is(err, ratelimit.ErrInvalidConfig) {
			t.Errorf("Open(%+v): %v, want ErrInvalidConfig", cfg, err)
		}
	}
	st, err := rawKV(t, srv).Status(t.Context())
	if err != nil || st.History() != 1 {
		t.Fatalf("default bucket: %v, history %d; want %s with history 1", err, st.History(), ratelimit.DefaultBucket)
	}
}

// TestWait sleeps until the slot.
func TestWait(t *testing.T) {
	_, stores := openStores(t, 1, ratelimit.Config{})
	lim := ratelimit.Limit{Rate: 10}
	l := limiters(t, stores, "chat", lim)[0]
	if err := l.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := l.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < lim.Interval()/2 {
		t.Fatalf("second Wait returned after %v, want about %v", el, lim.Interval())
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Millisecond)
	defer cancel()
	if err := l.Wait(ctx); err == nil {
		t.Fatal("Wait for a slot beyond the deadline succeeded")
	}
}

// TestCheckForfeitsSlotsAPauseCovers: a slot claimed before another
// process's pause and inside it is forfeit (a wait for the rest of the
// pause); a slot claimed after the pause, and any slot without one, is not.
func TestCheckForfeitsSlotsAPauseCovers(t *testing.T) {
	_, stores := openStores(t, 2, ratelimit.Config{})
	ls := limiters(t, stores, "chat", ratelimit.Limit{Rate: 10})
	a, b := ls[0], ls[1]
	early, err := a.Reserve(t.Context(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Check(t.Context(), early); err != nil {
		t.Fatalf("Check without a pause: %v", err)
	}
	if err := b.Pause(t.Context(), 500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	err = a.Check(t.Context(), early)
	if w, ok := errors.AsType[*ratelimit.WaitError](err); !ok || w.Wait <= 0 || w.Wait > 500*time.Millisecond {
		t.Fatalf("Check of a slot the pause covers: %v; want a wait of at most the pause", err)
	}
	late, err := a.Reserve(t.Context(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Check(t.Context(), late); err != nil {
		t.Fatalf("Check of a slot after the pause: %v", err)
	}
}
