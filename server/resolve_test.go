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
	"github.com/bankbook/bankbook/worker"
)

// oneDeadLetter is a dead-letter desk holding one dead letter.
type oneDeadLetter struct {
	noDeadLetters
	dl api.DeadLetter
	// lastRedrive is when its last redrive ended; busy, that one runs now.
	lastRedrive time.Time
	busy        bool
	released    *int
	// lastSend is when the part last made a send the provider may have
	// taken (zero: none), by the clock of the lease stream, which is
	// behind this instance's by behind.
	lastSend time.Time
	behind   time.Duration
	// firstSend is when the part's first send was noted (zero: lastSend).
	firstSend time.Time
	// decidedAt: the payout's failure was decided then, by the lease
	// stream's clock, after its last send (zero: not decided). Nothing is
	// noted after a decision, not even the reading's time.
	decidedAt time.Time
}

func (d oneDeadLetter) Uncertainty(context.Context, string, string) (worker.Uncertainty, error) {
	first := d.firstSend
	if first.IsZero() {
		first = d.lastSend
	}
	if !d.decidedAt.IsZero() {
		return worker.Uncertainty{First: first, LastOpen: d.lastSend, Decided: true, DecidedAt: d.decidedAt}, nil
	}
	return worker.Uncertainty{First: first, LastOpen: d.lastSend, Now: time.Now().Add(-d.behind)}, nil
}

func (d oneDeadLetter) Hold(context.Context, uint64, string, time.Duration) (time.Time, func(), error) {
	if d.busy {
		return time.Time{}, nil, &api.Error{Status: 409, Code: api.CodeDeadLetterBusy, Details: map[string]any{"held_by": "redrive", "retry_after_s": 9}}
	}
	return d.lastRedrive, func() {
		if d.released != nil {
			*d.released++
		}
	}, nil
}

func (d oneDeadLetter) List(context.Context, string, uint64, int) ([]api.DeadLetter, uint64, error) {
	return []api.DeadLetter{d.dl}, 0, nil
}

