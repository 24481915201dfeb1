package kvcas_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/internal/kvcas"
	"github.com/bankbook/bankbook/internal/testcluster"
	"github.com/bankbook/bankbook/internal/testenv"
)

// TestConflict: the errors a lost compare-and-set comes as.
func TestConflict(t *testing.T) {
	for _, err := range []error{
		jetstream.ErrKeyExists,
		jetstream.ErrKeyRevisionMismatch,
		fmt.Errorf("create: %w", &jetstream.APIError{Code: 400, ErrorCode: jetstream.JSErrCodeStreamWrongLastSequence}),
		fmt.Errorf("create: %w", &jetstream.APIError{Code: 400, ErrorCode: jetstream.JSErrCodeStreamWrongLastSequenceConstant}),
	} {
		if !kvcas.Conflict(err) {
			t.Errorf("Conflict(%v) = false", err)
		}
	}
	for _, err := range []error{nil, jetstream.ErrKeyNotFound, errors.New("timeout"),
		&jetstream.APIError{Code: 503, ErrorCode: jetstream.JSErrCodeJetStreamNotEnabled}} {
		if kvcas.Conflict(err) {
			t.Errorf("Conflict(%v) = true", err)
		}
	}
}

// TestConflictOnAReplicatedBucket: on an R3 bucket the server reports a
// lost compare-and-set as 10164, not 10071. A write expecting a stale
// revision, and creates racing over a deleted key (where nats.go returns
// that bare error when another create wins), all read as conflicts, and
// exactly one create wins each round.
func TestConflictOnAReplicatedBucket(t *testing.T) {
	c := testcluster.Start(t, 3, "")
	ctx := context.Background()
	_, js := testenv.Dial(t, c.URLs()[0])
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "names", History: 1, Replicas: 3})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "k", []byte("a")); err != nil {
		t.Fatal(err)
	}
	// The bare server error, as a publish at a stale revision gets it.
	msg := nats.NewMsg("$KV.names.k")
	msg.Data = []byte("b")
	_, err = js.PublishMsg(ctx, msg, jetstream.WithExpectLastSequencePerSubject(999))
	if !kvcas.Conflict(err) {
		t.Fatalf("Conflict(%v) = false", err)
	}

	writers := make([]jetstream.KeyValue, 12)
	for i := range writers {
		_, wjs := testenv.Dial(t, c.URLs()[i%3])
		if writers[i], err = wjs.KeyValue(ctx, "names"); err != nil {
			t.Fatal(err)
		}
	}
	bare := 0
	for round := range 100 {
		if err := kv.Delete(ctx, "k"); err != nil {
			t.Fatal(err)
		}
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			wins int
		)
		for _, wkv := range writers {
			wg.Go(func() {
				_, err := wkv.Create(ctx, "k", []byte("x"))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					wins++
				case !kvcas.Conflict(err):
					t.Errorf("round %d: a create that lost: %v, not a conflict", round, err)
				case !errors.Is(err, jetstream.ErrKeyExists):
					bare++
				}
			})
		}
		wg.Wait()
		if wins != 1 {
			t.Fatalf("round %d: %d creates won, want 1", round, wins)
		}
	}
	t.Logf("creates that lost with the bare 10164: %d", bare)
}
