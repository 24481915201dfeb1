package worker_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/bankbook/bankbook/internal/testcluster"
	"github.com/bankbook/bankbook/worker"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The notes of uncertain work: work begun and not ended as without effect
// is open, whichever instance began it, and the latest such is LastOpen;
// First is the earliest work noted; all are timed by the server, as Now.
// A note from before begin and end existed ({}) reads as open work.
func TestUncertaintyCountsTheWorkNotEnded(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	u, err := e.dead.Uncertainty(ctx, "payouts", "po-1")
	if err != nil || !u.First.IsZero() || !u.LastOpen.IsZero() || u.Now.IsZero() {
		t.Fatalf("nothing noted: %+v %v, want only Now", u, err)
	}
	a, err := e.dead.BeginUncertain(ctx, "payouts", "po-1", 0) // instance A's send: its answer lost
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.dead.BeginUncertain(ctx, "payouts", "po-1", 0) // instance B's: refused
	if err != nil {
		t.Fatal(err)
	}
	if err := e.dead.EndUncertain(ctx, "payouts", "po-1", b); err != nil {
		t.Fatal(err)
	}
	if _, err := e.dead.BeginUncertain(ctx, "payouts", "po-2", 0); err != nil { // another key's
		t.Fatal(err)
	}
	u, err = e.dead.Uncertainty(ctx, "payouts", "po-1")
	if err != nil {
		t.Fatal(err)
	}
	at := func(seq uint64) string { return noteTime(t, e, seq).String() }
	if u.First.String() != at(a) || u.LastOpen.String() != at(a) || !u.Now.After(u.LastOpen) {
		t.Fatalf("A's send open, B's ended: %+v, want First and LastOpen at A's note (%s), Now after", u, at(a))
	}
	if err := e.dead.EndUncertain(ctx, "payouts", "po-1", a); err != nil {
		t.Fatal(err)
	}
	if u, err = e.dead.Uncertainty(ctx, "payouts", "po-1"); err != nil || !u.LastOpen.IsZero() || u.First.String() != at(a) {
		t.Fatalf("both ended: %+v %v, want none open, First at A's note", u, err)
	}
	// An older engine's note of a send whose outcome was unknown.
	ack, err := e.js.PublishMsg(ctx, &nats.Msg{Subject: "bankbook.deadlease.payouts.uncertain.cG8tMQ", Data: []byte("{}")})
	if err != nil {
		t.Fatal(err)
	}
	if u, err = e.dead.Uncertainty(ctx, "payouts", "po-1"); err != nil || u.LastOpen.String() != at(ack.Sequence) {
		t.Fatalf("an older engine's note: %+v %v, want it open", u, err)
	}
}

