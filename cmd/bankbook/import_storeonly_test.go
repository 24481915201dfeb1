package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bankbook/bankbook/api"
)

// A statement of store payments only, imported with --complete-up-to:
// the rows are recorded, so the command must not say the file has no
// transactions (as for a header-only file).
func TestDepositImportOfStorePaymentsOnlyWithCompleteUpTo(t *testing.T) {
	e, _ := startEngine(t)
	url := "--nats-url=" + e.ClientURL()
	var link api.LinkStoreReply
	out, err := cli(t, "store", "link", url, "--distributor-id", "d-1", "--store-id", "s-1", "--store-name", "한울식당", "--json")
	if err != nil || json.Unmarshal([]byte(out), &link) != nil {
		t.Fatalf("link: %q %v", out, err)
	}
	now := time.Now().UTC()
	p := filepath.Join(t.TempDir(), "s.csv")
	body := "bank_txn_id,account_number,depositor_name,amount,deposited_at\n" +
		"S1," + link.DedicatedAccount.Number + ",한울식당,39000," + now.Format(time.RFC3339Nano) + "\n"
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = cli(t, "deposit", "import", url, "--complete-up-to", now.Format(time.RFC3339Nano), p)
	if !strings.Contains(out, "store_payment") {
		t.Fatalf("the row was not recorded: %q %v", out, err)
	}
	if err != nil && strings.Contains(err.Error(), "has no transactions") {
		t.Fatalf("a statement whose row was just recorded is reported as having no transactions: %v", err)
	}
}

// A header-only statement imports nothing, and --json says so with an
// empty list, as for any other count of transactions, not null.
func TestDepositImportOfAHeaderOnlyStatementListsNone(t *testing.T) {
	e, _ := startEngine(t)
	out, _ := cli(t, "deposit", "import", "--nats-url="+e.ClientURL(), "--json", writeStatement(t, ""))
	var got struct {
		Transactions []json.RawMessage `json:"transactions"`
	}
	if json.Unmarshal([]byte(out), &got) != nil || got.Transactions == nil || len(got.Transactions) != 0 {
		t.Fatalf("import --json of a header-only statement: %q, want \"transactions\":[]", out)
	}
}