// An operator records a payout's result only when the provider, asked,
// agrees, unless the payouts part gave up on the payout for good: a dead
// letter kept by a redrive that found the transfer pending is not enough.
// Unknown to the provider counts only a status lag after the part's latest
// send that the provider may have taken.
// Without a provider, or with one that cannot be asked, only force records
// it.
func TestResolvePayoutAsksTheProviderUnlessThePartGaveUpForGood(t *testing.T) {
	h := startCommandPath(t)
	ctx := context.Background()
	provider, providerErr := "pending", error(nil)
	h.srv.cfg.PayoutStatus = func(context.Context, string) (string, error) { return provider, providerErr }
	h.srv.cfg.PayoutStatusLag = time.Minute
	ids := []string{"po-1", "po-2", "po-3", "po-4", "po-5", "po-6", "po-7"}
	for i, id := range ids {
		if _, err := h.srv.cfg.Payouts.Request(ctx, commands.Meta{}, domain.PayoutRequested{PayoutID: domain.PayoutID(id), Amount: 700 + int64(i),
			To: domain.BankAccount{Bank: "KB", Number: "1-2", Holder: "김민수"}, PayFrom: "123-456-789", Source: domain.PayoutFromWallet, SourceID: "u",
			FromAccount: domain.AccountWallet("u"), RequestedAt: time.Now().UTC()}); err != nil {
			t.Fatal(err)
		}
	}
	// deadLetter makes id's dead letter, the part's last send age ago.
	deadLetter := func(id string, permanent bool, age time.Duration) {
		h.srv.cfg.DeadLetters = oneDeadLetter{dl: api.DeadLetter{ID: 1, Part: partPayouts, Permanent: permanent,
			Subject: h.srv.cfg.Events.Subject(eventstore.Ref{Type: domain.AggregatePayout, ID: id}),
			At:      time.Now().UTC().Format(time.RFC3339Nano)}, lastSend: time.Now().Add(-age)}
	}
	resolve := func(id, outcome string, force bool) error {
		_, err := h.srv.resolvePayout(ctx, commands.Meta{Actor: "operator"}, api.ResolvePayoutRequest{PayoutID: id, Outcome: outcome, Reason: "statement", Force: force})
		return err
	}
	inFlight := func(err error) bool { return errors.Is(err, domain.ErrPayoutInFlight) }

	// No dead letter: the part may be sending it.
	if err := resolve("po-1", "failed", false); !inFlight(err) {
		t.Fatalf("without a dead letter: %v", err)
	}
	deadLetter("po-1", false, 0)
	for _, tc := range []struct{ provider, outcome string }{{"pending", "failed"}, {"pending", "settled"}, {"settled", "failed"}, {"failed", "settled"}, {"", "settled"},
		{"", "failed"}} { // unknown, but the last send is younger than the status lag
		provider = tc.provider
		if err := resolve("po-1", tc.outcome, false); !inFlight(err) {
			t.Fatalf("provider %q, outcome %s: %v, want payout_in_flight", tc.provider, tc.outcome, err)
		}
	}
	providerErr = errors.New("provider down")
	if err := resolve("po-1", "failed", false); !inFlight(err) {
		t.Fatalf("a provider that cannot be asked: %v", err)
	}
	providerErr = nil
	// The send 10s ago by the clock that timed it, which is 2m behind this
	// instance's: still within the status lag.
	deadLetter("po-1", false, 0)
	skewed := h.srv.cfg.DeadLetters.(oneDeadLetter)
	skewed.behind = 2 * time.Minute
	skewed.lastSend = time.Now().Add(-skewed.behind - 10*time.Second)
	h.srv.cfg.DeadLetters = skewed
	if err := resolve("po-1", "failed", false); !inFlight(err) {
		t.Fatalf("a send 10s ago by the server's clock, which is behind: %v, want payout_in_flight", err)
	}
	// Every send ended as not taken by the provider, the first 10s ago:
	// counted from that one, as the part counts its refusals.
	deadLetter("po-1", false, 0)
	ended := h.srv.cfg.DeadLetters.(oneDeadLetter)
	ended.lastSend, ended.firstSend = time.Time{}, time.Now().Add(-10*time.Second)
	h.srv.cfg.DeadLetters = ended
	if err := resolve("po-1", "failed", false); !inFlight(err) {
		t.Fatalf("the first send 10s ago, none open: %v, want payout_in_flight", err)
	}
	deadLetter("po-1", false, 2*time.Minute)
	provider = "" // unknown to the provider a status lag on: never sent
	if err := resolve("po-1", "failed", false); err != nil {
		t.Fatalf("failing a payout the provider does not know: %v", err)
	}
	// A failure decided 5s ago (forced by an operator), a send 10s ago:
	// the decision stops later sends, not that one, which may not show
	// at the provider yet.
	deadLetter("po-7", false, 10*time.Second)
	decided := h.srv.cfg.DeadLetters.(oneDeadLetter)
	decided.decidedAt = time.Now().Add(-5 * time.Second)
	h.srv.cfg.DeadLetters = decided
	if err := resolve("po-7", "failed", false); !inFlight(err) {
		t.Fatalf("a decided failure, a send 10s ago: %v, want payout_in_flight", err)
	}
	// The part decided the failure a status lag after its last send, and
	// died before recording it: nothing is left to wait for.
	deadLetter("po-7", false, 2*time.Minute)
	decided = h.srv.cfg.DeadLetters.(oneDeadLetter)
	decided.decidedAt = time.Now().Add(-30 * time.Second)
	h.srv.cfg.DeadLetters = decided
	if err := resolve("po-7", "failed", false); err != nil {
		t.Fatalf("failing a payout whose failure the part decided: %v", err)
	}
	deadLetter("po-2", false, 0)
	provider = "settled"
	if err := resolve("po-2", "settled", false); err != nil {
		t.Fatalf("settling a payout the provider settled: %v", err)
	}
	// Given up for good (another transfer under the ID): the provider's
	// answer is about that one, so it is not asked.
	deadLetter("po-3", true, 0)
	if err := resolve("po-3", "failed", false); err != nil {
		t.Fatalf("failing a payout with a permanent dead letter: %v", err)
	}
	// Unless it was redriven since: the redrive may have sent it, so the
	// provider is asked, and "unknown" counts a status lag after it.
	deadLetter("po-6", true, time.Hour)
	redriven := h.srv.cfg.DeadLetters.(oneDeadLetter)
	redriven.lastRedrive = time.Now()
	h.srv.cfg.DeadLetters = redriven
	for _, p := range []string{"pending", ""} {
		provider = p
		if err := resolve("po-6", "failed", false); !inFlight(err) {
			t.Fatalf("a permanent dead letter redriven since, provider %q: %v, want payout_in_flight", p, err)
		}
	}
	// Not even force fails a payout the provider reports settled: its
	// money left. A provider that cannot be asked leaves it to force.
	deadLetter("po-4", false, time.Hour)
	provider = "settled"
	if err := resolve("po-4", "failed", true); !inFlight(err) {
		t.Fatalf("forcing the failure of a payout the provider settled: %v, want payout_in_flight", err)
	}
	// Nor one the provider does not know yet, a send a moment ago: a
	// status lag may hide it.
	deadLetter("po-4", false, 0)
	provider = ""
	if err := resolve("po-4", "failed", true); !inFlight(err) {
		t.Fatalf("forcing the failure of a payout unknown to the provider a moment after a send: %v, want payout_in_flight", err)
	}
	provider = "settled"
	h.srv.cfg.DeadLetters = noDeadLetters{}
	if err := resolve("po-5", "failed", true); !inFlight(err) {
		t.Fatalf("forcing the failure of a payout the provider settled, no dead letter: %v, want payout_in_flight", err)
	}
	// No provider on this instance: nothing to ask, only force records it.
	h.srv.cfg.PayoutStatus = nil
	deadLetter("po-4", false, time.Hour)
	if err := resolve("po-4", "failed", false); !inFlight(err) {
		t.Fatalf("without a provider to ask: %v", err)
	}
	if err := resolve("po-4", "failed", true); err != nil {
		t.Fatalf("forced: %v", err)
	}
	h.srv.cfg.DeadLetters = noDeadLetters{}
	if err := resolve("po-5", "settled", true); err != nil {
		t.Fatalf("forced without a dead letter: %v", err)
	}
	if p, err := h.srv.cfg.Payouts.Get(ctx, "po-4"); err != nil || p.Reason != "operator (forced): statement" {
		t.Fatalf("forced failure: %+v %v", p, err)
	}
}

