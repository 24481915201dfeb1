package commands

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/reservations"
)

// Deposits handles the commands on deposits: money that arrived on a bank
// account, matched to orders or kept as orphans for an operator. It is
// safe for concurrent use.
type Deposits struct {
	*Core
	deposits *Repository[domain.Deposit]
	orders   *Repository[domain.Order] // shared with Orders: deposits pay orders
	wallets  *Wallets                  // refunds
	names    Names
	marks    Watermarks
	links    *Links                             // nil: no store links
	runs     *Repository[domain.Reconciliation] // bank reconciliation runs (reconcile.go)
	// recording serialises the recordings of one deposit in this instance;
	// its claim's lease serialises them across instances.
	recording turns
}

// RecordDeposit records a bank transaction exactly once and does what it
// means: pays the open order its depositor name belongs to; refunds it to the
// buyer's wallet if that order is cancel-reserved, already paid, or closed
// within the name grace; otherwise records it as an orphan with the reason.
//
// The depositor-name reservation only says which order to look at. Whatever
// it says, the money goes to that order (or its buyer) only if the order's
// own depositor name is the deposit's (normalised), and it pays the order
// only at the order's exact amount: a reservation pointing at an order that
// holds another name makes the deposit an orphan (no_such_name, logged as a
// warning), one at another amount an orphan naming the order
// (amount_mismatch).
//
// The steps touch three aggregates — the order, the wallet, the deposit —
// and each is idempotent on the deposit's ID, so a retry after a crash
// between them (the scanner repeats every transaction until it is recorded)
// completes what the first attempt began and never repeats it. The deposit
// is written last: once it exists, the transaction has been accounted for.
// Before any of them, the transaction is claimed (Names.ClaimDeposit) with
// what the request says of it, and every attempt goes on with what the
// first claim said: requests describing one transaction differently (a
// name, an amount) would otherwise each apply it to the order their
// description points at. One attempt at a time holds the claim (and in
// this instance, one at a time asks for it), and the holder looks for the
// deposit again before it touches anything: an order that changed between
// two attempts (paid meanwhile, say) would otherwise have the transaction
// refunded after an earlier attempt recorded it as an orphan.
func (h *Deposits) RecordDeposit(ctx context.Context, meta Meta, req api.RecordDepositRequest) (api.RecordDepositReply, error) {
	if err := req.Validate(); err != nil {
		return api.RecordDepositReply{}, err
	}
	id := domain.NewDepositID(req.AccountNumber, req.BankTxnID)
	release, err := h.recording.take(ctx, string(id))
	if err != nil {
		return api.RecordDepositReply{}, err
	}
	defer release()
	if d, seq, err := h.deposits.Get(ctx, string(id)); err != nil {
		return api.RecordDepositReply{}, err
	} else if d.Exists() {
		if meta.Resumed {
			// An earlier attempt with this key may be what recorded it: then
			// this is its repeat, and answers what it did, not "duplicate".
			out, err := h.deposits.Execute(ctx, meta, string(id), func(domain.Deposit) ([]domain.Event, error) { return nil, nil }, nil)
			if err != nil {
				return api.RecordDepositReply{}, err
			}
			for _, e := range out.Events {
				if r, ok := e.(domain.DepositRecorded); ok {
					return recordedReply(r, out.Seq), nil
				}
			}
		}
		if d.Amount != req.Amount || d.DepositorName != req.DepositorName || !d.DepositedAt.Equal(req.DepositedAt) {
			// The bank (or an import) describes a transaction it reported
			// before differently: a correction, or a feed to look at.
			// Nothing moves again; the operator should know.
			h.log.Warn().Str("deposit_id", string(id)).Str("bank_txn_id", req.BankTxnID).
				Str("recorded_depositor_name", d.DepositorName).Int64("recorded_amount", d.Amount).Time("recorded_deposited_at", d.DepositedAt).
				Str("depositor_name", req.DepositorName).Int64("amount", req.Amount).Time("deposited_at", req.DepositedAt).
				Msg("bank transaction recorded before with other details: kept as first recorded, this one is a duplicate")
		}
		return duplicateReply(d, seq), nil
	}
	// The order the depositor name points at now goes into the claim: a
	// retry after a crash that left the order paid and the deposit
	// unrecorded goes on with that order, not with one that took the name
	// over since (which it would pay a second time).
	target, err := h.nameHolder(ctx, req.AccountNumber, req.DepositorName)
	if err != nil {
		return api.RecordDepositReply{}, err
	}
	// The first request to claim the transaction says what it is; this one
	// goes on with that. Two requests describing one transaction
	// differently (a name cut short by a statement export, say) then pay
	// one order, not one each.
	claimAsked := time.Now()
	claimed, same, created, err := h.claim(ctx, id, depositClaim{
		BankTxnID: req.BankTxnID, AccountNumber: req.AccountNumber, DepositorName: req.DepositorName,
		Amount: req.Amount, DepositedAt: req.DepositedAt.UTC(), OrderID: target,
	})
	if held := (*reservations.ClaimHeldError)(nil); errors.As(err, &held) {
		// Another instance is recording it: what it recorded, if it has
		// by now; otherwise this request is retried later (409 conflict,
		// not final: the repeat with its key records or answers then).
		if d, seq, err := h.deposits.Get(ctx, string(id)); err != nil {
			return api.RecordDepositReply{}, err
		} else if d.Exists() {
			return duplicateReply(d, seq), nil
		}
		return api.RecordDepositReply{}, fmt.Errorf("deposit %s: %w: %w", id, err, ErrContention)
	}
	if err != nil {
		return api.RecordDepositReply{}, err
	}
	// The claim is this attempt's until its lease runs out; then another
	// attempt may take it over and record the transaction its own way (an
	// orphan, where this one would pay an order that took the free name
	// since), so nothing this attempt writes may reach the store after
	// that. Its work is bounded well within the lease, counted from before
	// the claim was asked for, however long the process stalls (a paused
	// VM, a stopped process, a scanner with no deadline of its own): once
	// the bound has passed, every read and write fails before it is sent,
	// and the transaction is left to the next attempt.
	ctx, cancel := context.WithDeadline(ctx, claimAsked.Add(recordWithin))
	defer cancel()
	if testHookClaimed != nil {
		testHookClaimed()
	}
	// Holding a claim another attempt held before, look again: that one may
	// have recorded the deposit since this one looked. (A claim this
	// attempt created had no holder, within its TTL, to record it.)
	if !created {
		if d, seq, err := h.deposits.Get(ctx, string(id)); err != nil {
			return api.RecordDepositReply{}, err
		} else if d.Exists() {
			return duplicateReply(d, seq), nil
		}
	}
	now := h.Now()
	rec := domain.DepositRecorded{
		DepositID: id, BankTxnID: claimed.BankTxnID, AccountNumber: claimed.AccountNumber, DepositorName: claimed.DepositorName,
		Amount: claimed.Amount, DepositedAt: claimed.DepositedAt, RecordedAt: now,
	}
	if err := h.matchDeposit(ctx, meta, &rec, now, claimed.OrderID, !created); err != nil {
		return api.RecordDepositReply{}, err
	}
	out, err := h.deposits.Execute(ctx, meta, string(id), func(d domain.Deposit) ([]domain.Event, error) {
		return domain.DecideRecord(d, rec)
	}, nil)
	if err != nil {
		return api.RecordDepositReply{}, err
	}
	if len(out.Events) == 0 || !same { // recorded meanwhile, or as another request described it
		return duplicateReply(out.State, out.Seq), nil
	}
	h.log.Info().Str("deposit_id", string(id)).Str("bank_txn_id", req.BankTxnID).Str("outcome", string(rec.Outcome)).
		Str("order_id", string(rec.OrderID)).Str("reason", string(rec.Reason)).Uint64("seq", uint64(out.Seq)).Msg("deposit recorded")
	return recordedReply(rec, out.Seq), nil
}

