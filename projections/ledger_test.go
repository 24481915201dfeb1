package projections_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/projections"
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

// TestAccountPagesAndRefusesCursorsItNeverHandsOut: an account's entries
// page oldest first, each once; a cursor is the rest of an entry's key
// (14 bytes), and one of another length, which used to be taken as a
// position and quietly repeated a page, is ErrBadCursor, as a wallet's is.
func TestAccountPagesAndRefusesCursorsItNeverHandsOut(t *testing.T) {
	f := newFixture(t)
	st := openStore(t, tempPath(t, "rm.db"))
	var batch []eventstore.Commit
	for i := range 7 {
		ev := domain.WalletCredited{UserID: "u1", Amount: int64(100 * (i + 1)), Kind: domain.CreditOrphanRefund,
			Ref: fmt.Sprintf("dep_%d", i), FromAccount: domain.AccountSuspense, CreditedAt: t0}
		batch = append(batch, f.append(t, fmt.Sprintf("w%d", i), f.envelope(t, ev, t0)))
	}
	if err := st.Apply(batch); err != nil {
		t.Fatal(err)
	}
	var amounts []int64
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 3 {
			t.Fatal("more pages than entries")
		}
		_, entries, next, err := st.Account(domain.AccountSuspense, 3, cursor)
		if err != nil || len(entries) > 3 {
			t.Fatalf("page %d: %d entries, %v", pages, len(entries), err)
		}
		for _, e := range entries {
			amounts = append(amounts, e.Amount)
		}
		if next == "" {
			break
		}
		if len(next) != 28 {
			t.Fatalf("cursor %q: want 14 bytes of hex", next)
		}
		cursor = next
	}
	if want := []int64{100, 200, 300, 400, 500, 600, 700}; !slices.Equal(amounts, want) {
		t.Fatalf("entries through the pages: %v, want %v", amounts, want)
	}
	for _, c := range []string{"zz", "00", cursor[:26], cursor + "00", cursor + "000000"} {
		if _, _, _, err := st.Account(domain.AccountSuspense, 3, c); !errors.Is(err, projections.ErrBadCursor) {
			t.Errorf("cursor %q: %v, want ErrBadCursor", c, err)
		}
	}
}
