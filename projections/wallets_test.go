package projections_test

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/projections"
)

// commitLog builds commits in memory, as the stream would hold them: one
// commit per call, sequences from 1 without gaps, each aggregate's events
// numbered from 1. Projections read only the commit, so these are what the
// runner would hand to Store.Apply.
type commitLog struct {
	codec    *domain.Codec
	seq      eventstore.Seq
	versions map[eventstore.Ref]int
}

func newCommitLog() *commitLog {
	return &commitLog{codec: domain.Events(), versions: map[eventstore.Ref]int{}}
}

func (l *commitLog) commit(t testing.TB, ref eventstore.Ref, at time.Time, events ...domain.Event) eventstore.Commit {
	t.Helper()
	l.seq++
	c := eventstore.Commit{Format: 1, CommitID: fmt.Sprintf("c%d", l.seq), AggregateType: ref.Type, AggregateID: ref.ID, Seq: l.seq}
	for _, ev := range events {
		typ, v, data, err := l.codec.Encode(ev)
		if err != nil {
			t.Fatalf("encode %T: %v", ev, err)
		}
		l.versions[ref]++
		c.Events = append(c.Events, eventstore.Envelope{
			EventID: fmt.Sprintf("e%d-%d", l.seq, l.versions[ref]), AggregateType: ref.Type, AggregateID: ref.ID,
			Version: l.versions[ref], EventType: typ, SchemaVersion: v, OccurredAt: at, RecordedAt: at, Data: data,
		})
	}
	return c
}

func walletRef(user string) eventstore.Ref {
	return eventstore.Ref{Type: domain.AggregateWallet, ID: user}
}

// movements returns n wallet movements of user, as events and as the
// entries the wallet view shows: credits of 1,000 and, every fifth, a
// withdrawal of 300.
func movements(user string, n int) ([]domain.Event, []projections.WalletEntry, int64) {
	var evs []domain.Event
	var want []projections.WalletEntry
	var balance int64
	for i := range n {
		at := t0.Add(time.Duration(i) * time.Second)
		if i%5 == 4 {
			id := domain.PayoutID(fmt.Sprintf("po_%s_%d", user, i))
			evs = append(evs, domain.WalletDebited{UserID: domain.UserID(user), Amount: 300, PayoutID: id, DebitAt: at})
			want = append(want, projections.WalletEntry{At: domain.FormatTime(at), Amount: -300, Kind: "withdrawal", Ref: "payout:" + string(id)})
			balance -= 300
			continue
		}
		ref := fmt.Sprintf("deposit:%s-%d", user, i)
		evs = append(evs, domain.WalletCredited{UserID: domain.UserID(user), Amount: 1000, Kind: domain.CreditDepositRefund, Ref: ref, FromAccount: domain.AccountSuspense, CreditedAt: at})
		want = append(want, projections.WalletEntry{At: domain.FormatTime(at), Amount: 1000, Kind: domain.CreditDepositRefund, Ref: ref})
		balance += 1000
	}
	return evs, want, balance
}

// applyMovements applies n movements of each user, interleaved, one commit
// each, and returns what each wallet must show.
func applyMovements(t testing.TB, st *projections.Store, l *commitLog, n int, users ...string) map[string][]projections.WalletEntry {
	t.Helper()
	want := map[string][]projections.WalletEntry{}
	evs := map[string][]domain.Event{}
	for _, u := range users {
		evs[u], want[u], _ = movements(u, n)
	}
	var batch []eventstore.Commit
	for i := range n {
		for _, u := range users {
			batch = append(batch, l.commit(t, walletRef(u), t0, evs[u][i]))
			if len(batch) == 500 {
				if err := st.Apply(batch); err != nil {
					t.Fatal(err)
				}
				batch = batch[:0]
			}
		}
	}
	if err := st.Apply(batch); err != nil {
		t.Fatal(err)
	}
	return want
}