// Work may take effect until its bound after its note: LastOpen is the
// latest such time among the open work, whichever was begun last (here the
// earlier note, with the longer bound), and may be after Now.
func TestUncertaintyCountsEachWorkToItsBound(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	at := func(seq uint64) time.Time { return noteTime(t, e, seq) }
	long, err := e.dead.BeginUncertain(ctx, "payouts", "po-1", 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	short, err := e.dead.BeginUncertain(ctx, "payouts", "po-1", 1500*time.Microsecond)
	if err != nil {
		t.Fatal(err)
	}
	u, err := e.dead.Uncertainty(ctx, "payouts", "po-1")
	if want := at(long).Add(20 * time.Second); err != nil || !u.LastOpen.Equal(want) || !u.LastOpen.After(u.Now) {
		t.Fatalf("two sends open: %+v %v, want LastOpen %s (the first's note plus its 20s), after Now", u, err, want)
	}
	if err := e.dead.EndUncertain(ctx, "payouts", "po-1", long); err != nil {
		t.Fatal(err)
	}
	// 1.5 ms rounds up to 2, never down.
	if u, err = e.dead.Uncertainty(ctx, "payouts", "po-1"); err != nil || !u.LastOpen.Equal(at(short).Add(2*time.Millisecond)) {
		t.Fatalf("the long one ended: %+v %v, want LastOpen 2ms after the short one's note %s", u, err, at(short))
	}
	// And a later send that may take effect later counts.
	later, err := e.dead.BeginUncertain(ctx, "payouts", "po-1", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if u, err = e.dead.Uncertainty(ctx, "payouts", "po-1"); err != nil || !u.LastOpen.Equal(at(later).Add(time.Second)) {
		t.Fatalf("a later send: %+v %v, want LastOpen 1s after its note %s", u, err, at(later))
	}
	for _, bad := range []time.Duration{-time.Second, worker.MaxUncertainWait + time.Millisecond} {
		if _, err := e.dead.BeginUncertain(ctx, "payouts", "po-1", bad); err == nil {
			t.Fatalf("a bound of %v was noted", bad)
		}
	}
	// A begin note that states no bound counts a minute; a negative one
	// none.
	for _, tc := range []struct {
		note   string
		within time.Duration
	}{{`{"op":"begin"}`, time.Minute}, {`{"op":"begin","within_ms":-5000}`, 0}} {
		ack, err := e.js.PublishMsg(ctx, &nats.Msg{Subject: "bankbook.deadlease.payouts.uncertain.cG8tMw", Data: []byte(tc.note)})
		if err != nil {
			t.Fatal(err)
		}
		if u, err = e.dead.Uncertainty(ctx, "payouts", "po-3"); err != nil || !u.LastOpen.Equal(at(ack.Sequence).Add(tc.within)) {
			t.Fatalf("%s: %+v %v, want LastOpen %v after its note", tc.note, u, err, tc.within)
		}
		if err := e.dead.EndUncertain(ctx, "payouts", "po-3", ack.Sequence); err != nil {
			t.Fatal(err)
		}
	}
}

// noteTime is when the lease stream's server stored message seq.
func noteTime(t *testing.T, e *env, seq uint64) time.Time {
	t.Helper()
	leases, err := e.js.Stream(context.Background(), "BANKBOOK_DEAD_LEASES")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := leases.GetMsg(context.Background(), seq)
	if err != nil {
		t.Fatal(err)
	}
	return raw.Time
}

// On a replicated lease stream (no direct gets: the leader answers) the
// notes are read whole at once, through any node.
func TestUncertaintyOnAReplicatedStream(t *testing.T) {
	c := testcluster.Start(t, 3, "")
	ctx := context.Background()
	open := func(url string) *worker.DeadLetters {
		t.Helper()
		nc, err := nats.Connect(url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		d, err := worker.OpenDeadLetters(ctx, js, worker.DeadConfig{Replicas: 3})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	a, b := open(c.URLs()[0]), open(c.URLs()[2])
	first, err := a.BeginUncertain(ctx, "payouts", "po-1", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.EndUncertain(ctx, "payouts", "po-1", first); err != nil {
		t.Fatal(err)
	}
	if _, err := a.BeginUncertain(ctx, "payouts", "po-1", 0); err != nil {
		t.Fatal(err)
	}
	u, err := b.Uncertainty(ctx, "payouts", "po-1")
	if err != nil || u.First.IsZero() || !u.LastOpen.After(u.First) || u.Now.Before(u.LastOpen) {
		t.Fatalf("read through another node: %+v %v, want the second send open, after the first", u, err)
	}
}

// A decision that no more work is done on a key holds only if nothing was
// noted since the reading it was made on: work begun after the reading
// makes it read again. Once decided, no work begins (BeginUncertain
// answers the decision, noting nothing), a reading reports it, and a
// later decision on an older reading keeps the first one's reason.
func TestDecideRacesTheWorkBegunAfterItsReading(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.dead.BeginUncertain(ctx, "payouts", "po-1", 0); err != nil {
		t.Fatal(err)
	}
	stale, err := e.dead.Uncertainty(ctx, "payouts", "po-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.dead.BeginUncertain(ctx, "payouts", "po-1", time.Second); err != nil { // another instance's send
		t.Fatal(err)
	}
	if reason, err := e.dead.Decide(ctx, "payouts", "po-1", stale, "refused: a"); !errors.Is(err, worker.ErrNotedSince) {
		t.Fatalf("decided %q (%v) on a reading older than a send, want ErrNotedSince", reason, err)
	}
	u, err := e.dead.Uncertainty(ctx, "payouts", "po-1")
	if err != nil || u.Decided {
		t.Fatalf("read again: %+v %v, want undecided", u, err)
	}
	if reason, err := e.dead.Decide(ctx, "payouts", "po-1", u, "refused: b"); err != nil || reason != "refused: b" {
		t.Fatalf("decided %q (%v), want refused: b", reason, err)
	}
	last := lastNoteSeq(t, e)
	began, err := e.dead.BeginUncertain(ctx, "payouts", "po-1", 0)
	if de, ok := errors.AsType[*worker.DecidedError](err); !ok || de.Reason != "refused: b" || began != 0 {
		t.Fatalf("work begun after the decision: %d %v, want the decision", began, err)
	}
	if seq := lastNoteSeq(t, e); seq != last {
		t.Fatalf("the lease stream's last sequence %d after a refused begin, want %d: nothing noted", seq, last)
	}
	if reason, err := e.dead.Decide(ctx, "payouts", "po-1", stale, "refused: c"); err != nil || reason != "refused: b" {
		t.Fatalf("decided again on an old reading: %q (%v), want the first decision", reason, err)
	}
	if u, err = e.dead.Uncertainty(ctx, "payouts", "po-1"); err != nil || !u.Decided || u.Reason != "refused: b" || u.LastOpen.IsZero() {
		t.Fatalf("read after the decision: %+v %v, want it decided, the second send still open", u, err)
	}
	if _, err := e.dead.BeginUncertain(ctx, "payouts", "po-2", 0); err != nil {
		t.Fatalf("another key's work: %v", err)
	}
}

// A decision stays the last note: an end or a reading after it notes
// nothing, and one whose reading came just before the decision reads
// again and finds it, as does a begin, which answers the decision. So no
// work begins after a decision, however the notes interleave.
func TestNoNoteFollowsADecision(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	// decideBeforeTheNextNote decides key, on a reading taken now, between
	// the next note's reading of the last one and its writing.
	decideBeforeTheNextNote := func(key string) {
		t.Helper()
		u, err := e.dead.Uncertainty(ctx, "payouts", key)
		if err != nil {
			t.Fatal(err)
		}
		done := false
		worker.BeforeNote(t, func(string) {
			if !done {
				done = true
				if _, err := e.dead.Decide(ctx, "payouts", key, u, "refused: "+key); err != nil {
					t.Errorf("deciding %s: %v", key, err)
				}
			}
		})
	}
	decided := func(key string) {
		t.Helper()
		last := lastNoteSeq(t, e)
		u, err := e.dead.Uncertainty(ctx, "payouts", key)
		if err != nil || !u.Decided || u.Reason != "refused: "+key || u.LastOpen.IsZero() || !u.Now.IsZero() {
			t.Fatalf("%s read after its decision: %+v %v, want it decided, its send open, no Now", key, u, err)
		}
		// No reading's time after a decision: the server's now is the
		// decision's time, or a local clock's less a margin, the later.
		if at := u.ServerNow(u.DecidedAt.Add(-time.Hour)); u.DecidedAt.IsZero() || !at.Equal(u.DecidedAt) {
			t.Fatalf("%s: the server's time by a local clock an hour behind: %v, want the decision's time %v", key, at, u.DecidedAt)
		}
		local := u.DecidedAt.Add(time.Hour)
		if at := u.ServerNow(local); !at.Equal(local.Add(-worker.ServerClockMargin)) {
			t.Fatalf("%s: the server's time by a local clock an hour ahead: %v, want it less the margin", key, at)
		}
		began, err := e.dead.BeginUncertain(ctx, "payouts", key, 0)
		if de, ok := errors.AsType[*worker.DecidedError](err); !ok || de.Reason != "refused: "+key || began != 0 {
			t.Fatalf("%s: work begun after its decision: %d %v, want the decision", key, began, err)
		}
		if seq := lastNoteSeq(t, e); seq != last {
			t.Fatalf("%s: the lease stream's last sequence %d after a reading and a begin, want %d: nothing noted after the decision", key, seq, last)
		}
	}

	// An end after the decision.
	began, err := e.dead.BeginUncertain(ctx, "payouts", "po-1", 0)
	if err != nil {
		t.Fatal(err)
	}
	u, err := e.dead.Uncertainty(ctx, "payouts", "po-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.dead.Decide(ctx, "payouts", "po-1", u, "refused: po-1"); err != nil {
		t.Fatal(err)
	}
	last := lastNoteSeq(t, e)
	if err := e.dead.EndUncertain(ctx, "payouts", "po-1", began); err != nil {
		t.Fatal(err)
	}
	if seq := lastNoteSeq(t, e); seq != last {
		t.Fatalf("an end after the decision: the last sequence %d, want %d", seq, last)
	}
	// Each kind of note whose reading came just before the decision.
	for _, tc := range []struct {
		key  string
		note func(began uint64) error
	}{
		{"po-2", func(uint64) error {
			_, err := e.dead.BeginUncertain(ctx, "payouts", "po-2", 0)
			if de, ok := errors.AsType[*worker.DecidedError](err); !ok || de.Reason != "refused: po-2" {
				return fmt.Errorf("begun over the decision: %v", err)
			}
			return nil
		}},
		{"po-3", func(began uint64) error { return e.dead.EndUncertain(ctx, "payouts", "po-3", began) }},
		{"po-4", func(uint64) error {
			u, err := e.dead.Uncertainty(ctx, "payouts", "po-4")
			if err == nil && !u.Decided {
				return fmt.Errorf("read as undecided: %+v", u)
			}
			return err
		}},
	} {
		began, err := e.dead.BeginUncertain(ctx, "payouts", tc.key, 0)
		if err != nil {
			t.Fatal(err)
		}
		decideBeforeTheNextNote(tc.key)
		if err := tc.note(began); err != nil {
			t.Fatalf("%s: %v", tc.key, err)
		}
		decided(tc.key)
	}
	decided("po-1")
}

// lastNoteSeq is the lease stream's last sequence.
func lastNoteSeq(t *testing.T, e *env) uint64 {
	t.Helper()
	leases, err := e.js.Stream(context.Background(), "BANKBOOK_DEAD_LEASES")
	if err != nil {
		t.Fatal(err)
	}
	info, err := leases.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.LastSeq
}

// Given another instance's note landing between each reading of the last
// note and the writing of this one, when the races go on, then the reading
// gives up with ErrNoteContention (a conflict to try again) and notes
// nothing itself.
func TestNotesThatKeepLosingAreContention(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	others := 0
	busy := false
	worker.BeforeNote(t, func(string) {
		if busy {
			return // the other instance's own note
		}
		busy = true
		defer func() { busy = false }()
		if _, err := e.dead.BeginUncertain(ctx, "payouts", "po-1", 0); err != nil {
			t.Errorf("the other instance's note: %v", err)
		}
		others++
	})
	_, err := e.dead.Uncertainty(ctx, "payouts", "po-1")
	if !errors.Is(err, worker.ErrNoteContention) {
		t.Fatalf("reading while other notes keep coming first: %v, want ErrNoteContention", err)
	}
	if others < 2 {
		t.Fatalf("%d notes came first, want the reading to have tried again", others)
	}
}
