package commands

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/domain"
)

// Links handles B2B bills: a (distributor, store) link with its dedicated
// account, the bills issued on it and the payments made to it. Each command
// is one optimistic append on the link, so a store never has two current
// bills, whatever runs concurrently on which instance.
type Links struct {
	*Core
	links    *Repository[domain.Link]
	accounts Accounts
	// marks gives the collection account's scan watermark, which a
	// reminder states: the dedicated accounts are scanned with it.
	marks Watermarks
}

// bulkConcurrency is how many lines of a bulk issue run at once: lines of
// different stores are different links, so they do not contend.
const bulkConcurrency = 16

// LinkStore links a store to a distributor and gives the pair its dedicated
// account (the same one on every repeat).
func (h *Links) LinkStore(ctx context.Context, meta Meta, req api.LinkStoreRequest) (api.LinkStoreReply, error) {
	if err := req.Validate(); err != nil {
		return api.LinkStoreReply{}, err
	}
	dist, store := domain.DistributorID(req.DistributorID), domain.StoreID(req.StoreID)
	id := domain.LinkID(dist, store)
	// The number first: the event records it, and a repeat gets the same.
	number, err := h.accounts.Allocate(ctx, id)
	if err != nil {
		return api.LinkStoreReply{}, err
	}
	account := domain.BankAccount{Bank: h.cfg.CollectAccount.Bank, Number: number, Holder: h.cfg.CollectAccount.Holder}
	out, err := h.links.Execute(ctx, meta, id, func(l domain.Link) ([]domain.Event, error) {
		return domain.DecideLink(l, domain.LinkStore{LinkID: id, DistributorID: dist, StoreID: store, StoreName: req.StoreName, DistributorName: req.DistributorName, Account: account, Now: h.Now()})
	}, nil)
	if err != nil {
		return api.LinkStoreReply{}, err
	}
	return api.LinkStoreReply{Status: api.LinkStatusLinked, LinkedStore: linkedStore(out.State), Written: written(out.Seq)}, nil
}

// linkedStore is link l as the store replies show it.
func linkedStore(l domain.Link) api.LinkedStore {
	return api.LinkedStore{
		LinkID: l.ID, DistributorID: string(l.DistributorID), StoreID: string(l.StoreID), StoreName: l.StoreName,
		DistributorName: l.DistributorName, DedicatedAccount: l.DedicatedAccount, LinkedAt: domain.FormatTime(l.LinkedAt),
	}
}

// RenameStore changes a linked store's name, its distributor's name, or
// both. The events written on the link afterwards carry the new names, so
// the store's messages use them.
func (h *Links) RenameStore(ctx context.Context, meta Meta, req api.RenameStoreRequest) (api.RenameStoreReply, error) {
	if err := req.Validate(); err != nil {
		return api.RenameStoreReply{}, err
	}
	dist, store := domain.DistributorID(req.DistributorID), domain.StoreID(req.StoreID)
	out, err := h.links.Execute(ctx, meta, domain.LinkID(dist, store), func(l domain.Link) ([]domain.Event, error) {
		events, err := domain.DecideRename(l, domain.RenameStore{StoreName: req.StoreName, DistributorName: req.DistributorName, Now: h.Now()})
		if errors.Is(err, domain.ErrStoreNotLinked) {
			return nil, domain.StoreNotLinked(string(dist), string(store))
		}
		return events, err
	}, nil)
	if err != nil {
		return api.RenameStoreReply{}, err
	}
	status := api.StoreStatusUnchanged
	if len(out.Events) > 0 {
		status = api.StoreStatusRenamed
	}
	return api.RenameStoreReply{Status: status, LinkedStore: linkedStore(out.State), Written: written(out.Seq)}, nil
}

// IssueBill issues a bill to a linked store; the store's current bill, if
// any, expires in the same commit.
func (h *Links) IssueBill(ctx context.Context, meta Meta, req api.IssueBillRequest) (api.IssueBillReply, error) {
	if err := req.Validate(); err != nil {
		return api.IssueBillReply{}, err
	}
	return h.issue(ctx, meta, domain.DistributorID(req.DistributorID), req.Line())
}

func (h *Links) issue(ctx context.Context, meta Meta, dist domain.DistributorID, line api.BillLine) (api.IssueBillReply, error) {
	store := domain.StoreID(line.StoreID)
	id := domain.LinkID(dist, store)
	out, err := h.links.Execute(ctx, meta, id, func(l domain.Link) ([]domain.Event, error) {
		events, err := domain.DecideIssueBill(l, domain.IssueBill{Amount: line.Amount, Memo: line.Memo, Now: h.Now()})
		if errors.Is(err, domain.ErrStoreNotLinked) {
			return nil, domain.StoreNotLinked(string(dist), string(store))
		}
		return events, err
	}, nil)
	if err != nil {
		return api.IssueBillReply{}, err
	}
	return issueReply(id, out)
}

