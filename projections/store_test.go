package projections_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/projections"
)

func TestApplyBuildsOrderViews(t *testing.T) {
	f := newFixture(t)
	st := openStore(t, tempPath(t, "rm.db"))

	// Given two submitted orders, one of them cancelled,
	subA := f.submit(t, "A", 1)
	subB := f.submit(t, "B", 2)
	cancelledAt := t0.Add(time.Hour)
	canA := f.cancel(t, "A", "changed my mind", cancelledAt)

	// when the commits are applied,
	if err := st.Apply([]eventstore.Commit{subA, subB, canA}); err != nil {
		t.Fatalf("apply: %v", err)
	}

	// then the views show them.
	t.Run("cancelled order", func(t *testing.T) {
		want := projections.OrderView{
			OrderID:        "A",
			BuyerID:        "buyer-A",
			BuyerName:      "김민수",
			Amount:         10_001,
			Currency:       "KRW",
			Status:         "cancelled",
			DepositorName:  "김민수001",
			CollectAccount: domain.BankAccount{Bank: "KB", Number: "123-456-7890", Holder: "bankbook"},
			CancelWindowS:  600,
			DepositIDs:     []string{},
			Refunds:        []projections.Refund{},
			CancelReason:   "changed my mind",
			SubmittedAt:    "2026-03-01T09:00:01.123456Z",
			UpdatedAt:      "2026-03-01T10:00:00.123456Z",
			ClosedAt:       "2026-03-01T10:00:00.123456Z",
			Version:        2,
			Seq:            api.Seq(canA.Seq),
		}
		if got := order(t, st, "A"); !reflect.DeepEqual(got, want) {
			t.Fatalf("order A\n got %+v\nwant %+v", got, want)
		}
	})
	t.Run("open order", func(t *testing.T) {
		got := order(t, st, "B")
		if got.Status != "awaiting_deposit" || got.Version != 1 || eventstore.Seq(got.Seq) != subB.Seq || got.UpdatedAt != got.SubmittedAt ||
			got.SubmittedAt != domain.FormatTime(t0.Add(2*time.Second)) || got.Amount != 10_002 {
			t.Fatalf("order B = %+v", got)
		}
		raw, err := json.Marshal(got)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{`"deposit_ids":[]`, `"refunds":[]`, `"paid_amount":0`, fmt.Sprintf(`"seq":%d`, subB.Seq)} {
			if !strings.Contains(string(raw), want) {
				t.Errorf("JSON %s lacks %s", raw, want)
			}
		}
		if strings.Contains(string(raw), "cancel_reason") {
			t.Errorf("JSON %s has a cancel_reason", raw)
		}
	})
	t.Run("unknown order", func(t *testing.T) {
		if v, ok, err := st.Order("nobody"); ok || err != nil {
			t.Fatalf("order nobody = %+v, %v, %v", v, ok, err)
		}
	})
	t.Run("checkpoint", func(t *testing.T) {
		if cp := checkpoint(t, st); cp != canA.Seq {
			t.Fatalf("checkpoint %d, want %d", cp, canA.Seq)
		}
	})
}

func TestApplySkipsCommitsAtOrBelowCheckpoint(t *testing.T) {
	f := newFixture(t)
	st := openStore(t, tempPath(t, "rm.db"))
	c1 := f.submit(t, "A", 1)
	c2 := f.submit(t, "B", 2)
	c3 := f.cancel(t, "A", "", t0.Add(time.Minute))
	if err := st.Apply([]eventstore.Commit{c1, c2, c3}); err != nil {
		t.Fatal(err)
	}
	hash, cp := hashOf(t, st)

	t.Run("same batch again", func(t *testing.T) {
		if err := st.Apply([]eventstore.Commit{c1, c2, c3}); err != nil {
			t.Fatal(err)
		}
		if h, c := hashOf(t, st); h != hash || c != cp {
			t.Fatalf("reapplying changed the model: hash %s→%s, checkpoint %d→%d", hash, h, cp, c)
		}
		if v := order(t, st, "A"); v.Version != 2 {
			t.Fatalf("order A version %d after reapplying, want 2", v.Version)
		}
	})
	t.Run("overlapping batch", func(t *testing.T) {
		c4 := f.cancel(t, "B", "", t0.Add(2*time.Minute))
		if err := st.Apply([]eventstore.Commit{c2, c3, c4}); err != nil {
			t.Fatal(err)
		}
		if v := order(t, st, "A"); v.Version != 2 {
			t.Fatalf("order A version %d, want 2", v.Version)
		}
		if v := order(t, st, "B"); v.Version != 2 || v.Status != "cancelled" {
			t.Fatalf("order B = %+v, want cancelled at version 2", v)
		}
		if c := checkpoint(t, st); c != c4.Seq {
			t.Fatalf("checkpoint %d, want %d", c, c4.Seq)
		}
	})
}

