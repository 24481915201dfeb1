package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/internal/testenv"
)

// readFixture is a stream of more commits than one read batch (and one
// direct get) holds, on three aggregates, with a damaged message among
// them.
type readFixture struct {
	store   *eventstore.Store
	damaged eventstore.Seq
	last    eventstore.Seq
	ids     map[eventstore.Seq]string // commit ID of every readable commit
}

func newReadFixture(t *testing.T) readFixture {
	t.Helper()
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	s := open(t, js, eventstore.Config{})
	f := readFixture{store: s, ids: map[eventstore.Seq]string{}}
	for i, id := range []string{"a", "b", "c"} {
		for _, c := range appendEvents(t, s, eventstore.Ref{Type: "t", ID: id}, 210, 1+i) {
			f.ids[c.Seq] = c.CommitID
		}
		if i == 1 {
			ack, err := js.Publish(context.Background(), s.Subject(eventstore.Ref{Type: "t", ID: "x"}), []byte("not a commit"))
			if err != nil {
				t.Fatal(err)
			}
			f.damaged = eventstore.Seq(ack.Sequence)
		}
	}
	f.last = eventstore.Seq(len(f.ids) + 1)
	return f
}

// ReadPrepared hands fn every message of the stream once, in order and
// without gaps, in batches, each commit with what prepare made of it
// (prepared on several goroutines), a damaged message in its place; and
// Read hands over the same commits.
func TestReadPreparedHandsEveryCommitInOrderWithItsPreparation(t *testing.T) {
	f := newReadFixture(t)
	ctx := context.Background()
	var (
		next    = eventstore.Seq(1)
		batches int
		read    []eventstore.Commit
	)
	last, err := eventstore.ReadPrepared(ctx, f.store.Reader(), func(c eventstore.Commit) string {
		return fmt.Sprintf("%d/%d", c.Seq, len(c.Events))
	}, func(_ context.Context, batch []eventstore.Commit, prepared []string) error {
		batches++
		if len(prepared) != len(batch) {
			return fmt.Errorf("%d commits, %d prepared", len(batch), len(prepared))
		}
		for i, c := range batch {
			if c.Seq != next {
				return fmt.Errorf("got seq %d, want %d", c.Seq, next)
			}
			if want := fmt.Sprintf("%d/%d", c.Seq, len(c.Events)); prepared[i] != want {
				return fmt.Errorf("seq %d prepared as %q, want %q", c.Seq, prepared[i], want)
			}
			next++
		}
		read = append(read, batch...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if last != f.last || next != f.last+1 {
		t.Fatalf("read up to %d (next %d), want %d", last, next, f.last)
	}
	if batches < 2 {
		t.Fatalf("%d batches for %d commits: the test should span several", batches, last)
	}
	for _, c := range read {
		switch {
		case c.Seq == f.damaged:
			if c.Damaged == nil || c.AggregateID != "x" || len(c.Events) != 0 {
				t.Fatalf("seq %d: want a damaged commit of t/x, got %+v", c.Seq, c)
			}
		case c.Damaged != nil || c.CommitID != f.ids[c.Seq] || c.Hash == (eventstore.Hash{}):
			t.Fatalf("seq %d: got commit %q (damaged %v), want %q with its hash", c.Seq, c.CommitID, c.Damaged, f.ids[c.Seq])
		}
	}

	var plain []eventstore.Commit
	if _, err := f.store.Reader().Read(ctx, func(_ context.Context, batch []eventstore.Commit) error {
		plain = append(plain, batch...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(plain) != len(read) {
		t.Fatalf("Read handed %d commits, ReadPrepared %d", len(plain), len(read))
	}
	for i := range plain {
		if plain[i].Seq != read[i].Seq || plain[i].Hash != read[i].Hash || plain[i].CommitID != read[i].CommitID {
			t.Fatalf("commit %d: Read %d/%s, ReadPrepared %d/%s", i, plain[i].Seq, plain[i].CommitID, read[i].Seq, read[i].CommitID)
		}
	}
}

// When fn fails, ReadPrepared returns its error, calls fn no more, and
// leaves no goroutine behind.
func TestReadPreparedStopsWhenTheHandlerFails(t *testing.T) {
	f := newReadFixture(t)
	before := runtime.NumGoroutine()
	stop := errors.New("stop")
	calls := 0
	_, err := eventstore.ReadPrepared(context.Background(), f.store.Reader(), nil, func(context.Context, []eventstore.Commit, []struct{}) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("got %v after %d calls, want the handler's error after 1", err, calls)
	}
	testenv.CheckFor(t, 5*time.Second, func() error {
		if n := runtime.NumGoroutine(); n > before {
			return fmt.Errorf("%d goroutines, %d before the read", n, before)
		}
		return nil
	})
}

// A panic while preparing a commit is ReadPrepared's error, not a crash
// of the process from a worker goroutine.
func TestReadPreparedPanicIsAnError(t *testing.T) {
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	st, err := eventstore.Open(t.Context(), js, eventstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Append(t.Context(), eventstore.Ref{Type: "order", ID: "o1"}, 0, 0, "c1",
		[]eventstore.Envelope{{EventID: "e1", EventType: "order.submitted", SchemaVersion: 1, OccurredAt: time.Now(), Data: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	_, err = eventstore.ReadPrepared(t.Context(), st.Reader(), func(eventstore.Commit) int { panic("boom") },
		func(context.Context, []eventstore.Commit, []int) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("ReadPrepared = %v, want the panic as an error", err)
	}
}

// A direct get the server never answers (it went away while the stream was
// read) is an error of the read, not messages missing from the log: the
// stream lost nothing, and saying that commits were removed from inside it
// would send an operator after damage there is not.
func TestReadDirectUnansweredIsNotMissingMessages(t *testing.T) {
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	s := open(t, js, eventstore.Config{})
	appendEvents(t, s, eventstore.Ref{Type: "t", ID: "a"}, 600, 1)
	var read int
	_, err := eventstore.ReadDirect(t.Context(), js, "BANKBOOK_EVENTS", 300*time.Millisecond, func(eventstore.RawMessage) error {
		if read++; read == 1 {
			srv.Shutdown() // the next batch is asked of a server that is gone
		}
		return nil
	})
	var missing *eventstore.MissingError
	if err == nil || errors.As(err, &missing) || errors.Is(err, eventstore.ErrNoMessage) {
		t.Fatalf("read %d messages, then %v; want an error that is not messages missing from the log", read, err)
	}
}
