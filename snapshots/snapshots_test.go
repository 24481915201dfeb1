package snapshots_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/internal/transient"
	"github.com/bankbook/bankbook/snapshots"
)

func openStore(t *testing.T) *snapshots.Store {
	t.Helper()
	_, js := testenv.Start(t, "").Connect(t)
	s, err := snapshots.Open(t.Context(), js, snapshots.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func get(t *testing.T, s *snapshots.Store, key string) ([]byte, bool) {
	t.Helper()
	data, ok, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%s): %v", key, err)
	}
	return data, ok
}

func TestPutGetReplaceDelete(t *testing.T) {
	s := openStore(t)
	if _, ok := get(t, s, "wallet/u1"); ok {
		t.Fatal("a snapshot before any Put")
	}
	// Larger than the server's 1 MiB max payload: stored in chunks.
	big := make([]byte, 3<<20)
	for i := range big {
		big[i] = byte(rand.IntN(256))
	}
	for _, data := range [][]byte{[]byte(`{"seq":1}`), big, []byte(`{"seq":3}`)} {
		if err := s.Put(t.Context(), "wallet/u1", data); err != nil {
			t.Fatal(err)
		}
		if got, ok := get(t, s, "wallet/u1"); !ok || !bytes.Equal(got, data) {
			t.Fatalf("Get after Put of %d bytes: %d bytes, %v", len(data), len(got), ok)
		}
	}
	if _, ok := get(t, s, "wallet/u2"); ok {
		t.Fatal("another key has a snapshot")
	}
	if err := s.Delete(t.Context(), "wallet/u1"); err != nil {
		t.Fatal(err)
	}
	if _, ok := get(t, s, "wallet/u1"); ok {
		t.Fatal("a snapshot after Delete")
	}
	if err := s.Delete(t.Context(), "wallet/u1"); err != nil {
		t.Fatalf("Delete of nothing: %v", err)
	}
}

// TestReadersNeverSeeATornSnapshot: while two writers replace a key (in
// chunks: the values are larger than one chunk), every Get returns one of
// the values written whole, or ErrChanged.
func TestReadersNeverSeeATornSnapshot(t *testing.T) {
	_, js := testenv.Start(t, "").Connect(t)
	s, err := snapshots.Open(t.Context(), js, snapshots.Config{ChunkSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	values := make([][]byte, 4)
	for i := range values {
		values[i] = bytes.Repeat([]byte{byte('a' + i)}, 150_000+i*50_000)
	}
	if err := s.Put(t.Context(), "k", values[0]); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil && i < 10; i++ {
				_ = s.Put(ctx, "k", values[(w+i)%len(values)])
			}
		})
	}
	for range 30 {
		data, ok, err := s.Get(t.Context(), "k")
		if errors.Is(err, snapshots.ErrChanged) {
			continue // at once, not after a timeout: the caller falls back
		}
		if err != nil || !ok {
			t.Fatalf("Get: %v, %v", ok, err)
		}
		whole := false
		for _, v := range values {
			whole = whole || bytes.Equal(data, v)
		}
		if !whole {
			t.Fatalf("Get returned %d bytes that no Put wrote", len(data))
		}
	}
	cancel()
	wg.Wait()
}

// TestUnavailableWhenNATSIsGone: with the server shut down, Get, Put and
// Delete try until their deadline and fail with an error matching
// transient.ErrUnavailable.
func TestUnavailableWhenNATSIsGone(t *testing.T) {
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	s, err := snapshots.Open(t.Context(), js, snapshots.Config{AttemptTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(t.Context(), "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	srv.Shutdown()
	calls := map[string]func(ctx context.Context) error{
		"Get":    func(ctx context.Context) error { _, _, err := s.Get(ctx, "k"); return err },
		"Put":    func(ctx context.Context) error { return s.Put(ctx, "k", []byte("w")) },
		"Delete": func(ctx context.Context) error { return s.Delete(ctx, "k") },
	}
	for name, call := range calls {
		ctx, cancel := context.WithTimeout(t.Context(), 400*time.Millisecond)
		err := call(ctx)
		cancel()
		if !errors.Is(err, transient.ErrUnavailable) {
			t.Errorf("%s with NATS gone: %v, want transient.ErrUnavailable", name, err)
		}
	}
}