func TestApplyRefusesGapAtomically(t *testing.T) {
	f := newFixture(t)
	st := openStore(t, tempPath(t, "rm.db"))
	c1 := f.submit(t, "A", 1)
	c2 := f.submit(t, "B", 2)
	c3 := f.submit(t, "C", 3)
	c4 := f.submit(t, "D", 4)
	if err := st.Apply([]eventstore.Commit{c1}); err != nil {
		t.Fatal(err)
	}
	hash, _ := hashOf(t, st)
	for name, batch := range map[string][]eventstore.Commit{
		"first commit not next": {c3},
		"gap inside the batch":  {c2, c4},
		"out of order":          {c3, c2},
	} {
		t.Run(name, func(t *testing.T) {
			if err := st.Apply(batch); !errors.Is(err, projections.ErrGap) {
				t.Fatalf("apply: got %v, want ErrGap", err)
			}
			// Nothing of the batch, not even its valid prefix, was written.
			if h, cp := hashOf(t, st); h != hash || cp != c1.Seq {
				t.Fatalf("a refused batch changed the model (checkpoint %d)", cp)
			}
		})
	}
}

// A known event type at a schema version newer than the codec's cannot be
// decoded: its commit is skipped whole, recorded, and the batch goes on.
func TestApplySkipsNewerSchemaVersion(t *testing.T) {
	f := newFixture(t)
	st := openStore(t, tempPath(t, "rm.db"))
	c1 := f.submit(t, "A", 1)
	e := f.envelope(t, domain.OrderCancelled{OrderID: "A", CancelledAt: t0}, t0)
	e.SchemaVersion = 2 // this codec knows version 1
	c2 := f.append(t, "A", e)
	c3 := f.submit(t, "B", 2)
	if err := st.Apply([]eventstore.Commit{c1, c2, c3}); err != nil {
		t.Fatalf("apply: %v", err)
	}
	if cp := checkpoint(t, st); cp != c3.Seq {
		t.Fatalf("checkpoint %d, want %d", cp, c3.Seq)
	}
	if v := order(t, st, "A"); v.Status != "awaiting_deposit" || v.Seq != api.Seq(c1.Seq) {
		t.Fatalf("order A = %+v: the newer event was applied", v)
	}
	order(t, st, "B")
	skipped, err := st.Skipped()
	if err != nil || len(skipped) != 1 || skipped[0].Seq != c2.Seq || skipped[0].AggregateID != "A" ||
		!strings.Contains(skipped[0].Problem, "schema version 2") || skipped[0].SetAside {
		t.Fatalf("skipped %+v, %v", skipped, err)
	}
}

func TestApplyRefusesCancelOfUnknownOrder(t *testing.T) {
	f := newFixture(t)
	st := openStore(t, tempPath(t, "rm.db"))
	c := f.append(t, "ghost", f.envelope(t, domain.OrderCancelled{OrderID: "ghost", CancelledAt: t0}, t0))
	if err := st.Apply([]eventstore.Commit{c}); !errors.Is(err, projections.ErrInconsistent) {
		t.Fatalf("apply: got %v, want ErrInconsistent", err)
	}
}

func TestStoreReopen(t *testing.T) {
	f := newFixture(t)
	path := tempPath(t, "rm.db")
	st, err := projections.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	c1 := f.submit(t, "A", 1)
	c2 := f.cancel(t, "A", "r", t0.Add(time.Minute))
	if err := st.Apply([]eventstore.Commit{c1, c2}); err != nil {
		t.Fatal(err)
	}
	id := st.InstanceID()
	before := order(t, st, "A")
	hash, _ := hashOf(t, st)

	t.Run("second open fails fast", func(t *testing.T) {
		start := time.Now()
		_, err := projections.Open(path, nil)
		if !errors.Is(err, projections.ErrLocked) {
			t.Fatalf("second open: got %v, want ErrLocked", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("second open took %v", d)
		}
	})
	t.Run("close is idempotent", func(t *testing.T) {
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		if err := st.Close(); err != nil {
			t.Fatalf("second close: %v", err)
		}
		if _, err := st.Checkpoint(); !errors.Is(err, projections.ErrClosed) {
			t.Fatalf("checkpoint after close: got %v, want ErrClosed", err)
		}
	})
	t.Run("state persists", func(t *testing.T) {
		st := openStore(t, path)
		if st.InstanceID() != id || len(id) != 16 {
			t.Fatalf("instance id %q after reopen, want %q", st.InstanceID(), id)
		}
		if cp := checkpoint(t, st); cp != c2.Seq {
			t.Fatalf("checkpoint %d after reopen, want %d", cp, c2.Seq)
		}
		if got := order(t, st, "A"); !reflect.DeepEqual(got, before) {
			t.Fatalf("order after reopen %+v, want %+v", got, before)
		}
		if h, _ := hashOf(t, st); h != hash {
			t.Fatal("hash changed across reopen")
		}
	})
	t.Run("new file gets a new instance id", func(t *testing.T) {
		other := openStore(t, tempPath(t, "other.db"))
		if other.InstanceID() == id {
			t.Fatal("two files share an instance id")
		}
	})
}
