package projections_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/projections"
	"github.com/bankbook/bankbook/supervisor"
	"github.com/bankbook/bankbook/worker"
)

// supervise runs r as part "projections" of a real supervisor until the
// test ends.
func supervise(t *testing.T, r *projections.Runner) *supervisor.Supervisor {
	t.Helper()
	sup, err := supervisor.New(supervisor.Config{MinBackoff: 10 * time.Millisecond, MaxBackoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := sup.Add(supervisor.Part{Name: "projections", Run: r.Run}); err != nil {
		t.Fatal(err)
	}
	if err := sup.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sup.Stop(context.Background()) })
	return sup
}

// operatorStore is the event store as the engine opens it: with the codec,
// so that it knows which event types exist (and which commits it may set
// aside).
func (f *fixture) operatorStore(t *testing.T) *eventstore.Store {
	t.Helper()
	es, err := eventstore.Open(context.Background(), f.js, eventstore.Config{Upcaster: f.codec, Check: check(f.codec)})
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func deadLetterSeqs(t *testing.T, dead *worker.DeadLetters) []uint64 {
	t.Helper()
	list, _, err := dead.List(context.Background(), worker.ListOptions{Part: projections.DeadLetterPart})
	if err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for _, dl := range list {
		seqs = append(seqs, dl.Seq)
	}
	return seqs
}

// Five bytes of garbage on an order subject, and a commit with an event
// type this engine does not know, used to freeze every read model. Now the
// runner skips both, goes on with the later commits, reports each with its
// sequence (dead letter, part not ready naming it, Damaged) while queries
// keep working, and clears the report once an operator sets them aside.
func TestDamagedCommitsAreSkippedReportedAndSetAside(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	path := tempPath(t, "rm.db")
	st := openStore(t, path)

	f.submit(t, "A", 1)
	ack, err := f.js.Publish(ctx, "bankbook.evt.order.poison", []byte("junk!"))
	if err != nil {
		t.Fatal(err)
	}
	garbage := eventstore.Seq(ack.Sequence)
	f.submit(t, "B", 2)
	flagged := f.append(t, "B", eventstore.Envelope{EventType: "order.flagged", SchemaVersion: 1, OccurredAt: t0,
		Data: json.RawMessage(`{"order_id":"B","note":"from the future"}`)})
	cancelA := f.cancel(t, "A", "", t0.Add(time.Minute))

	r := projections.NewRunner(f.es, st, testLogger(t))
	sup := supervise(t, r)
	waitFor(t, r, cancelA.Seq)

	// Folding went on past both: the later commits are applied.
	if v := order(t, st, "A"); v.Status != "cancelled" {
		t.Fatalf("order A = %+v", v)
	}
	if v := order(t, st, "B"); v.Status != "awaiting_deposit" || v.Version != 1 {
		t.Fatalf("order B = %+v: part of the damaged commit was applied", v)
	}
	if ready, reason := r.Ready(); !ready {
		t.Fatalf("queries refused: %s", reason)
	}
	// Each is reported with its sequence.
	damaged := r.Damaged()
	if len(damaged) != 2 || damaged[0].Seq != garbage || damaged[0].Subject != "bankbook.evt.order.poison" ||
		damaged[1].Seq != flagged.Seq || damaged[1].Subject != "bankbook.evt.order.B" || !strings.Contains(damaged[1].Problem, "order.flagged") {
		t.Fatalf("damaged %+v", damaged)
	}
	testenv.CheckFor(t, 10*time.Second, func() error {
		st, _ := sup.Status("projections")
		if st.OK() || !strings.Contains(st.Detail, fmt.Sprintf("seq %d on bankbook.evt.order.poison", garbage)) ||
			!strings.Contains(st.Detail, fmt.Sprintf("seq %d on bankbook.evt.order.B", flagged.Seq)) {
			return fmt.Errorf("part status %+v", st)
		}
		return nil
	})
	dead, err := f.es.OpenDeadLetters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	testenv.CheckFor(t, 10*time.Second, func() error {
		if got := deadLetterSeqs(t, dead); fmt.Sprint(got) != fmt.Sprint([]uint64{uint64(garbage), uint64(flagged.Seq)}) {
			return fmt.Errorf("dead letters at %v", got)
		}
		return nil
	})

	// A restart reports them again, and records no second dead letter.
	sup2, r2 := restart(t, sup, f, path, &st)
	if got := r2.Damaged(); len(got) != 2 {
		t.Fatalf("after a restart: damaged %+v", got)
	}
	testenv.CheckFor(t, 10*time.Second, func() error {
		if st, _ := sup2.Status("projections"); st.OK() {
			return fmt.Errorf("part status %+v", st)
		}
		return nil
	})
	if got := deadLetterSeqs(t, dead); len(got) != 2 {
		t.Fatalf("dead letters after a restart at %v", got)
	}

	// The operator sets both aside; a valid commit cannot be.
	ops := f.operatorStore(t)
	if _, _, err := ops.SetAside(ctx, cancelA.Seq, "looks odd", "operator"); !errors.Is(err, eventstore.ErrNotDamaged) {
		t.Fatalf("set aside a valid commit: %v", err)
	}
	for _, seq := range []eventstore.Seq{garbage, flagged.Seq} {
		if _, created, err := ops.SetAside(ctx, seq, "forged in a test", "operator"); err != nil || !created {
			t.Fatalf("set aside seq %d: %v (created %v)", seq, err, created)
		}
	}
	testenv.CheckFor(t, 10*time.Second, func() error {
		st, _ := sup2.Status("projections")
		switch {
		case !st.OK():
			return fmt.Errorf("part status %+v", st)
		case len(r2.Damaged()) != 0:
			return fmt.Errorf("damaged %+v", r2.Damaged())
		case len(deadLetterSeqs(t, dead)) != 0:
			return fmt.Errorf("dead letters at %v", deadLetterSeqs(t, dead))
		}
		return nil
	})
	skipped, err := st.Skipped()
	if err != nil || len(skipped) != 2 || !skipped[0].SetAside || skipped[1].Reason != "forged in a test" {
		t.Fatalf("skipped %+v, %v", skipped, err)
	}

	// Everything continues.
	c := f.submit(t, "C", 3)
	waitFor(t, r2, c.Seq)
	order(t, st, "C")

	// A replay skips the same commits and has the same content.
	if err := sup2.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	liveHash, liveCP := hashOf(t, st)
	cp, hash, err := projections.Replay(ctx, ops.Reader(), tempPath(t, "replay.db"), nil)
	if err != nil || cp != liveCP || hash != liveHash {
		t.Fatalf("replay: seq %d hash %s, %v; live seq %d hash %s", cp, hash, err, liveCP, liveHash)
	}
}

// restart stops sup, closes the store, and runs a new Runner on the same
// file under a new supervisor.
func restart(t *testing.T, sup *supervisor.Supervisor, f *fixture, path string, st **projections.Store) (*supervisor.Supervisor, *projections.Runner) {
	t.Helper()
	if err := sup.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := (*st).Close(); err != nil {
		t.Fatal(err)
	}
	*st = openStore(t, path)
	r := projections.NewRunner(f.es, *st, testLogger(t))
	sup2 := supervise(t, r)
	testenv.CheckFor(t, 10*time.Second, func() error {
		if s, _ := sup2.Status("projections"); s.State != supervisor.Running {
			return fmt.Errorf("part status %+v", s)
		}
		if len(r.Damaged()) == 0 {
			return fmt.Errorf("no damaged commits loaded")
		}
		return nil
	})
	return sup2, r
}

// A commit this engine skipped because it did not know its event type is
// applied after an upgrade that knows it: the runner finds that it can read
// it now and rebuilds every projection from sequence 1.
func TestSkippedCommitIsAppliedAfterAnUpgrade(t *testing.T) {
	f := newFixture(t)
	path := tempPath(t, "rm.db")
	st := openStore(t, path)
	f.submit(t, "A", 1)
	flagged := f.append(t, "A", eventstore.Envelope{EventType: flaggedType, SchemaVersion: 1, OccurredAt: t0,
		Data: json.RawMessage(`{"order_id":"A","note":"from the future"}`)})
	r := projections.NewRunner(f.es, st, testLogger(t))
	stop := startRunner(t, r)
	waitFor(t, r, flagged.Seq)
	if got := r.Damaged(); len(got) != 1 || got[0].Seq != flagged.Seq {
		t.Fatalf("damaged %+v", got)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	// The upgraded engine knows order.flagged.
	codec := domain.Events()
	domain.Register[orderFlagged](codec, 1)
	st2, err := projections.Open(path, &projections.Options{Codec: codec})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st2.Close() })
	es2, err := eventstore.Open(context.Background(), f.js, eventstore.Config{Upcaster: codec, Check: check(codec)})
	if err != nil {
		t.Fatal(err)
	}
	r2 := projections.NewRunner(es2, st2, testLogger(t))
	startRunner(t, r2)
	testenv.CheckFor(t, 10*time.Second, func() error {
		skipped, err := st2.Skipped()
		if err != nil {
			return err
		}
		if cp := checkpoint(t, st2); cp < flagged.Seq || len(skipped) != 0 || len(r2.Damaged()) != 0 {
			return fmt.Errorf("checkpoint %d, skipped %+v, damaged %+v", cp, skipped, r2.Damaged())
		}
		return nil
	})
	order(t, st2, "A")
}