// issueReply is the reply of an issue that out, its outcome on link id,
// records.
func issueReply(id string, out Outcome[domain.Link]) (api.IssueBillReply, error) {
	for _, e := range out.Events {
		if b, ok := e.(domain.BillIssued); ok {
			return api.IssueBillReply{
				BillID: b.BillID, Status: string(domain.BillStatusActive), SupersededBillID: b.SupersededBillID, StoreID: string(b.StoreID),
				Amount: b.Amount, DedicatedAccount: b.DedicatedAccount, IssuedAt: domain.FormatTime(b.IssuedAt), Written: written(out.Seq),
			}, nil
		}
	}
	return api.IssueBillReply{}, fmt.Errorf("issue bill on %s: the commit holds no bill.issued", id)
}

// IssueBulk issues one bill per line, in request order. A bad line gets its
// own error and does not stop the others. A store named on more than one
// line is ambiguous (a store has at most one current bill: which amount was
// meant?), so every line naming it is refused and nothing is issued to it.
// With an Idempotency-Key, each line carries the key and its line number, so
// a repeat after a crash finds the lines that were done and issues only the
// rest.
func (h *Links) IssueBulk(ctx context.Context, meta Meta, req api.IssueBulkRequest) (api.IssueBulkReply, error) {
	if err := req.Validate(); err != nil {
		return api.IssueBulkReply{}, err
	}
	dist := domain.DistributorID(req.DistributorID)
	results := make([]api.BulkResult, len(req.Bills))
	var (
		wg   sync.WaitGroup
		sem  = make(chan struct{}, bulkConcurrency)
		mu   sync.Mutex
		fail error // a failure that is not the line's fault (NATS away)
	)
	// Every line that names a store, by store, in request order: a line
	// refused for its amount or memo names its store all the same. Store
	// IDs compare exactly, as links are keyed (LinkID): S-1 and s-1 are
	// two stores.
	var stores []string
	byStore := map[string][]int{}
	for i, line := range req.Bills {
		// A bad store_id is repeated only in part: the reply of 1,000 bad
		// lines must fit a NATS message.
		results[i] = api.BulkResult{Line: i + 1, StoreID: domain.Clip(line.StoreID, domain.MaxIDLength)}
		if err := line.Validate(); err != nil {
			results[i].Error = lineError(err)
		}
		if domain.ValidateID("store_id", line.StoreID) != nil {
			continue // names no store
		}
		if byStore[line.StoreID] == nil {
			stores = append(stores, line.StoreID)
		}
		byStore[line.StoreID] = append(byStore[line.StoreID], i)
	}
	resuming := meta.Resumed && meta.IdempotencyKey != ""
	for _, store := range stores {
		named := byStore[store]
		var lines []int // the store's lines to issue
		for _, i := range named {
			if results[i].Error == nil {
				lines = append(lines, i)
			}
		}
		repeated := len(named) > 1
		if len(lines) == 0 || repeated && !resuming {
			// A repeat of a request that an engine before this rule
			// began may find lines of a repeated store done (below);
			// any other attempt issues nothing to it.
			refuseRepeated(results, store, named, lines)
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			// A repeat looks for what earlier attempts issued on the
			// store's link in one read, not one read per line.
			var earlier map[string]Outcome[domain.Link]
			link := domain.LinkID(dist, domain.StoreID(store))
			if resuming {
				var err error
				if earlier, err = h.links.Earlier(ctx, link, meta, meta.IdempotencyKey+"#"); err != nil {
					mu.Lock()
					fail = errors.Join(fail, fmt.Errorf("store %s: %w", store, err))
					mu.Unlock()
					return
				}
			}
			if repeated && !slices.ContainsFunc(lines, func(i int) bool { _, ok := earlier[lineKey(meta.IdempotencyKey, i)]; return ok }) {
				refuseRepeated(results, store, named, lines)
				return
			}
			// Lines of one store run in request order, a later one
			// superseding an earlier: only a repeat of a request an
			// engine before the rule began, whose first attempt issued
			// some of them, gets here with more than one. It is
			// finished as it began, so that its reply tells what the
			// store's link holds.
			for _, i := range lines {
				m := meta
				if m.IdempotencyKey != "" {
					m.IdempotencyKey = lineKey(meta.IdempotencyKey, i)
				}
				var (
					rep api.IssueBillReply
					err error
				)
				if out, ok := earlier[m.IdempotencyKey]; ok {
					if m.FoundEarlier != nil {
						m.FoundEarlier.Store(true)
					}
					rep, err = issueReply(link, out)
				} else {
					m.EarlierRead = earlier != nil
					rep, err = h.issue(ctx, m, dist, req.Bills[i])
				}
				if err != nil {
					var de *domain.Error
					if !errors.As(err, &de) {
						mu.Lock()
						fail = errors.Join(fail, fmt.Errorf("line %d: %w", i+1, err))
						mu.Unlock()
					}
					results[i].Error = lineError(err)
					continue
				}
				results[i].BillID, results[i].Status, results[i].SupersededBillID, results[i].Seq = rep.BillID, rep.Status, rep.SupersededBillID, rep.Seq
			}
		}()
	}
	wg.Wait()
	if fail != nil {
		// Not a per-line refusal: the whole request failed and its repeat
		// (same key) finishes what is missing.
		return api.IssueBulkReply{}, fail
	}
	reply := api.IssueBulkReply{Results: results}
	for _, r := range results {
		if r.Error != nil {
			reply.Failed++
			continue
		}
		reply.Issued++
		reply.Seq = max(reply.Seq, r.Seq)
	}
	return reply, nil
}

