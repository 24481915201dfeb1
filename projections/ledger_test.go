package projections_test

import (
	"fmt"
	"testing"

	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
)

// TestTrialBalancePages: given accounts for seven wallets and the suspense
// account they were credited from, when the trial balance is read in pages of
// three, then the pages list every account once, in name order, and every
// page carries the total over all accounts (0).
func TestTrialBalancePages(t *testing.T) {
	f := newFixture(t)
	st := openStore(t, tempPath(t, "rm.db"))
	var batch []eventstore.Commit
	for i := range 7 {
		ev := domain.WalletCredited{UserID: domain.UserID(fmt.Sprintf("u%d", i)), Amount: int64(100 * (i + 1)), Kind: domain.CreditOrphanRefund,
			Ref: fmt.Sprintf("dep_%d", i), FromAccount: domain.AccountSuspense, CreditedAt: t0}
		batch = append(batch, f.append(t, fmt.Sprintf("w%d", i), f.envelope(t, ev, t0)))
	}
	if err := st.Apply(batch); err != nil {
		t.Fatal(err)
	}
	all, total, _, next, err := st.TrialBalance(0, "")
	if err != nil || len(all) != 8 || total != 0 || next != "" {
		t.Fatalf("whole trial balance: %d accounts, total %d, next %q, %v", len(all), total, next, err)
	}
	var paged []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 3 {
			t.Fatal("more pages than accounts")
		}
		accounts, total, _, next, err := st.TrialBalance(3, cursor)
		if err != nil || total != 0 || len(accounts) > 3 {
			t.Fatalf("page %d: %d accounts, total %d, %v", pages, len(accounts), total, err)
		}
		for _, a := range accounts {
			paged = append(paged, a.Account)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if len(paged) != len(all) {
		t.Fatalf("pages listed %v, want %d accounts", paged, len(all))
	}
	for i, a := range all {
		if paged[i] != a.Account {
			t.Fatalf("page order %v differs from %v", paged, all)
		}
	}
	if _, _, _, _, err := st.TrialBalance(3, "not hex"); err == nil {
		t.Fatal("a bad cursor was accepted")
	}
}
