package accounts_test

import (
	"testing"

	"github.com/bankbook/bankbook/accounts"
)

// TestRestoreAfterTheRangeGainedADigit: numbers given under 1-999 ("001",
// "002"); the range is widened to 1-9999, as the docs allow, and then the
// bucket loses its entries and is restored from the stream. The next
// number is past the restored ones by value: not "0001", which a bank may
// read as link 0's "001".
func TestRestoreAfterTheRangeGainedADigit(t *testing.T) {
	_, js := start(t)
	old := open(t, js, accounts.Config{From: 1, To: 999})
	a, b := allocate(t, old, linkID(0)), allocate(t, old, linkID(1))
	if err := js.DeleteKeyValue(t.Context(), accounts.DefaultBucket); err != nil {
		t.Fatal(err)
	}
	d := open(t, js, accounts.Config{From: 1, To: 9999})
	if err := d.Restore(t.Context(), map[string]string{linkID(0): a, linkID(1): b}); err != nil {
		t.Fatal(err)
	}
	if n := allocate(t, d, linkID(3)); n != "0003" {
		t.Fatalf("after the restore a new link got %s; the restored links hold %s and %s: want 0003", n, a, b)
	}
}