const flaggedType = "order.flagged"

// orderFlagged is an event type of a newer engine.
type orderFlagged struct {
	OrderID string `json:"order_id"`
	Note    string `json:"note"`
}

func (orderFlagged) EventType() string { return flaggedType }

// check is the event store's Check as the engine configures it: the codec
// decodes the event.
func check(codec *domain.Codec) func(eventstore.Envelope) error {
	return func(e eventstore.Envelope) error {
		_, err := codec.Decode(e.EventType, e.SchemaVersion, e.Data)
		return err
	}
}

// TestProjectionsFailWhileTheirConsumerStopsAnswering: the read models'
// durable consumer takes no more pulls (its one waiting place held by
// another client's pull): no heartbeat comes and the read models stop
// moving, and the projections part says so, as a worker part does
// (failing, until the check that follows finds the consumer; missed
// heartbeats its last error) instead of waiting in silence.
func TestProjectionsFailWhileTheirConsumerStopsAnswering(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	st := openStore(t, tempPath(t, "rm.db"))
	r := projections.NewRunner(f.es, st, testLogger(t))
	stream, err := f.js.Stream(ctx, f.es.Config().Stream)
	if err != nil {
		t.Fatal(err)
	}
	// Where the runner starts (nothing handled), so it takes it as it is.
	if _, err := stream.CreateConsumer(ctx, jetstream.ConsumerConfig{Durable: r.Durable(), AckPolicy: jetstream.AckAllPolicy, MaxWaiting: 1}); err != nil {
		t.Fatal(err)
	}
	nc := f.js.Conn()
	inbox, err := nc.SubscribeSync(nats.NewInbox())
	if err != nil {
		t.Fatal(err)
	}
	next := "$JS.API.CONSUMER.MSG.NEXT." + f.es.Config().Stream + "." + r.Durable()
	if err := nc.PublishRequest(next, inbox.Subject, []byte(`{"batch":1,"expires":120000000000}`)); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	sup := supervise(t, r)
	testenv.CheckFor(t, 30*time.Second, func() error {
		s, _ := sup.Status("projections")
		if !strings.Contains(s.LastError, "no heartbeat") || s.LastErrorAt.IsZero() {
			return fmt.Errorf("projections part %+v, want missed heartbeats reported", s)
		}
		return nil
	})
}