// recordWithin bounds an attempt's work on a deposit from before it asks
// for the claim (RecordDeposit): well within the claim's lease, with a
// third of it to spare for instances' clocks, which time the lease, to
// differ.
var recordWithin = reservations.DepositClaimLease * 2 / 3

// testHookClaimed, when set, runs once RecordDeposit holds the claim
// (tests).
var testHookClaimed func()

// depositClaim is what a request says of a bank transaction; the first one
// claimed is the one recorded. OrderID is the order its depositor name
// pointed at when it was first claimed (none for a store payment, a free
// name, or a claim an older version made): the order every attempt applies
// it to.
type depositClaim struct {
	BankTxnID     string         `json:"bank_txn_id"`
	AccountNumber string         `json:"account_number"`
	DepositorName string         `json:"depositor_name"`
	Amount        int64          `json:"amount"`
	DepositedAt   time.Time      `json:"deposited_at"`
	OrderID       domain.OrderID `json:"order_id,omitempty"`
}

// sameTransaction reports whether two claims describe the transaction
// alike, whichever order each found its name pointing at.
func (c depositClaim) sameTransaction(o depositClaim) bool {
	return c.BankTxnID == o.BankTxnID && c.AccountNumber == o.AccountNumber && c.DepositorName == o.DepositorName &&
		c.Amount == o.Amount && c.DepositedAt.Equal(o.DepositedAt)
}

