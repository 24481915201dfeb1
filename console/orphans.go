package console

import (
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/domain"
)

// orphanPageLimit is how many orphans one page lists.
const orphanPageLimit = 25

type orphansData struct {
	Deposits []orphanRow
	Pager    pager
}

// orphanRow is an orphan with its candidate orders as they are now.
type orphanRow struct {
	api.OrphanView
	Suggested []candidate
}

// candidate is an order suggested for an orphan: its status and what
// assigning the orphan to it does (candidateEffect). Status is empty when
// the order could not be read (Err says why).
type candidate struct {
	OrderID string
	Status  string
	BuyerID string
	Effect  string
	Err     string
}

// orphans lists the orphan queue (미아 입금) with each deposit's candidates,
// their status now, and the forms that lead to a resolution's confirmation.
func (c *Console) orphans(w http.ResponseWriter, r *http.Request, s *session) {
	cursor := r.URL.Query().Get("cursor")
	rep, _, err := call(c, r, s, api.DepositOrphans, api.PageRequest{Limit: pageLimit(r, orphanPageLimit), Cursor: cursor}, "")
	v := view{Title: "Orphan deposits 미아 입금", Nav: "orphans", Err: apiError(err)}
	if err == nil {
		rows := make([]orphanRow, len(rep.Deposits))
		orders := map[string]*api.OrderView{}
		for i, d := range rep.Deposits {
			rows[i] = orphanRow{OrphanView: d, Suggested: make([]candidate, len(d.Candidates))}
			for j, id := range d.Candidates {
				rows[i].Suggested[j] = c.candidate(r, s, orders, id, d.Amount)
			}
		}
		v.Data = orphansData{Deposits: rows, Pager: newPager(Prefix+"orphans", r.URL.Query(), cursor, rep.NextCursor)}
	}
	c.render(w, r, s, statusOf(v.Err), "orphans", v)
}

// candidate reads a suggested order (once per page: orders holds those
// read) and says what assigning an orphan of amount to it does.
func (c *Console) candidate(r *http.Request, s *session, orders map[string]*api.OrderView, id string, amount int64) candidate {
	ov, ok := orders[id]
	if !ok {
		o, _, err := call(c, r, s, api.OrderGet, api.GetOrderRequest{OrderID: id}, "")
		if err != nil {
			ae := apiError(err)
			return candidate{OrderID: id, Err: ae.Code}
		}
		ov, orders[id] = &o, &o
	}
	effect := ""
	switch c.assignment(*ov, amount) {
	case assignPays:
		effect = "pays the order"
	case assignAmountMismatch:
		effect = "refused: the order awaits " + won(ov.Amount)
	case assignRefunds:
		effect = "refunds the buyer's wallet (" + ov.BuyerID + "), the order takes no payment"
	case assignRefundsInGrace:
		effect = "refunds the buyer's wallet (" + ov.BuyerID + ") if the order closed within the name grace, pays nothing"
	case assignGone:
		effect = "refused: the order closed longer ago than the name grace"
	}
	return candidate{OrderID: id, Status: ov.Status, BuyerID: ov.BuyerID, Effect: effect}
}

// assignmentEffect is what assigning an orphan deposit to an order does.
type assignmentEffect int

const (
	assignPays           assignmentEffect = iota // the order awaits the amount: paid
	assignAmountMismatch                         // it awaits another amount: refused
	assignRefunds                                // it takes no payment: the buyer's wallet credited
	assignRefundsInGrace                         // it closed unpaid, the name grace unknown here: credited within it, else refused
	assignGone                                   // it closed longer ago than the name grace: refused
)

// assignment says what assigning an orphan of amount to the order ov does
// now, by the engine's rule (domain.DecideDeposit, with the resolution's
// time as the deposit's). An order closed unpaid takes a refund within the
// name grace of its closing: with the grace unknown here
// (Config.NameGrace negative), or no closed_at, that is all it can say.
func (c *Console) assignment(ov api.OrderView, amount int64) assignmentEffect {
	o := domain.Order{ID: domain.OrderID(ov.OrderID), Version: ov.Version, Status: domain.OrderStatus(ov.Status), Amount: domain.Money{Amount: ov.Amount}}
	closed, err := time.Parse(time.RFC3339Nano, ov.ClosedAt)
	if (o.Status == domain.StatusCancelled || o.Status == domain.StatusExpired) && (c.cfg.NameGrace < 0 || err != nil) {
		return assignRefundsInGrace
	}
	o.ClosedAt = closed
	now := c.now()
	events, _, err := domain.DecideDeposit(o, domain.ApplyDeposit{Amount: amount, DepositedAt: now, Now: now, NameGrace: c.cfg.NameGrace})
	switch {
	case errors.Is(err, domain.ErrAmountMismatch):
		return assignAmountMismatch
	case err != nil:
		return assignGone
	}
	if _, paid := events[0].(domain.OrderPaid); paid {
		return assignPays
	}
	return assignRefunds
}

