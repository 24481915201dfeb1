package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bankbook/bankbook/commands"
	"github.com/bankbook/bankbook/domain"
)

// TestWalletGetPages: `wallet get` shows one page of movements, oldest
// first, and says how to ask for the next one.
func TestWalletGetPages(t *testing.T) {
	e, _ := startEngine(t)
	url := "--nats-url=" + e.ClientURL()
	var last uint64
	for i := range 3 {
		seq, err := e.Commands.Wallets.Credit(context.Background(), commands.Meta{}, domain.CreditWallet{
			UserID: "u1", Amount: int64(1000 * (i + 1)), Kind: domain.CreditOrphanRefund, Ref: fmt.Sprintf("deposit:d%d", i),
			FromAccount: domain.AccountSuspense, Now: time.Now(),
		})
		if err != nil {
			t.Fatal(err)
		}
		last = uint64(seq)
	}
	out, err := cli(t, "wallet", "get", url, "--user-id", "u1", "--limit", "2", "--min-seq", fmt.Sprint(last))
	if err != nil || !strings.Contains(out, "balance 6,000") || !strings.Contains(out, "deposit:d0") || !strings.Contains(out, "deposit:d1") || strings.Contains(out, "deposit:d2") {
		t.Fatalf("first page: %q %v", out, err)
	}
	_, cursor, ok := strings.Cut(out, "more: --cursor ")
	if !ok {
		t.Fatalf("first page without the next page's cursor: %q", out)
	}
	out, err = cli(t, "wallet", "get", url, "--user-id", "u1", "--limit", "2", "--cursor", strings.TrimSpace(cursor))
	if err != nil || !strings.Contains(out, "deposit:d2") || strings.Contains(out, "deposit:d1") || strings.Contains(out, "more:") {
		t.Fatalf("last page: %q %v", out, err)
	}
}