// nameHolder is the order a depositor name points at now, for a deposit
// to account; none for a store payment (another account) or a free name.
func (h *Deposits) nameHolder(ctx context.Context, account, name string) (domain.OrderID, error) {
	if domain.NormalizeAccountNumber(account) != domain.NormalizeAccountNumber(h.cfg.CollectAccount.Number) {
		return "", nil
	}
	holder, _, err := h.names.Holder(ctx, name)
	if errors.Is(err, reservations.ErrFree) {
		return "", nil
	}
	return holder.OrderID, err
}

// claim claims deposit id for mine and returns the claim to go on with,
// whether it is mine, and whether this call created it.
func (h *Deposits) claim(ctx context.Context, id domain.DepositID, mine depositClaim) (_ depositClaim, same, created bool, _ error) {
	b, err := json.Marshal(mine)
	if err != nil {
		return depositClaim{}, false, false, err
	}
	got, created, err := h.names.ClaimDeposit(ctx, id, b, h.NewID())
	if err != nil {
		return depositClaim{}, false, false, err
	}
	if bytes.Equal(got, b) {
		return mine, true, created, nil
	}
	var first depositClaim
	if err := json.Unmarshal(got, &first); err != nil {
		return depositClaim{}, false, false, fmt.Errorf("claim of deposit %s: %w", id, err)
	}
	// A claim is recorded as it says: it must describe this transaction.
	if first.BankTxnID == "" || domain.NewDepositID(first.AccountNumber, first.BankTxnID) != id || first.Amount <= 0 || first.DepositedAt.IsZero() {
		return depositClaim{}, false, false, fmt.Errorf("claim of deposit %s describes another transaction or none: %.200s", id, got)
	}
	if first.sameTransaction(mine) {
		// Described alike; the name may point elsewhere by now, but the
		// first claim's order is the one an earlier attempt may have paid.
		return first, true, created, nil
	}
	h.log.Warn().Str("deposit_id", string(id)).Str("bank_txn_id", mine.BankTxnID).
		Str("claimed_depositor_name", first.DepositorName).Int64("claimed_amount", first.Amount).
		Str("depositor_name", mine.DepositorName).Int64("amount", mine.Amount).
		Msg("bank transaction described differently by two requests: recorded as the first one said, this one is a duplicate")
	return first, false, created, nil
}

func recordedReply(r domain.DepositRecorded, seq eventstore.Seq) api.RecordDepositReply {
	return api.RecordDepositReply{DepositID: string(r.DepositID), Outcome: r.Outcome, OrderID: string(r.OrderID), UserID: string(r.UserID), Reason: r.Reason, BillID: r.BillID, Written: written(seq)}
}

func duplicateReply(d domain.Deposit, seq eventstore.Seq) api.RecordDepositReply {
	return api.RecordDepositReply{DepositID: string(d.ID), Outcome: domain.OutcomeDuplicate, OrderID: string(d.RecordedOrderID), UserID: string(d.RecordedUserID), Reason: d.Reason, BillID: d.BillID, Written: written(seq)}
}

