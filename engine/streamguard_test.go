package engine_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/client"
	"github.com/bankbook/bankbook/engine"
	"github.com/bankbook/bankbook/internal/testenv"
)

// Deny delete and deny purge keep every client from removing a commit,
// but the engine's own identity may update the event stream, and lower
// limits would make the server drop commits. The engine puts such
// settings back as soon as the server announces the update, and its
// event-stream part is not ready while commits are lost.
func TestTheEngineKeepsTheEventStreamFromDroppingCommits(t *testing.T) {
	e, err := engine.Start(context.Background(), testConfig(t), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = e.Stop(context.Background()) }()
	app, err := client.Connect(e.ClientURL(), testenv.NKey(t, e.SeedFile(auth.App)))
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	submit := func(i int) api.SubmitOrderReply {
		t.Helper()
		rep, _, err := client.Do(context.Background(), app, api.OrderSubmit, api.SubmitOrderRequest{BuyerID: fmt.Sprintf("g-%d", i), BuyerName: "김가드", Amount: 10_000}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	var orders []api.SubmitOrderReply
	for i := range 3 {
		orders = append(orders, submit(i))
	}
	_, js := engineJS(t, e)
	ctx := context.Background()
	stream := e.Events.Config().Stream
	settings := func() (jetstream.StreamConfig, jetstream.StreamState) {
		t.Helper()
		s, err := js.Stream(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		return s.CachedInfo().Config, s.CachedInfo().State
	}
	ready := func() (bool, string) { return partReady(t, e, "event-stream") }
	testenv.CheckFor(t, 10*time.Second, func() error {
		if ok, why := ready(); !ok {
			return fmt.Errorf("event-stream not ready: %s", why)
		}
		return nil
	})

	// A maximum age that would drop commits an hour old: none is yet, and
	// it is put back.
	cfg, _ := settings()
	cfg.MaxAge = time.Hour
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatalf("the engine identity updates the stream: %v", err)
	}
	testenv.CheckFor(t, 10*time.Second, func() error {
		if cfg, _ := settings(); cfg.MaxAge != 0 {
			return fmt.Errorf("max_age %s, want 0 (put back)", cfg.MaxAge)
		}
		if ok, why := ready(); !ok {
			return fmt.Errorf("event-stream not ready with no commit lost: %s", why)
		}
		return nil
	})

	// A limit per subject that drops each aggregate's older commits at
	// once (the cancelled order's submission): put back, and the loss
	// named until the stream is restored.
	if _, _, err := client.Do(ctx, app, api.OrderCancel, api.CancelOrderRequest{OrderID: orders[0].OrderID, Deposited: new(false)}, nil); err != nil {
		t.Fatal(err)
	}
	cfg, _ = settings()
	cfg.MaxMsgsPerSubject = 1
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	testenv.CheckFor(t, 10*time.Second, func() error {
		cfg, state := settings()
		if cfg.MaxMsgsPerSubject != -1 {
			return fmt.Errorf("max_msgs_per_subject %d, want -1 (put back)", cfg.MaxMsgsPerSubject)
		}
		lost := state.NumDeleted
		if state.FirstSeq > 1 {
			lost += int(state.FirstSeq - 1)
		}
		if lost == 0 {
			return fmt.Errorf("nothing dropped: %+v", state)
		}
		if ok, why := ready(); ok || !strings.Contains(why, fmt.Sprintf("lost %d commits", lost)) {
			return fmt.Errorf("event-stream ready %v (%q), want not ready naming %d lost commits", ok, why, lost)
		}
		return nil
	})
	// What comes next is kept: an order's second commit leaves its first.
	_, before := settings()
	if _, _, err := client.Do(ctx, app, api.OrderCancel, api.CancelOrderRequest{OrderID: orders[1].OrderID, Deposited: new(false)}, nil); err != nil {
		t.Fatal(err)
	}
	if _, after := settings(); after.NumDeleted != before.NumDeleted || after.FirstSeq != before.FirstSeq || after.Msgs <= before.Msgs {
		t.Fatalf("a commit after the settings were put back dropped another: %+v, before %+v", after, before)
	}

	// Interest retention: the server drops every commit the engine's
	// consumers have. Put back to limits, so that what comes next stays.
	cfg, _ = settings()
	cfg.Retention = jetstream.InterestPolicy
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	testenv.CheckFor(t, 10*time.Second, func() error {
		if cfg, _ := settings(); cfg.Retention != jetstream.LimitsPolicy {
			return fmt.Errorf("retention %s, want limits (put back)", cfg.Retention)
		}
		return nil
	})
	_, before = settings()
	submit(10)
	time.Sleep(100 * time.Millisecond) // the consumers' acks, which interest retention would act on
	if _, after := settings(); after.Msgs <= before.Msgs {
		t.Fatalf("a commit after retention was put back is gone: %+v, before %+v", after, before)
	}
}

// An identity that may manage streams could delete the event stream
// itself: the engine does not create an empty one in its place (a history
// without the money it held), and its event-stream part is not ready,
// saying the stream is gone.
func TestADeletedEventStreamMakesTheEngineNotReady(t *testing.T) {
	e, err := engine.Start(context.Background(), testConfig(t), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = e.Stop(context.Background()) }()
	ready := func() (bool, string) { return partReady(t, e, "event-stream") }
	testenv.CheckFor(t, 10*time.Second, func() error {
		if ok, why := ready(); !ok {
			return fmt.Errorf("event-stream not ready: %s", why)
		}
		return nil
	})
	_, js := engineJS(t, e)
	stream := e.Events.Config().Stream
	if err := js.DeleteStream(context.Background(), stream); err != nil {
		t.Fatal(err)
	}
	// Within the part's interval (30 s), whatever advisory comes.
	testenv.CheckFor(t, 45*time.Second, func() error {
		if ok, why := ready(); ok || !strings.Contains(why, "event stream is gone") {
			return fmt.Errorf("event-stream ready %v: %s", ok, why)
		}
		return nil
	})
	if _, err := js.Stream(context.Background(), stream); err == nil {
		t.Fatal("the engine created the event stream again")
	}
}

// Per-message TTLs, once allowed on the event stream, the server never
// turns off: an engine still starts on it, putting back what else was
// changed while it was down (the update it sends leaves the TTLs), and its
// event-stream part says not ready.
func TestAnEngineStartsOnAnEventStreamThatAllowsTTLs(t *testing.T) {
	cfg := testConfig(t)
	e, err := engine.Start(context.Background(), cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	stream, seed := e.Events.Config().Stream, e.SeedFile(auth.Engine)
	ctx := context.Background()
	if err := e.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	// The server alone, the engine down: TTLs allowed, and a limit per
	// subject.
	srv, err := engine.StartEmbedded(cfg, "", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	nc, err := srv.ConnectAs(seed)
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	sc := s.CachedInfo().Config
	sc.AllowMsgTTL, sc.MaxMsgsPerSubject = true, 5
	if _, err := js.UpdateStream(ctx, sc); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	srv.Shutdown()

	if e, err = engine.Start(ctx, cfg, zerolog.Nop()); err != nil {
		t.Fatalf("start on a stream that allows TTLs: %v", err)
	}
	defer func() { _ = e.Stop(context.Background()) }()
	testenv.CheckFor(t, 10*time.Second, func() error {
		st, _ := e.Parts.Status("event-stream")
		if st.OK() || !strings.Contains(st.Detail, "which the server does not undo") {
			return fmt.Errorf("event-stream ready %v: %s", st.OK(), st.Detail)
		}
		return nil
	})
	nc, err = nats.Connect(e.ClientURL(), testenv.NKey(t, seed))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	if s, err = js.Stream(ctx, stream); err != nil {
		t.Fatal(err)
	}
	if info := s.CachedInfo(); info.Config.MaxMsgsPerSubject != -1 {
		t.Fatalf("max_msgs_per_subject %d after the start, want -1", info.Config.MaxMsgsPerSubject)
	}
	// What is put back stays put: the part does not update the stream
	// again and again for the TTLs no update can undo (each update is an
	// advisory the part looks again on).
	updates, err := nc.SubscribeSync("$JS.EVENT.ADVISORY.STREAM.UPDATED." + stream)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if n, _, err := updates.Pending(); err != nil || n > 0 {
		t.Fatalf("%d stream updates in a second after the start (%v), want none", n, err)
	}
}
