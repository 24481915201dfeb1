package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/reservations"
)

// An import run again right after an engine died while recording one of
// its rows meets that row's claim, which the dead attempt holds until its
// lease runs out: the import waits for it (the engine says how long) and
// finishes, instead of stopping at that row.
func TestDepositImportWaitsForARowADeadAttemptHolds(t *testing.T) {
	e, cfg := startEngine(t)
	_, js := testenv.Dial(t, e.ClientURL(), testenv.NKey(t, e.SeedFile(auth.Engine)))
	// The dead attempt took its claim with 1.5 s of its lease left.
	took := time.Now().Add(-reservations.DepositClaimLease + 1500*time.Millisecond)
	names, err := reservations.Open(t.Context(), js, reservations.Config{Now: func() time.Time { return took }})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
	claim, _ := json.Marshal(map[string]any{"bank_txn_id": "H-2", "account_number": cfg.CollectNumber, "depositor_name": "이영희", "amount": 3000, "deposited_at": at})
	if _, _, err := names.ClaimDeposit(t.Context(), domain.NewDepositID(cfg.CollectNumber, "H-2"), claim, "a-dead-attempt"); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "s.csv")
	body := "bank_txn_id,account_number,depositor_name,amount,deposited_at\r\n" +
		"H-1," + cfg.CollectNumber + ",홍길동,1000," + at.Format(time.RFC3339) + "\r\n" +
		"H-2," + cfg.CollectNumber + ",이영희,3000," + at.Format(time.RFC3339) + "\r\n"
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := run(ctx, []string{"deposit", "import", "--nats-url=" + e.ClientURL(), p}, &out, &errOut); err != nil {
		t.Fatalf("import: %v\n%s%s", err, out.String(), errOut.String())
	}
	if !strings.Contains(errOut.String(), "transaction H-2: another attempt is recording it") {
		t.Errorf("the import did not say it waited for the held row: %q", errOut.String())
	}
	if !strings.Contains(out.String(), "2 transactions: orphaned 2") {
		t.Errorf("import output %q, want both rows recorded as orphans", out.String())
	}
}
