package server_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/audit"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/internal/testenv"
)

// TestOneBankTransactionMovesMoneyOnce: requests that describe one bank
// transaction differently (another depositor name, another amount), sent at
// once, record it once and move its money once, as the first one to claim
// it said; the others are duplicates.
func TestOneBankTransactionMovesMoneyOnce(t *testing.T) {
	e := startEngine(t)
	at := time.Now().UTC().Add(-time.Minute).Truncate(time.Microsecond)
	var orders []string
	for round := range 6 {
		a := e.submit(t, fmt.Sprintf("u-a%d", round), "김가나", 11000)
		b := e.submit(t, fmt.Sprintf("u-b%d", round), "김다라", 11000)
		orders = append(orders, a.OrderID, b.OrderID)
		bodies := []api.RecordDepositRequest{
			{DepositorName: a.DepositorName, Amount: 11000}, // pays a
			{DepositorName: b.DepositorName, Amount: 11000}, // pays b
			{DepositorName: a.DepositorName, Amount: 12000}, // an orphan naming a
		}
		txn := fmt.Sprintf("T-race-%d", round)
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			replies []api.RecordDepositReply
		)
		for i := range 9 {
			req := bodies[i%len(bodies)]
			req.BankTxnID, req.AccountNumber, req.DepositedAt = txn, e.cfg.CollectNumber, at
			wg.Go(func() {
				var rep api.RecordDepositReply
				e.call(t, api.DepositRecord.Subject, req, &rep, nil)
				mu.Lock()
				replies = append(replies, rep)
				mu.Unlock()
			})
		}
		wg.Wait()
		recorded := 0
		for _, rep := range replies {
			if rep.Outcome != domain.OutcomeDuplicate {
				recorded++
			}
		}
		if recorded != 1 {
			t.Fatalf("round %d: %d of %d requests recorded the transaction, want 1: %+v", round, recorded, len(replies), replies)
		}
		// Every transaction so far paid one order or waits as one orphan
		// (the read models catch up); the bank account holds each once.
		testenv.CheckFor(t, 10*time.Second, func() error {
			paid := 0
			for _, id := range orders {
				if e.order(t, id).Status == "paid" {
					paid++
				}
			}
			var orphans api.OrphansReply
			e.call(t, api.DepositOrphans.Subject, struct{}{}, &orphans, nil)
			var held int64
			for _, o := range orphans.Deposits {
				held += o.Amount
			}
			bank := e.balanced(t)[domain.AccountBank(e.cfg.CollectNumber)]
			if paid+len(orphans.Deposits) != round+1 || bank != int64(paid)*11000+held {
				return fmt.Errorf("after %d transactions: %d orders paid, %d orphans holding %d, the bank account %d", round+1, paid, len(orphans.Deposits), held, bank)
			}
			return nil
		})
	}
	// A second transfer to a paid order goes back to its buyer's wallet.
	paid := ""
	for _, id := range orders {
		if v := e.order(t, id); v.Status == "paid" {
			paid = v.DepositorName
			break
		}
	}
	var refund api.RecordDepositReply
	e.call(t, api.DepositRecord.Subject, api.RecordDepositRequest{BankTxnID: "T-again", AccountNumber: e.cfg.CollectNumber, DepositorName: paid, Amount: 11000, DepositedAt: at}, &refund, nil)
	if refund.Outcome != domain.OutcomeRefundedToWallet {
		t.Fatalf("a second payment: %+v", refund)
	}
	// The log agrees: every transaction moved its money once.
	rep, err := audit.Verify(ctxT(t), audit.Options{Reader: e.Events.Reader(), Codec: domain.Events(), TempDir: t.TempDir()})
	if err != nil || !rep.OK {
		t.Fatalf("audit verify: %v %+v", err, rep.Findings)
	}
}
