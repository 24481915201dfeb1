package commands_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/commands"
	"github.com/bankbook/bankbook/commands/commandstest"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/eventstore/inmem"
	"github.com/bankbook/bankbook/internal/testenv"
)

// storeOpeners are the event stores the command-layer unit tests run on:
// the in-memory one, and the real one on an embedded JetStream.
var storeOpeners = []struct {
	name string
	open func(t *testing.T) commands.EventStore
}{
	{"inmem", func(*testing.T) commands.EventStore { return inmem.New(inmem.Config{Upcaster: domain.Events()}) }},
	{"jetstream", func(t *testing.T) commands.EventStore {
		srv := testenv.Start(t, "")
		_, js := srv.Connect(t)
		es, err := eventstore.Open(context.Background(), js, eventstore.Config{Upcaster: domain.Events()})
		if err != nil {
			t.Fatal(err)
		}
		return es
	}},
}

// onEachStore runs test once per event store.
func onEachStore(t *testing.T, test func(t *testing.T, es commands.EventStore)) {
	for _, s := range storeOpeners {
		t.Run(s.name, func(t *testing.T) { test(t, s.open(t)) })
	}
}

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// unit is the handlers over one event store, with in-memory depositor
// names, timers and watermarks (their storage is tested in their packages,
// and commands_test.go runs the handlers on the real ones).
type unit struct {
	commands.Handlers
	es     commands.EventStore
	clock  *clock
	names  *commandstest.Names
	timers *commandstest.Timers
	marks  *commandstest.Watermarks
	accts  *commandstest.Accounts
	log    *testenv.SyncBuffer // what the handlers logged (JSON lines)
}

var collect = domain.BankAccount{Bank: "KB", Number: "100-200", Holder: "bankbook"}

func newUnit(t *testing.T, es commands.EventStore) *unit {
	t.Helper()
	return newUnitOn(t, es, &commandstest.Accounts{From: 5001000000}, nil)
}

// newUnitOn is newUnit with a given account directory (several units over
// one store and one directory are several engine instances) and its
// configuration changed by mutate (nil: none).
func newUnitOn(t *testing.T, es commands.EventStore, accts *commandstest.Accounts, mutate func(*commands.Config)) *unit {
	t.Helper()
	u := &unit{es: es, clock: &clock{now: time.Date(2025, 5, 1, 10, 0, 0, 0, time.UTC)}, timers: &commandstest.Timers{}, marks: &commandstest.Watermarks{}, accts: accts, log: &testenv.SyncBuffer{}}
	u.names = commandstest.NewNames(u.clock.Now)
	cfg := commands.Config{CollectAccount: collect, Now: u.clock.Now}
	if mutate != nil {
		mutate(&cfg)
	}
	h, err := commands.New(commands.Deps{Events: es, Codec: domain.Events(), Names: u.names, Timers: u.timers, Watermarks: u.marks, Accounts: accts},
		cfg, zerolog.New(u.log).Level(zerolog.WarnLevel))
	if err != nil {
		t.Fatal(err)
	}
	u.Handlers = h
	return u
}

// commits returns the commits of one aggregate.
func (u *unit) commits(t *testing.T, typ, id string) []eventstore.Commit {
	t.Helper()
	c, err := u.es.Load(context.Background(), eventstore.Ref{Type: typ, ID: id}, 0)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// fold returns the state of aggregate typ id as its commits in u's store
// record it.
func fold[S interface{ Apply(domain.Event) S }](t *testing.T, u *unit, typ, id string) S {
	t.Helper()
	var s S
	for _, c := range u.commits(t, typ, id) {
		for _, env := range c.Events {
			ev, err := domain.Events().Decode(env.EventType, env.SchemaVersion, env.Data)
			if err != nil {
				t.Fatal(err)
			}
			s = s.Apply(ev)
		}
	}
	return s
}