// matchDeposit applies the deposit to the order its depositor name belongs
// to (and to the buyer's wallet for a refund), and sets rec's outcome. target,
// if not empty, is that order as the transaction's claim says (the name
// may point at another by now); otherwise the name is looked up. retry
// says that an earlier attempt held the transaction's claim, and may have
// applied it.
func (h *Deposits) matchDeposit(ctx context.Context, meta Meta, rec *domain.DepositRecorded, now time.Time, target domain.OrderID, retry bool) error {
	orphan := func(reason domain.OrphanReason) error {
		rec.Outcome, rec.Reason = domain.OutcomeOrphaned, reason
		return nil
	}
	if number := domain.NormalizeAccountNumber(rec.AccountNumber); number != domain.NormalizeAccountNumber(h.cfg.CollectAccount.Number) {
		return h.storePayment(ctx, meta, rec, number, retry)
	}
	holder := reservations.Holder{OrderID: target}
	if target == "" { // the name was free when claimed, or the claim does not say
		var err error
		holder, _, err = h.names.Holder(ctx, rec.DepositorName)
		if errors.Is(err, reservations.ErrFree) {
			return orphan(domain.ReasonNoSuchName)
		}
		if err != nil {
			return err
		}
	}
	var outcome domain.DepositOutcome
	out, err := h.orders.Execute(ctx, meta, string(holder.OrderID), func(o domain.Order) ([]domain.Event, error) {
		if o.Exists() && !domain.SameName(o.DepositorName, rec.DepositorName) {
			// A reservation left behind for an order that holds another
			// name (a refused or superseded submit): the name is nobody's.
			return nil, errNotItsName
		}
		events, oc, err := domain.DecideDeposit(o, domain.ApplyDeposit{
			DepositID: rec.DepositID, Amount: rec.Amount, FromAccount: domain.AccountBank(rec.AccountNumber), DepositedAt: rec.DepositedAt, Now: now, NameGrace: h.cfg.NameGrace,
		})
		outcome = oc
		return events, err
	}, nil)
	switch {
	case errors.Is(err, errNotItsName):
		// Legitimately left behind by a refused submit (rare: it frees its
		// name), or written by someone who should not write the bucket. The
		// order's own name decides either way: the money is not its.
		h.log.Warn().Str("deposit_id", string(rec.DepositID)).Str("bank_txn_id", rec.BankTxnID).Str("reservation_order_id", string(holder.OrderID)).
			Msg("depositor-name reservation points at an order that holds another name: deposit kept as an orphan (no_such_name), not paid to that order")
		return orphan(domain.ReasonNoSuchName)
	case errors.Is(err, domain.ErrDepositBeforeOrder):
		// The name is the order's now, but was another's when the money
		// was sent (taken over since): nobody's, as far as this order goes.
		h.log.Warn().Str("deposit_id", string(rec.DepositID)).Str("bank_txn_id", rec.BankTxnID).Str("order_id", string(holder.OrderID)).
			Time("deposited_at", rec.DepositedAt).Msg("deposit made before the order that holds its name now was submitted: kept as an orphan (no_such_name)")
		return orphan(domain.ReasonNoSuchName)
	case errors.Is(err, domain.ErrAmountMismatch):
		rec.OrderID = holder.OrderID
		return orphan(domain.ReasonAmountMismatch)
	case errors.Is(err, domain.ErrOrderGone):
		rec.OrderID = holder.OrderID
		return orphan(domain.ReasonOrderGone)
	case errors.Is(err, ErrAggregateDamaged):
		// The order's history holds a damaged commit: nobody can say what
		// it accepts until an operator sets that aside. The money waits in
		// suspense as an orphan naming the order (resolve it then) rather
		// than stopping the bank scan behind it.
		h.log.Error().Err(err).Str("deposit_id", string(rec.DepositID)).Str("order_id", string(holder.OrderID)).
			Msg("deposit for an order with a damaged commit kept as an orphan (order_gone)")
		rec.OrderID = holder.OrderID
		return orphan(domain.ReasonOrderGone)
	case err != nil:
		return err
	}
	if outcome == "" {
		// An earlier attempt with this key applied the deposit to the order
		// and decide did not run: the order says what the deposit did.
		if !slices.Contains(out.State.DepositIDs, rec.DepositID) {
			return fmt.Errorf("deposit %s: the order %s answered without applying it", rec.DepositID, holder.OrderID)
		}
		_, outcome, _ = domain.DecideDeposit(out.State, domain.ApplyDeposit{DepositID: rec.DepositID, Amount: rec.Amount})
	}
	rec.Outcome, rec.OrderID = outcome, holder.OrderID
	if outcome == domain.OutcomeRefundedToWallet {
		rec.UserID = out.State.BuyerID
		// Settle the refund now (on a repeat, the order appended nothing:
		// rebuild the refund from the deposit).
		_, err := h.wallets.SettleRefund(ctx, meta, domain.OrderRefunded{
			OrderID: holder.OrderID, BuyerID: out.State.BuyerID, DepositID: rec.DepositID, Amount: rec.Amount,
			FromAccount: domain.AccountBank(rec.AccountNumber), RefundedAt: now,
		})
		return err
	}
	return nil
}

