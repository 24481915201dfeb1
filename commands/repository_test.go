package commands_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/commands"
	"github.com/bankbook/bankbook/commands/commandstest"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/eventstore/inmem"
)

// counter is a tiny aggregate: the number of increments applied.
type counter struct{ N int }

type incremented struct {
	By int `json:"by"`
}

func (incremented) EventType() string { return "test.incremented" }

var counterAggregate = domain.Aggregate[counter]{Type: "counter", Apply: func(c counter, e domain.Event) counter {
	if e, ok := e.(incremented); ok {
		c.N += e.By
	}
	return c
}}

func counterCodec() *domain.Codec {
	c := domain.NewCodec()
	domain.Register[incremented](c, 1)
	return c
}

// instance is a repository of counters as one engine instance has it.
func instance(t testing.TB, es commands.EventStore, cfg commands.Config) *commands.Repository[counter] {
	t.Helper()
	cfg.CollectAccount = collect
	core, err := commands.NewCore(es, counterCodec(), cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	return commands.NewRepository(core, counterAggregate)
}

func increment(ctx context.Context, r *commands.Repository[counter], meta commands.Meta) (commands.Outcome[counter], error) {
	return r.Execute(ctx, meta, "c", func(counter) ([]domain.Event, error) { return []domain.Event{incremented{By: 1}}, nil }, nil)
}

// TestRepositoryCatchesUpOnConflictAndDecidesAgain: two instances each
// cache what they have seen; the stale one's append conflicts, it reads only
// the newer commits and decides again on them.
func TestRepositoryCatchesUpOnConflictAndDecidesAgain(t *testing.T) {
	es := inmem.New(inmem.Config{})
	ctx := context.Background()
	a, b := instance(t, es, commands.Config{}), instance(t, es, commands.Config{})
	if _, err := increment(ctx, a, commands.Meta{}); err != nil {
		t.Fatal(err)
	}
	if _, err := increment(ctx, b, commands.Meta{}); err != nil { // b never saw a's commit
		t.Fatal(err)
	}
	out, err := increment(ctx, a, commands.Meta{}) // a's cache is stale now
	if err != nil || out.State.N != 3 || len(out.Events) != 1 {
		t.Fatalf("stale instance: %+v %v, want state 3", out, err)
	}
	if got, seq, err := b.Get(ctx, "c"); err != nil || got.N != 3 || seq != out.Seq {
		t.Fatalf("get on the other instance: %+v at %d, %v; want 3 at %d", got, seq, err, out.Seq)
	}
}

// TestRepositoryRefusesOnlyOnAFreshRead: a refusal decided on a cached or
// empty state is checked against the store first.
func TestRepositoryRefusesOnlyOnAFreshRead(t *testing.T) {
	es := inmem.New(inmem.Config{})
	ctx := context.Background()
	a, b := instance(t, es, commands.Config{}), instance(t, es, commands.Config{})
	if _, err := increment(ctx, a, commands.Meta{}); err != nil {
		t.Fatal(err)
	}
	errEmpty := errors.New("nothing to double")
	out, err := b.Execute(ctx, commands.Meta{}, "c", func(c counter) ([]domain.Event, error) {
		if c.N == 0 {
			return nil, errEmpty
		}
		return []domain.Event{incremented{By: c.N}}, nil
	}, nil)
	if err != nil || out.State.N != 2 {
		t.Fatalf("double on an instance that never saw the counter: %+v %v", out, err)
	}
	// On a state just read, the refusal stands.
	c := instance(t, es, commands.Config{})
	if _, err := c.Execute(ctx, commands.Meta{}, "other", func(counter) ([]domain.Event, error) { return nil, errEmpty }, nil); !errors.Is(err, errEmpty) {
		t.Fatalf("refusal: %v", err)
	}
}

// TestRepositoryAnswersARepeatFromTheFirstAttempt: a command with the same
// idempotency key finds the commit of its first attempt, on any instance,
// and appends nothing.
func TestRepositoryAnswersARepeatFromTheFirstAttempt(t *testing.T) {
	es := inmem.New(inmem.Config{})
	ctx := context.Background()
	a := instance(t, es, commands.Config{})
	meta := commands.Meta{Command: "inc", IdempotencyKey: "k"}
	first, err := increment(ctx, a, meta)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := increment(ctx, a, commands.Meta{}); err != nil { // a later command on top
		t.Fatal(err)
	}
	// A resumed repeat reads the whole aggregate first; one that is not
	// resumed, on an instance that never saw the aggregate, conflicts and
	// finds the commit while catching up.
	resumed := meta
	resumed.Resumed = true
	for _, m := range []commands.Meta{resumed, meta} {
		b := instance(t, es, commands.Config{})
		again, err := increment(ctx, b, m)
		if err != nil || again.Seq != first.Seq || again.State.N != 1 || len(again.Events) != 1 {
			t.Fatalf("repeat (resumed %v): %+v %v, want the first attempt's outcome %+v", m.Resumed, again, err, first)
		}
	}
	if commits, _ := es.Load(ctx, eventstore.Ref{Type: "counter", ID: "c"}, 0); len(commits) != 2 {
		t.Fatalf("%d commits, want 2", len(commits))
	}
}

// interfering is an event store where another writer appends to the same
// aggregate just before every append.
type interfering struct {
	*inmem.Store
	appends atomic.Int32
}

func (s *interfering) Append(ctx context.Context, ref eventstore.Ref, expected eventstore.Seq, prevVersion int, commitID string, events []eventstore.Envelope) (eventstore.Commit, error) {
	s.appends.Add(1)
	commits, err := s.Store.Load(ctx, ref, 0)
	if err != nil {
		return eventstore.Commit{}, err
	}
	var last eventstore.Seq
	if len(commits) > 0 {
		last = commits[len(commits)-1].Seq
	}
	if _, err := s.Store.Append(ctx, ref, last, len(commits), "other-"+commitID, events); err != nil {
		return eventstore.Commit{}, err
	}
	return s.Store.Append(ctx, ref, expected, prevVersion, commitID, events)
}

// TestRepositoryGivesUpAfterConflictRetries: an aggregate that changes
// under every attempt fails with ErrContention after ConflictRetries
// appends, having written nothing of its own.
func TestRepositoryGivesUpAfterConflictRetries(t *testing.T) {
	es := &interfering{Store: inmem.New(inmem.Config{})}
	r := instance(t, es, commands.Config{ConflictRetries: 3})
	if _, err := increment(context.Background(), r, commands.Meta{}); !errors.Is(err, commands.ErrContention) {
		t.Fatalf("increment under constant interference: %v, want ErrContention", err)
	}
	if n := es.appends.Load(); n != 3 {
		t.Fatalf("%d appends, want 3", n)
	}
}

// TestNewRefusesMissingDependencies: the handlers need every store and a
// valid configuration.
func TestNewRefusesMissingDependencies(t *testing.T) {
	es := inmem.New(inmem.Config{})
	full := commands.Deps{Events: es, Codec: domain.Events(), Names: commandstest.NewNames(nil), Timers: &commandstest.Timers{}, Watermarks: &commandstest.Watermarks{}}
	for _, c := range []struct {
		name string
		deps func(d commands.Deps) commands.Deps
		cfg  commands.Config
	}{
		{"no event store", func(d commands.Deps) commands.Deps { d.Events = nil; return d }, commands.Config{CollectAccount: collect}},
		{"no codec", func(d commands.Deps) commands.Deps { d.Codec = nil; return d }, commands.Config{CollectAccount: collect}},
		{"no names", func(d commands.Deps) commands.Deps { d.Names = nil; return d }, commands.Config{CollectAccount: collect}},
		{"no timers", func(d commands.Deps) commands.Deps { d.Timers = nil; return d }, commands.Config{CollectAccount: collect}},
		{"no watermarks", func(d commands.Deps) commands.Deps { d.Watermarks = nil; return d }, commands.Config{CollectAccount: collect}},
		{"no collect account", func(d commands.Deps) commands.Deps { return d }, commands.Config{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := commands.New(c.deps(full), c.cfg, zerolog.Nop()); err == nil {
				t.Fatal("New accepted it")
			}
		})
	}
	if _, err := commands.New(full, commands.Config{CollectAccount: collect}, zerolog.Nop()); err != nil {
		t.Fatalf("New with everything: %v", err)
	}
}
