package soak

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/domain"
)

// storesPerClient is how many stores each client's distributor links.
const storesPerClient = 4

// store is one of a client's stores as the client knows it: its dedicated
// account once a link is acknowledged, and its current bill as far as the
// client's own acknowledged requests tell (known false after a bill
// request that got no definitive answer: then it neither cancels nor says
// which bill a payment must go to).
type store struct {
	id, name string
	account  string // the dedicated account's number; "" until linked
	current  string // the current bill's ID; "" for none
	known    bool
}

// newStores names a client's stores; each client is the only one to bill
// them, so its view of their current bills is exact.
func newStores(runID string, id int) []*store {
	out := make([]*store, storesPerClient)
	for s := range out {
		out[s] = &store{id: fmt.Sprintf("soak-%s-c%02d-s%d", runID, id, s), name: fmt.Sprintf("Soak store %02d-%d", id, s), known: true}
	}
	return out
}

// billing links a store (once), then issues it a bill (now and then every
// linked store one, in bulk), pays to its dedicated account, cancels its
// current bill, or reminds the distributor's stores of what they owe.
func (w *worker) billing(ctx context.Context) {
	s := w.stores[w.rng.IntN(len(w.stores))]
	if s.account == "" {
		rep, _, ok := send(ctx, w, api.StoreLink, api.LinkStoreRequest{DistributorID: w.distributor, StoreID: s.id, StoreName: s.name}, w.next("key"))
		if !ok {
			return
		}
		s.account = rep.DedicatedAccount.Number
	}
	switch p := w.rng.IntN(100); {
	case p < 5:
		w.issueBulk(ctx)
	case p < 10:
		send(ctx, w, api.BillRemind, api.RemindUnpaidRequest{DistributorID: w.distributor}, w.next("key"))
	case p < 40:
		req := api.IssueBillRequest{DistributorID: w.distributor, StoreID: s.id, Amount: 10_000 + 1_000*int64(w.rng.IntN(300))}
		rep, _, ok := send(ctx, w, api.BillIssue, req, w.next("key"))
		s.current, s.known = rep.BillID, ok
	case p < 85: // any amount: exact, partial, over, or with no bill at all
		req := api.RecordDepositRequest{BankTxnID: w.next("TXN"), AccountNumber: s.account, DepositorName: fmt.Sprintf("ST%02d", w.id),
			Amount: 1_000 * int64(1+w.rng.IntN(200)), DepositedAt: time.Now().UTC().Truncate(time.Microsecond)}
		want := "" // not known: a bill request got no definitive answer
		if s.known {
			want = cmp.Or(s.current, noBill)
		}
		sendWant(ctx, w, api.DepositRecord, req, w.next("key"), want)
	default:
		if s.current == "" || !s.known {
			return
		}
		_, _, ok := send(ctx, w, api.BillCancel, api.CancelBillRequest{BillID: s.current, Reason: "soak"}, w.next("key"))
		s.current, s.known = "", ok
	}
}

// issueBulk issues a bill to every linked store in one bill.issue_bulk.
func (w *worker) issueBulk(ctx context.Context) {
	var (
		lines  []api.BillLine
		stores []*store
	)
	for _, s := range w.stores {
		if s.account != "" {
			lines = append(lines, api.BillLine{StoreID: s.id, Amount: 10_000 + 1_000*int64(w.rng.IntN(300))})
			stores = append(stores, s)
		}
	}
	if len(lines) == 0 {
		return
	}
	rep, _, ok := send(ctx, w, api.BillIssueBulk, api.IssueBulkRequest{DistributorID: w.distributor, Bills: lines}, w.next("key"))
	for i, s := range stores {
		s.current, s.known = "", false
		if ok && i < len(rep.Results) && rep.Results[i].Error == nil {
			s.current, s.known = rep.Results[i].BillID, true
		}
	}
}

