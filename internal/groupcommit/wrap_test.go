package groupcommit_test

import (
	"context"
	"errors"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/embedded"
	"github.com/bankbook/bankbook/internal/groupcommit"
	"github.com/bankbook/bankbook/internal/testenv"
)

// Every write through Wrap, to a stream or a KV bucket, returns after a
// sync of the store's file system (syncfs on a real embedded server that
// does not sync per write); reads do not sync, and asynchronous publishes,
// which could not wait, are refused.
func TestWrapSyncsEveryWrite(t *testing.T) {
	srv := testenv.StartWith(t, "", embedded.Fast) // writes reach the OS, no sync per write
	_, raw := srv.Connect(t)
	syncs, err := groupcommit.Open(srv.Dir)
	testenv.RequireOnLinux(t, !errors.Is(err, groupcommit.ErrUnsupported), "syncfs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syncs.Close() })
	js := groupcommit.Wrap(raw, syncs)
	ctx := context.Background()

	// Open synced once: what was written before it is durable.
	want := groupcommit.Stats{Waits: 1, Syncs: 1}
	if got := syncs.Stats(); got != want {
		t.Fatalf("after Open: %+v, want %+v", got, want)
	}
	check := func(what string, writes uint64) {
		t.Helper()
		want.Writes += writes
		want.Waits += writes
		want.Syncs += writes // one writer at a time: a sync each
		if got := syncs.Stats(); got != want {
			t.Fatalf("after %s: %+v, want %+v", what, got, want)
		}
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}}); err != nil {
		t.Fatal(err)
	}
	ack, err := js.Publish(ctx, "s.1", []byte("one"))
	if err != nil {
		t.Fatal(err)
	}
	check("Publish", 1)
	// Its ack was recorded: the sync it waited for covers it by sequence.
	if err := syncs.WaitSeq(ctx, ack.Stream, ack.Sequence); err != nil {
		t.Fatal(err)
	}
	check("WaitSeq of the publish", 0)
	if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: "s.2", Data: []byte("two")}); err != nil {
		t.Fatal(err)
	}
	check("PublishMsg", 1)
	if _, err := js.PublishAsync("s.3", nil); !errors.Is(err, groupcommit.ErrAsync) {
		t.Fatalf("PublishAsync: %v, want ErrAsync", err)
	}
	check("a refused PublishAsync", 0)

	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "B"})
	if err != nil {
		t.Fatal(err)
	}
	rev, err := kv.Create(ctx, "k", []byte("1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Update(ctx, "k", []byte("2"), rev); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "k", []byte("3")); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.PutString(ctx, "j", "4"); err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(ctx, "j"); err != nil {
		t.Fatal(err)
	}
	if err := kv.Purge(ctx, "j"); err != nil {
		t.Fatal(err)
	}
	check("six KV writes", 6)
	if e, err := kv.Get(ctx, "k"); err != nil || string(e.Value()) != "3" {
		t.Fatalf("read back: %v, %v", e, err)
	}
	// A refused write counts, stores nothing and waits for nothing.
	if _, err := kv.Create(ctx, "k", []byte("5")); !errors.Is(err, jetstream.ErrKeyExists) {
		t.Fatalf("Create over a key: %v, want ErrKeyExists", err)
	}
	want.Writes++
	check("a refused Create and a read", 0)

	// A bucket opened again is wrapped too.
	again, err := js.KeyValue(ctx, "B")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := again.Put(ctx, "k", []byte("6")); err != nil {
		t.Fatal(err)
	}
	// The refused Create was answered after the last sync: the Put first
	// waits for a sync of its own (what it may have read), then its own.
	want.Waits, want.Syncs = want.Waits+1, want.Syncs+1
	check("a Put through a bucket looked up, after the refused Create", 1)

	// A stream handle's deletions are writes too.
	st, err := js.Stream(ctx, "S")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteMsg(ctx, 1); err != nil {
		t.Fatal(err)
	}
	check("a DeleteMsg", 1)

	// Settle: a wrapped bucket, stream or JetStream waits for a sync, in a
	// Deferred context too; anything else returns at once.
	for _, v := range []any{kv, st, js} {
		if err := groupcommit.Settle(groupcommit.Deferred(ctx), v); err != nil {
			t.Fatal(err)
		}
	}
	want.Waits, want.Syncs = want.Waits+3, want.Syncs+3
	check("three Settles", 0)
	if err := groupcommit.Settle(ctx, raw); err != nil {
		t.Fatal(err)
	}
	check("a Settle of an unwrapped JetStream", 0)
}
