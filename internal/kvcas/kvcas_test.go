package kvcas_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/internal/kvcas"
	"github.com/bankbook/bankbook/internal/testenv"
)

// openKV starts an embedded JetStream server and creates a bucket on it.
func openKV(t *testing.T) jetstream.KeyValue {
	t.Helper()
	_, js := testenv.Start(t, "").Connect(t)
	kv, err := js.CreateKeyValue(t.Context(), jetstream.KeyValueConfig{Bucket: "kvcas_test", History: 1})
	if err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	return kv
}

// increment is a decide function that adds one to a decimal counter.
func increment(e kvcas.Entry) ([]byte, error) {
	n := 0
	if !e.Absent() {
		var err error
		if n, err = strconv.Atoi(string(e.Value)); err != nil {
			return nil, err
		}
	}
	return []byte(strconv.Itoa(n + 1)), nil
}

func get(t *testing.T, kv jetstream.KeyValue, key string) (string, uint64) {
	t.Helper()
	e, err := kv.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	return string(e.Value()), e.Revision()
}

func TestUpdateCreatesAnAbsentKey(t *testing.T) {
	kv := openKV(t)
	var seen []kvcas.Entry
	rev, err := kvcas.Update(t.Context(), kv, "k", nil, func(e kvcas.Entry) ([]byte, error) {
		seen = append(seen, e)
		return increment(e)
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if len(seen) != 1 || !seen[0].Absent() {
		t.Fatalf("decide saw %+v, want one absent entry", seen)
	}
	if v, r := get(t, kv, "k"); v != "1" || r != rev {
		t.Fatalf("stored %q at revision %d, want \"1\" at %d", v, r, rev)
	}
}

func TestUpdateWritesAtTheRevisionRead(t *testing.T) {
	kv := openKV(t)
	first, err := kv.Put(t.Context(), "k", []byte("41"))
	if err != nil {
		t.Fatal(err)
	}
	var seen kvcas.Entry
	rev, err := kvcas.Update(t.Context(), kv, "k", nil, func(e kvcas.Entry) ([]byte, error) {
		seen = e
		return increment(e)
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if string(seen.Value) != "41" || seen.Revision != first {
		t.Fatalf("decide saw %q at %d, want \"41\" at %d", seen.Value, seen.Revision, first)
	}
	if v, r := get(t, kv, "k"); v != "42" || r != rev || rev <= first {
		t.Fatalf("stored %q at revision %d (returned %d), want \"42\" after %d", v, r, rev, first)
	}
}

func TestUpdateRecreatesADeletedKey(t *testing.T) {
	kv := openKV(t)
	if _, err := kv.Put(t.Context(), "k", []byte("7")); err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(t.Context(), "k"); err != nil {
		t.Fatal(err)
	}
	if _, err := kvcas.Update(t.Context(), kv, "k", nil, increment); err != nil {
		t.Fatalf("Update: %v", err)
	}
	if v, _ := get(t, kv, "k"); v != "1" {
		t.Fatalf("stored %q, want \"1\" (a deleted key is absent)", v)
	}
}

func TestUpdateUnchangedWritesNothing(t *testing.T) {
	kv := openKV(t)
	rev, err := kv.Put(t.Context(), "k", []byte("5"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := kvcas.Update(t.Context(), kv, "k", nil, func(kvcas.Entry) ([]byte, error) {
		return nil, kvcas.ErrUnchanged
	})
	if err != nil || got != rev {
		t.Fatalf("Update = %d, %v; want the revision read %d and no error", got, err, rev)
	}
	if v, r := get(t, kv, "k"); v != "5" || r != rev {
		t.Fatalf("entry is %q at %d, want it untouched (\"5\" at %d)", v, r, rev)
	}

	got, err = kvcas.Update(t.Context(), kv, "absent", nil, func(kvcas.Entry) ([]byte, error) {
		return nil, kvcas.ErrUnchanged
	})
	if err != nil || got != 0 {
		t.Fatalf("Update on an absent key = %d, %v; want 0, nil", got, err)
	}
	if _, err := kv.Get(t.Context(), "absent"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("absent key after ErrUnchanged: %v, want ErrKeyNotFound", err)
	}
}

func TestUpdateDecideErrorIsReturnedUnchanged(t *testing.T) {
	kv := openKV(t)
	want := errors.New("refused")
	_, err := kvcas.Update(t.Context(), kv, "k", nil, func(kvcas.Entry) ([]byte, error) { return nil, want })
	if err != want {
		t.Fatalf("Update err = %v, want decide's error itself", err)
	}
	if _, err := kv.Get(t.Context(), "k"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("key after a refused decide: %v, want ErrKeyNotFound", err)
	}
}

func TestUpdateRetriesOnConflict(t *testing.T) {
	kv := openKV(t)
	calls := 0
	_, err := kvcas.Update(t.Context(), kv, "k", nil, func(e kvcas.Entry) ([]byte, error) {
		calls++
		if calls == 1 {
			// Another writer gets in between this read and the write.
			if _, err := kv.Put(t.Context(), "k", []byte("10")); err != nil {
				t.Fatal(err)
			}
		}
		return increment(e)
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if v, _ := get(t, kv, "k"); v != "11" || calls != 2 {
		t.Fatalf("stored %q after %d decisions, want \"11\" after 2 (decided again on top of the other write)", v, calls)
	}
}

func TestUpdateGivesUpAfterMaxAttempts(t *testing.T) {
	kv := openKV(t)
	calls := 0
	_, err := kvcas.Update(t.Context(), kv, "k", &kvcas.Options{MaxAttempts: 3}, func(e kvcas.Entry) ([]byte, error) {
		calls++
		if _, err := kv.Put(t.Context(), "k", []byte("x")); err != nil { // always first
			t.Fatal(err)
		}
		return []byte("mine"), nil
	})
	if !errors.Is(err, kvcas.ErrTooManyConflicts) {
		t.Fatalf("Update err = %v, want ErrTooManyConflicts", err)
	}
	if calls != 3 {
		t.Fatalf("decide called %d times, want 3", calls)
	}
	if v, _ := get(t, kv, "k"); v != "x" {
		t.Fatalf("stored %q, want the other writer's \"x\"", v)
	}
}

func TestUpdateCreateFirst(t *testing.T) {
	t.Run("absent key: no read", func(t *testing.T) {
		kv := openKV(t)
		var seen []kvcas.Entry
		_, err := kvcas.Update(t.Context(), kv, "k", &kvcas.Options{CreateFirst: true}, func(e kvcas.Entry) ([]byte, error) {
			seen = append(seen, e)
			return increment(e)
		})
		if err != nil || len(seen) != 1 || !seen[0].Absent() {
			t.Fatalf("Update err %v, decide saw %+v; want one absent entry", err, seen)
		}
	})
	t.Run("existing key: guessed absent, then read", func(t *testing.T) {
		kv := openKV(t)
		rev, err := kv.Put(t.Context(), "k", []byte("3"))
		if err != nil {
			t.Fatal(err)
		}
		var seen []kvcas.Entry
		_, err = kvcas.Update(t.Context(), kv, "k", &kvcas.Options{CreateFirst: true}, func(e kvcas.Entry) ([]byte, error) {
			seen = append(seen, e)
			return increment(e)
		})
		if err != nil {
			t.Fatalf("Update: %v", err)
		}
		if len(seen) != 2 || !seen[0].Absent() || seen[1].Revision != rev {
			t.Fatalf("decide saw %+v, want absent then revision %d", seen, rev)
		}
		if v, _ := get(t, kv, "k"); v != "4" {
			t.Fatalf("stored %q, want \"4\"", v)
		}
	})
}

func TestUpdateStopsWhenContextEnds(t *testing.T) {
	kv := openKV(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	called := false
	_, err := kvcas.Update(ctx, kv, "k", nil, func(e kvcas.Entry) ([]byte, error) {
		called = true
		return increment(e)
	})
	if !errors.Is(err, context.Canceled) || called {
		t.Fatalf("Update err %v, decide called %v; want context.Canceled and no decision", err, called)
	}
}

// TestConcurrentUpdatesLoseNothing has many writers increment one counter:
// every increment that succeeded must be counted.
func TestConcurrentUpdatesLoseNothing(t *testing.T) {
	kv := openKV(t)
	const writers, each = 8, 10
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		ok, gave int
	)
	for range writers {
		wg.Go(func() {
			for range each {
				_, err := kvcas.Update(t.Context(), kv, "n", &kvcas.Options{MaxAttempts: 1000}, increment)
				mu.Lock()
				switch {
				case err == nil:
					ok++
				case errors.Is(err, kvcas.ErrTooManyConflicts):
					gave++
				default:
					t.Errorf("Update: %v", err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if v, _ := get(t, kv, "n"); v != strconv.Itoa(ok) || ok+gave != writers*each {
		t.Fatalf("counter %s, %d successful updates and %d given up; want the counter to equal the successes", v, ok, gave)
	}
}

// TestUpdateRemove: ErrRemove purges the entry at the revision read; a
// write that gets in between is decided on again, not purged unseen; an
// absent entry needs nothing.
func TestUpdateRemove(t *testing.T) {
	kv := openKV(t)
	if _, err := kv.Put(t.Context(), "k", []byte("1")); err != nil {
		t.Fatal(err)
	}
	var seen []string
	rev, err := kvcas.Update(t.Context(), kv, "k", nil, func(e kvcas.Entry) ([]byte, error) {
		seen = append(seen, string(e.Value))
		if len(seen) == 1 {
			// Another writer gets in between this read and the purge.
			if _, err := kv.Put(t.Context(), "k", []byte("2")); err != nil {
				t.Fatal(err)
			}
		}
		return nil, kvcas.ErrRemove
	})
	if err != nil || rev != 0 {
		t.Fatalf("Update: %d, %v", rev, err)
	}
	if len(seen) != 2 || seen[1] != "2" {
		t.Fatalf("decide saw %q, want the other writer's value decided on again", seen)
	}
	if _, err := kv.Get(t.Context(), "k"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("after the remove: %v, want not found", err)
	}
	calls := 0
	if _, err := kvcas.Update(t.Context(), kv, "k", nil, func(kvcas.Entry) ([]byte, error) { calls++; return nil, kvcas.ErrRemove }); err != nil || calls != 1 {
		t.Fatalf("removing an absent entry: %v after %d decisions", err, calls)
	}
}