// storePayment records a deposit on a store's dedicated account as a
// payment to its distributor, whatever its amount; a deposit on an account
// that is neither the collection account nor a dedicated one is an orphan.
// Nothing about it is matched against orders, and no order deposit ever
// reaches a bill.
func (h *Deposits) storePayment(ctx context.Context, meta Meta, rec *domain.DepositRecorded, number string, retry bool) error {
	if h.links == nil {
		rec.Outcome, rec.Reason = domain.OutcomeOrphaned, domain.ReasonUnknownAccount
		return nil
	}
	// unheld makes the deposit an orphan of an account no store holds.
	unheld := func() error {
		rec.Outcome, rec.Reason = domain.OutcomeOrphaned, domain.ReasonUnknownAccount
		if h.links.accounts.InRange(number) {
			// A dedicated account no store holds (never handed out, its
			// store's link closed, or handed to a link whose store.link
			// failed before its event was written): a virtual account of
			// the collection account, where the money is.
			rec.LandedOn = h.cfg.CollectAccount.Number
		}
		return nil
	}
	link, ok, err := h.links.accounts.Lookup(ctx, number)
	if err != nil {
		return err
	}
	if !ok {
		return unheld()
	}
	bill, err := h.links.recordStorePayment(ctx, meta, link, *rec, retry)
	if errors.Is(err, domain.ErrStoreNotLinked) {
		// The number was allocated, but its store.link never recorded
		// the link, so no store was ever given it: the money is not a
		// store's payment. Refusing it would stop the bank scan here.
		return unheld()
	}
	if err != nil {
		return err
	}
	rec.Outcome, rec.LinkID, rec.BillID = domain.OutcomeStorePayment, link, bill
	return nil
}

// errNotItsName refuses a deposit to the holder of a reservation that is
// not that order's depositor name.
var errNotItsName = errors.New("the reservation's order holds another depositor name")

// ScanComplete advances the account's scan watermark, which reserved
// cancellations wait for. It never moves it backwards, nor past now (a
// feed cannot know the future).
func (h *Deposits) ScanComplete(ctx context.Context, meta Meta, req api.ScanCompleteRequest) (api.ScanCompleteReply, error) {
	if err := req.Validate(); err != nil {
		return api.ScanCompleteReply{}, err
	}
	if now := h.cfg.Now(); req.CompleteUpTo.After(now) {
		return api.ScanCompleteReply{}, domain.Invalid("complete_up_to", "is in the future")
	}
	account := domain.NormalizeAccountNumber(req.AccountNumber)
	if err := h.marks.Advance(ctx, account, req.CompleteUpTo.UTC()); err != nil {
		return api.ScanCompleteReply{}, err
	}
	wm, err := h.marks.Watermark(ctx, account)
	if err != nil {
		return api.ScanCompleteReply{}, err
	}
	// No event records it: the log does, with who reported it (reserved
	// cancellations become final on the strength of it).
	h.log.Info().Str("account_number", account).Time("complete_up_to", req.CompleteUpTo.UTC()).Time("watermark", wm).
		Str("actor", meta.Actor).Msg("bank feed reported a scan complete")
	return api.ScanCompleteReply{AccountNumber: account, Watermark: domain.FormatTime(wm)}, nil
}

