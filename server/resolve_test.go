package server

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/commands"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
)

// oneDeadLetter is a dead-letter desk holding one dead letter.
type oneDeadLetter struct {
	noDeadLetters
	dl api.DeadLetter
}

func (d oneDeadLetter) List(context.Context, string, uint64, int) ([]api.DeadLetter, uint64, error) {
	return []api.DeadLetter{d.dl}, 0, nil
}

// An operator records a payout's result only when the provider, asked,
// agrees, unless the payouts part gave up on the payout for good: a dead
// letter kept by a redrive that found the transfer pending is not enough.
func TestResolvePayoutAsksTheProviderUnlessThePartGaveUpForGood(t *testing.T) {
	h := startCommandPath(t)
	ctx := context.Background()
	provider := "pending"
	h.srv.cfg.PayoutStatus = func(context.Context, string) (string, error) { return provider, nil }
	for i, id := range []string{"po-1", "po-2", "po-3"} {
		if _, err := h.srv.cfg.Payouts.Request(ctx, commands.Meta{}, domain.PayoutRequested{PayoutID: domain.PayoutID(id), Amount: 700 + int64(i),
			To: domain.BankAccount{Bank: "KB", Number: "1-2", Holder: "김민수"}, PayFrom: "123-456-789", Source: domain.PayoutFromWallet, SourceID: "u",
			FromAccount: domain.AccountWallet("u"), RequestedAt: time.Now().UTC()}); err != nil {
			t.Fatal(err)
		}
	}
	deadLetter := func(id string, permanent bool) {
		h.srv.cfg.DeadLetters = oneDeadLetter{dl: api.DeadLetter{ID: 1, Part: partPayouts, Permanent: permanent,
			Subject: h.srv.cfg.Events.Subject(eventstore.Ref{Type: domain.AggregatePayout, ID: id})}}
	}
	resolve := func(id, outcome string) error {
		_, err := h.srv.resolvePayout(ctx, commands.Meta{Actor: "operator"}, api.ResolvePayoutRequest{PayoutID: id, Outcome: outcome, Reason: "statement"})
		return err
	}
	inFlight := func(err error) bool { return errors.Is(err, domain.ErrPayoutInFlight) }

	// No dead letter: the part may be sending it.
	if err := resolve("po-1", "failed"); !inFlight(err) {
		t.Fatalf("without a dead letter: %v", err)
	}
	deadLetter("po-1", false)
	for _, tc := range []struct{ provider, outcome string }{{"pending", "failed"}, {"pending", "settled"}, {"settled", "failed"}, {"failed", "settled"}, {"", "settled"}} {
		provider = tc.provider
		if err := resolve("po-1", tc.outcome); !inFlight(err) {
			t.Fatalf("provider %q, outcome %s: %v, want payout_in_flight", tc.provider, tc.outcome, err)
		}
	}
	provider = "" // unknown to the provider: never sent
	if err := resolve("po-1", "failed"); err != nil {
		t.Fatalf("failing a payout the provider does not know: %v", err)
	}
	deadLetter("po-2", false)
	provider = "settled"
	if err := resolve("po-2", "settled"); err != nil {
		t.Fatalf("settling a payout the provider settled: %v", err)
	}
	// Given up for good (another transfer under the ID): the provider's
	// answer is about that one, so it is not asked.
	deadLetter("po-3", true)
	provider = "settled"
	if err := resolve("po-3", "failed"); err != nil {
		t.Fatalf("failing a payout with a permanent dead letter: %v", err)
	}
}

func (d oneDeadLetter) Get(context.Context, uint64) (api.DeadLetter, error) { return d.dl, nil }

// A payout's dead letter is discarded only once nothing is left to do for
// its money: not while the payout is requested, nor while a failed payout's
// money is not back in its wallet.
func TestPayoutDeadLetterIsDiscardedOnlyOnceItsMoneyIsSettled(t *testing.T) {
	h := startCommandPath(t)
	ctx := context.Background()
	const id = "po-d"
	if _, err := h.srv.cfg.Payouts.Request(ctx, commands.Meta{}, domain.PayoutRequested{PayoutID: id, Amount: 700,
		To: domain.BankAccount{Bank: "KB", Number: "1-2", Holder: "김민수"}, PayFrom: "123-456-789", Source: domain.PayoutFromWallet, SourceID: "u",
		FromAccount: domain.AccountWallet("u"), RequestedAt: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	h.srv.cfg.DeadLetters = oneDeadLetter{dl: api.DeadLetter{ID: 1, Part: partPayouts,
		Subject: h.srv.cfg.Events.Subject(eventstore.Ref{Type: domain.AggregatePayout, ID: id})}}
	if err := h.srv.discardable(ctx, 1); !errors.Is(err, domain.ErrPayoutUnresolved) {
		t.Fatalf("a requested payout's dead letter: %v", err)
	}
	if _, err := h.srv.cfg.Payouts.RecordResult(ctx, commands.Meta{}, id, domain.PayoutFailed{PayoutID: id, Reason: "account_closed", FailedAt: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	if err := h.srv.discardable(ctx, 1); !errors.Is(err, domain.ErrPayoutUnresolved) {
		t.Fatalf("a failed payout's dead letter before its money is back: %v", err)
	}
	if _, err := h.srv.cfg.Wallets.Credit(ctx, commands.Meta{}, domain.CreditWallet{UserID: "u", Amount: 700, Kind: domain.CreditPayoutReversal,
		Ref: domain.ReversalRef(id), FromAccount: domain.AccountPayoutsPending, Now: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	if err := h.srv.discardable(ctx, 1); err != nil {
		t.Fatalf("a failed payout's dead letter once its money is back: %v", err)
	}
}
