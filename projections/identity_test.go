package projections_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/projections"
)

// streamInfo describes the event stream as CheckStream needs it.
func streamInfo(t testing.TB, js jetstream.JetStream, es *eventstore.Store) projections.StreamInfo {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, es.Config().Stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return projections.StreamInfo{Name: info.Config.Name, Created: info.Created,
		FirstSeq: eventstore.Seq(info.State.FirstSeq), LastSeq: eventstore.Seq(info.State.LastSeq), Lost: uint64(info.State.NumDeleted)}
}

// build applies the stream's n new orders to st and waits until they are in.
func build(t *testing.T, f *fixture, st *projections.Store, n int) {
	t.Helper()
	for i := range n {
		f.submit(t, fmt.Sprintf("o-%d", i), i)
	}
	r := projections.NewRunner(f.es, st, testLogger(t))
	stop := startRunner(t, r)
	waitFor(t, r, f.lastSeq(t))
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// recreate deletes the event stream and creates it again with the same
// name and settings, with cfg changed by change.
func recreate(t *testing.T, f *fixture, change func(*jetstream.StreamConfig)) {
	t.Helper()
	ctx := context.Background()
	cfg := f.es.Config().StreamConfig()
	testenv.KeepStreamsDir(t, f.js) // the event stream is the account's only one
	if err := f.js.DeleteStream(ctx, cfg.Name); err != nil {
		t.Fatalf("delete the event stream: %v", err)
	}
	change(&cfg)
	if _, err := f.js.CreateStream(ctx, cfg); err != nil {
		t.Fatalf("create the event stream again: %v", err)
	}
}

func wantStreamError(t *testing.T, err, kind error) {
	t.Helper()
	var se *projections.StreamError
	if !errors.Is(err, kind) || !errors.As(err, &se) {
		t.Fatalf("check: %v, want %v", err, kind)
	}
	t.Logf("refused: %v", err)
}

// TestCheckStreamAcceptsTheSameStream: the first check records the stream;
// later checks of the same stream pass, also as it grows, after the engine
// brought its settings up to date again, and after the server restarted.
func TestCheckStreamAcceptsTheSameStream(t *testing.T) {
	dir := t.TempDir()
	srv := testenv.Start(t, dir)
	_, js := srv.Connect(t)
	es, err := eventstore.Open(context.Background(), js, eventstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{js: js, es: es, codec: domain.Events()}
	st := openStore(t, tempPath(t, "readmodels.db"))
	if err := st.CheckStream(streamInfo(t, js, es)); err != nil {
		t.Fatalf("check of a new stream and a new file: %v", err)
	}
	build(t, f, st, 3)
	if err := st.CheckStream(streamInfo(t, js, es)); err != nil {
		t.Fatalf("check after applying: %v", err)
	}

	srv.Shutdown()
	srv = testenv.Start(t, dir)
	_, js = srv.Connect(t)
	if es, err = eventstore.Open(context.Background(), js, eventstore.Config{}); err != nil {
		t.Fatal(err)
	}
	if err := st.CheckStream(streamInfo(t, js, es)); err != nil {
		t.Fatalf("check after a restart: %v", err)
	}
}

// TestCheckStreamRefusesAReplacedStream: given read models built from a
// stream and checked, when the stream is deleted and created again under
// the same name, then the check refuses it, whether the new stream is
// empty, already holds more commits than the read models applied, or
// continues the old sequence numbers.
func TestCheckStreamRefusesAReplacedStream(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(*jetstream.StreamConfig)
		refill int
	}{
		{"empty", func(*jetstream.StreamConfig) {}, 0},
		{"refilled beyond the checkpoint", func(*jetstream.StreamConfig) {}, 5},
		{"continuing the old sequence", func(c *jetstream.StreamConfig) { c.FirstSeq = 4 }, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			st := openStore(t, tempPath(t, "readmodels.db"))
			build(t, f, st, 3)
			if err := st.CheckStream(streamInfo(t, f.js, f.es)); err != nil {
				t.Fatal(err)
			}
			recreate(t, f, c.change)
			for i := range c.refill {
				f.submit(t, fmt.Sprintf("new-%d", i), i)
			}
			wantStreamError(t, st.CheckStream(streamInfo(t, f.js, f.es)), projections.ErrStreamReplaced)
			// Refused, it records nothing: the next start refuses too.
			wantStreamError(t, st.CheckStream(streamInfo(t, f.js, f.es)), projections.ErrStreamReplaced)
		})
	}
}