// lineKey is the idempotency key of line i (0-based) of a bulk request
// sent with key.
func lineKey(key string, i int) string { return key + "#" + strconv.Itoa(i+1) }

// maxLinesNamed is how many line numbers a repeated store's refusal names:
// the reply of 1,000 lines of one store must fit a NATS message.
const maxLinesNamed = 10

// refuseRepeated refuses lines, the lines of store not refused for their
// own fields, for store is named on every line of named (0-based, in
// request order, more than one; lines refused otherwise keep their error).
func refuseRepeated(results []api.BulkResult, store string, named, lines []int) {
	if len(named) < 2 {
		return
	}
	numbers := make([]int, 0, min(len(named), maxLinesNamed))
	words := make([]string, 0, cap(numbers))
	for _, i := range named[:cap(numbers)] {
		numbers = append(numbers, i+1)
		words = append(words, strconv.Itoa(i+1))
	}
	list := strings.Join(words[:len(words)-1], ", ") + " and " + words[len(words)-1]
	if more := len(named) - len(numbers); more > 0 {
		list = strings.Join(words, ", ") + fmt.Sprintf(" and %d more", more)
	}
	err := domain.Invalid("store_id", "%s is named on lines %s of this request; a store has at most one active bill, so name it on one line only (nothing was issued to it)", store, list)
	err.Details["store_id"] = store
	err.Details["lines"] = numbers
	err.Details["line_count"] = len(named)
	for _, i := range lines {
		results[i].Error = lineError(err)
	}
}

// lineError is a refused line's error as the reply carries it.
func lineError(err error) *api.LineError {
	var de *domain.Error
	if errors.As(err, &de) {
		return &api.LineError{Code: de.Code, Message: de.Message, Details: de.Details}
	}
	return &api.LineError{Code: api.CodeInternal, Message: "internal error"}
}

// CancelBill cancels a store's current bill.
func (h *Links) CancelBill(ctx context.Context, meta Meta, req api.CancelBillRequest) (api.CancelBillReply, error) {
	if err := req.Validate(); err != nil {
		return api.CancelBillReply{}, err
	}
	id, _, err := domain.ParseBillID(req.BillID)
	if err != nil {
		return api.CancelBillReply{}, err
	}
	out, err := h.links.Execute(ctx, meta, id, func(l domain.Link) ([]domain.Event, error) {
		return domain.DecideCancelBill(l, domain.CancelBill{BillID: req.BillID, Reason: req.Reason, Now: h.Now()})
	}, nil)
	if err != nil {
		return api.CancelBillReply{}, err
	}
	return api.CancelBillReply{BillID: req.BillID, Status: string(domain.BillStatusCancelled), Written: written(out.Seq)}, nil
}

