package server

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/commands"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/worker"
)

// found turns a read model's lookup (view, ok, err) into a query's answer:
// the view, or nf naming the missing ID (field: id) when it was not found.
func found[V any](view V, ok bool, err error, nf *domain.Error, field, id string) (V, error) {
	if err == nil && !ok {
		err = nf.With("", map[string]any{field: id})
	}
	return view, err
}

func (s *Server) orphans(_ context.Context, q api.PageRequest) (api.OrphansReply, error) {
	deps, next, err := s.cfg.ReadModels.Orphans(q.PageLimit(), q.Cursor)
	return api.OrphansReply{Deposits: deps, NextCursor: next}, err
}

func (s *Server) getDeposit(_ context.Context, q api.DepositRequest) (api.OrphanView, error) {
	view, ok, err := s.cfg.ReadModels.Deposit(q.DepositID)
	return found(view, ok, err, domain.ErrDepositNotFound, "deposit_id", q.DepositID)
}

func (s *Server) getWallet(_ context.Context, q api.WalletRequest) (api.WalletView, error) {
	return s.cfg.ReadModels.Wallet(q.UserID, q.PageLimit(), q.Cursor)
}

func (s *Server) getPayout(_ context.Context, q api.PayoutRequest) (api.PayoutView, error) {
	view, ok, err := s.cfg.ReadModels.Payout(q.PayoutID)
	return found(view, ok, err, domain.ErrPayoutNotFound, "payout_id", q.PayoutID)
}

func (s *Server) trialBalance(_ context.Context, q api.TrialBalanceRequest) (api.TrialBalanceReply, error) {
	accounts, total, asOf, next, err := s.cfg.ReadModels.TrialBalance(q.PageLimit(), q.Cursor)
	return api.TrialBalanceReply{Accounts: accounts, Total: total, AsOfSeq: api.Seq(asOf), NextCursor: next}, err
}

func (s *Server) ledgerAccount(_ context.Context, q api.LedgerAccountRequest) (api.LedgerAccountReply, error) {
	bal, entries, next, err := s.cfg.ReadModels.Account(q.Account, q.PageLimit(), q.Cursor)
	return api.LedgerAccountReply{Account: q.Account, Balance: bal, Entries: entries, NextCursor: next}, err
}

// BankSim is the simulated bank (bankfeed.SimBank) behind bankbook.sim.bank.transfer.
type BankSim interface {
	Transfer(depositorName string, amount int64, account string) (txnID string, depositedAt time.Time, err error)
}

func (s *Server) simTransfer(_ context.Context, q api.SimTransferRequest) (api.SimTransferReply, error) {
	account := q.AccountNumber
	if account == "" {
		account = s.cfg.Deposits.Config().CollectAccount.Number
	}
	id, at, err := s.cfg.BankSim.Transfer(q.DepositorName, q.Amount, account)
	if err != nil {
		return api.SimTransferReply{}, badRequest(api.CodeInvalidInput, err.Error(), nil)
	}
	return api.SimTransferReply{BankTxnID: id, DepositedAt: domain.FormatTime(at), Scanned: s.cfg.Deposits.Scanned(account)}, nil
}

// payoutPlan is the plan of commands that create a payout: its ID.
type payoutPlan struct {
	PayoutID string `json:"payout_id"`
}

func (s *Server) planPayout(id *string) (json.RawMessage, bool) {
	generated := *id == ""
	if generated {
		*id = "po_" + s.cfg.Wallets.NewID()
	}
	b, _ := json.Marshal(payoutPlan{PayoutID: *id})
	return b, generated
}

func resumePayout(id *string, raw json.RawMessage) error {
	var p payoutPlan
	if err := json.Unmarshal(raw, &p); err != nil {
		return errors.New("idempotency plan unreadable")
	}
	*id = p.PayoutID
	return nil
}

func (s *Server) withdraw() commandSpec[api.WithdrawRequest, api.WithdrawReply] {
	return commandSpec[api.WithdrawRequest, api.WithdrawReply]{
		plan:   func(req *api.WithdrawRequest) (json.RawMessage, bool) { return s.planPayout(&req.PayoutID) },
		resume: func(req *api.WithdrawRequest, raw json.RawMessage) error { return resumePayout(&req.PayoutID, raw) },
		exec:   s.cfg.Wallets.Withdraw,
	}
}

