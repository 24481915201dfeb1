package server_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/audit"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/engine"
	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/reservations"
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
	// (Which description won each round is up to the scheduler: every
	// round may have recorded the orphan, so pay an order if none is.)
	paid, pending := "", ""
	for _, id := range orders {
		switch v := e.order(t, id); domain.OrderStatus(v.Status) {
		case domain.StatusPaid:
			paid = v.DepositorName
		case domain.StatusAwaitingDeposit:
			pending = v.DepositorName
		}
	}
	if paid == "" {
		var rep api.RecordDepositReply
		e.call(t, api.DepositRecord.Subject, api.RecordDepositRequest{BankTxnID: "T-pay", AccountNumber: e.cfg.CollectNumber, DepositorName: pending, Amount: 11000, DepositedAt: at}, &rep, nil)
		if rep.Outcome != domain.OutcomeMatched {
			t.Fatalf("paying a pending order: %+v", rep)
		}
		paid = pending
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

// TestATransactionIsAppliedOnceWhileItsOrderChanges: identical requests for
// a transaction that does not pay its order (another amount: an orphan),
// sent at once with the transfer that does pay it. An attempt that finds
// the order paid by then must not refund the transaction to the buyer's
// wallet after another attempt recorded it as an orphan: each transaction
// moves its money once, whatever order the attempts run in.
func TestATransactionIsAppliedOnceWhileItsOrderChanges(t *testing.T) {
	t.Run("one instance", func(t *testing.T) { appliedOnce(t, startEngine(t)) })
	t.Run("two instances", func(t *testing.T) {
		// The service's queue group spreads the requests over both: the
		// claim's lease keeps all but one attempt off the transaction, and
		// the others are answered 409 conflict and sent again.
		a := startEngine(t)
		startEngine(t, func(c *engine.Config) {
			joinEngine(c, a.Engine)
			c.DataDir = filepath.Join(t.TempDir(), "b")
		})
		appliedOnce(t, a)
	})
}

func appliedOnce(t *testing.T, e *testEngine) {
	at := time.Now().UTC().Add(-time.Minute).Truncate(time.Microsecond)
	for round := range 10 {
		o := e.submit(t, fmt.Sprintf("u-m%d", round), "박정민", 3000)
		var wg sync.WaitGroup
		send := func(txn string, amount int64) {
			wg.Go(func() {
				req := api.RecordDepositRequest{BankTxnID: txn, AccountNumber: e.cfg.CollectNumber, DepositorName: o.DepositorName, Amount: amount, DepositedAt: at}
				testenv.CheckFor(t, 20*time.Second, func() error {
					var rep api.RecordDepositReply
					_, err := e.c.Call(ctxT(t), api.DepositRecord.Subject, req, &rep, nil)
					var ae *api.Error
					if errors.As(err, &ae) && ae.Code != "conflict" {
						t.Errorf("%s: %v", txn, err)
						return nil
					}
					return err // a conflict: sent again
				})
			})
		}
		for range 7 {
			send(fmt.Sprintf("MMX-%d", round), 3500) // an orphan, or refunded once the order is paid
		}
		send(fmt.Sprintf("MMY-%d", round), 3000) // pays the order
		wg.Wait()
	}
	rep, err := audit.Verify(ctxT(t), audit.Options{Reader: e.Events.Reader(), Codec: domain.Events(), TempDir: t.TempDir()})
	if err != nil || !rep.OK {
		t.Fatalf("audit verify: %v %+v", err, rep.Findings)
	}
}

// A bank transaction whose claim another attempt holds (one of an instance
// that died while recording it, here) is answered 409 conflict saying how
// long that claim has left, and sent again once it has run out, it is
// recorded.
func TestATransactionAnotherAttemptHoldsSaysWhenToSendItAgain(t *testing.T) {
	e := startEngine(t)
	// The dead attempt took its claim 13.5 s ago: 1.5 s of its lease are left.
	took := time.Now().Add(-reservations.DepositClaimLease + 1500*time.Millisecond)
	names, err := reservations.Open(ctxT(t), e.js, reservations.Config{Now: func() time.Time { return took }})
	if err != nil {
		t.Fatal(err)
	}
	req := api.RecordDepositRequest{BankTxnID: "T-held", AccountNumber: e.cfg.CollectNumber, DepositorName: "모름", Amount: 4000,
		DepositedAt: time.Now().UTC().Add(-time.Minute).Truncate(time.Microsecond)}
	claim, _ := json.Marshal(map[string]any{"bank_txn_id": req.BankTxnID, "account_number": req.AccountNumber, "depositor_name": req.DepositorName,
		"amount": req.Amount, "deposited_at": req.DepositedAt})
	if _, _, err := names.ClaimDeposit(ctxT(t), domain.NewDepositID(req.AccountNumber, req.BankTxnID), claim, "a-dead-attempt"); err != nil {
		t.Fatal(err)
	}
	ce := e.callErr(t, api.DepositRecord.Subject, req, nil)
	if retry, _ := ce.Details["retry_after_s"].(float64); ce.Status != 409 || ce.Code != api.CodeConflict || retry < 1 || retry > 2 {
		t.Fatalf("recording a transaction another attempt holds: %+v, want 409 conflict with retry_after_s 1 or 2", ce)
	}
	testenv.CheckFor(t, 20*time.Second, func() error {
		var rep api.RecordDepositReply
		if _, err := e.c.Call(ctxT(t), api.DepositRecord.Subject, req, &rep, nil); err != nil {
			return err
		}
		if rep.Outcome != domain.OutcomeOrphaned {
			t.Fatalf("recorded once the claim ran out: %+v, want an orphan", rep)
		}
		return nil
	})
}