// RemindUnpaid records one reminder per store of stores (each linked to
// dist) whose current bill has an outstanding balance (decided on each
// link's own state), and returns the stores reminded, in the order of
// stores. With named (the request named the stores), it also says why each
// other store was not reminded. Links are visited bulkConcurrency at a
// time; one that fails (NATS away, the command's time up) does not stop
// the others, and the request then fails as a whole: its repeat with the
// same key reminds only the stores not reminded yet.
func (h *Links) RemindUnpaid(ctx context.Context, meta Meta, dist domain.DistributorID, stores []string, named bool) (api.RemindUnpaidReply, error) {
	type result struct {
		store   string
		seq     api.Seq
		counted time.Time
		not     string // why it was not reminded ("": it was)
	}
	var (
		results = make([]result, len(stores))
		wg      sync.WaitGroup
		sem     = make(chan struct{}, bulkConcurrency)
		mu      sync.Mutex
		fail    error
	)
	// What the bank scan has covered: a payment made since is not counted
	// in the reminders, and their messages say up to when payments are.
	var counted time.Time
	if h.marks != nil {
		wm, err := h.marks.Watermark(ctx, h.cfg.CollectAccount.Number)
		if err != nil {
			return api.RemindUnpaidReply{}, err
		}
		counted = wm.UTC().Truncate(time.Microsecond) // as events record times
	}
	for i, store := range stores {
		id := domain.LinkID(dist, domain.StoreID(store))
		m := meta
		if m.IdempotencyKey != "" {
			m.IdempotencyKey += "#" + id
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			out, err := h.links.Execute(ctx, m, id, func(l domain.Link) ([]domain.Event, error) {
				return domain.DecideRemind(l, domain.Remind{Now: h.Now(), PaymentsCountedTo: counted})
			}, nil)
			if err != nil {
				mu.Lock()
				fail = errors.Join(fail, fmt.Errorf("link %s: %w", id, err))
				mu.Unlock()
				return
			}
			results[i] = result{store: store, not: notReminded(out.State)}
			for _, e := range out.Events {
				if r, ok := e.(domain.BillReminded); ok {
					results[i] = result{store: store, seq: written(out.Seq).Seq, counted: r.PaymentsCountedTo}
				}
			}
		}()
	}
	wg.Wait()
	if fail != nil {
		return api.RemindUnpaidReply{}, fail
	}
	reply := api.RemindUnpaidReply{Status: api.RemindStatusNone, Reminded: []string{}}
	for _, r := range results {
		if r.not != "" {
			if named {
				reply.NotReminded = append(reply.NotReminded, api.NotReminded{StoreID: r.store, Reason: r.not})
			}
			continue
		}
		if len(reply.Reminded) == 0 || r.counted.Before(counted) {
			// A repeat finds the reminders its first attempt recorded,
			// with the watermark of then: the reply names the earliest
			// any reminder states (none if one states none).
			counted = r.counted
		}
		reply.Reminded = append(reply.Reminded, r.store)
		reply.Seq = max(reply.Seq, r.seq)
	}
	if len(reply.Reminded) > 0 {
		reply.Status = api.RemindStatusReminded
	}
	if !counted.IsZero() {
		reply.PaymentsCountedTo = domain.FormatTime(counted)
	}
	return reply, nil
}

// notReminded says why a link whose remind_unpaid recorded no reminder
// was not reminded, from its state then.
func notReminded(l domain.Link) string {
	switch {
	case !l.Exists():
		return api.NotRemindedNotLinked
	case !l.HasCurrentBill():
		return api.NotRemindedNoCurrentBill
	}
	return api.NotRemindedNothingOutstanding
}

// recordStorePayment records a deposit on link's dedicated account as a
// payment to the distributor, and returns the bill it went to ("" for an
// unbilled payment). A repeat for the same deposit changes nothing and
// returns the same bill.
func (h *Links) recordStorePayment(ctx context.Context, meta Meta, link string, rec domain.DepositRecorded, retry bool) (string, error) {
	if retry {
		// An earlier attempt may have applied the payment and died before
		// recording the deposit: the link remembers only its last
		// domain.RecentDeposits payments, so its history is searched.
		ev, found, err := h.links.Find(ctx, link, func(e domain.Event) bool {
			p, ok := e.(domain.StorePaymentReceived)
			return ok && p.DepositID == rec.DepositID
		})
		if err != nil {
			return "", err
		}
		if found {
			return ev.(domain.StorePaymentReceived).BillID, nil
		}
	}
	out, err := h.links.Execute(ctx, meta, link, func(l domain.Link) ([]domain.Event, error) {
		return domain.DecideStorePayment(l, domain.StorePayment{
			DepositID: rec.DepositID, Amount: rec.Amount, PaidAt: rec.DepositedAt, CollectAccount: domain.NormalizeAccountNumber(h.cfg.CollectAccount.Number),
			FeeBps: h.cfg.StoreFeeBps, SettlementDays: h.cfg.SettlementDays, Holidays: h.cfg.SettlementHolidays, Now: h.Now(),
		})
	}, nil)
	if err != nil {
		return "", err
	}
	for _, e := range out.Events {
		if p, ok := e.(domain.StorePaymentReceived); ok && p.DepositID == rec.DepositID {
			return p.BillID, nil
		}
	}
	bill, _ := out.State.PaymentApplied(rec.DepositID)
	return bill, nil
}
