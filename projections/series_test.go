package projections_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
)

// An orphan's life through suspense and payouts pending, commit by commit:
// after each one the series agrees with the ledger (its last point's balance
// is the account's balance, and the open items sum to it), and the points
// say what changed.
func TestLedgerSeriesFollowsOpenItems(t *testing.T) {
	st := openStoreWith(t, "ledger", "series") // events apply without the aggregates they belong to
	l := newCommitLog()
	const suspense, pending = domain.AccountSuspense, domain.AccountPayoutsPending
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	orphan := func(id string, amount int64, m int) domain.DepositRecorded {
		return domain.DepositRecorded{DepositID: domain.DepositID(id), BankTxnID: "T" + id, AccountNumber: "123", DepositorName: "누구",
			Amount: amount, DepositedAt: at(m), Outcome: domain.OutcomeOrphaned, Reason: domain.ReasonNoSuchName, RecordedAt: at(m)}
	}
	type point struct {
		balance int64
		open    int
		oldest  time.Time
	}
	steps := []struct {
		name string
		ref  eventstore.Ref
		ev   domain.Event
		want map[string]point // the accounts that get a point
	}{
		{"orphan d1", depositRef("d1"), orphan("d1", 1000, 0), map[string]point{suspense: {-1000, 1, at(0)}}},
		{"orphan d2", depositRef("d2"), orphan("d2", 2000, 1), map[string]point{suspense: {-3000, 2, at(0)}}},
		{"d1 assigned: the money has not moved yet", depositRef("d1"),
			domain.DepositResolved{DepositID: "d1", Action: domain.ResolveAssignOrder, Amount: 1000, OrderID: "o1", ResolvedAt: at(2)}, nil},
		{"order paid from suspense", orderRef("o1"),
			domain.OrderPaid{OrderID: "o1", DepositID: "d1", Amount: 1000, FromAccount: suspense, PaidAt: at(3)}, map[string]point{suspense: {-2000, 1, at(1)}}},
		{"d2 refunded to the bank", depositRef("d2"),
			domain.DepositResolved{DepositID: "d2", Action: domain.ResolveRefundToBank, Amount: 2000, PayoutID: "po_1", ResolvedAt: at(4)},
			map[string]point{suspense: {0, 0, time.Time{}}, pending: {-2000, 1, at(4)}}},
		{"the refund fails: nothing moves yet", payoutRef("po_1"), domain.PayoutFailed{PayoutID: "po_1", Reason: "no such account", FailedAt: at(5)}, nil},
		{"d2 back in suspense", depositRef("d2"),
			domain.DepositReopened{DepositID: "d2", Amount: 2000, PayoutID: "po_1", Reason: "no such account", ReopenedAt: at(6)},
			map[string]point{suspense: {-2000, 1, at(6)}, pending: {0, 0, time.Time{}}}},
		{"a withdrawal", walletRef("u1"), domain.WalletDebited{UserID: "u1", Amount: 500, PayoutID: "po_2", DebitAt: at(7)},
			map[string]point{pending: {-500, 1, at(7)}}},
		{"another withdrawal", walletRef("u1"), domain.WalletDebited{UserID: "u1", Amount: 300, PayoutID: "po_3", DebitAt: at(8)},
			map[string]point{pending: {-800, 2, at(7)}}},
		{"po_2 settled", payoutRef("po_2"), domain.PayoutSettled{PayoutID: "po_2", Amount: 500, Fee: 100, BankAccount: "123", SettledAt: at(9)},
			map[string]point{pending: {-300, 1, at(8)}}},
		{"po_3 reversed to the wallet", walletRef("u1"),
			domain.WalletCredited{UserID: "u1", Amount: 300, Kind: domain.CreditPayoutReversal, Ref: "reversal:po_3", FromAccount: pending, CreditedAt: at(10)},
			map[string]point{pending: {0, 0, time.Time{}}}},
		{"d2 refunded to a wallet", walletRef("u2"),
			domain.WalletCredited{UserID: "u2", Amount: 2000, Kind: domain.CreditOrphanRefund, Ref: "d2", FromAccount: suspense, CreditedAt: at(11)},
			map[string]point{suspense: {0, 0, time.Time{}}}},
		{"an order paid from the bank touches neither", orderRef("o2"),
			domain.OrderPaid{OrderID: "o2", DepositID: "d9", Amount: 700, FromAccount: domain.AccountBank("123"), PaidAt: at(12)}, nil},
	}
	var suspenseSeqs []api.Seq
	for i, step := range steps {
		c := l.commit(t, step.ref, at(i), step.ev)
		apply(t, st, c)
		for _, account := range api.SeriesAccounts() {
			rep, err := st.LedgerSeries(account, 1, 1000)
			if err != nil {
				t.Fatalf("%s: series of %s: %v", step.name, account, err)
			}
			balance, _, _, err := st.Account(account, 1, "")
			if err != nil {
				t.Fatal(err)
			}
			var sum int64
			for _, it := range rep.OpenItems {
				sum += it.Amount
			}
			if rep.AsOfSeq != api.Seq(c.Seq) || -balance != sum || rep.OpenCount != len(rep.OpenItems) {
				t.Errorf("%s: %s: as of %d (want %d), ledger balance %d, open items %+v (count %d)", step.name, account, rep.AsOfSeq, c.Seq, balance, rep.OpenItems, rep.OpenCount)
			}
			if len(rep.Points) > 0 && rep.Points[0].Balance != balance {
				t.Errorf("%s: %s: last point %+v, ledger balance %d", step.name, account, rep.Points[0], balance)
			}
			want, touched := step.want[account]
			if !touched {
				if len(rep.Points) > 0 && rep.Points[0].Seq == api.Seq(c.Seq) {
					t.Errorf("%s: %s got a point although nothing changed: %+v", step.name, account, rep.Points[0])
				}
				continue
			}
			if account == suspense {
				suspenseSeqs = append(suspenseSeqs, api.Seq(c.Seq))
			}
			wantPoint := api.SeriesPoint{Seq: api.Seq(c.Seq), At: domain.FormatTime(at(i)), Balance: want.balance, OpenCount: want.open}
			if !want.oldest.IsZero() {
				wantPoint.OldestOpenSince = domain.FormatTime(want.oldest)
			}
			if len(rep.Points) != 1 || rep.Points[0] != wantPoint {
				t.Errorf("%s: %s: points %+v, want %+v", step.name, account, rep.Points, wantPoint)
			}
		}
	}

	all, err := st.LedgerSeries(suspense, api.MaxSeriesPoints, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if got := seqsOf(all.Points); fmt.Sprint(got) != fmt.Sprint(suspenseSeqs) {
		t.Errorf("suspense points at %v, want %v (oldest first)", got, suspenseSeqs)
	}
	recent, err := st.LedgerSeries(suspense, 2, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if got := seqsOf(recent.Points); fmt.Sprint(got) != fmt.Sprint(suspenseSeqs[len(suspenseSeqs)-2:]) {
		t.Errorf("the 2 most recent suspense points: %v, want %v", got, suspenseSeqs[len(suspenseSeqs)-2:])
	}
}

func seqsOf(points []api.SeriesPoint) []api.Seq {
	out := []api.Seq{}
	for _, p := range points {
		out = append(out, p.Seq)
	}
	return out
}

// The open items come oldest first, at most the number asked for, while the
// count says how many there are.
func TestLedgerSeriesOpenItems(t *testing.T) {
	st := openStore(t, tempPath(t, "rm.db"))
	l := newCommitLog()
	for i := range 5 {
		id := fmt.Sprintf("d%d", i)
		// Deposited in reverse order of recording: the oldest is recorded last.
		deposited := t0.Add(time.Duration(10-i) * time.Minute)
		apply(t, st, l.commit(t, depositRef(id), t0.Add(time.Hour), domain.DepositRecorded{
			DepositID: domain.DepositID(id), BankTxnID: "T" + id, AccountNumber: "123", DepositorName: "누구", Amount: int64(100 * (i + 1)),
			DepositedAt: deposited, Outcome: domain.OutcomeOrphaned, Reason: domain.ReasonNoSuchName, RecordedAt: t0.Add(time.Hour),
		}))
	}
	rep, err := st.LedgerSeries(domain.AccountSuspense, 10, 3)
	if err != nil {
		t.Fatal(err)
	}
	want := []api.OpenItem{
		{Key: "d4", Amount: 500, Since: domain.FormatTime(t0.Add(6 * time.Minute))},
		{Key: "d3", Amount: 400, Since: domain.FormatTime(t0.Add(7 * time.Minute))},
		{Key: "d2", Amount: 300, Since: domain.FormatTime(t0.Add(8 * time.Minute))},
	}
	if fmt.Sprint(rep.OpenItems) != fmt.Sprint(want) || rep.OpenCount != 5 || len(rep.Points) != 5 {
		t.Fatalf("open items %+v (count %d, %d points), want %+v (count 5, 5 points)", rep.OpenItems, rep.OpenCount, len(rep.Points), want)
	}
	if last := rep.Points[4]; last.OldestOpenSince != want[0].Since || last.Balance != -1500 {
		t.Fatalf("last point %+v", last)
	}
	other, err := st.LedgerSeries(domain.AccountPayoutsPending, 10, 3)
	if err != nil || len(other.Points) != 0 || len(other.OpenItems) != 0 || other.OpenCount != 0 {
		t.Fatalf("payouts pending: %+v, %v", other, err)
	}
}
