package soak

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/bankfeed"
	"github.com/bankbook/bankbook/domain"
)

// The statement the reconciliation checks send holds each acknowledged
// transfer to a dedicated account once, and reads back through the
// parser 'reconcile bank' uses as the transfers it was made of.
func TestStorePaymentsStatement(t *testing.T) {
	reply := func(v any) json.RawMessage { b, _ := json.Marshal(v); return b }
	at := time.Now().UTC().Add(-time.Hour).Truncate(time.Microsecond)
	dep := func(n int64, txn, account string, status int) Ack {
		return Ack{N: n, Op: api.DepositRecord.Name, Status: status,
			Request: reply(api.RecordDepositRequest{BankTxnID: txn, AccountNumber: account, DepositorName: "ST01", Amount: 1000 * n, DepositedAt: at.Add(time.Duration(n) * time.Second)}),
			Reply:   reply(api.RecordDepositReply{DepositID: string(domain.NewDepositID(account, txn))})}
	}
	acks := []Ack{
		{N: 1, Op: api.StoreLink.Name, Status: 200, Request: reply(api.LinkStoreRequest{DistributorID: "d-1", StoreID: "s-1"}),
			Reply: reply(api.LinkStoreReply{LinkedStore: api.LinkedStore{StoreID: "s-1", DedicatedAccount: domain.BankAccount{Number: "456"}}})},
		dep(2, "T2", "456", 200),
		dep(3, "T3", "123", 200), // not a dedicated account
		dep(4, "T2", "456", 200), // the same transfer, repeated
		dep(5, "T5", "456", 400), // refused: not at the bank's
		dep(6, "T6", "456", 200),
	}
	lines := storePayments(acks)
	var got []string
	for _, l := range lines {
		got = append(got, l.BankTxnID)
	}
	if !slices.Equal(got, []string{"T2", "T6"}) {
		t.Fatalf("statement lines %v, want [T2 T6]", got)
	}
	path := filepath.Join(t.TempDir(), "statement.csv")
	if err := writeStatement(path, lines); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	txns, _, err := bankfeed.ParseCSVCounted(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(txns) != len(lines) {
		t.Fatalf("%d transactions read back, want %d", len(txns), len(lines))
	}
	for i, tx := range txns {
		l := lines[i]
		if tx.BankTxnID != l.BankTxnID || tx.AccountNumber != l.AccountNumber || tx.DepositorName != l.DepositorName ||
			tx.Amount != l.Amount || !tx.DepositedAt.Equal(l.DepositedAt) {
			t.Errorf("line %d read back as %+v, written from %+v", i+1, tx, l)
		}
	}
}

// Each run the soak made is one reconcile.completed, and the stream holds
// no other.
func TestRunsRecordedOnce(t *testing.T) {
	for _, tc := range []struct {
		name     string
		stream   map[domain.ReconciliationID]int
		failures int
	}{
		{"each once", map[domain.ReconciliationID]int{"r1": 1, "r2": 1}, 0},
		{"one twice", map[domain.ReconciliationID]int{"r1": 1, "r2": 2}, 1},
		{"one missing", map[domain.ReconciliationID]int{"r1": 1}, 1},
		{"one nobody made", map[domain.ReconciliationID]int{"r1": 1, "r2": 1, "r3": 1}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFacts()
			f.reconciled = tc.stream
			rep := &Report{}
			checkRunsRecorded(rep, []string{"r1", "r2"}, f)
			if c := rep.Checks[0]; c.Failures != tc.failures {
				t.Fatalf("%d failures (%v), want %d", c.Failures, c.Examples, tc.failures)
			}
		})
	}
}

// A replay that could not run fails "replay equals live" with its own
// error, at once: since a failing command run with --json prints its
// error as JSON, the document on stdout is not a replay's result.
func TestChecksReplayThatCouldNotRun(t *testing.T) {
	dir := t.TempDir()
	bin, runs := filepath.Join(dir, "bankbook"), filepath.Join(dir, "runs")
	script := "#!/bin/sh\necho run >> '" + runs + "'\necho '{\"error\":{\"code\":\"not_run\",\"message\":\"replay could not run: no stream\",\"details\":{\"exit_status\":2}}}'\necho 'bankbook: replay could not run: no stream' >&2\nexit 2\n"
	if err := os.WriteFile(bin, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	rep := &Report{}
	checkReplay(t.Context(), rep, bin, "nats://127.0.0.1:1", "seed", t.TempDir(), 10)
	c := rep.Checks[0]
	if c.Failures != 1 || len(c.Examples) != 1 || !strings.Contains(c.Examples[0], "exit 2") || !strings.Contains(c.Examples[0], "no stream") {
		t.Fatalf("replay equals live: %d failures %q, want the replay's error", c.Failures, c.Examples)
	}
	ran, err := os.ReadFile(runs)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(ran), "run\n"); len(rep.Notes) > 0 || n != 1 {
		t.Fatalf("a replay that could not run was run %d times: notes %q", n, rep.Notes)
	}
}
