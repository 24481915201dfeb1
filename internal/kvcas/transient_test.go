package kvcas_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/internal/kvcas"
	"github.com/bankbook/bankbook/internal/testcluster"
	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/internal/transient"
)

// lostAnswers is a real KV bucket whose next writes lose their answer: the
// write reaches the server (stored is true) or is lost on the way (false),
// and the caller sees a timeout either way, as when a connection drops or
// a stream leader changes at that moment.
type lostAnswers struct {
	jetstream.KeyValue
	lose   atomic.Int32
	stored bool
}

func (l *lostAnswers) write(ctx context.Context, do func(context.Context) (uint64, error)) (uint64, error) {
	if l.lose.Add(-1) < 0 {
		return do(ctx)
	}
	if l.stored {
		if _, err := do(ctx); err != nil {
			return 0, err
		}
	}
	return 0, context.DeadlineExceeded
}

func (l *lostAnswers) Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error) {
	return l.write(ctx, func(ctx context.Context) (uint64, error) { return l.KeyValue.Create(ctx, key, value, opts...) })
}

func (l *lostAnswers) Update(ctx context.Context, key string, value []byte, revision uint64) (uint64, error) {
	return l.write(ctx, func(ctx context.Context) (uint64, error) { return l.KeyValue.Update(ctx, key, value, revision) })
}

// TestUpdateAfterALostAnswer: a write whose answer is lost is found by
// reading the entry: if it was stored, Update returns its revision without
// deciding again (a counter is incremented once, not twice); if it was not,
// decide is asked again and the write made.
func TestUpdateAfterALostAnswer(t *testing.T) {
	for _, tc := range []struct {
		name      string
		stored    bool
		preset    bool // the key exists: an update, not a create
		decisions int
		want      string
	}{
		{"create stored", true, false, 1, "1"},
		{"create lost", false, false, 2, "1"},
		{"update stored", true, true, 1, "6"},
		{"update lost", false, true, 2, "6"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kv := openKV(t)
			if tc.preset {
				if _, err := kv.Put(t.Context(), "k", []byte("5")); err != nil {
					t.Fatal(err)
				}
			}
			lossy := &lostAnswers{KeyValue: kv, stored: tc.stored}
			lossy.lose.Store(1)
			decisions := 0
			rev, err := kvcas.Update(t.Context(), lossy, "k", nil, func(e kvcas.Entry) ([]byte, error) {
				decisions++
				return increment(e)
			})
			if err != nil {
				t.Fatalf("Update: %v", err)
			}
			if v, r := get(t, kv, "k"); v != tc.want || r != rev || decisions != tc.decisions {
				t.Fatalf("stored %q at %d (returned %d) after %d decisions; want %q after %d", v, r, rev, decisions, tc.want, tc.decisions)
			}
		})
	}
}

// TestUpdateKnownEntry: with Options.Known, decide is first shown the
// entry the caller holds; if that is stale the write conflicts and the
// entry is read.
func TestUpdateKnownEntry(t *testing.T) {
	kv := openKV(t)
	first, err := kv.Put(t.Context(), "k", []byte("1"))
	if err != nil {
		t.Fatal(err)
	}
	var seen []kvcas.Entry
	decide := func(e kvcas.Entry) ([]byte, error) {
		seen = append(seen, e)
		return []byte("x"), nil
	}
	rev, err := kvcas.Update(t.Context(), kv, "k", &kvcas.Options{Known: &kvcas.Entry{Revision: first}}, decide)
	if err != nil || len(seen) != 1 || seen[0].Revision != first || seen[0].Value != nil {
		t.Fatalf("Update = %d, %v; decide saw %+v; want one decision on the known entry", rev, err, seen)
	}
	seen = nil
	if _, err := kvcas.Update(t.Context(), kv, "k", &kvcas.Options{Known: &kvcas.Entry{Revision: first}}, decide); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 2 || seen[1].Revision != rev || string(seen[1].Value) != "x" {
		t.Fatalf("decide saw %+v; want the stale known entry, then revision %d read", seen, rev)
	}
}

// TestUpdateUnavailable: with the server gone, Update retries until its
// deadline and fails with an error matching transient.ErrUnavailable.
func TestUpdateUnavailable(t *testing.T) {
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	kv, err := js.CreateKeyValue(t.Context(), jetstream.KeyValueConfig{Bucket: "kvcas_test"})
	if err != nil {
		t.Fatal(err)
	}
	srv.Shutdown()
	for _, opts := range []*kvcas.Options{nil, {CreateFirst: true}} {
		ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
		opts := opts
		if opts == nil {
			opts = &kvcas.Options{}
		}
		opts.Retry = transient.Policy{AttemptTimeout: 100 * time.Millisecond}
		_, err := kvcas.Update(ctx, kv, "k", opts, increment)
		cancel()
		if !errors.Is(err, transient.ErrUnavailable) {
			t.Errorf("Update (create first %v) with the server gone: %v, want transient.ErrUnavailable", opts.CreateFirst, err)
		}
	}
}

// TestUpdateOutlastsALostQuorum: an update of a replicated bucket that
// lost its quorum keeps trying until a quorum is back, and its increment is
// counted once.
func TestUpdateOutlastsALostQuorum(t *testing.T) {
	c := testcluster.Start(t, 3, "")
	nc, err := nats.Connect(c.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.CreateKeyValue(t.Context(), jetstream.KeyValueConfig{Bucket: "kvcas_test", Replicas: 3})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(t.Context(), "n", []byte("41")); err != nil {
		t.Fatal(err)
	}
	leader := c.WaitStreamLeader(testcluster.GlobalAccount, "KV_kvcas_test", 5*time.Second)
	var down []string
	for _, name := range c.Names() {
		if name != leader {
			down = append(down, name)
			c.Shutdown(name)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := kvcas.Update(ctx, kv, "n", &kvcas.Options{Retry: transient.Policy{AttemptTimeout: 300 * time.Millisecond}}, increment)
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("Update without a quorum returned %v; want it to wait for one", err)
	case <-time.After(2 * time.Second):
	}
	c.Restart(down...)
	if err := <-done; err != nil {
		t.Fatalf("Update after the quorum came back: %v", err)
	}
	if v, _ := get(t, kv, "n"); v != "42" {
		t.Fatalf("counter %s, want 42: one increment, counted once", v)
	}
}
