package timers_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/timers"
	"github.com/bankbook/bankbook/worker"
)

type recorder struct {
	mu    sync.Mutex
	fired []firing
}

type firing struct {
	d  timers.Due
	at time.Time
}

func (r *recorder) handler(wait func(timers.Due) time.Duration) timers.Handler {
	return func(_ context.Context, d timers.Due) (time.Duration, error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.fired = append(r.fired, firing{d, time.Now()})
		if wait != nil {
			return wait(d), nil
		}
		return 0, nil
	}
}

func (r *recorder) all() []firing {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]firing(nil), r.fired...)
}

// run runs tm's worker loop with h until the test ends.
func run(t *testing.T, tm *timers.Timers, h timers.Handler) *worker.Loop {
	t.Helper()
	loop, err := tm.Worker(context.Background(), h)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, loop.Run)
	return loop
}

func open(t *testing.T, srv *testenv.Server) *timers.Timers {
	t.Helper()
	_, js := srv.Connect(t)
	tm, err := timers.Open(context.Background(), js, timers.Config{Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func TestTimerFiresNotEarlyAndWaitsWhenAsked(t *testing.T) {
	srv := testenv.Start(t, "")
	tm := open(t, srv)
	rec := &recorder{}
	run(t, tm, rec.handler(func(d timers.Due) time.Duration {
		if d.ID == "wait" && d.Delivered == 1 {
			return 300 * time.Millisecond // not due yet: call again later
		}
		return 0
	}))
	ctx := context.Background()
	// Far enough ahead that arming (and re-arming o2) is done before any
	// timer falls due, even on a busy machine.
	at := time.Now().Add(3 * time.Second).Truncate(time.Millisecond).Add(123 * time.Microsecond)
	if err := tm.Arm(ctx, "order", "o1", at, []byte(`{"x":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := tm.Arm(ctx, "order", "wait", at, nil); err != nil {
		t.Fatal(err)
	}
	// Re-arming replaces: o2 fires once, at the later time.
	if err := tm.Arm(ctx, "order", "o2", at, nil); err != nil {
		t.Fatal(err)
	}
	later := at.Add(time.Second)
	if err := tm.Arm(ctx, "order", "o2", later, []byte("second")); err != nil {
		t.Fatal(err)
	}
	// A disarmed timer never fires.
	if err := tm.Arm(ctx, "order", "gone", at, nil); err != nil {
		t.Fatal(err)
	}
	if err := tm.Disarm(ctx, "order", "gone"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "timers fired", func() bool { return len(rec.all()) >= 4 })
	time.Sleep(time.Second) // nothing else may fire: a replaced o2, a third "wait"
	count := map[string]int{}
	for _, f := range rec.all() {
		count[f.d.ID]++
		due := at
		if f.d.ID == "o2" {
			due = later
		}
		if f.at.Before(due) {
			t.Errorf("%s fired at %v, before its time %v", f.d.ID, f.at, due)
		}
		switch {
		case f.d.ID == "o1" && string(f.d.Payload) != `{"x":1}`:
			t.Errorf("payload %q", f.d.Payload)
		case f.d.ID == "o2" && string(f.d.Payload) != "second":
			t.Errorf("re-armed timer fired with payload %q", f.d.Payload)
		}
	}
	if count["o1"] != 1 || count["o2"] != 1 || count["wait"] != 2 || count["gone"] != 0 {
		t.Fatalf("firings %v; want o1 once, o2 once (replaced), wait twice, gone (disarmed) never", count)
	}
}

func TestTimerDueWhileServerDownFiresAfterRestart(t *testing.T) {
	dir := t.TempDir()
	srv := testenv.Start(t, dir)
	tm := open(t, srv)
	if err := tm.Arm(context.Background(), "order", "late", time.Now().Add(300*time.Millisecond), nil); err != nil {
		t.Fatal(err)
	}
	srv.Shutdown()
	time.Sleep(600 * time.Millisecond) // due while down

	srv = testenv.Start(t, dir)
	tm = open(t, srv)
	rec := &recorder{}
	run(t, tm, rec.handler(nil))
	testenv.Eventually(t, 10*time.Second, "overdue timer fired after restart", func() bool { return len(rec.all()) == 1 })
	if rec.all()[0].d.ID != "late" {
		t.Fatalf("fired %+v", rec.all())
	}
}