// TestWalletPagesOldestFirst: bankbook.q.wallet.get answers one page of
// movements, oldest first, with the cursor of the next page; following the
// cursors lists every movement once, and a wallet never shows another's
// (u1 and u10 share a prefix).
func TestWalletPagesOldestFirst(t *testing.T) {
	st := openStore(t, tempPath(t, "rm.db"))
	l := newCommitLog()
	want := applyMovements(t, st, l, 120, "u1", "u10")
	_, _, balance := movements("u1", 120)

	var got []projections.WalletEntry
	cursor, pages := "", 0
	for {
		w, err := st.Wallet("u1", 50, cursor)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if w.UserID != "u1" || w.Balance != balance || w.Seq != api.Seq(l.seq-1) { // u10's commit is the last one
			t.Fatalf("page %d: %s balance %d seq %d; want u1 balance %d seq %d", pages, w.UserID, w.Balance, w.Seq, balance, l.seq-1)
		}
		if len(w.Entries) > 50 {
			t.Fatalf("page %d has %d entries, limit 50", pages, len(w.Entries))
		}
		got = append(got, w.Entries...)
		if w.NextCursor == "" {
			break
		}
		cursor = w.NextCursor
	}
	if pages != 3 {
		t.Errorf("%d pages of 50 for 120 movements, want 3", pages)
	}
	if !reflect.DeepEqual(got, want["u1"]) {
		t.Fatalf("entries of u1 through the pages:\n got %v\nwant %v", got, want["u1"])
	}

	t.Run("a wallet without movements", func(t *testing.T) {
		w, err := st.Wallet("nobody", 50, "")
		if err != nil || w.Balance != 0 || w.Seq != 0 || w.Entries == nil || len(w.Entries) != 0 || w.NextCursor != "" {
			t.Fatalf("empty wallet: %+v, %v", w, err)
		}
	})
	t.Run("a cursor it did not hand out", func(t *testing.T) {
		for _, c := range []string{"zz", "00", "0000000000000000000000000000"} {
			if _, err := st.Wallet("u1", 50, c); !errors.Is(err, projections.ErrBadCursor) {
				t.Errorf("cursor %q: %v, want ErrBadCursor", c, err)
			}
		}
	})
}

// TestWalletMovementWritesOnlySmallRecords: a movement adds one entry and
// rewrites a small summary; no record grows with the wallet's history (the
// whole view rewritten on every credit put the read models 8,100 commits
// behind, and a view past 1 MiB could not be sent).
func TestWalletMovementWritesOnlySmallRecords(t *testing.T) {
	path := tempPath(t, "rm.db")
	st := openStore(t, path)
	want := applyMovements(t, st, newCommitLog(), 2_000, "u-big")
	w, err := st.Wallet("u-big", 500, "")
	if err != nil || len(w.Entries) != 500 || !reflect.DeepEqual(w.Entries, want["u-big"][:500]) {
		t.Fatalf("first page of 500: %d entries, %v", len(w.Entries), err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	records := 0
	err = db.View(func(tx *bbolt.Tx) error {
		for _, p := range projections.DefaultProjections() {
			if p.Name != "wallets" {
				continue
			}
			for _, name := range p.Buckets {
				err := tx.Bucket([]byte(name)).ForEach(func(k, v []byte) error {
					records++
					if len(v) > 256 {
						return fmt.Errorf("bucket %s: record %q is %d bytes", name, k, len(v))
					}
					return nil
				})
				if err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if records != 2_001 { // one summary and 2,000 entries
		t.Fatalf("%d records in the wallet buckets, want 2,001", records)
	}
}

// BenchmarkWalletMovement is the cost of applying one movement to a wallet
// that already has b.N of them: flat, whatever the history.
func BenchmarkWalletMovement(b *testing.B) {
	st := openStore(b, tempPath(b, "rm.db"))
	l := newCommitLog()
	evs, _, _ := movements("u-hot", b.N)
	b.ResetTimer()
	for i := range b.N {
		if err := st.Apply([]eventstore.Commit{l.commit(b, walletRef("u-hot"), t0, evs[i])}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWalletPage reads the first page of 50 of a wallet with 10,000
// movements.
func BenchmarkWalletPage(b *testing.B) {
	st := openStore(b, tempPath(b, "rm.db"))
	applyMovements(b, st, newCommitLog(), 10_000, "u-hot")
	b.ResetTimer()
	for range b.N {
		if _, err := st.Wallet("u-hot", 50, ""); err != nil {
			b.Fatal(err)
		}
	}
}