func (s *Server) resolveDeposit() commandSpec[api.ResolveDepositRequest, api.ResolveDepositReply] {
	return commandSpec[api.ResolveDepositRequest, api.ResolveDepositReply]{
		plan: func(req *api.ResolveDepositRequest) (json.RawMessage, bool) {
			if req.Action != domain.ResolveRefundToBank {
				return nil, false
			}
			return s.planPayout(&req.PayoutID)
		},
		resume: func(req *api.ResolveDepositRequest, raw json.RawMessage) error {
			if len(raw) == 0 {
				return nil
			}
			return resumePayout(&req.PayoutID, raw)
		},
		exec: s.cfg.Deposits.ResolveDeposit,
	}
}

// resolvePayout records an operator's result for a payout still requested
// only once the payouts part has given up on it (a dead letter of its
// commit): before, a send may be under way, and the provider could still
// pay a payout recorded failed (the money out and back) or fail one
// recorded settled (the money never sent). A dead letter kept by a redrive
// that ended in a wait (the transfer pending) is not enough: unless the
// part gave up for good (a permanent dead letter: the provider holds
// another transfer under the ID) and no redrive ran since, the provider
// must report the outcome asked, or, for a failure, not know the payout a
// status lag after the part's first send, the latest time a send it may
// have taken could have reached it, and the last redrive (a transfer
// accepted a moment before may not show yet), by the NATS server's clock.
// An instance without a provider cannot ask. Force skips these checks, but
// not a redrive running: no result is recorded over a send under way.
func (s *Server) resolvePayout(ctx context.Context, meta commands.Meta, req api.ResolvePayoutRequest) (api.ResolvePayoutReply, error) {
	if err := req.Validate(); err != nil {
		return api.ResolvePayoutReply{}, err
	}
	p, err := s.cfg.Payouts.Get(ctx, domain.PayoutID(req.PayoutID))
	if err != nil {
		return api.ResolvePayoutReply{}, err
	}
	if p.Status == domain.PayoutRequestedStatus {
		release, err := s.payoutResolvable(ctx, req)
		if err != nil {
			return api.ResolvePayoutReply{}, err
		}
		defer release()
	}
	return s.cfg.Payouts.Resolve(ctx, meta, req)
}

// payoutResolveHold bounds how long a payout's resolve holds its dead
// letter (no redrive of it starts meanwhile).
const payoutResolveHold = 30 * time.Second

// payoutResolvable is resolvePayout's check of a payout still requested.
// While the check and the record that follows it run, the payout's dead
// letter is held (DeadLetters.Hold), so no redrive sends the payout
// meanwhile; release ends that. Force skips the checks, not the hold nor,
// for a failure, a send under way (decideForcedFailure): it answers for the
// provider, not for a send under way.
func (s *Server) payoutResolvable(ctx context.Context, req api.ResolvePayoutRequest) (release func(), _ error) {
	dl, dead, err := s.deadLetterOf(ctx, partPayouts, s.cfg.Events.Subject(eventstore.Ref{Type: domain.AggregatePayout, ID: req.PayoutID}))
	switch {
	case err != nil:
		return nil, err
	case !dead && req.Force:
		if err := s.decideForcedFailure(ctx, req); err != nil {
			return nil, err
		}
		return func() {}, s.providerPaid(ctx, req, time.Time{})
	case !dead:
		return nil, payoutInFlight(req, "the payouts part is still working on the payout: no dead letter of its work", map[string]any{})
	}
	lastRedrive, release, err := s.cfg.DeadLetters.Hold(ctx, dl.ID, "payout.resolve", payoutResolveHold)
	var ae *api.Error
	switch {
	case errors.As(err, &ae) && ae.Code == api.CodeDeadLetterBusy:
		// Not even force records over it.
		msg := "another resolve of the payout is deciding now"
		if ae.Details["held_by"] == worker.HolderRedrive {
			msg = "its dead letter is being redriven: the payouts part may be sending it now"
		}
		return nil, domain.ErrPayoutInFlight.With(msg+"; try again once it ends", map[string]any{"payout_id": req.PayoutID, "retry_after_s": ae.Details["retry_after_s"]})
	case errors.As(err, &ae) && ae.Code == "dead_letter_not_found":
		return nil, payoutInFlight(req, "its dead letter was redriven or discarded just now: look at the payout again", map[string]any{})
	case err != nil:
		return nil, err
	}
	if req.Force {
		// Given up for good, the provider holds another transfer under the
		// payout's ID: its status is that transfer's.
		if dl.Permanent && lastRedrive.IsZero() {
			return release, nil
		}
		if err := s.providerPaid(ctx, req, lastRedrive); err != nil {
			release()
			return nil, err
		}
		return release, nil
	}
	if err := s.payoutKnown(ctx, req, dl, lastRedrive); err != nil {
		release()
		return nil, err
	}
	return release, nil
}

