package commands_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/commands"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/eventstore/inmem"
	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/snapshots"
)

// counting is an event store that counts the commits its Loads return.
type counting struct {
	commands.EventStore
	read atomic.Int64
}

func (s *counting) Load(ctx context.Context, ref eventstore.Ref, after eventstore.Seq) ([]eventstore.Commit, error) {
	commits, err := s.EventStore.Load(ctx, ref, after)
	s.read.Add(int64(len(commits)))
	return commits, err
}

// openSnapshots opens a snapshot store on its own embedded JetStream.
func openSnapshots(t testing.TB) *snapshots.Store {
	t.Helper()
	_, js := testenv.Start(t, "").Connect(t)
	s, err := snapshots.Open(context.Background(), js, snapshots.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// wallets is a repository of wallets as one engine instance has it.
func wallets(t testing.TB, es commands.EventStore, cfg commands.Config) *commands.Repository[domain.Wallet] {
	t.Helper()
	cfg.CollectAccount = collect
	core, err := commands.NewCore(es, domain.Events(), cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	return commands.NewRepository(core, domain.WalletAggregate)
}

// walletHistory gives wallet u1 n commits: credits, and every seventh a
// withdrawal.
func walletHistory(t testing.TB, r *commands.Repository[domain.Wallet], n int) {
	t.Helper()
	for i := range n {
		_, err := r.Execute(context.Background(), commands.Meta{}, "u1", func(w domain.Wallet) ([]domain.Event, error) {
			if i%7 == 6 {
				return domain.DecideWithdraw(w, domain.Withdraw{UserID: "u1", Amount: 500, PayoutID: domain.PayoutID(fmt.Sprintf("po-%d", i)), To: payee, Now: t0})
			}
			return domain.DecideCredit(w, domain.CreditWallet{UserID: "u1", Amount: 1000, Kind: domain.CreditOrphanRefund, Ref: fmt.Sprintf("dep-%d", i), FromAccount: domain.AccountSuspense, Now: t0})
		}, nil)
		if err != nil {
			t.Fatalf("commit %d: %v", i, err)
		}
	}
}

var (
	t0    = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	payee = domain.BankAccount{Bank: "KB", Number: "110-123-456789", Holder: "김민수"}
)

// TestColdLoadStartsAtTheSnapshot: a repository that has not seen a wallet
// with 230 commits reads only the commits after its latest snapshot (taken
// every 50), and its state equals the state read from every commit; it then
// appends on that state as usual.
func TestColdLoadStartsAtTheSnapshot(t *testing.T) {
	onEachStore(t, func(t *testing.T, es commands.EventStore) {
		snaps := openSnapshots(t)
		cfg := commands.Config{Snapshots: snaps, SnapshotEvery: 50}
		walletHistory(t, wallets(t, es, cfg), 230)

		full := &counting{EventStore: es}
		want, wantSeq, err := wallets(t, full, commands.Config{}).Get(context.Background(), "u1")
		if err != nil || full.read.Load() != 230 {
			t.Fatalf("load without snapshots: %v, %d commits read", err, full.read.Load())
		}
		cold := &counting{EventStore: es}
		r := wallets(t, cold, cfg)
		got, seq, err := r.Get(context.Background(), "u1")
		if err != nil {
			t.Fatal(err)
		}
		// The last snapshot is at commit 200: its own commit (to check it
		// against the stream) and the 30 after it.
		if n := cold.read.Load(); n != 31 {
			t.Errorf("cold load with snapshots read %d commits, want 31", n)
		}
		if seq != wantSeq || !reflect.DeepEqual(got, want) {
			t.Fatalf("state from the snapshot %+v at %d, from every commit %+v at %d", got, seq, want, wantSeq)
		}
		// It decides on the restored state: a payout already debited is
		// not debited again, a new one is.
		out, err := r.Execute(context.Background(), commands.Meta{}, "u1", func(w domain.Wallet) ([]domain.Event, error) {
			return domain.DecideWithdraw(w, domain.Withdraw{UserID: "u1", Amount: 500, PayoutID: "po-6", To: payee, Now: t0})
		}, nil)
		if err != nil || len(out.Events) != 0 {
			t.Fatalf("a payout debited before the snapshot, again: %+v, %v", out, err)
		}
		if _, err := r.Execute(context.Background(), commands.Meta{}, "u1", func(w domain.Wallet) ([]domain.Event, error) {
			return domain.DecideWithdraw(w, domain.Withdraw{UserID: "u1", Amount: 500, PayoutID: "po-new", To: payee, Now: t0})
		}, nil); err != nil {
			t.Fatalf("a new payout: %v", err)
		}
		after, _, err := wallets(t, es, commands.Config{}).Get(context.Background(), "u1")
		if err != nil || after.Balance != want.Balance-500 || after.Version != want.Version+1 {
			t.Fatalf("after a withdrawal on the restored state: %+v, %v; was %+v", after, err, want)
		}
	})
}

// TestUnusableSnapshotsAreIgnored: a snapshot that is ahead of the stream,
// from another aggregate's history, of another state type or not JSON at
// all is ignored, and the load reads every commit.
func TestUnusableSnapshotsAreIgnored(t *testing.T) {
	es := storeOpeners[1].open(t) // jetstream
	snaps := openSnapshots(t)
	cfg := commands.Config{Snapshots: snaps, SnapshotEvery: 10}
	walletHistory(t, wallets(t, es, cfg), 25)
	want, _, err := wallets(t, es, commands.Config{}).Get(context.Background(), "u1")
	if err != nil {
		t.Fatal(err)
	}
	raw, ok, err := snaps.Get(context.Background(), "wallet/u1")
	if err != nil || !ok {
		t.Fatalf("no snapshot of wallet u1 stored: %v %v", ok, err)
	}
	var good map[string]any
	if err := json.Unmarshal(raw, &good); err != nil {
		t.Fatal(err)
	}
	edit := func(change func(map[string]any)) []byte {
		m := map[string]any{}
		for k, v := range good {
			m[k] = v
		}
		change(m)
		b, _ := json.Marshal(m)
		return b
	}
	for name, bad := range map[string][]byte{
		"ahead of the stream":     edit(func(m map[string]any) { m["seq"] = 1_000_000 }),
		"another commit":          edit(func(m map[string]any) { m["commit_id"] = "not-this-one" }),
		"another version":         edit(func(m map[string]any) { m["version"] = 3 }),
		"another state type":      edit(func(m map[string]any) { m["shape"] = "0123456789abcdef" }),
		"another format":          edit(func(m map[string]any) { m["format"] = 99 }),
		"a state that is not one": edit(func(m map[string]any) { m["state"] = "a string" }),
		"not JSON":                []byte("\x00garbage"),
	} {
		t.Run(name, func(t *testing.T) {
			if err := snaps.Put(context.Background(), "wallet/u1", bad); err != nil {
				t.Fatal(err)
			}
			cold := &counting{EventStore: es}
			got, _, err := wallets(t, cold, cfg).Get(context.Background(), "u1")
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("load: %+v, %v; want %+v", got, err, want)
			}
			if n := cold.read.Load(); n < 25 {
				t.Fatalf("read %d commits, want every one (25)", n)
			}
		})
	}
}

// TestResumedCommandFindsItsAttemptBeforeTheSnapshot: a resumed command
// reads every commit, so it finds the commit its first attempt appended
// even when a snapshot was taken after it, and appends nothing.
func TestResumedCommandFindsItsAttemptBeforeTheSnapshot(t *testing.T) {
	es := inmem.New(inmem.Config{})
	snaps := openSnapshots(t)
	cfg := commands.Config{Snapshots: snaps, SnapshotEvery: 10}
	r := instance(t, es, cfg)
	meta := commands.Meta{Command: "inc", IdempotencyKey: "k"}
	first, err := increment(context.Background(), r, meta)
	if err != nil {
		t.Fatal(err)
	}
	for range 30 {
		if _, err := increment(context.Background(), r, commands.Meta{}); err != nil {
			t.Fatal(err)
		}
	}
	resumed := meta
	resumed.Resumed = true
	again, err := increment(context.Background(), instance(t, es, cfg), resumed)
	if err != nil || again.Seq != first.Seq || len(again.Events) != 1 {
		t.Fatalf("resumed repeat: %+v %v, want the first attempt's outcome at seq %d", again, err, first.Seq)
	}
	if got, _, _ := instance(t, es, commands.Config{}).Get(context.Background(), "c"); got.N != 31 {
		t.Fatalf("counter %d after the repeat, want 31", got.N)
	}
}

// TestCommandsOnOneAggregateTakeTurns: 200 concurrent commands on one
// aggregate of one instance all succeed, even with a single attempt each:
// they wait for each other instead of conflicting.
func TestCommandsOnOneAggregateTakeTurns(t *testing.T) {
	onEachStore(t, func(t *testing.T, es commands.EventStore) {
		r := instance(t, es, commands.Config{ConflictRetries: 1})
		var wg sync.WaitGroup
		var failed atomic.Int32
		for range 200 {
			wg.Go(func() {
				if _, err := increment(context.Background(), r, commands.Meta{}); err != nil {
					failed.Add(1)
					t.Errorf("increment: %v", err)
				}
			})
		}
		wg.Wait()
		if got, _, err := instance(t, es, commands.Config{}).Get(context.Background(), "c"); err != nil || got.N != 200 {
			t.Fatalf("counter %d (%v) after 200 increments, %d failed", got.N, err, failed.Load())
		}
	})
}

// TestWaitingForATurnEndsWithTheContext: a command waiting for another on
// the same aggregate gives up when its context ends; one on another
// aggregate does not wait.
func TestWaitingForATurnEndsWithTheContext(t *testing.T) {
	r := instance(t, inmem.New(inmem.Config{}), commands.Config{})
	entered, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := r.Execute(context.Background(), commands.Meta{}, "c", func(counter) ([]domain.Event, error) {
			close(entered)
			<-release
			return []domain.Event{incremented{By: 1}}, nil
		}, nil)
		done <- err
	}()
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := increment(ctx, r, commands.Meta{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting past the deadline: %v", err)
	}
	if _, err := r.Execute(context.Background(), commands.Meta{}, "other", func(counter) ([]domain.Event, error) {
		return []domain.Event{incremented{By: 1}}, nil
	}, nil); err != nil {
		t.Fatalf("another aggregate: %v", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// BenchmarkColdLoad loads, on a repository that has not seen it, an
// aggregate with 10,000 commits on JetStream: from its snapshot (every 100
// commits) and from every commit.
func BenchmarkColdLoad(b *testing.B) {
	srv := testenv.Start(b, "")
	_, js := srv.Connect(b)
	es, err := eventstore.Open(context.Background(), js, eventstore.Config{})
	if err != nil {
		b.Fatal(err)
	}
	snaps, err := snapshots.Open(context.Background(), js, snapshots.Config{})
	if err != nil {
		b.Fatal(err)
	}
	cfg := commands.Config{Snapshots: snaps, SnapshotEvery: 100}
	w := instance(b, es, cfg)
	for i := range 10_000 {
		if _, err := increment(context.Background(), w, commands.Meta{}); err != nil {
			b.Fatalf("commit %d: %v", i, err)
		}
	}
	for name, cfg := range map[string]commands.Config{"snapshot": cfg, "every-commit": {}} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				got, _, err := instance(b, es, cfg).Get(context.Background(), "c")
				if err != nil || got.N != 10_000 {
					b.Fatal(got, err)
				}
			}
		})
	}
}
