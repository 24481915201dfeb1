package groupcommit

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Concurrent waiters share syncs, and every one of them returns only after
// a sync that started after it called.
func TestWaitSharesSyncs(t *testing.T) {
	var calls atomic.Int64
	s := New(func() error { calls.Add(1); time.Sleep(2 * time.Millisecond); return nil })
	const waiters = 64
	var wg sync.WaitGroup
	for range waiters {
		wg.Go(func() {
			if err := s.Wait(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	st := s.Stats()
	if st.Waits != waiters || st.Syncs != uint64(calls.Load()) {
		t.Fatalf("stats %+v after %d waits and %d syncs", st, waiters, calls.Load())
	}
	if st.Syncs == 0 || st.Syncs >= waiters {
		t.Fatalf("%d waiters ran %d syncs: none shared", waiters, st.Syncs)
	}
}

// A wait that begins while a sync runs is not released by that sync (it
// may have started before the waiter's write), but by the next.
func TestWaitNeedsASyncStartedAfterIt(t *testing.T) {
	started := make(chan int, 4)
	release := make(chan struct{})
	var n atomic.Int64
	s := New(func() error {
		started <- int(n.Add(1))
		<-release
		return nil
	})
	first := make(chan error, 1)
	go func() { first <- s.Wait(context.Background()) }()
	if got := <-started; got != 1 {
		t.Fatalf("sync %d started first", got)
	}
	second := make(chan int64, 1)
	go func() {
		if err := s.Wait(context.Background()); err != nil {
			t.Error(err)
		}
		second <- n.Load()
	}()
	// The second waiter is queued behind sync 1 once its Wait counted.
	for s.Stats().Waits < 2 {
		time.Sleep(time.Millisecond)
	}
	release <- struct{}{} // sync 1 ends
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if got := <-started; got != 2 {
		t.Fatalf("sync %d started after sync 1, want 2", got)
	}
	select {
	case <-second:
		t.Fatal("the second waiter returned before the sync that started after it ended")
	default:
	}
	release <- struct{}{} // sync 2 ends
	if syncs := <-second; syncs != 2 {
		t.Fatalf("the second waiter returned after %d syncs, want 2", syncs)
	}
}

// After a sync fails every wait fails, even when syncs would succeed again:
// the pages it failed to write may be gone.
func TestFailedSyncFailsEveryLaterWait(t *testing.T) {
	fail := errors.New("EIO")
	var calls atomic.Int64
	s := New(func() error {
		if calls.Add(1) == 2 {
			return fail
		}
		return nil
	})
	ctx := context.Background()
	if err := s.Wait(ctx); err != nil {
		t.Fatalf("first wait: %v", err)
	}
	for i := range 3 {
		if err := s.Wait(ctx); !errors.Is(err, ErrSyncFailed) || !errors.Is(err, fail) {
			t.Fatalf("wait %d after the failed sync: %v, want ErrSyncFailed wrapping EIO", i, err)
		}
		if err := s.WaitDirty(ctx); !errors.Is(err, ErrSyncFailed) {
			t.Fatalf("WaitDirty %d after the failed sync: %v, want ErrSyncFailed", i, err)
		}
	}
	if calls.Load() != 2 {
		t.Fatalf("%d syncs ran; none should after the failure", calls.Load())
	}
}

// A waiter whose context ends stops waiting; the sync goes on for the others.
func TestWaitEndsWithItsContext(t *testing.T) {
	release := make(chan struct{})
	running := make(chan struct{}, 1)
	s := New(func() error { running <- struct{}{}; <-release; return nil })
	done := make(chan error, 1)
	go func() { done <- s.Wait(context.Background()) }()
	<-running
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("wait with an ended context: %v", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// WaitDirty syncs only while a write has begun that no finished sync
// covers, including one the server has not answered yet (a reader may see
// it delivered before its writer gets the ack).
func TestWaitDirty(t *testing.T) {
	s := New(func() error { return nil })
	ctx := context.Background()
	if err := s.WaitDirty(ctx); err != nil || s.Stats().Syncs != 0 {
		t.Fatalf("WaitDirty with no write: %v, %d syncs, want none", err, s.Stats().Syncs)
	}
	if _, err := durable(ctx, s, func() (int, error) { return 1, nil }); err != nil {
		t.Fatal(err)
	}
	if got := s.Stats(); got.Writes != 1 || got.Syncs != 1 {
		t.Fatalf("after one write: %+v, want 1 write and its sync", got)
	}
	if err := s.WaitDirty(ctx); err != nil || s.Stats().Syncs != 1 {
		t.Fatalf("WaitDirty after a synced write: %v, %d syncs, want still 1", err, s.Stats().Syncs)
	}

	// A write in flight: sent, not answered.
	sent, answer := make(chan struct{}), make(chan struct{})
	wrote := make(chan error, 1)
	go func() {
		_, err := durable(ctx, s, func() (int, error) { close(sent); <-answer; return 2, nil })
		wrote <- err
	}()
	<-sent
	if err := s.WaitDirty(ctx); err != nil || s.Stats().Syncs != 2 {
		t.Fatalf("WaitDirty with a write in flight: %v, %d syncs, want a sync of its own (2)", err, s.Stats().Syncs)
	}
	// That sync started before the write was answered: it does not cover it.
	if err := s.WaitDirty(ctx); err != nil || s.Stats().Syncs != 3 {
		t.Fatalf("WaitDirty again, the write still in flight: %v, %d syncs, want 3", err, s.Stats().Syncs)
	}
	close(answer)
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	syncs := s.Stats().Syncs
	if err := s.WaitDirty(ctx); err != nil || s.Stats().Syncs != syncs {
		t.Fatalf("WaitDirty once the write is durable: %v, %d syncs, want %d", err, s.Stats().Syncs, syncs)
	}
	// A refused write stored nothing: it returns its error without a sync.
	refusal := &jetstream.APIError{Code: 400, ErrorCode: jetstream.JSErrCodeStreamWrongLastSequence, Description: "wrong last sequence"}
	if _, err := durable(Deferred(ctx), s, func() (int, error) { return 0, refusal }); err == nil || s.Stats().Syncs != syncs {
		t.Fatalf("a refused write: %v, %d syncs, want its error and still %d", err, s.Stats().Syncs, syncs)
	}
	if err := s.WaitDirty(ctx); err != nil || s.Stats().Syncs != syncs+1 {
		t.Fatalf("WaitDirty after a refused write: %v, %d syncs, want one more (counted, not yet covered)", err, s.Stats().Syncs)
	}
	if err := s.WaitDirty(ctx); err != nil || s.Stats().Syncs != syncs+1 {
		t.Fatalf("WaitDirty again: %v, %d syncs, want none more: a refusal is an answer, not an unknown", err, s.Stats().Syncs)
	}
}

// A write that got no answer may be stored after any sync: for
// UnknownWindow after it, WaitDirty syncs whatever the counts say.
func TestWriteWithoutAnswerKeepsWaitDirtySyncing(t *testing.T) {
	now := time.Unix(1000, 0)
	s := New(func() error { return nil })
	s.now = func() time.Time { return now }
	ctx := context.Background()
	if _, err := durable(ctx, s, func() (int, error) { return 0, context.DeadlineExceeded }); err == nil {
		t.Fatal("a write without an answer returned no error")
	}
	for i := range 3 {
		before := s.Stats().Syncs
		if err := s.WaitDirty(ctx); err != nil || s.Stats().Syncs != before+1 {
			t.Fatalf("WaitDirty %d after a write without an answer: %v, syncs %d → %d, want one more", i, err, before, s.Stats().Syncs)
		}
	}
	// Once the window has passed, one more sync (started after it) is
	// needed; then WaitDirty is clean again.
	now = now.Add(UnknownWindow)
	before := s.Stats().Syncs
	if err := s.WaitDirty(ctx); err != nil || s.Stats().Syncs != before+1 {
		t.Fatalf("WaitDirty once the window passed: %v, syncs %d → %d, want one more", err, before, s.Stats().Syncs)
	}
	if err := s.WaitDirty(ctx); err != nil || s.Stats().Syncs != before+1 {
		t.Fatalf("WaitDirty after a sync that started past the window: %v, syncs %d → %d, want none", err, before+1, s.Stats().Syncs)
	}
}

// A write of a context that is not Deferred first waits for what was
// written before it (its writer may have read it) to be durable.
func TestWriteWaitsForEarlierWrites(t *testing.T) {
	var order []string
	s := New(func() error { order = append(order, "sync"); return nil })
	ctx := context.Background()
	if _, err := durable(Deferred(ctx), s, func() (int, error) { order = append(order, "a"); return 1, nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := durable(ctx, s, func() (int, error) { order = append(order, "b"); return 1, nil }); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(order, " "); got != "a sync b sync" {
		t.Fatalf("order %q, want a deferred write, a sync, the next write, its sync", got)
	}
}

// A nil Syncer is group commit off: waits return at once.
func TestNilSyncer(t *testing.T) {
	var s *Syncer
	if err := s.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitDirty(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s.Stats() != (Stats{}) || s.Close() != nil {
		t.Fatal("a nil Syncer has stats or fails to close")
	}
}

// A write the server stored returns only once it is durable, even when its
// context ends meanwhile: a writer whose attempt timed out reads the write
// back, and must not find it before it is synced.
func TestStoredWriteOutlivesItsContext(t *testing.T) {
	release := make(chan struct{})
	running := make(chan struct{}, 1)
	s := New(func() error { running <- struct{}{}; <-release; return nil })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := durable(ctx, s, func() (int, error) { return 1, nil })
		done <- err
	}()
	<-running
	cancel()
	select {
	case err := <-done:
		t.Fatalf("the write returned (%v) before its sync ended", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("the write, once synced: %v", err)
	}
}

// Deferred writes wait for no sync; they still count, so WaitDirty syncs.
func TestDeferredWrites(t *testing.T) {
	s := New(func() error { return nil })
	ctx := Deferred(context.Background())
	for range 3 {
		if _, err := durable(ctx, s, func() (int, error) { return 1, nil }); err != nil {
			t.Fatal(err)
		}
	}
	if st := s.Stats(); st.Writes != 3 || st.Syncs != 0 {
		t.Fatalf("after three deferred writes: %+v, want 3 writes and no sync", st)
	}
	if err := s.WaitDirty(ctx); err != nil || s.Stats().Syncs != 1 {
		t.Fatalf("WaitDirty after deferred writes: %v, %d syncs, want one", err, s.Stats().Syncs)
	}
}

func TestAtLeast(t *testing.T) {
	for release, want := range map[string]bool{
		"6.18.44-fc-v782": true, "5.8.0": true, "5.10.0-21-amd64": true, "5.7.19": false,
		"4.19.0": false, "5.8": true, "6": false, "x.y": false, "5.8-rc1": true,
	} {
		if got := atLeast(release, 5, 8); got != want {
			t.Errorf("atLeast(%q, 5, 8) = %v, want %v", release, got, want)
		}
	}
}

// A write whose context ends while it waits for the writes before it to be
// durable is not sent: it returns its context's error once that wait ends.
func TestWriteWhoseContextEndsBeforeItIsSent(t *testing.T) {
	release := make(chan struct{})
	running := make(chan struct{}, 1)
	s := New(func() error { running <- struct{}{}; <-release; return nil })
	if _, err := durable(Deferred(context.Background()), s, func() (int, error) { return 1, nil }); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sent := false
	done := make(chan error, 1)
	go func() {
		_, err := durable(ctx, s, func() (int, error) { sent = true; return 1, nil })
		done <- err
	}()
	<-running // the wait for the deferred write's sync
	cancel()
	select {
	case err := <-done:
		t.Fatalf("the write returned (%v) before the sync it waited for ended", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := <-done; !errors.Is(err, context.Canceled) || sent {
		t.Fatalf("write after its context ended: %v, sent %v; want context.Canceled, not sent", err, sent)
	}
}

// WaitSeq returns at once for a message a finished sync covered, waits for
// the running sync if that one started after the message's ack, and
// otherwise waits for a sync of its own; an ack recorded while a sync runs
// is not covered by it.
func TestWaitSeq(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 8)
	block := false
	s := New(func() error {
		if block {
			started <- struct{}{}
			<-release
		}
		return nil
	})
	ctx := context.Background()
	recv := func(what string, ch <-chan error) error {
		t.Helper()
		select {
		case err := <-ch:
			return err
		case <-time.After(10 * time.Second):
			t.Fatalf("%s did not return", what)
			return nil
		}
	}
	s.acknowledged("S", 5)
	if err := s.WaitSeq(ctx, "S", 5); err != nil || s.Stats().Syncs != 1 {
		t.Fatalf("WaitSeq of an ack no sync covered: %v, %d syncs, want a sync", err, s.Stats().Syncs)
	}
	if err := s.WaitSeq(ctx, "S", 4); err != nil || s.Stats().Syncs != 1 {
		t.Fatalf("WaitSeq of a covered message: %v, %d syncs, want none more", err, s.Stats().Syncs)
	}
	if err := s.WaitSeq(ctx, "T", 1); err != nil || s.Stats().Syncs != 2 {
		t.Fatalf("WaitSeq of another stream's unacked message: %v, %d syncs, want one more", err, s.Stats().Syncs)
	}

	// Sync 3 starts after the ack of 7; 8 is acked while it runs.
	block = true
	s.acknowledged("S", 7)
	first := make(chan error, 1)
	go func() { first <- s.Wait(ctx) }()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("sync 3 did not start")
	}
	s.acknowledged("S", 8)
	seq7, seq8 := make(chan error, 1), make(chan error, 1)
	go func() { seq7 <- s.WaitSeq(ctx, "S", 7) }()
	go func() { seq8 <- s.WaitSeq(ctx, "S", 8) }()
	// Both are waiting (two earlier waits, sync 3's, and these two).
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats().Waits < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("waits %d: WaitSeq returned while sync 3 ran", s.Stats().Waits)
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case err := <-seq7:
		t.Fatalf("WaitSeq of 7 returned (%v) before sync 3, which covers it, ended", err)
	default:
	}
	close(release) // further syncs do not block: each is counted
	if err := recv("sync 3's Wait", first); err != nil {
		t.Fatal(err)
	}
	if err := recv("WaitSeq of 7", seq7); err != nil {
		t.Fatal(err)
	}
	if err := recv("WaitSeq of 8", seq8); err != nil {
		t.Fatal(err)
	}
	if got := s.Stats().Syncs; got != 4 {
		t.Fatalf("%d syncs, want 4: 7 covered by sync 3, 8 (acked while it ran) by one of its own", got)
	}
	if err := s.WaitSeq(ctx, "S", 8); err != nil || s.Stats().Syncs != 4 {
		t.Fatalf("WaitSeq of 8 after sync 4: %v, %d syncs, want none more", err, s.Stats().Syncs)
	}

	// A finished sync covers the acks as it started, not as it ended: 9,
	// acked while sync 5 ran, needs sync 6.
	release2, running := make(chan struct{}), make(chan struct{})
	s.sync = func() error {
		if s.Stats().Syncs == 4 { // sync 5
			close(running)
			<-release2
		}
		return nil
	}
	fifth := make(chan error, 1)
	go func() { fifth <- s.Wait(ctx) }()
	select {
	case <-running:
	case <-time.After(10 * time.Second):
		t.Fatal("sync 5 did not start")
	}
	s.acknowledged("S", 9)
	close(release2)
	if err := recv("sync 5's Wait", fifth); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitSeq(ctx, "S", 9); err != nil || s.Stats().Syncs != 6 {
		t.Fatalf("WaitSeq of 9, acked while sync 5 ran: %v, %d syncs, want a sync of its own (6)", err, s.Stats().Syncs)
	}
}