// providerPaid refuses a forced failure of a payout that the provider,
// asked, reports settled: its money left (a send before the failure was
// decided, whose instance died before it recorded the result), and
// failing it would send the money back a second time. One the provider
// does not know is refused too until that counts (unknownWait: a status
// lag after the last send it may have taken, as the part waits; the last
// redrive is lastRedrive, zero for none). A provider that cannot be asked,
// or reports the payout pending or failed, leaves it to the operator's
// force.
func (s *Server) providerPaid(ctx context.Context, req api.ResolvePayoutRequest, lastRedrive time.Time) error {
	if req.Outcome != string(domain.PayoutFailedStatus) || s.cfg.PayoutStatus == nil {
		return nil
	}
	status, err := s.cfg.PayoutStatus(ctx, req.PayoutID)
	switch {
	case err != nil:
		return nil
	case status == string(domain.PayoutSettledStatus):
		return domain.ErrPayoutInFlight.With("the provider reports the payout settled: its money left, and not even force fails it; the payouts part records the settlement (or resolve it settled)",
			map[string]any{"payout_id": req.PayoutID, "provider_status": status})
	case status == "":
		wait, err := s.unknownWait(ctx, req, lastRedrive)
		if err != nil {
			return err
		}
		if wait > 0 {
			return domain.ErrPayoutInFlight.With("the provider does not know the payout yet, but a send it took may not show for a while: not even force fails it until then",
				map[string]any{"payout_id": req.PayoutID, "provider_status": status, "retry_after_s": retryAfterSeconds(wait)})
		}
	}
	return nil
}

// notedJustNow is a resolve's answer when the payouts part's notes of the
// payout changed while it read or decided them (a send noted, another
// resolve deciding): 409 payout_in_flight, to try again.
func notedJustNow(req api.ResolvePayoutRequest) error {
	return domain.ErrPayoutInFlight.With("the payouts part or another resolve noted the payout just now: try again",
		map[string]any{"payout_id": req.PayoutID, "retry_after_s": 1})
}

// decideForcedFailure is a forced resolve's step for a payout the payouts part
// still works on (no dead letter). The failure is decided in the part's
// notes first, as the part decides its own (ADR 0014): no send of the
// payout starts after it (the part records the failure itself at its next
// attempt), and none was noted since the notes were read. Then, while a
// send made before may still reach the provider (worker.Uncertainty.LastOpen
// after now, by the NATS server's clock), nothing is recorded: a payout
// recorded failed that the provider then pays would be paid twice. That
// send either settles the payout, or ends and the failure stands. A forced
// settlement needs neither: a send after it repeats a transfer the
// provider took under the same ID.
func (s *Server) decideForcedFailure(ctx context.Context, req api.ResolvePayoutRequest) error {
	if req.Outcome != string(domain.PayoutFailedStatus) {
		return nil
	}
	u, err := s.cfg.DeadLetters.Uncertainty(ctx, partPayouts, req.PayoutID)
	if errors.Is(err, worker.ErrNoteContention) {
		return notedJustNow(req)
	}
	if err != nil {
		return fmt.Errorf("payout %s: reading the payouts part's sends: %w", req.PayoutID, err)
	}
	_, err = s.cfg.DeadLetters.Decide(ctx, partPayouts, req.PayoutID, u, "operator (forced): "+strings.TrimSpace(req.Reason))
	if errors.Is(err, worker.ErrNotedSince) {
		return notedJustNow(req)
	}
	if err != nil {
		return fmt.Errorf("payout %s: deciding its failure in the payouts part's notes: %w", req.PayoutID, err)
	}
	if wait := u.LastOpen.Sub(u.ServerNow(time.Now())); wait > 0 {
		return domain.ErrPayoutInFlight.With("the failure is decided: no send of the payout starts any more, and the payouts part records it at its next attempt; "+
			"but a send made before may still reach the provider, and settle the payout instead: not even force records a result over it; try again once it ends",
			map[string]any{"payout_id": req.PayoutID, "retry_after_s": retryAfterSeconds(wait)})
	}
	return nil
}

