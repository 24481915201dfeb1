package server

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/commands"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/worker"
)

// DeadLetters is the work background parts gave up on: listed, redriven
// (handed to its part again) or discarded with a recorded reason. Errors
// that are API errors (*api.Error: 404 dead_letter_not_found, ...) pass
// through as they are.
type DeadLetters interface {
	List(ctx context.Context, part string, after uint64, limit int) ([]api.DeadLetter, uint64, error)
	Get(ctx context.Context, id uint64) (api.DeadLetter, error)
	Redrive(ctx context.Context, id uint64) (api.DeadLetter, error)
	Discard(ctx context.Context, id uint64, reason string) (api.DeadLetter, error)
	// Hold takes a lease on dead letter id for holder's decision about its
	// work, for at most d, so that no redrive of it runs meanwhile: refused
	// (409 dead_letter_busy) while a redrive holds it. It returns when the
	// dead letter's last redrive ended (zero: never redriven; what that
	// redrive started may show only after it) and a func that ends the
	// lease.
	Hold(ctx context.Context, id uint64, holder string, d time.Duration) (lastRedrive time.Time, release func(), err error)
	// Uncertainty is what part noted of its work on key whose outcome may
	// be unknown (a payout's sends), with the time it was read, all by the
	// clock that times the leases.
	Uncertainty(ctx context.Context, part, key string) (worker.Uncertainty, error)
	// Decide notes that part does no more work on key, for reason, if
	// nothing was noted since u was read (else worker.ErrNotedSince); it
	// returns the reason decided, another's if one decided first
	// (worker.DeadLetters.Decide).
	Decide(ctx context.Context, part, key string, u worker.Uncertainty, reason string) (string, error)
}

func (s *Server) deadLetters(ctx context.Context, q api.DeadLettersRequest) (api.DeadLettersReply, error) {
	var after uint64
	if q.Cursor != "" {
		var err error
		if after, err = strconv.ParseUint(q.Cursor, 10, 64); err != nil {
			return api.DeadLettersReply{}, badRequest(api.CodeInvalidInput, "cursor: not a cursor this query handed out", map[string]any{"field": "cursor"})
		}
	}
	list, next, err := s.cfg.DeadLetters.List(ctx, q.Part, after, q.PageLimit())
	if err != nil {
		return api.DeadLettersReply{}, err
	}
	rep := api.DeadLettersReply{DeadLetters: list}
	if rep.DeadLetters == nil {
		rep.DeadLetters = []api.DeadLetter{}
	}
	if next != 0 {
		rep.NextCursor = strconv.FormatUint(next, 10)
	}
	return rep, nil
}

func (s *Server) redriveDeadLetter() commandSpec[api.DeadLetterRequest, api.DeadLetterReply] {
	return commandSpec[api.DeadLetterRequest, api.DeadLetterReply]{
		exec: func(ctx context.Context, meta commands.Meta, req api.DeadLetterRequest) (api.DeadLetterReply, error) {
			if req.Reason != "" {
				return api.DeadLetterReply{}, badRequest(api.CodeInvalidInput, "reason: only a discard takes a reason", map[string]any{"field": "reason"})
			}
			dl, err := s.cfg.DeadLetters.Redrive(worker.WithActor(ctx, meta.Actor), req.ID)
			return api.DeadLetterReply{DeadLetter: dl, Status: "redriven"}, err
		},
	}
}

func (s *Server) discardDeadLetter() commandSpec[api.DeadLetterRequest, api.DeadLetterReply] {
	return commandSpec[api.DeadLetterRequest, api.DeadLetterReply]{
		exec: func(ctx context.Context, meta commands.Meta, req api.DeadLetterRequest) (api.DeadLetterReply, error) {
			if strings.TrimSpace(req.Reason) == "" {
				return api.DeadLetterReply{}, badRequest(api.CodeInvalidInput, "reason: is required to set work aside", map[string]any{"field": "reason"})
			}
			if err := s.discardable(ctx, req.ID); err != nil {
				return api.DeadLetterReply{}, err
			}
			dl, err := s.cfg.DeadLetters.Discard(worker.WithActor(ctx, meta.Actor), req.ID, req.Reason)
			return api.DeadLetterReply{DeadLetter: dl, Status: "discarded"}, err
		},
	}
}

// discardable refuses to discard the dead letter of a payout that is still
// requested, or failed with its money not back at its source yet: nothing
// would then ever move that money, which would stay in payouts pending. Its
// result is recorded first (payout.resolve), and its money returned.
func (s *Server) discardable(ctx context.Context, id uint64) error {
	dl, err := s.cfg.DeadLetters.Get(ctx, id)
	if err != nil {
		return err
	}
	if dl.Part == partMoney || dl.Part == partOrders {
		return s.reactionCarriedOut(ctx, dl)
	}
	payout, ok := strings.CutPrefix(dl.Subject, s.cfg.Events.Subject(eventstore.Ref{Type: domain.AggregatePayout}))
	if (dl.Part != partPayouts && dl.Part != partPayoutReturns) || !ok {
		return nil
	}
	p, err := s.cfg.Payouts.Get(ctx, domain.PayoutID(payout))
	if err != nil {
		return err
	}
	switch p.Status {
	case domain.PayoutRequestedStatus:
		return domain.ErrPayoutUnresolved.With("", map[string]any{"payout_id": payout})
	case domain.PayoutFailedStatus:
		back, err := s.moneyBack(ctx, p)
		if err != nil {
			return err
		}
		if !back {
			return domain.ErrPayoutUnresolved.With("the payout failed, but its money is not back at its source yet: redrive its react-payouts dead letter once what stops the return is mended", map[string]any{"payout_id": payout})
		}
	}
	return nil
}

