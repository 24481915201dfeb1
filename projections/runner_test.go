package projections_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/projections"
)

// ackFloor returns the stream sequence up to which the durable consumer has
// been acknowledged.
func ackFloor(t testing.TB, f *fixture, durable string) eventstore.Seq {
	t.Helper()
	ctx := context.Background()
	c, err := f.js.Consumer(ctx, f.es.Config().Stream, durable)
	if err != nil {
		t.Fatalf("consumer %s: %v", durable, err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatalf("consumer %s info: %v", durable, err)
	}
	return eventstore.Seq(info.AckFloor.Stream)
}

func TestCrashBetweenCommitAndAck(t *testing.T) {
	f := newFixture(t)
	path := tempPath(t, "rm.db")
	events := map[string]int{} // order → events written

	// Phase 1: ten orders, four of them cancelled.
	for i := range 10 {
		id := fmt.Sprintf("o%02d", i)
		f.submit(t, id, i)
		events[id]++
	}
	for i := range 4 {
		id := fmt.Sprintf("o%02d", i)
		f.cancel(t, id, "", t0.Add(time.Hour))
		events[id]++
	}

	// The engine commits the first batch to bbolt and dies before the ack.
	st, err := projections.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	r1 := projections.NewRunner(f.es, st, testLogger(t))
	durable := r1.Durable()
	ctx, die := context.WithCancel(context.Background())
	var crashedAt eventstore.Seq
	projections.SetAfterCommit(r1, func(seq eventstore.Seq) error {
		crashedAt = seq
		die()
		return errors.New("simulated crash after the bbolt commit")
	})
	if err := r1.Run(ctx); err != nil {
		t.Fatalf("run: %v", err)
	}
	if crashedAt == 0 {
		t.Fatal("the runner stopped without committing a batch")
	}
	if cp := checkpoint(t, st); cp != crashedAt {
		t.Fatalf("checkpoint %d on disk, want %d (the batch committed)", cp, crashedAt)
	}
	if af := ackFloor(t, f, durable); af >= crashedAt {
		t.Fatalf("ack floor %d: the batch up to %d was acknowledged before the crash", af, crashedAt)
	}
	hashAtCrash, _ := hashOf(t, st)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("crashed after committing up to seq %d; stream at %d", crashedAt, f.lastSeq(t))

	// Phase 2, while the engine is down: ten more orders, and cancellations
	// of orders from both phases.
	for i := 10; i < 20; i++ {
		id := fmt.Sprintf("o%02d", i)
		f.submit(t, id, i)
		events[id]++
	}
	for _, i := range []int{4, 5, 6, 7, 12, 15} {
		id := fmt.Sprintf("o%02d", i)
		f.cancel(t, id, "late", t0.Add(2*time.Hour))
		events[id]++
	}
	last := f.lastSeq(t)

	st = openStore(t, path)
	if st.InstanceID() == "" || "readmodels-"+st.InstanceID() != durable {
		t.Fatalf("reopened file has durable readmodels-%s, want %s", st.InstanceID(), durable)
	}

	t.Run("redelivered batch changes nothing", func(t *testing.T) {
		// Deliver the commits that were applied but never acknowledged
		// again, from the start of the stream (Follow recreates the durable
		// at After+1 = 1, as it does whenever the consumer is not exactly at
		// the caller's position): Apply must skip them all.
		err := f.es.Follow(context.Background(), eventstore.FollowOptions{Durable: durable, Until: crashedAt},
			func(_ context.Context, batch []eventstore.Commit) error { return st.Apply(batch) })
		if err != nil {
			t.Fatalf("redelivery: %v", err)
		}
		if h, cp := hashOf(t, st); h != hashAtCrash || cp != crashedAt {
			t.Fatalf("redelivered commits were applied again: checkpoint %d, want %d", cp, crashedAt)
		}
	})

	t.Run("restart catches up exactly once", func(t *testing.T) {
		r2 := projections.NewRunner(f.es, st, testLogger(t))
		if got := r2.Checkpoint(); got != crashedAt {
			t.Fatalf("new runner starts at %d, want %d", got, crashedAt)
		}
		startRunner(t, r2)
		waitFor(t, r2, last)
		if cp := checkpoint(t, st); cp != last {
			t.Fatalf("checkpoint %d, want the stream's last seq %d", cp, last)
		}
		for id, n := range events {
			v := order(t, st, id)
			if v.Version != n {
				t.Errorf("order %s at version %d, but %d events were written for it", id, v.Version, n)
			}
		}
		// The ack follows the commit.
		testenv.Eventually(t, 5*time.Second, "ack floor to reach the last seq", func() bool {
			return ackFloor(t, f, durable) == last
		})
	})
}

func TestReplayMatchesLiveModel(t *testing.T) {
	f := newFixture(t)
	live := openStore(t, tempPath(t, "live.db"))
	r := projections.NewRunner(f.es, live, testLogger(t))
	startRunner(t, r)

	// Fifty orders written by five concurrent writers while the runner
	// applies them; every third one is cancelled.
	var wg sync.WaitGroup
	for w := range 5 {
		wg.Go(func() {
			for j := range 10 {
				i := w*10 + j
				id := fmt.Sprintf("o%02d", i)
				ev := submitted(id, i)
				if _, err := f.tryAppend(id, f.envelope(t, ev, ev.SubmittedAt)); err != nil {
					t.Errorf("submit %s: %v", id, err)
					return
				}
				if i%3 == 0 {
					at := t0.Add(time.Hour + time.Duration(i)*time.Second)
					c := domain.OrderCancelled{OrderID: domain.OrderID(id), Reason: "test", CancelledAt: at}
					if _, err := f.tryAppend(id, f.envelope(t, c, at)); err != nil {
						t.Errorf("cancel %s: %v", id, err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	last := f.lastSeq(t)
	if last != 50+17 {
		t.Fatalf("stream at %d, want 67 commits", last)
	}
	waitFor(t, r, last)
	liveHash, liveCP := hashOf(t, live)

	replayPath := tempPath(t, "replay.db")
	cp, hash, err := projections.Replay(context.Background(), f.es.Reader(), replayPath, &projections.Options{Codec: f.codec})
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	if cp != liveCP || cp != last {
		t.Fatalf("replay checkpoint %d, live %d, stream %d", cp, liveCP, last)
	}
	if hash != liveHash {
		t.Fatalf("replay hash %s differs from live hash %s at seq %d", hash, liveHash, cp)
	}

	replayed := openStore(t, replayPath)
	if replayed.InstanceID() == live.InstanceID() {
		t.Fatal("replay file has the live file's instance id")
	}

	t.Run("one more commit changes the hash", func(t *testing.T) {
		c := f.cancel(t, "o01", "after replay", t0.Add(3*time.Hour))
		err := f.es.Follow(context.Background(), eventstore.FollowOptions{After: cp, Until: c.Seq},
			func(_ context.Context, b []eventstore.Commit) error { return replayed.Apply(b) })
		if err != nil {
			t.Fatal(err)
		}
		h, _ := hashOf(t, replayed)
		if h == liveHash {
			t.Fatal("a model one commit ahead hashes the same")
		}
		// Once the live model has applied it too, they agree again.
		waitFor(t, r, c.Seq)
		if lh, _ := hashOf(t, live); lh != h {
			t.Fatalf("live %s and replay %s differ at seq %d", lh, h, c.Seq)
		}
	})
	t.Run("changed content at the same checkpoint changes the hash", func(t *testing.T) {
		before, cpBefore := hashOf(t, replayed)
		v := order(t, replayed, "o02")
		if err := replayed.Apply(nil); err != nil { // sanity: an empty batch is a no-op
			t.Fatal(err)
		}
		if h, _ := hashOf(t, replayed); h != before {
			t.Fatal("an empty batch changed the hash")
		}
		if err := replayed.Close(); err != nil {
			t.Fatal(err)
		}
		v.PaidAmount = 1
		tamper(t, replayPath, "orders", "o02", v)
		again := openStore(t, replayPath)
		h, cp := hashOf(t, again)
		if cp != cpBefore {
			t.Fatalf("checkpoint moved from %d to %d", cpBefore, cp)
		}
		if h == before {
			t.Fatal("a changed order view hashes the same")
		}
	})
}

func TestReplay(t *testing.T) {
	f := newFixture(t)
	t.Run("empty stream", func(t *testing.T) {
		path := tempPath(t, "replay.db")
		cp, hash, err := projections.Replay(context.Background(), f.es.Reader(), path, nil)
		if err != nil || cp != 0 {
			t.Fatalf("replay = %d, %v", cp, err)
		}
		if fresh, _ := hashOf(t, openStore(t, tempPath(t, "fresh.db"))); hash != fresh {
			t.Fatal("replay of an empty stream differs from a fresh file")
		}
	})
	t.Run("existing path is refused", func(t *testing.T) {
		path := tempPath(t, "replay.db")
		f.submit(t, "A", 1)
		st := openStore(t, path)
		hash, _ := hashOf(t, st)
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		if _, _, err := projections.Replay(context.Background(), f.es.Reader(), path, nil); !errors.Is(err, projections.ErrExists) {
			t.Fatalf("replay into an existing file: got %v, want ErrExists", err)
		}
		if h, cp := hashOf(t, openStore(t, path)); h != hash || cp != 0 {
			t.Fatal("a refused replay changed the existing file")
		}
	})
}

func TestWaitFor(t *testing.T) {
	f := newFixture(t)
	st := openStore(t, tempPath(t, "rm.db"))
	r := projections.NewRunner(f.es, st, testLogger(t))
	startRunner(t, r)

	t.Run("read your writes", func(t *testing.T) {
		// A waiter for a sequence not yet written blocks until it is applied.
		waited := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			waited <- r.WaitFor(ctx, 2)
		}()
		f.submit(t, "A", 1)
		select {
		case err := <-waited:
			t.Fatalf("WaitFor(2) returned %v with only seq 1 written", err)
		case <-time.After(50 * time.Millisecond):
		}
		c := f.cancel(t, "A", "", t0.Add(time.Minute))
		if err := <-waited; err != nil {
			t.Fatalf("wait: %v", err)
		}
		if v := order(t, st, "A"); v.Status != "cancelled" || r.Checkpoint() < c.Seq {
			t.Fatalf("after WaitFor(%d): order %+v, runner at %d", c.Seq, v, r.Checkpoint())
		}
	})
	t.Run("context ends first", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		err := r.WaitFor(ctx, f.lastSeq(t)+1)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("WaitFor beyond the stream: got %v, want DeadlineExceeded", err)
		}
	})
	t.Run("already applied", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := r.WaitFor(ctx, 1); err != nil {
			t.Fatalf("WaitFor(1) at %d: %v", r.Checkpoint(), err)
		}
	})
}

func TestRunnerFailsABatchItCannotApply(t *testing.T) {
	f := newFixture(t)
	st := openStore(t, tempPath(t, "rm.db"))
	r := projections.NewRunner(f.es, st, testLogger(t))
	done := runUntilError(t, r)

	good := f.submit(t, "A", 1)
	waitFor(t, r, good.Seq)
	// A cancellation of an order that was never submitted does not fit the
	// read model (a bug, not damage): Run must return the error (its
	// supervisor reports it and runs it again), not skip the commit. (A
	// commit that cannot be decoded is skipped and reported instead: see
	// TestDamagedCommitsAreSkippedReportedAndSetAside.)
	bad := f.append(t, "ghost", f.envelope(t, domain.OrderCancelled{OrderID: "ghost", CancelledAt: t0}, t0))

	err := runErr(t, done)
	var ce *projections.CommitError
	if !errors.As(err, &ce) || ce.Seq != bad.Seq || !errors.Is(err, projections.ErrInconsistent) || !strings.Contains(err.Error(), "never submitted") {
		t.Fatalf("Run = %v, want a CommitError at seq %d naming the cause", err, bad.Seq)
	}
	if ready, reason := r.Ready(); ready || !strings.Contains(reason, "never submitted") {
		t.Fatalf("Ready = %v, %q after Run failed", ready, reason)
	}
	// Stopped short of the commit, they move no further until Run runs
	// again: PendingAhead answers at once (a dispatcher asks for every
	// notification), not at its caller's far-off deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := r.PendingAhead(ctx, "ntf_any", bad.Seq); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("PendingAhead with the read models stopped before seq %d: %v; want an error at once", bad.Seq, err)
	}
	if cp := checkpoint(t, st); cp != good.Seq || r.Checkpoint() != good.Seq {
		t.Fatalf("checkpoint %d (runner %d), want %d: the bad commit was skipped", cp, r.Checkpoint(), good.Seq)
	}

	// Run again (as the supervisor would): the same commit fails again.
	if err := runErr(t, runUntilError(t, r)); !errors.As(err, &ce) || ce.Seq != bad.Seq {
		t.Fatalf("second Run = %v, want the same failure at seq %d", err, bad.Seq)
	}
	if v := order(t, st, "A"); v.Status != "awaiting_deposit" {
		t.Fatalf("order A = %+v", v)
	}
}

// BeforeCommit runs before each batch reaches bbolt: while it has not
// returned the read models do not move, and its error fails the batch,
// which is then neither committed nor acknowledged.
func TestRunnerWaitsBeforeCommit(t *testing.T) {
	f := newFixture(t)
	st := openStore(t, tempPath(t, "rm.db"))
	r := projections.NewRunner(f.es, st, testLogger(t))
	entered, release := make(chan eventstore.Seq, 16), make(chan error)
	r.BeforeCommit(func(ctx context.Context, last eventstore.Seq) error {
		entered <- last
		select {
		case err := <-release:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	done := runUntilError(t, r)
	f.submit(t, "o01", 1)
	if last := <-entered; last != 1 {
		t.Fatalf("BeforeCommit told of a batch ending at %d, want 1", last)
	}
	if cp := checkpoint(t, st); cp != 0 {
		t.Fatalf("checkpoint %d while BeforeCommit had not returned, want 0", cp)
	}
	release <- errors.New("sync failed")
	if err := runErr(t, done); err == nil || !strings.Contains(err.Error(), "sync failed") {
		t.Fatalf("Run after BeforeCommit failed: %v, want that failure", err)
	}
	if cp := checkpoint(t, st); cp != 0 {
		t.Fatalf("checkpoint %d after BeforeCommit failed, want 0", cp)
	}
	if af := ackFloor(t, f, r.Durable()); af != 0 {
		t.Fatalf("ack floor %d after BeforeCommit failed, want 0", af)
	}

	// Run again: this time BeforeCommit lets the batch through.
	runUntilError(t, r)
	<-entered
	release <- nil
	waitFor(t, r, 1)
	if cp := checkpoint(t, st); cp != 1 {
		t.Fatalf("checkpoint %d once BeforeCommit returned, want 1", cp)
	}
}

// A read-model file far behind the stream (a new one, or an engine that was
// down) is caught up to the stream's end as a rebuild is, through an ordered
// consumer in large batches and not ready meanwhile, before the durable
// consumer follows the stream live; it ends with the read models a replay
// builds.
func TestAFileFarBehindIsCaughtUpBeforeItFollows(t *testing.T) {
	f := newFixture(t)
	const orders = 700 // more than a live batch
	for i := range orders {
		f.submit(t, fmt.Sprintf("o%03d", i), i)
	}
	last := f.lastSeq(t)

	live := openStore(t, tempPath(t, "live.db"))
	r := projections.NewRunner(f.es, live, testLogger(t))
	var (
		mu    sync.Mutex
		first = true
		seen  []string // what the first batch found
	)
	r.BeforeCommit(func(ctx context.Context, _ eventstore.Seq) error {
		mu.Lock()
		defer mu.Unlock()
		if !first {
			return nil
		}
		first = false
		if ready, reason := r.Ready(); ready || !strings.HasPrefix(reason, fmt.Sprintf("rebuilding projections up to seq %d:", last)) {
			seen = append(seen, fmt.Sprintf("Ready() = %v, %q during the catch-up", ready, reason))
		}
		if _, err := f.js.Consumer(ctx, f.es.Config().Stream, r.Durable()); err == nil {
			seen = append(seen, "the durable consumer delivered the first batch")
		}
		return nil
	})
	startRunner(t, r)
	waitFor(t, r, last)
	mu.Lock()
	if first || len(seen) > 0 {
		t.Errorf("first batch: %v (any: %v)", seen, !first)
	}
	mu.Unlock()

	// Live from there on, by the durable consumer.
	c := f.cancel(t, "o001", "after the catch-up", t0.Add(time.Hour))
	waitFor(t, r, c.Seq)
	if ready, reason := r.Ready(); !ready {
		t.Fatalf("not ready after the catch-up: %s", reason)
	}
	// The ack follows the commit to bbolt.
	for deadline := time.Now().Add(10 * time.Second); ackFloor(t, f, r.Durable()) != c.Seq; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("durable consumer acknowledged up to %d, want %d", ackFloor(t, f, r.Durable()), c.Seq)
		}
	}
	liveHash, _ := hashOf(t, live)
	_, hash, err := projections.Replay(context.Background(), f.es.Reader(), tempPath(t, "replay.db"), &projections.Options{Codec: f.codec})
	if err != nil {
		t.Fatal(err)
	}
	if hash != liveHash {
		t.Fatalf("caught-up read models %s differ from a replay's %s", liveHash, hash)
	}
}

// PendingAhead does not wait for read models that are being caught up (a
// new file, or a projection rebuilt after a version change): they are not
// ready, and a catch-up can take minutes; a dispatcher asks for every
// notification it sends, so each would be held for its caller's whole
// timeout. (Nor for stopped ones: TestRunnerFailsABatchItCannotApply.)
func TestPendingAheadDoesNotWaitForReadModelsCatchingUp(t *testing.T) {
	f := newFixture(t)
	for i := range 600 { // more than a live batch: a catch-up
		f.submit(t, fmt.Sprintf("o%03d", i), i)
	}
	last := f.lastSeq(t)
	st := openStore(t, tempPath(t, "rm.db"))
	r := projections.NewRunner(f.es, st, testLogger(t))
	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	r.BeforeCommit(func(ctx context.Context, _ eventstore.Seq) error {
		once.Do(func() { close(held) })
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	startRunner(t, r)
	defer close(release)
	<-held

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := r.PendingAhead(ctx, "ntf_any", last); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("PendingAhead with the read models catching up to seq %d: %v; want an error at once", last, err)
	}
}