// TestCheckStreamRefusesAnEmptiedStream: read models that never recorded
// their stream (a file from before the check) are still refused when the
// stream ends before their checkpoint, or when the stream was purged.
func TestCheckStreamRefusesAnEmptiedStream(t *testing.T) {
	t.Run("recreated behind the checkpoint, nothing recorded", func(t *testing.T) {
		f := newFixture(t)
		st := openStore(t, tempPath(t, "readmodels.db"))
		build(t, f, st, 3)
		recreate(t, f, func(*jetstream.StreamConfig) {})
		f.submit(t, "new-0", 0)
		wantStreamError(t, st.CheckStream(streamInfo(t, f.js, f.es)), projections.ErrCheckpointAhead)
	})
	t.Run("its end lost with its index", func(t *testing.T) {
		// The server rebuilt the stream's state from truncated blocks: the
		// same stream, ending before the read models. Moving them aside
		// would lose the last record of those commits.
		f := newFixture(t)
		st := openStore(t, tempPath(t, "readmodels.db"))
		build(t, f, st, 3)
		info := streamInfo(t, f.js, f.es)
		if err := st.CheckStream(info); err != nil {
			t.Fatal(err)
		}
		info.LastSeq--
		err := st.CheckStream(info)
		wantStreamError(t, err, projections.ErrCheckpointAhead)
		if msg := err.Error(); !strings.Contains(msg, "were lost") || !strings.Contains(msg, "do not move the read-model file aside") {
			t.Errorf("the refusal %q, want it to say commits were lost and to keep the read models", msg)
		}
	})
	t.Run("purged", func(t *testing.T) {
		// The engine's stream denies purges (and that cannot be turned
		// off); a stream made by hand or by an older version may not.
		f, st, s := handMadeStream(t, func(cfg *jetstream.StreamConfig) { cfg.DenyPurge = false })
		if err := s.Purge(context.Background()); err != nil {
			t.Fatalf("purge: %v", err)
		}
		wantStreamError(t, st.CheckStream(streamInfo(t, f.js, f.es)), projections.ErrStreamTruncated)
		f.submit(t, "after-purge", 9) // and it stays refused as the stream grows again
		wantStreamError(t, st.CheckStream(streamInfo(t, f.js, f.es)), projections.ErrStreamTruncated)
	})
	t.Run("its end lost", func(t *testing.T) {
		// The engine's stream denies deletes: a message gone from inside
		// its range was dropped by the server (a damaged block, a file
		// truncated), as a delete on a stream that allows them leaves it.
		f, st, s := handMadeStream(t, func(cfg *jetstream.StreamConfig) { cfg.DenyDelete = false })
		if err := s.DeleteMsg(context.Background(), uint64(f.lastSeq(t))); err != nil {
			t.Fatalf("delete: %v", err)
		}
		info := streamInfo(t, f.js, f.es)
		if info.LastSeq != f.lastSeq(t) {
			t.Fatalf("the stream's last sequence moved to %d", info.LastSeq)
		}
		wantStreamError(t, st.CheckStream(info), projections.ErrStreamLostCommits)
	})
}

// handMadeStream is an event stream made by hand with the engine's
// settings changed by change, with read models built from its first three
// commits and checked against it.
func handMadeStream(t *testing.T, change func(*jetstream.StreamConfig)) (*fixture, *projections.Store, jetstream.Stream) {
	t.Helper()
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	ctx := context.Background()
	cfg := eventstore.Config{}.StreamConfig()
	change(&cfg)
	s, err := js.CreateStream(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	es, err := eventstore.Bind(ctx, js, eventstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{js: js, es: es, codec: domain.Events()}
	st := openStore(t, tempPath(t, "readmodels.db"))
	build(t, f, st, 3)
	if err := st.CheckStream(streamInfo(t, js, es)); err != nil {
		t.Fatal(err)
	}
	return f, st, s
}

// TestCheckStreamReadOnlyOnlyCompares: a read-only Store checks against the
// recorded stream and records nothing itself.
func TestCheckStreamReadOnlyOnlyCompares(t *testing.T) {
	f := newFixture(t)
	path := tempPath(t, "readmodels.db")
	st, err := projections.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	build(t, f, st, 2)
	if err := st.CheckStream(streamInfo(t, f.js, f.es)); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	ro, err := projections.OpenReadOnly(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ro.Close() })
	if err := ro.CheckStream(streamInfo(t, f.js, f.es)); err != nil {
		t.Fatalf("read-only check of the same stream: %v", err)
	}
	recreate(t, f, func(*jetstream.StreamConfig) {})
	wantStreamError(t, ro.CheckStream(streamInfo(t, f.js, f.es)), projections.ErrStreamReplaced)
}