// reactionCarriedOut refuses to discard the dead letter of a reactor
// (react-money, react-orders) whose commit's money has not gone where it
// must while nothing else would move it:
//   - a wallet debited for a withdrawal, or an orphan resolved to a refund
//     to the bank, whose payout is not recorded: the money would stay in
//     payouts pending with no payout that anything could send, fail or
//     resolve (payout_unresolved);
//   - an orphan resolved to a wallet or an order whose money is still in
//     suspense, or an order refunded to its buyer's wallet that does not
//     hold the refund yet: the money would stay where it waits
//     (money_unsettled).
//
// Redriving the dead letter does what it calls for, once. A commit that
// cannot be read any more calls for nothing.
func (s *Server) reactionCarriedOut(ctx context.Context, dl api.DeadLetter) error {
	events, err := s.deadLetterEvents(ctx, dl)
	if err != nil {
		return err
	}
	for _, ev := range events {
		var payout domain.PayoutID
		switch e := ev.(type) {
		case domain.WalletDebited:
			payout = e.PayoutID
		case domain.DepositResolved:
			if e.Action == domain.ResolveRefundToBank {
				payout = e.PayoutID
				break
			}
			done, err := s.resolvedCarriedOut(ctx, e)
			if err != nil {
				return err
			}
			if !done {
				return domain.ErrMoneyUnsettled.With("", map[string]any{"deposit_id": string(e.DepositID)})
			}
		case domain.OrderRefunded:
			credit := e.WalletCredit(time.Time{})
			done, err := s.walletCredited(ctx, credit.UserID, credit.Ref)
			if err != nil {
				return err
			}
			if !done {
				return domain.ErrMoneyUnsettled.With("the order's refund is not credited to its buyer's wallet yet: redrive this dead letter once what stops it is mended, or the money never reaches the buyer",
					map[string]any{"order_id": string(e.OrderID), "user_id": string(e.BuyerID)})
			}
		}
		if payout == "" {
			continue
		}
		p, err := s.cfg.Payouts.Get(ctx, payout)
		if err != nil {
			return err
		}
		if p.Version == 0 {
			return domain.ErrPayoutUnresolved.With("the commit calls for a payout that is not recorded yet: redrive this dead letter once what stops it is mended", map[string]any{"payout_id": string(payout)})
		}
	}
	return nil
}

// walletCredited reports whether user's wallet holds a credit for ref.
func (s *Server) walletCredited(ctx context.Context, user domain.UserID, ref string) (bool, error) {
	w, err := s.cfg.Wallets.Get(ctx, user)
	return w.Credited(ref), err
}

// deadLetterEvents returns the events of dead letter dl's commit; none
// when the commit cannot be read any more (gone, damaged, or holding an
// event no handler can read): such a commit calls for nothing.
func (s *Server) deadLetterEvents(ctx context.Context, dl api.DeadLetter) ([]domain.Event, error) {
	c, err := s.cfg.Events.Get(ctx, eventstore.Seq(dl.Seq))
	var damaged *eventstore.DamagedError
	if errors.Is(err, eventstore.ErrNoMessage) || errors.As(err, &damaged) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	codec := domain.Events()
	events := make([]domain.Event, 0, len(c.Events))
	for _, env := range c.Events {
		ev, err := codec.Decode(env.EventType, env.SchemaVersion, env.Data)
		if err != nil {
			return nil, nil
		}
		events = append(events, ev)
	}
	return events, nil
}

// resolvedCarriedOut reports whether orphan resolution e (to a wallet or
// an order) was carried out (commands.Deposits.CarryOut): the wallet
// credited for the deposit, or the order holding it; an order that changed
// since sends the money to its buyer's wallet instead.
func (s *Server) resolvedCarriedOut(ctx context.Context, e domain.DepositResolved) (bool, error) {
	if e.Action == domain.ResolveRefundToWallet {
		return s.walletCredited(ctx, e.UserID, string(e.DepositID))
	}
	if e.OrderID == "" {
		return true, nil // nothing to carry it to
	}
	o, err := s.cfg.Orders.Get(ctx, e.OrderID)
	if err != nil || slices.Contains(o.DepositIDs, e.DepositID) {
		return err == nil, err
	}
	return s.walletCredited(ctx, o.BuyerID, string(e.DepositID))
}

// moneyBack reports whether failed payout p's money is back at its source:
// its wallet credited with the reversal, or its deposit reopened (no longer
// resolved by this payout).
func (s *Server) moneyBack(ctx context.Context, p domain.Payout) (bool, error) {
	switch p.Source {
	case domain.PayoutFromWallet:
		return s.walletCredited(ctx, domain.UserID(p.SourceID), domain.ReversalRef(p.ID))
	case domain.PayoutFromDeposit:
		d, err := s.cfg.Deposits.Get(ctx, domain.DepositID(p.SourceID))
		return d.Resolution != domain.ResolveRefundToBank || d.PayoutID != p.ID, err
	}
	return true, nil
}
