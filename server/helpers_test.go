package server_test

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/client"
	"github.com/bankbook/bankbook/engine"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/idempotency"
	"github.com/bankbook/bankbook/internal/testenv"
)

// testEngine is a real engine (embedded NATS, bbolt in a temp dir) and a
// client connected to it over TCP.
type testEngine struct {
	*engine.Engine
	cfg engine.Config
	nc  *nats.Conn
	c   *client.Client
	js  jetstream.JetStream // the engine identity's: reads the stream's state
}

func startEngine(t testing.TB, mutate ...func(*engine.Config)) *testEngine {
	t.Helper()
	cfg := engine.Defaults()
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	cfg.Listen, cfg.HTTPListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Durability = "fast"
	for _, m := range mutate {
		m(&cfg)
	}
	return startEngineWith(t, cfg)
}

// restart stops e and starts an engine again on its data directory: the
// same streams and read models, nothing in memory.
func (e *testEngine) restart(t testing.TB) *testEngine {
	t.Helper()
	if err := e.Stop(context.Background()); err != nil {
		t.Fatalf("stop engine: %v", err)
	}
	return startEngineWith(t, e.cfg)
}

func startEngineWith(t testing.TB, cfg engine.Config) *testEngine {
	t.Helper()
	e, err := engine.Start(context.Background(), cfg, zerolog.New(io.Discard))
	if err != nil {
		t.Fatalf("start engine: %v", err)
	}
	t.Cleanup(func() { _ = e.Stop(context.Background()) })
	c := connectAs(t, e.ClientURL(), operatorSeed(cfg, e))
	te := &testEngine{Engine: e, cfg: cfg, nc: c.Conn(), c: c}
	js, err := jetstream.New(te.engineConn(t))
	if err != nil {
		t.Fatal(err)
	}
	te.js = js
	return te
}

// engineConn opens a connection with the engine's identity: only it may
// touch the streams and buckets, as the tests below do to set the scene.
func (e *testEngine) engineConn(t testing.TB) *nats.Conn {
	t.Helper()
	return connectAs(t, e.ClientURL(), filepath.Join(filepath.Dir(operatorSeed(e.cfg, e.Engine)), string(auth.Engine)+".nk")).Conn()
}

// idempotencyStore opens the engine's idempotency records as the engine
// identity, for tests that set up a claim an attempt left behind; js is
// that identity's JetStream.
func (e *testEngine) idempotencyStore(t testing.TB) (*idempotency.Store, jetstream.JetStream) {
	t.Helper()
	js, err := jetstream.New(e.engineConn(t))
	if err != nil {
		t.Fatal(err)
	}
	idem, err := idempotency.Open(ctxT(t), js, idempotency.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return idem, js
}

// connectAs opens a client connection with the seed file's identity (the
// refusal-aware client.Connect), closed when the test ends.
func connectAs(t testing.TB, url, seedFile string) *client.Client {
	t.Helper()
	c, err := client.Connect(url, testenv.NKey(t, seedFile))
	if err != nil {
		t.Fatalf("connect as %s: %v", filepath.Base(seedFile), err)
	}
	t.Cleanup(c.Close)
	return c
}

// joinEngine points cfg at engine a's embedded server, with the engine
// identity, as a further instance.
func joinEngine(cfg *engine.Config, a *engine.Engine) {
	cfg.NATSURL, cfg.Listen, cfg.NKey = a.ClientURL(), "", a.SeedFile(auth.Engine)
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// call sends req and decodes a successful reply into resp.
func (e *testEngine) call(t testing.TB, subject string, req, resp any, header nats.Header) client.Reply {
	t.Helper()
	rep, err := e.c.Call(ctxT(t), subject, req, resp, header)
	if err != nil {
		t.Fatalf("%s %v: %v", subject, req, err)
	}
	return rep
}

// callErr sends req and returns the *client.Error it must fail with.
func (e *testEngine) callErr(t testing.TB, subject string, req any, header nats.Header) *client.Error {
	t.Helper()
	_, err := e.c.Request(ctxT(t), subject, req, header)
	var ce *client.Error
	if !errors.As(err, &ce) {
		t.Fatalf("%s %s: want an error reply, got %v", subject, req, err)
	}
	return ce
}

// writes is what the business aggregates hold in the event stream: the
// sequence of their last commit (Last) and how many commits (Count), what
// requests wrote. Notifications are left out: the notify reactor records
// them a moment after the event that calls for one, so a test that counts
// commits would count them or not by chance.
func (e *testEngine) writes(t testing.TB, types ...string) testenv.Writes {
	t.Helper()
	if len(types) == 0 {
		types = testenv.BusinessAggregates
	}
	cfg := e.Events.Config()
	return testenv.StreamWrites(t, e.js, cfg.Stream, cfg.SubjectPrefix, types...)
}

// lastSeq is the sequence of the last commit of a business aggregate.
func (e *testEngine) lastSeq(t testing.TB) eventstore.Seq { return eventstore.Seq(e.writes(t).Last) }

// written is how many commits business aggregates hold.
func (e *testEngine) written(t testing.TB) uint64 { return e.writes(t).Count }

// connect opens another operator connection to the engine.
func connect(t testing.TB, e *engine.Engine) *client.Client {
	t.Helper()
	return connectAs(t, e.ClientURL(), e.SeedFile(auth.Operator))
}