// billExpect is what the acks say about one bill.
type billExpect struct {
	n         int64 // the issue's ack
	issue     api.IssueBillRequest
	reply     api.IssueBillReply
	cancelled bool
	payments  []domain.DepositID // store payments acknowledged as going to it
}

// checkBillAcks checks the bills' acks against the stream: every
// acknowledged bill issued as acknowledged, every acknowledged cancel in
// it, every acknowledged store payment recorded once with the bill it was
// acknowledged with. It adds what the read-model check needs to bills.
func checkBillAcks(c *Check, a Ack, f *facts, bills map[string]*billExpect) {
	bill := func(id string) *billExpect { return entry(bills, id) }
	switch a.Op {
	case api.BillIssue.Name:
		req, r, err := decodeAck[api.IssueBillRequest, api.IssueBillReply](a)
		if err != nil {
			c.fail("%v", err)
			return
		}
		checkIssued(c, a, f, bill(r.BillID), req, r)
	case api.BillIssueBulk.Name:
		req, r, err := decodeAck[api.IssueBulkRequest, api.IssueBulkReply](a)
		if err != nil {
			c.fail("%v", err)
			return
		}
		c.expect(len(r.Results) == len(req.Bills), "bulk issue (ack %d): %d lines, %d results", a.N, len(req.Bills), len(r.Results))
		for i, res := range r.Results {
			if i >= len(req.Bills) {
				break
			}
			if res.Error != nil {
				c.fail("bulk issue (ack %d) line %d to %s: %s %s", a.N, res.Line, res.StoreID, res.Error.Code, res.Error.Message)
				continue
			}
			line := req.Bills[i]
			issue := api.IssueBillRequest{DistributorID: req.DistributorID, StoreID: line.StoreID, Amount: line.Amount}
			checkIssued(c, a, f, bill(res.BillID), issue, api.IssueBillReply{BillID: res.BillID, StoreID: res.StoreID, Amount: line.Amount})
		}
	case api.BillCancel.Name:
		req, _, err := decodeAck[api.CancelBillRequest, api.CancelBillReply](a)
		if err != nil {
			c.fail("%v", err)
			return
		}
		bill(req.BillID).cancelled = true
		c.expect(f.closed[req.BillID] == closedCancelled, "bill %s: cancel acknowledged (ack %d), the stream has it %q", req.BillID, a.N, f.closed[req.BillID])
	case api.DepositRecord.Name:
		_, r, err := decodeAck[api.RecordDepositRequest, api.RecordDepositReply](a)
		if err != nil || r.Outcome != domain.OutcomeStorePayment {
			return
		}
		paid := f.storePaid[domain.DepositID(r.DepositID)]
		c.expect(len(paid) == 1 && paid[0].BillID == r.BillID, "store payment %s (ack %d) to bill %q: the stream has %d payments %+v", r.DepositID, a.N, r.BillID, len(paid), paid)
		if want := a.Want; want != "" {
			if want == noBill {
				want = ""
			}
			c.expect(r.BillID == want, "store payment %s (ack %d) went to bill %q; the bill current when the store paid was %q", r.DepositID, a.N, r.BillID, a.Want)
		}
		if r.BillID != "" {
			b := bill(r.BillID)
			b.payments = append(b.payments, domain.DepositID(r.DepositID))
		}
	}
}

// checkIssued notes a bill acknowledged as issued (by a, for req) in b,
// and checks that the stream issued it so.
func checkIssued(c *Check, a Ack, f *facts, b *billExpect, req api.IssueBillRequest, r api.IssueBillReply) {
	b.n, b.issue, b.reply = a.N, req, r
	got, ok := f.bills[r.BillID]
	c.expect(ok && got.Amount == req.Amount && string(got.StoreID) == req.StoreID && string(got.DistributorID) == req.DistributorID,
		"bill %s (ack %d): acknowledged %d to %s of %s, the stream has %+v (issued: %v)", r.BillID, a.N, req.Amount, req.StoreID, req.DistributorID, got, ok)
}