// ResolveDeposit resolves an orphan deposit in one step: assign it to an
// order (which it pays, or, if that order no longer takes it, whose buyer's
// wallet it credits), refund it to a user's wallet, or refund it to the
// sender's bank account through firm banking. The resolution is recorded on
// the deposit first — an orphan is resolved once — and then carried out,
// here and, should this instance die, by the money process manager.
func (h *Deposits) ResolveDeposit(ctx context.Context, meta Meta, req api.ResolveDepositRequest) (api.ResolveDepositReply, error) {
	if err := req.Validate(); err != nil {
		return api.ResolveDepositReply{}, err
	}
	d, _, err := h.deposits.Get(ctx, req.DepositID)
	if err != nil {
		return api.ResolveDepositReply{}, err
	}
	if !d.Exists() {
		return api.ResolveDepositReply{}, domain.ErrDepositNotFound.With("", map[string]any{"deposit_id": req.DepositID})
	}
	now := h.Now()
	res := domain.DepositResolved{DepositID: d.ID, Action: req.Action, ResolvedAt: now}
	switch req.Action {
	case domain.ResolveAssignOrder:
		res.OrderID = domain.OrderID(req.OrderID)
	case domain.ResolveRefundToWallet:
		res.UserID = domain.UserID(req.UserID)
	case domain.ResolveRefundToBank:
		if err := domain.ValidateID("payout_id", req.PayoutID); err != nil {
			return api.ResolveDepositReply{}, err
		}
		res.PayoutID, res.To = domain.PayoutID(req.PayoutID), req.BankAccount
	}
	// A deposit that is no orphan is refused as such (409 not_an_orphan),
	// whatever its target would say; the same resolution again needs no
	// check: it is answered as it was.
	again, err := domain.DecideResolve(d, res)
	if err != nil {
		return api.ResolveDepositReply{}, err
	}
	if req.Action == domain.ResolveAssignOrder && len(again) > 0 {
		// Refuse up front what the order would refuse.
		o, _, err := h.orders.Get(ctx, req.OrderID)
		if err != nil {
			return api.ResolveDepositReply{}, err
		}
		if _, _, err := domain.DecideDeposit(o, domain.ApplyDeposit{DepositID: d.ID, Amount: d.Amount, FromAccount: domain.AccountSuspense, DepositedAt: now, Now: now, NameGrace: h.cfg.NameGrace}); err != nil {
			return api.ResolveDepositReply{}, err
		}
	}
	out, err := h.deposits.Execute(ctx, meta, req.DepositID, func(d domain.Deposit) ([]domain.Event, error) {
		return domain.DecideResolve(d, res)
	}, nil)
	if err != nil {
		return api.ResolveDepositReply{}, err
	}
	d = out.State // the resolution as recorded
	rep := api.ResolveDepositReply{DepositID: req.DepositID, Outcome: d.Resolution, OrderID: string(d.OrderID), UserID: string(d.UserID), PayoutID: string(d.PayoutID), Written: written(out.Seq)}
	carriedOut := false
	for _, e := range out.Events {
		if r, ok := e.(domain.DepositResolved); ok && r.Action != domain.ResolveRefundToBank {
			seq, err := h.CarryOut(ctx, meta, r)
			if err != nil {
				return api.ResolveDepositReply{}, err
			}
			rep.Seq, carriedOut = max(rep.Seq, api.Seq(seq)), true
		}
	}
	// What the resolution did, for a repeat too: the wallet an assigned
	// deposit went to instead of its order, and, for a repeat that carried
	// out nothing (the deposit was resolved by another request), a token
	// covering what the first one did: the sequence of the aggregates it
	// moved money into. A resolution carried out here, or found again by
	// its key after a crash, answers the commits that carried it out, so
	// that a resumed repeat answers what its first attempt did, not the
	// latest commit of a wallet that has moved since.
	seq, refundedTo, err := h.effects(ctx, d)
	if err != nil {
		return api.ResolveDepositReply{}, err
	}
	if !carriedOut {
		rep.Seq = max(rep.Seq, api.Seq(seq))
	}
	if refundedTo != "" {
		rep.UserID = string(refundedTo)
	}
	h.log.Info().Str("deposit_id", req.DepositID).Str("action", req.Action).Uint64("seq", uint64(out.Seq)).Msg("orphan deposit resolved")
	return rep, nil
}

