package projections_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/projections"
)

// t0 is the time of the first event in every test. Event times derive from
// it, never from the clock, so every test writes the same event data.
var t0 = time.Date(2026, 3, 1, 9, 0, 0, 123456000, time.UTC)

// fixture is a real embedded JetStream server with the event stream on it.
type fixture struct {
	js    jetstream.JetStream
	es    *eventstore.Store
	codec *domain.Codec
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	// No Upcaster on the store: events of unknown types must reach the
	// projections, which skip and report them (see TestDamagedCommitsAreSkippedReportedAndSetAside).
	es, err := eventstore.Open(context.Background(), js, eventstore.Config{})
	if err != nil {
		t.Fatalf("open event store: %v", err)
	}
	return &fixture{js: js, es: es, codec: domain.Events()}
}

// envelope encodes ev as the commands package would.
func (f *fixture) envelope(t testing.TB, ev domain.Event, at time.Time) eventstore.Envelope {
	t.Helper()
	typ, v, data, err := f.codec.Encode(ev)
	if err != nil {
		t.Fatalf("encode %T: %v", ev, err)
	}
	return eventstore.Envelope{EventType: typ, SchemaVersion: v, OccurredAt: at, Data: data}
}

// tryAppend appends envelopes to order id with the right expectation. It is
// safe to call from several goroutines for different orders.
func (f *fixture) tryAppend(id string, envs ...eventstore.Envelope) (eventstore.Commit, error) {
	ctx := context.Background()
	ref := eventstore.Ref{Type: domain.AggregateOrder, ID: id}
	commits, err := f.es.Load(ctx, ref, 0)
	if err != nil {
		return eventstore.Commit{}, err
	}
	var last eventstore.Seq
	version := 0
	for _, c := range commits {
		last = c.Seq
		version += len(c.Events)
	}
	for i := range envs {
		envs[i].EventID = fmt.Sprintf("%s-e%d", id, version+i+1)
	}
	return f.es.Append(ctx, ref, last, version, fmt.Sprintf("%s-c%d", id, len(commits)+1), envs)
}

func (f *fixture) append(t testing.TB, id string, envs ...eventstore.Envelope) eventstore.Commit {
	t.Helper()
	c, err := f.tryAppend(id, envs...)
	if err != nil {
		t.Fatalf("append to order %s: %v", id, err)
	}
	return c
}

func (f *fixture) submit(t testing.TB, id string, i int) eventstore.Commit {
	t.Helper()
	ev := submitted(id, i)
	return f.append(t, id, f.envelope(t, ev, ev.SubmittedAt))
}

func (f *fixture) cancel(t testing.TB, id, reason string, at time.Time) eventstore.Commit {
	t.Helper()
	ev := domain.OrderCancelled{OrderID: domain.OrderID(id), Reason: reason, CancelledAt: at}
	return f.append(t, id, f.envelope(t, ev, at))
}

func (f *fixture) lastSeq(t testing.TB) eventstore.Seq {
	t.Helper()
	seq, err := f.es.LastSeq(context.Background())
	if err != nil {
		t.Fatalf("last seq: %v", err)
	}
	return seq
}

// submitted is the i-th test order.
func submitted(id string, i int) domain.OrderSubmitted {
	return domain.OrderSubmitted{
		OrderID:        domain.OrderID(id),
		BuyerID:        domain.UserID("buyer-" + id),
		BuyerName:      "김민수",
		Amount:         domain.Money{Amount: int64(10_000 + i), Currency: domain.KRW},
		DepositorName:  fmt.Sprintf("김민수%03d", i%domain.DepositorSuffixes),
		CollectAccount: domain.BankAccount{Bank: "KB", Number: "123-456-7890", Holder: "bankbook"},
		CancelWindowS:  600,
		SubmittedAt:    t0.Add(time.Duration(i) * time.Second),
	}
}

// openStore opens a read-model file, closed when the test ends.
func openStore(t testing.TB, path string) *projections.Store {
	t.Helper()
	st, err := projections.Open(path, nil)
	if err != nil {
		t.Fatalf("open read models: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("close read models: %v", err)
		}
	})
	return st
}

func tempPath(t testing.TB, name string) string {
	t.Helper()
	return filepath.Join(t.TempDir(), name)
}

func checkpoint(t testing.TB, st *projections.Store) eventstore.Seq {
	t.Helper()
	cp, err := st.Checkpoint()
	if err != nil {
		t.Fatalf("checkpoint: %v", err)
	}
	return cp
}

func order(t testing.TB, st *projections.Store, id string) projections.OrderView {
	t.Helper()
	v, ok, err := st.Order(id)
	if err != nil || !ok {
		t.Fatalf("order %s: found %v, %v", id, ok, err)
	}
	return v
}

func hashOf(t testing.TB, st *projections.Store) (string, eventstore.Seq) {
	t.Helper()
	h, cp, err := st.Hash()
	if err != nil {
		t.Fatalf("hash: %v", err)
	}
	return h, cp
}

// testLogger logs through t at info level and above.
func testLogger(t testing.TB) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)
}

// startRunner runs r until the returned stop is called or the test ends;
// stop returns Run's result.
func startRunner(t testing.TB, r *projections.Runner) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			err = <-done
		})
		return err
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("runner: %v", err)
		}
	})
	return stop
}

// waitFor waits until r has applied seq.
func waitFor(t testing.TB, r *projections.Runner, seq eventstore.Seq) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.WaitFor(ctx, seq); err != nil {
		t.Fatalf("read models did not reach seq %d: %v", seq, err)
	}
}

// runUntilError runs r until it returns by itself (or the test ends) and
// hands over Run's result.
func runUntilError(t testing.TB, r *projections.Runner) <-chan error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(cancel)
	return done
}

// runErr waits up to 10 seconds for the result of runUntilError.
func runErr(t testing.TB, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
		return nil
	}
}

// openStoreWith opens a read-model file with the named projections alone.
func openStoreWith(t *testing.T, names ...string) *projections.Store {
	t.Helper()
	var registry []projections.Projection
	for _, p := range projections.DefaultProjections() {
		if slices.Contains(names, p.Name) {
			registry = append(registry, p)
		}
	}
	st, err := projections.Open(tempPath(t, "rm.db"), &projections.Options{Projections: registry})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}