// noBill is Ack.Want of a store payment made while the store had no
// current bill: it must be unbilled.
const noBill = "(none)"

// How a bill ended in the stream.
const (
	closedExpired   = string(domain.BillStatusExpired)
	closedCancelled = string(domain.BillStatusCancelled)
)

// checkBills: every acknowledged bill reads as the stream says, with its
// acknowledged amount, status (cancelled if a cancel was acknowledged,
// ended if a later bill of its store was acknowledged, as the stream says
// otherwise), and paid amount and payments (the stream's sum and count,
// the acknowledged ones among them).
func checkBills(ctx context.Context, rep *Report, v *verifier, bills map[string]*billExpect, f *facts) {
	c := rep.check("bills kept")
	ids := slices.Sorted(maps.Keys(bills))
	// Each store's acknowledged bills, in the order they were acknowledged
	// (one client bills a store, one request at a time): all but the last
	// were superseded.
	latest := map[string]*billExpect{}
	for _, id := range ids {
		b := bills[id]
		if b.reply.BillID == "" {
			continue
		}
		if l := latest[b.issue.StoreID]; l == nil || l.n < b.n {
			latest[b.issue.StoreID] = b
		}
	}
	for _, id := range ids {
		if b := bills[id]; b.reply.BillID != "" && latest[b.issue.StoreID] != b {
			c.expect(f.closed[id] != "", "bill %s: a later bill of store %s was acknowledged, and this one never ended", id, b.issue.StoreID)
		}
	}
	askEach(ctx, v, c, ids, func(id string) string { return "bill " + id }, api.BillGet,
		func(id string) api.GetBillRequest { return api.GetBillRequest{BillID: id} }, func(id string, view api.BillView) {
			want := bills[id]
			c.Checked++
			issued, ok := f.bills[id]
			c.expect(ok, "bill %s: acknowledged (issued, paid or cancelled), never issued in the stream", id)
			c.expect(view.Amount == issued.Amount && view.StoreID == string(issued.StoreID), "bill %s: reads %d to %s, issued %d to %s", id, view.Amount, view.StoreID, issued.Amount, issued.StoreID)
			if want.reply.BillID != "" {
				c.expect(view.Amount == want.issue.Amount, "bill %s: acknowledged %d, reads %d", id, want.issue.Amount, view.Amount)
			}
			switch closed := f.closed[id]; {
			case want.cancelled:
				c.expect(view.Status == closedCancelled, "bill %s: cancel acknowledged, reads %s", id, view.Status)
			case closed != "":
				c.expect(view.Status == closed, "bill %s: %s in the stream, reads %s", id, closed, view.Status)
			default:
				c.expect(view.Status == string(domain.BillStatusActive) || view.Status == string(domain.BillStatusPartiallyPaid) || view.Status == string(domain.BillStatusPaid),
					"bill %s: still current in the stream, reads %s", id, view.Status)
			}
			paid := f.billPaid[id]
			c.expect(view.PaidAmount == paid.amount && view.PaymentCount == paid.count && view.Outstanding == max(view.Amount-view.PaidAmount, 0),
				"bill %s: reads paid %d in %d payments (outstanding %d), the stream %d in %d", id, view.PaidAmount, view.PaymentCount, view.Outstanding, paid.amount, paid.count)
			if view.PaymentCount <= api.MaxBillPayments {
				for _, d := range want.payments {
					c.expect(containsPayment(view.Payments, d), "bill %s: store payment %s acknowledged as going to it, not among its payments", id, d)
				}
			}
		})
	c.Note = fmt.Sprintf("%d bills", len(bills))
}

func containsPayment(ps []api.BillPayment, d domain.DepositID) bool {
	for _, p := range ps {
		if p.DepositID == string(d) {
			return true
		}
	}
	return false
}
