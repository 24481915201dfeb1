package server_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/internal/testenv"
)

// TestWalletGetAnswersPagesOfALongHistory: a wallet with 10,000 movements
// (over 1 MiB of entries, past NATS's max payload) still answers
// bankbook.q.wallet.get: one page, oldest first, with next_cursor; the pages
// together list every movement once and add up to the balance.
func TestWalletGetAnswersPagesOfALongHistory(t *testing.T) {
	e := startEngine(t)
	const n = 10_000
	const user = "u-big"
	ref := eventstore.Ref{Type: domain.AggregateWallet, ID: user}
	codec := domain.Events()
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	var last eventstore.Seq
	for i := range n {
		ev := domain.WalletCredited{UserID: user, Amount: int64(1000 + i), Kind: domain.CreditOrphanRefund,
			Ref: fmt.Sprintf("deposit:dep_%036d", i), FromAccount: domain.AccountSuspense, CreditedAt: at.Add(time.Duration(i) * time.Second)}
		typ, v, data, err := codec.Encode(ev)
		if err != nil {
			t.Fatal(err)
		}
		c, err := e.Events.Append(context.Background(), ref, last, i, fmt.Sprintf("commit-%d", i),
			[]eventstore.Envelope{{EventID: fmt.Sprintf("event-%d", i), EventType: typ, SchemaVersion: v, OccurredAt: ev.CreditedAt, Data: data}})
		if err != nil {
			t.Fatalf("append movement %d: %v", i, err)
		}
		last = c.Seq
	}
	testenv.Eventually(t, 60*time.Second, "read models at the last movement", func() bool { return e.Runner.Checkpoint() >= last })

	var first api.WalletView
	e.call(t, subjWallet, map[string]any{"user_id": user}, &first, nil)
	wantBalance := int64(n*1000 + n*(n-1)/2)
	if first.Balance != wantBalance || len(first.Entries) != 50 || first.NextCursor == "" || first.Seq != api.Seq(last) {
		t.Fatalf("first page: balance %d, %d entries, next %q, seq %d; want %d, 50 entries, a cursor, seq %d",
			first.Balance, len(first.Entries), first.NextCursor, first.Seq, wantBalance, last)
	}

	var sum int64
	seen, cursor := 0, ""
	for {
		var page api.WalletView
		e.call(t, subjWallet, map[string]any{"user_id": user, "limit": 500, "cursor": cursor}, &page, nil)
		for _, en := range page.Entries {
			if want := fmt.Sprintf("deposit:dep_%036d", seen); en.Ref != want {
				t.Fatalf("movement %d is %s, want %s (oldest first, each once)", seen, en.Ref, want)
			}
			sum += en.Amount
			seen++
		}
		if page.NextCursor == "" {
			break
		}
		if len(page.Entries) != 500 {
			t.Fatalf("a page before the last has %d entries, want 500", len(page.Entries))
		}
		cursor = page.NextCursor
	}
	if seen != n || sum != wantBalance {
		t.Fatalf("the pages list %d movements adding up to %d; want %d adding up to %d", seen, sum, n, wantBalance)
	}

	if ce := e.callErr(t, subjWallet, map[string]any{"user_id": user, "cursor": "not-hex"}, nil); ce.Status != 400 {
		t.Fatalf("a bad cursor: %d %s, want 400", ce.Status, ce.Code)
	}
	if ce := e.callErr(t, subjWallet, map[string]any{"user_id": user, "limit": 501}, nil); ce.Status != 400 || ce.Code != "invalid_input" {
		t.Fatalf("limit 501: %d %s, want 400 invalid_input", ce.Status, ce.Code)
	}
}

// TestConcurrentWithdrawalsFromOneWalletAllSucceed: 200 withdrawals sent at
// once from one wallet that can pay them all are all accepted (none answers
// 409 conflict: commands on one wallet take turns in the engine), and the
// wallet ends where the ledger says, never below zero.
func TestConcurrentWithdrawalsFromOneWalletAllSucceed(t *testing.T) {
	e, bk := moneyEngine(t)
	const n, amount = 200, 1000
	fund(t, e, bk, "u-hot", "한지민", n*amount+500)
	var mu sync.Mutex
	var last api.Seq
	failures := map[string]int{}
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			var rep api.WithdrawReply
			_, err := e.c.Call(ctxT(t), subjWithdraw, map[string]any{"user_id": "u-hot", "amount": amount, "bank_account": payee}, &rep, nil)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failures[err.Error()]++
				return
			}
			last = max(last, rep.Seq)
		})
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("withdrawals refused: %v", failures)
	}
	var w api.WalletView
	e.call(t, subjWallet, map[string]any{"user_id": "u-hot", "min_seq": last, "limit": 500}, &w, nil)
	if w.Balance != 500 || len(w.Entries) != n+1 {
		t.Fatalf("wallet after %d withdrawals: balance %d, %d movements; want 500 and %d", n, w.Balance, len(w.Entries), n+1)
	}
	ce := e.callErr(t, subjWithdraw, map[string]any{"user_id": "u-hot", "amount": amount, "bank_account": payee}, nil)
	if ce.Status != 422 || ce.Code != "insufficient_funds" {
		t.Fatalf("one more withdrawal: %d %s, want 422 insufficient_funds", ce.Status, ce.Code)
	}
	if bal := e.balanced(t)[domain.AccountWallet("u-hot")]; bal != -500 {
		t.Fatalf("ledger %s: %d, want -500", domain.AccountWallet("u-hot"), bal)
	}
}
