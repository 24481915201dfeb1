package projections_test

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
)

// TestDepositIndex: given deposits on two accounts (one written with its
// grouping), when they are read by account and period and by bank_txn_id,
// then each query returns exactly the deposits it names, oldest first.
func TestDepositIndex(t *testing.T) {
	f := newFixture(t)
	st := openStore(t, tempPath(t, "rm.db"))
	deposit := func(txn, account string, at time.Time) domain.DepositRecorded {
		return domain.DepositRecorded{DepositID: domain.NewDepositID(account, txn), BankTxnID: txn, AccountNumber: account,
			DepositorName: "아무개", Amount: 1000, DepositedAt: at, Outcome: domain.OutcomeOrphaned, Reason: domain.ReasonNoSuchName, RecordedAt: at}
	}
	evs := []domain.DepositRecorded{
		deposit("T-3", "110-123", t0.Add(3*time.Hour)),
		deposit("T-1", "110 123", t0.Add(time.Hour)),
		deposit("T-2", "110123", t0.Add(2*time.Hour)),
		deposit("T-4", "110123", t0.Add(4*time.Hour)),
		deposit("T-2", "220-9", t0.Add(2*time.Hour)), // the same bank_txn_id on another account
		deposit("T-9", "1101234", t0.Add(2*time.Hour)),
	}
	var batch []eventstore.Commit
	for i, ev := range evs {
		batch = append(batch, f.append(t, fmt.Sprintf("d%d", i), f.envelope(t, ev, t0)))
	}
	if err := st.Apply(batch); err != nil {
		t.Fatal(err)
	}
	txns := func(ds []domain.RecordedDeposit) []string {
		var out []string
		for _, d := range ds {
			out = append(out, d.BankTxnID+"@"+domain.NormalizeAccountNumber(d.AccountNumber))
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		from, to time.Time
		want     []string
	}{
		{"the whole day", t0, t0.Add(24 * time.Hour), []string{"T-1@110123", "T-2@110123", "T-3@110123", "T-4@110123"}},
		{"inclusive bounds", t0.Add(2 * time.Hour), t0.Add(3 * time.Hour), []string{"T-2@110123", "T-3@110123"}},
		{"nothing", t0.Add(5 * time.Hour), t0.Add(6 * time.Hour), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, asOf, err := st.DepositsOn("110-123", tc.from, tc.to)
			if err != nil || !slices.Equal(txns(got), tc.want) || asOf != batch[len(batch)-1].Seq {
				t.Fatalf("DepositsOn = %v as of %d, %v; want %v as of %d", txns(got), asOf, err, tc.want, batch[len(batch)-1].Seq)
			}
		})
	}
	// By when they were recorded: after the first commit, up to another,
	// deposited from a time and before another; in the order recorded.
	for _, tc := range []struct {
		name         string
		upTo         int
		from, before time.Time
		want         []string
	}{
		{"recorded since", 5, t0, t0.Add(4 * time.Hour), []string{"T-1@110123", "T-2@110123"}},
		{"deposited before", 5, t0, t0.Add(2 * time.Hour), []string{"T-1@110123"}},
		{"deposited from", 5, t0.Add(2 * time.Hour), t0.Add(24 * time.Hour), []string{"T-2@110123", "T-4@110123"}},
		{"up to a sequence", 1, t0, t0.Add(24 * time.Hour), []string{"T-1@110123"}},
		{"every one", 5, t0, t0.Add(24 * time.Hour), []string{"T-1@110123", "T-2@110123", "T-4@110123"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := st.DepositsRecordedBetween("110-123", batch[0].Seq, batch[tc.upTo].Seq, tc.from, tc.before)
			if err != nil || !slices.Equal(txns(got), tc.want) {
				t.Fatalf("DepositsRecordedBetween = %v, %v; want %v", txns(got), err, tc.want)
			}
		})
	}
	got, err := st.DepositsWithTxn([]string{"T-2", "T-4", "T-none"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"T-2@110123", "T-2@2209", "T-4@110123"}
	if g := txns(got); !slices.Equal(g, want) {
		t.Fatalf("DepositsWithTxn = %v, want %v", g, want)
	}
	if got[0].Amount != 1000 || !got[0].DepositedAt.Equal(t0.Add(2*time.Hour)) || got[0].DepositID == "" {
		t.Errorf("deposit %+v", got[0])
	}
	// The accounts deposits were recorded on in a period (its end left
	// out), with how many on each.
	for _, tc := range []struct {
		name     string
		from, to time.Time
		want     map[string]int
	}{
		{"every account", t0.Add(2 * time.Hour), t0.Add(4 * time.Hour), map[string]int{"110123": 2, "1101234": 1, "2209": 1}},
		{"the whole day", t0, t0.Add(24 * time.Hour), map[string]int{"110123": 4, "1101234": 1, "2209": 1}},
		{"nothing", t0.Add(4*time.Hour + time.Microsecond), t0.Add(24 * time.Hour), map[string]int{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := st.DepositAccountsIn(tc.from, tc.to)
			if err != nil || !maps.Equal(got, tc.want) {
				t.Fatalf("DepositAccountsIn = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

// TestPayoutIndex: given payouts settled, failed and still requested, when
// the results of a period are read, then they are the payouts settled or
// failed in it, oldest first.
func TestPayoutIndex(t *testing.T) {
	f := newFixture(t)
	st := openStore(t, tempPath(t, "rm.db"))
	var batch []eventstore.Commit
	for i, p := range []struct {
		id     string
		result domain.Event
	}{
		{"po-late", domain.PayoutSettled{PayoutID: "po-late", Amount: 100, Fee: 5, SettledAt: t0.Add(3 * time.Hour)}},
		{"po-early", domain.PayoutFailed{PayoutID: "po-early", Reason: "account_closed", FailedAt: t0.Add(time.Hour)}},
		{"po-pending", nil},
		{"po-after", domain.PayoutSettled{PayoutID: "po-after", Amount: 100, SettledAt: t0.Add(5 * time.Hour)}},
	} {
		envs := []eventstore.Envelope{f.envelope(t, domain.PayoutRequested{PayoutID: domain.PayoutID(p.id), Amount: 100, RequestedAt: t0}, t0)}
		if p.result != nil {
			envs = append(envs, f.envelope(t, p.result, t0))
		}
		batch = append(batch, f.append(t, fmt.Sprintf("p%d", i), envs...))
	}
	if err := st.Apply(batch); err != nil {
		t.Fatal(err)
	}
	got, err := st.PayoutsFinalIn(t0, t0.Add(3*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, v := range got {
		ids = append(ids, v.PayoutID+":"+v.Status)
	}
	if want := []string{"po-early:failed", "po-late:settled"}; !slices.Equal(ids, want) {
		t.Fatalf("PayoutsFinalIn = %v, want %v", ids, want)
	}
}