// effects is what a recorded resolution moved its money into: the last
// sequence of those aggregates (the wallet, or the order and its buyer's
// wallet), and, for a deposit assigned to an order that did not take it
// as its payment, the buyer whose wallet got it instead (refundedTo).
func (h *Deposits) effects(ctx context.Context, d domain.Deposit) (seq eventstore.Seq, refundedTo domain.UserID, err error) {
	user := d.UserID
	if d.Resolution == domain.ResolveAssignOrder {
		o, s, err := h.orders.Get(ctx, string(d.OrderID))
		if err != nil {
			return 0, "", err
		}
		user, seq = o.BuyerID, s
		if o.PaidBy != d.ID {
			refundedTo = o.BuyerID
		}
	}
	if user == "" {
		return seq, refundedTo, nil
	}
	_, s, err := h.wallets.wallets.Get(ctx, string(user))
	return max(seq, s), refundedTo, err
}

// CarryOut moves a resolved orphan's money out of suspense: to the order
// it was assigned to (or its buyer's wallet, if the order no longer takes
// it), or to a wallet. ResolveDeposit runs it, and the money process
// manager runs it again for every resolution, in case the command died
// first. Idempotent. It returns the sequence of the last commit written.
func (h *Deposits) CarryOut(ctx context.Context, meta Meta, r domain.DepositResolved) (eventstore.Seq, error) {
	now := h.Now()
	if r.Action == domain.ResolveRefundToWallet {
		return h.wallets.Credit(ctx, meta, domain.CreditWallet{UserID: r.UserID, Amount: r.Amount, Kind: domain.CreditOrphanRefund, Ref: string(r.DepositID), FromAccount: domain.AccountSuspense, Now: now})
	}
	var buyer domain.UserID
	out, err := h.orders.Execute(ctx, meta, string(r.OrderID), func(o domain.Order) ([]domain.Event, error) {
		buyer = o.BuyerID
		events, _, err := domain.DecideDeposit(o, domain.ApplyDeposit{DepositID: r.DepositID, Amount: r.Amount, FromAccount: domain.AccountSuspense, DepositedAt: r.ResolvedAt, Now: now, NameGrace: h.cfg.NameGrace})
		return events, err
	}, nil)
	if errors.Is(err, domain.ErrOrderGone) || errors.Is(err, domain.ErrAmountMismatch) {
		// The order changed since the operator chose it: its buyer gets the money.
		return h.wallets.Credit(ctx, meta, domain.CreditWallet{UserID: buyer, Amount: r.Amount, Kind: domain.CreditOrphanRefund, Ref: string(r.DepositID), FromAccount: domain.AccountSuspense, Now: now})
	}
	if err != nil {
		return 0, err
	}
	seq := out.Seq
	for _, e := range out.Events {
		if rf, ok := e.(domain.OrderRefunded); ok {
			s, err := h.wallets.SettleRefund(ctx, meta, rf)
			if err != nil {
				return 0, err
			}
			seq = max(seq, s)
		}
	}
	return seq, nil
}

// Get returns the deposit as of its last commit (the zero Deposit if it was
// never recorded).
func (h *Deposits) Get(ctx context.Context, id domain.DepositID) (domain.Deposit, error) {
	d, _, err := h.deposits.Get(ctx, string(id))
	return d, err
}

// Reopen puts a deposit whose refund to the bank failed back in the orphan
// queue, once.
func (h *Deposits) Reopen(ctx context.Context, meta Meta, r domain.DepositReopened) error {
	_, err := h.deposits.Execute(ctx, meta, string(r.DepositID), func(d domain.Deposit) ([]domain.Event, error) {
		return domain.DecideReopen(d, r)
	}, nil)
	return err
}