// payoutInFlight refuses to record req's outcome while the payout's
// transfer may be live at the provider; force would record it anyway.
func payoutInFlight(req api.ResolvePayoutRequest, msg string, details map[string]any) error {
	details["payout_id"] = req.PayoutID
	return domain.ErrPayoutInFlight.With(msg+" (force records it anyway)", details)
}

// payoutKnown checks, for payoutResolvable, that the outcome asked is
// what the provider knows of the payout dl gave up on: no check when it
// gave up for good (the provider holds another transfer under the ID) and
// no redrive has run since (one may have sent the payout);
// else the provider must report that outcome, or, for a failure, not know
// the payout a status lag after the part's first send, the latest time a
// send of it may have been taken, and the last redrive (lastRedrive),
// whichever is latest.
func (s *Server) payoutKnown(ctx context.Context, req api.ResolvePayoutRequest, dl api.DeadLetter, lastRedrive time.Time) error {
	switch {
	case dl.Permanent && lastRedrive.IsZero():
		return nil
	case s.cfg.PayoutStatus == nil:
		return payoutInFlight(req, "this instance has no firm-banking provider to ask for the payout's status", map[string]any{})
	}
	status, err := s.cfg.PayoutStatus(ctx, req.PayoutID)
	if err != nil {
		return payoutInFlight(req, "the provider could not be asked for the payout's status: "+err.Error(), map[string]any{})
	}
	if status != req.Outcome && (req.Outcome != string(domain.PayoutFailedStatus) || status != "") {
		return payoutInFlight(req, "the provider reports the payout "+cmp.Or(status, "unknown")+", not "+req.Outcome, map[string]any{"provider_status": status})
	}
	if status == "" {
		wait, err := s.unknownWait(ctx, req, lastRedrive)
		if err != nil {
			return err
		}
		if wait > 0 {
			return payoutInFlight(req, "the provider does not know the payout yet, but a transfer accepted by the part's last attempt may not show for a while", map[string]any{"provider_status": status, "retry_after_s": retryAfterSeconds(wait)})
		}
	}
	return nil
}

// unknownWait is how long a payout the provider does not know must still
// wait before that counts: a status lag after the part's first send, the
// latest time a send may have been taken, and the last redrive
// (lastRedrive; zero: none), as the part counts its refusals
// (process.refusalWait), by the clock that timed them (the NATS server's),
// not this instance's. A decided failure stops later sends, not the ones
// made before it: they are waited for all the same.
func (s *Server) unknownWait(ctx context.Context, req api.ResolvePayoutRequest, lastRedrive time.Time) (time.Duration, error) {
	u, err := s.cfg.DeadLetters.Uncertainty(ctx, partPayouts, req.PayoutID)
	if errors.Is(err, worker.ErrNoteContention) {
		return 0, notedJustNow(req)
	}
	if err != nil {
		return 0, fmt.Errorf("payout %s: reading the payouts part's sends: %w", req.PayoutID, err)
	}
	quiet, known := u.QuietFor(time.Now(), lastRedrive)
	if !known {
		return 0, nil
	}
	return s.cfg.PayoutStatusLag - quiet, nil
}

// partPayouts is the part that sends payouts, partPayoutReturns the one
// that returns failed payouts' money (engine.partPayouts and
// engine.partPayoutReturns).
const (
	partPayouts       = "payouts"
	partPayoutReturns = "react-payouts"
	// partMoney records the payouts that withdrawals and refunds to the
	// bank call for (engine's react-money).
	partMoney = "react-money"
	// partOrders credits order refunds to their buyers' wallets (engine's
	// react-orders).
	partOrders = "react-orders"
)

// deadLetterOf returns part's dead letter of a message on subject, if any.
func (s *Server) deadLetterOf(ctx context.Context, part, subject string) (api.DeadLetter, bool, error) {
	var after uint64
	for {
		list, next, err := s.cfg.DeadLetters.List(ctx, part, after, 100)
		if err != nil {
			return api.DeadLetter{}, false, err
		}
		for _, d := range list {
			if d.Subject == subject {
				return d, true, nil
			}
		}
		if next == 0 || len(list) == 0 {
			return api.DeadLetter{}, false, nil
		}
		after = next
	}
}