// findOrphan returns the deposit if it waits in the orphan queue (an
// unresolved orphan), nil if it is unknown or not waiting there.
func (c *Console) findOrphan(r *http.Request, s *session, id string) (*api.OrphanView, error) {
	d, _, err := call(c, r, s, api.DepositGet, api.DepositRequest{DepositID: id}, "")
	if ae := (*api.Error)(nil); errors.As(err, &ae) && ae.Code == domain.ErrDepositNotFound.Code {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !d.Waiting() {
		return nil, nil
	}
	return &d, nil
}

// resolveData is the confirmation page of one resolution.
type resolveData struct {
	Orphan  *api.OrphanView
	Action  string
	Request api.ResolveDepositRequest
	// Order is the order an assign_order pays (as it is now).
	Order *api.OrderView
	// OrderEffect says what the assignment does to the order, and
	// OrderRefused whether the engine will refuse it (orderEffect).
	OrderEffect  string
	OrderRefused bool
	// Wallet is the wallet a refund_to_wallet credits (as it is now);
	// WalletAfter its balance after.
	Wallet      *api.WalletView
	WalletAfter int64
	// Fee is the firm-banking fee of a refund_to_bank (0: unknown).
	Fee            int64
	SuspenseAfter  int64
	SuspenseBefore int64
	IdempotencyKey string
	Reply          *api.ResolveDepositReply
}

// orderEffect says what assigning an orphan of amount to the order ov does,
// as the engine decides it (domain.DecideDeposit, docs/domain.md "Orphan
// deposits"), and whether the engine refuses it: an order awaiting that
// exact amount is paid, one awaiting another amount refuses it; an order
// that takes no payment (cancel_reserved, paid) has the deposit credited to
// its buyer's wallet, and so has a closed one (cancelled, expired) within
// the name grace, which otherwise refuses it.
func (c *Console) orderEffect(ov api.OrderView, amount int64) (effect string, refused bool) {
	switch c.assignment(ov, amount) {
	case assignPays:
		return "The order becomes paid with this deposit.", false
	case assignAmountMismatch:
		return "The order's amount (" + won(ov.Amount) + ") differs from the deposit's (" + won(amount) + "): the engine will refuse (amount_mismatch).", true
	case assignRefunds:
		state := " and takes no payment"
		if st := domain.OrderStatus(ov.Status); st == domain.StatusCancelled || st == domain.StatusExpired {
			state = " (closed " + ov.ClosedAt + ", within the name grace of " + shortDuration(c.cfg.NameGrace) + ")"
		}
		return "The order is " + ov.Status + state + ": the engine credits the deposit's " + won(amount) +
			" to its buyer's wallet (" + ov.BuyerID + ") instead, as a refund (deposit_refund).", false
	case assignGone:
		return "The order is " + ov.Status + " and closed " + ov.ClosedAt + ", longer ago than the name grace (" + shortDuration(c.cfg.NameGrace) +
			"): the engine will refuse (order_gone).", true
	}
	return "The order is " + ov.Status + ": the engine credits the deposit's " + won(amount) + " to its buyer's wallet (" + ov.BuyerID +
		") if the order closed within the name grace, and refuses otherwise (order_gone).", false
}

// resolveRequest reads a resolution from the form (or query) values.
func resolveRequest(deposit string, v url.Values) api.ResolveDepositRequest {
	req := api.ResolveDepositRequest{DepositID: deposit, Action: v.Get("action")}
	switch req.Action {
	case domain.ResolveAssignOrder:
		req.OrderID = v.Get("order_id")
	case domain.ResolveRefundToWallet:
		req.UserID = v.Get("user_id")
	case domain.ResolveRefundToBank:
		req.BankAccount = &domain.BankAccount{Bank: v.Get("bank"), Number: v.Get("number"), Holder: v.Get("holder")}
	}
	return req.Canonical()
}

// confirmResolve states the exact effect of a resolution and carries the
// POST form that makes it, with a fresh Idempotency-Key.
func (c *Console) confirmResolve(w http.ResponseWriter, r *http.Request, s *session) {
	deposit := r.PathValue("deposit")
	req := resolveRequest(deposit, r.URL.Query())
	v := view{Title: "Confirm resolution 미아 입금 처리", Nav: "orphans"}
	if err := req.Validate(); err != nil {
		msg := err.Error()
		if de := (*domain.Error)(nil); errors.As(err, &de) {
			msg = de.Message // the code is shown beside it
		}
		v.Err = &errView{Status: http.StatusBadRequest, Code: api.CodeInvalidInput, Message: msg}
		c.render(w, r, s, http.StatusBadRequest, "resolve", v)
		return
	}
	d, status, ev := c.resolveEffect(r, s, req)
	v.Err = ev
	d.IdempotencyKey = idempotencyKey()
	v.Data = d
	c.render(w, r, s, status, "resolve", v)
}

// resolveEffect gathers what the confirmation states.
func (c *Console) resolveEffect(r *http.Request, s *session, req api.ResolveDepositRequest) (resolveData, int, *errView) {
	d := resolveData{Action: req.Action, Request: req, Fee: c.cfg.FirmBankingFee}
	o, err := c.findOrphan(r, s, req.DepositID)
	if err != nil {
		return d, statusOf(apiError(err)), apiError(err)
	}
	if o == nil {
		return d, http.StatusNotFound, &errView{Status: http.StatusNotFound, Code: "not_in_orphan_queue",
			Message: "Deposit " + req.DepositID + " is not in the orphan queue (already resolved, or never an orphan)."}
	}
	d.Orphan = o
	if bal, err := c.accountBalance(r, s, domain.AccountSuspense); err == nil {
		d.SuspenseBefore, d.SuspenseAfter = bal, bal+o.Amount // a liability: credit-negative, so it rises to 0
	}
	switch req.Action {
	case domain.ResolveAssignOrder:
		ov, _, err := call(c, r, s, api.OrderGet, api.GetOrderRequest{OrderID: req.OrderID}, "")
		if err != nil {
			return d, statusOf(apiError(err)), apiError(err)
		}
		d.Order = &ov
		d.OrderEffect, d.OrderRefused = c.orderEffect(ov, o.Amount)
		if d.OrderRefused {
			d.SuspenseAfter = d.SuspenseBefore // refused: the deposit stays in suspense
		}
	case domain.ResolveRefundToWallet:
		wv, _, err := call(c, r, s, api.WalletGet, api.WalletRequest{UserID: req.UserID, PageRequest: api.PageRequest{Limit: 1}}, "")
		if err != nil {
			if ae := apiError(err); ae.Status != http.StatusNotFound {
				return d, statusOf(ae), ae
			}
			wv = api.WalletView{UserID: req.UserID} // a wallet the refund opens
		}
		d.Wallet, d.WalletAfter = &wv, wv.Balance+o.Amount
	}
	return d, http.StatusOK, nil
}

// accountBalance is a ledger account's balance (debit positive).
func (c *Console) accountBalance(r *http.Request, s *session, account string) (int64, error) {
	rep, _, err := call(c, r, s, api.LedgerAccount, api.LedgerAccountRequest{Account: account, PageRequest: api.PageRequest{Limit: 1}}, "")
	return rep.Balance, err
}

// resolve sends the resolution with the form's Idempotency-Key: a double
// click or a resubmit replays the first answer instead of acting twice.
func (c *Console) resolve(w http.ResponseWriter, r *http.Request, s *session) {
	req := resolveRequest(r.PathValue("deposit"), r.PostForm)
	key := r.PostFormValue("idempotency_key")
	v := view{Title: "Resolution 미아 입금 처리", Nav: "orphans"}
	d := resolveData{Action: req.Action, Request: req, Fee: c.cfg.FirmBankingFee, IdempotencyKey: key}
	if key == "" {
		v.Err = &errView{Status: http.StatusBadRequest, Code: api.CodeInvalidIdemKey, Message: "the form carries no Idempotency-Key; open the confirmation again"}
		v.Data = d
		c.render(w, r, s, http.StatusBadRequest, "resolve", v)
		return
	}
	rep, raw, err := call(c, r, s, api.DepositResolve, req, key)
	if err != nil {
		v.Err = apiError(err)
		c.cfg.Log.Info().Str("user", s.name).Str("deposit_id", req.DepositID).Str("action", req.Action).Str("code", v.Err.Code).Msg("console: resolution refused")
	} else {
		d.Reply = &rep
		v.Result = &resultView{What: resolvedWhat(rep), Seq: rep.Seq, Replayed: raw.Replayed}
		c.cfg.Log.Info().Str("user", s.name).Str("deposit_id", req.DepositID).Str("action", req.Action).Uint64("seq", uint64(rep.Seq)).Bool("replayed", raw.Replayed).Msg("console: deposit resolved")
	}
	v.Data = d
	c.render(w, r, s, statusOf(v.Err), "resolve", v)
}

// resolvedWhat says what a resolution did. An assignment names where the
// money went: the order, as its payment, or its buyer's wallet when the
// order took no payment (the reply's user_id).
func resolvedWhat(rep api.ResolveDepositReply) string {
	what := "Deposit " + rep.DepositID + " resolved: " + rep.Outcome
	if rep.Outcome != domain.ResolveAssignOrder {
		return what
	}
	if rep.UserID != "" {
		return what + " to order " + rep.OrderID + ", which took no payment: credited to its buyer's wallet (" + rep.UserID + ") as a refund"
	}
	return what + ": order " + rep.OrderID + " paid with it"
}