// A payout's resolve holds its dead letter while it decides, and releases
// it after: while a redrive of that dead letter runs (it may be sending the
// payout) the resolve is refused, and a redrive counts as the part's last
// attempt for the status lag, however old the dead letter.
func TestResolvePayoutWaitsForARedrive(t *testing.T) {
	h := startCommandPath(t)
	ctx := context.Background()
	h.srv.cfg.PayoutStatus = func(context.Context, string) (string, error) { return "", nil } // unknown to the provider
	h.srv.cfg.PayoutStatusLag = time.Minute
	const id = "po-r"
	if _, err := h.srv.cfg.Payouts.Request(ctx, commands.Meta{}, domain.PayoutRequested{PayoutID: id, Amount: 700,
		To: domain.BankAccount{Bank: "KB", Number: "1-2", Holder: "김민수"}, PayFrom: "123-456-789", Source: domain.PayoutFromWallet, SourceID: "u",
		FromAccount: domain.AccountWallet("u"), RequestedAt: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	released := 0
	dead := oneDeadLetter{dl: api.DeadLetter{ID: 1, Part: partPayouts, Subject: h.srv.cfg.Events.Subject(eventstore.Ref{Type: domain.AggregatePayout, ID: id}),
		At: time.Now().Add(-time.Hour).UTC().Format(time.RFC3339Nano)}, busy: true, released: &released}
	resolve := func() error {
		h.srv.cfg.DeadLetters = dead
		_, err := h.srv.resolvePayout(ctx, commands.Meta{Actor: "operator"}, api.ResolvePayoutRequest{PayoutID: id, Outcome: "failed", Reason: "statement"})
		return err
	}
	var de *domain.Error
	if err := resolve(); !errors.Is(err, domain.ErrPayoutInFlight) || !errors.As(err, &de) || de.Details["retry_after_s"] != 9 {
		t.Fatalf("while a redrive runs: %v, want payout_in_flight with its retry_after_s", err)
	}
	// The redrive ended a moment ago: what it sent may not show yet.
	dead.busy, dead.lastRedrive = false, time.Now().Add(-10*time.Second)
	if err := resolve(); !errors.Is(err, domain.ErrPayoutInFlight) || released != 1 {
		t.Fatalf("right after a redrive: %v (released %d times), want payout_in_flight and the hold released", err, released)
	}
	dead.lastRedrive = time.Now().Add(-2 * time.Minute)
	if err := resolve(); err != nil || released != 2 {
		t.Fatalf("a status lag after the redrive: %v (released %d times)", err, released)
	}
	if p, err := h.srv.cfg.Payouts.Get(ctx, id); err != nil || p.Status != domain.PayoutFailedStatus {
		t.Fatalf("payout: %+v %v", p, err)
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

// The react-money dead letter of a withdrawal is discarded only once the
// payout the debit calls for is recorded: before, the money would stay in
// payouts pending with no payout that anything could send or fail.
func TestWithdrawalDeadLetterIsDiscardedOnlyOnceItsPayoutIsRecorded(t *testing.T) {
	h := startCommandPath(t)
	ctx := context.Background()
	if _, err := h.srv.cfg.Wallets.Credit(ctx, commands.Meta{}, domain.CreditWallet{UserID: "u-w", Amount: 900, Kind: domain.CreditOrphanRefund,
		Ref: "seed", FromAccount: domain.AccountSuspense, Now: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	const id = "po-w"
	to := domain.BankAccount{Bank: "KB", Number: "110123456789", Holder: "김민수"}
	w, err := h.srv.cfg.Wallets.Withdraw(ctx, commands.Meta{}, api.WithdrawRequest{UserID: "u-w", Amount: 700, BankAccount: to, PayoutID: id})
	if err != nil {
		t.Fatal(err)
	}
	h.srv.cfg.DeadLetters = oneDeadLetter{dl: api.DeadLetter{ID: 1, Part: partMoney, Seq: uint64(w.Seq),
		Subject: h.srv.cfg.Events.Subject(eventstore.Ref{Type: domain.AggregateWallet, ID: "u-w"})}}
	if err := h.srv.discardable(ctx, 1); !errors.Is(err, domain.ErrPayoutUnresolved) {
		t.Fatalf("a withdrawal's dead letter, its payout not recorded: %v", err)
	}
	if _, err := h.srv.cfg.Payouts.Request(ctx, commands.Meta{}, domain.PayoutRequested{PayoutID: id, Amount: 700, To: to, PayFrom: "123-456-789",
		Source: domain.PayoutFromWallet, SourceID: "u-w", FromAccount: domain.AccountWallet("u-w"), RequestedAt: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	if err := h.srv.discardable(ctx, 1); err != nil {
		t.Fatalf("once its payout is recorded: %v", err)
	}
}

// The react-money dead letter of an orphan resolved to a wallet is
// discarded only once the wallet holds the money: a resolution whose
// command died before carrying it out, discarded, would leave the money in
// suspense for good.
func TestResolutionDeadLetterIsDiscardedOnlyOnceCarriedOut(t *testing.T) {
	h := startCommandPath(t)
	ctx := context.Background()
	const dep = "dep-r"
	res := domain.DepositResolved{DepositID: dep, Action: domain.ResolveRefundToWallet, UserID: "u-r", Amount: 700, ResolvedAt: time.Now().UTC()}
	ref := eventstore.Ref{Type: domain.AggregateDeposit, ID: dep}
	h.srv.cfg.DeadLetters = oneDeadLetter{dl: api.DeadLetter{ID: 1, Part: partMoney, Seq: uint64(appendAlone(t, h, ref, res)),
		Subject: h.srv.cfg.Events.Subject(ref)}}
	if err := h.srv.discardable(ctx, 1); !errors.Is(err, domain.ErrMoneyUnsettled) {
		t.Fatalf("a resolution not carried out: %v", err)
	}
	if _, err := h.srv.cfg.Deposits.CarryOut(ctx, commands.Meta{}, res); err != nil {
		t.Fatal(err)
	}
	if err := h.srv.discardable(ctx, 1); err != nil {
		t.Fatalf("once carried out: %v", err)
	}
}

// The react-orders dead letter of an order refund is discarded only once
// the buyer's wallet holds the refund: discarded before, nothing would ever
// credit it. A refund of a deposit is credited under the deposit, one of a
// paid amount under the order.
func TestOrderRefundDeadLetterIsDiscardedOnlyOnceCredited(t *testing.T) {
	h := startCommandPath(t)
	ctx := context.Background()
	for _, refund := range []domain.OrderRefunded{
		{OrderID: "ord-r1", BuyerID: "u-o", Amount: 700, FromAccount: domain.AccountPayableOrders},
		{OrderID: "ord-r2", BuyerID: "u-o", DepositID: "dep-o", Amount: 400, FromAccount: domain.AccountPayableOrders},
	} {
		refund.RefundedAt = time.Now().UTC()
		ref := eventstore.Ref{Type: domain.AggregateOrder, ID: string(refund.OrderID)}
		h.srv.cfg.DeadLetters = oneDeadLetter{dl: api.DeadLetter{ID: 1, Part: partOrders, Seq: uint64(appendAlone(t, h, ref, refund)), Subject: h.srv.cfg.Events.Subject(ref)}}
		if err := h.srv.discardable(ctx, 1); !errors.Is(err, domain.ErrMoneyUnsettled) {
			t.Fatalf("%s: a refund not credited: %v", refund.OrderID, err)
		}
		if _, err := h.srv.cfg.Wallets.SettleRefund(ctx, commands.Meta{}, refund); err != nil {
			t.Fatal(err)
		}
		if err := h.srv.discardable(ctx, 1); err != nil {
			t.Fatalf("%s: once credited: %v", refund.OrderID, err)
		}
	}
}

// appendAlone appends ev as the first commit of ref, as a command would
// that then died before the reaction to it: nothing follows it.
func appendAlone(t *testing.T, h *commandPath, ref eventstore.Ref, ev domain.Event) eventstore.Seq {
	t.Helper()
	typ, v, data, err := domain.Events().Encode(ev)
	if err != nil {
		t.Fatal(err)
	}
	id := "died-" + ref.Type + "-" + ref.ID
	c, err := h.srv.cfg.Events.Append(context.Background(), ref, 0, 0, id,
		[]eventstore.Envelope{{EventID: id + "-1", EventType: typ, SchemaVersion: v, OccurredAt: time.Now().UTC(), Data: data}})
	if err != nil {
		t.Fatal(err)
	}
	return c.Seq
}
