package soak

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/client"
	"github.com/bankbook/bankbook/domain"
)

// verifier asks the engine what the checks need, once the traffic is over.
type verifier struct {
	c       *client.Client
	timeout time.Duration
	// js reads the reactors' consumers (drain); nil skips that wait.
	js jetstream.JetStream
}

// ask sends a query, retrying what is not an answer (5xx, transport) for
// up to 30 s. A 4xx comes back as *api.Error.
func ask[Req, Rep any](ctx context.Context, v *verifier, ep api.Endpoint[Req, Rep], req Req) (Rep, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		actx, cancel := context.WithTimeout(ctx, v.timeout)
		rep, _, err := client.Do(actx, v.c, ep, req, nil)
		cancel()
		var ae *api.Error
		if err == nil || (errors.As(err, &ae) && ae.Status < 500) || ctx.Err() != nil || time.Now().After(deadline) {
			return rep, err
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// askEach asks ep, for every item, what req makes of it, a few questions
// at once, and hands each answer to check, one at a time (check needs no
// lock); a question that got no answer is a finding of c, named by what.
func askEach[T, Req, Rep any](ctx context.Context, v *verifier, c *Check, items []T, what func(T) string, ep api.Endpoint[Req, Rep], req func(T) Req, check func(T, Rep)) {
	work := make(chan T)
	var (
		wg sync.WaitGroup
		mu sync.Mutex
	)
	for range 8 {
		wg.Go(func() {
			for it := range work {
				rep, err := ask(ctx, v, ep, req(it))
				mu.Lock()
				if err != nil {
					c.expect(false, "%s: %v", what(it), err)
				} else {
					check(it, rep)
				}
				mu.Unlock()
			}
		})
	}
	for _, it := range items {
		work <- it
	}
	close(work)
	wg.Wait()
}

// entry returns m's value under k, a new zero one put there if there was
// none.
func entry[K comparable, V any](m map[K]*V, k K) *V {
	if m[k] == nil {
		m[k] = new(V)
	}
	return m[k]
}

// decodeAck decodes an ack's request and reply.
func decodeAck[Req, Rep any](a Ack) (req Req, rep Rep, err error) {
	if err = json.Unmarshal(a.Request, &req); err != nil {
		return req, rep, fmt.Errorf("ack %d request: %w", a.N, err)
	}
	if a.OK() {
		if err = json.Unmarshal(a.Reply, &rep); err != nil {
			return req, rep, fmt.Errorf("ack %d reply: %w", a.N, err)
		}
	}
	return req, rep, nil
}

func payoutFinal(status string) bool {
	return status == string(domain.PayoutSettledStatus) || status == string(domain.PayoutFailedStatus)
}

// reactNotify is the engine's part that records the notifications events
// call for (engine.partReactNotify).
const reactNotify = "react-notify"

// reactorBusy reports whether the reactor durable has commits not yet
// delivered or not yet acknowledged (an error counts as busy).
func reactorBusy(ctx context.Context, js jetstream.JetStream, durable string) (bool, error) {
	if js == nil {
		return false, nil
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cons, err := js.Consumer(cctx, auth.DefaultStream, durable)
	if err != nil {
		return true, fmt.Errorf("consumer %s: %w", durable, err)
	}
	info, err := cons.Info(cctx)
	if err != nil {
		return true, fmt.Errorf("consumer %s: %w", durable, err)
	}
	if info.NumPending > 0 || info.NumAckPending > 0 {
		return true, fmt.Errorf("%s: %d commits to deliver, %d unacknowledged", durable, info.NumPending, info.NumAckPending)
	}
	return false, nil
}

// drain waits until the engine is idle: every acknowledged payout
// finished, every acknowledged reserved cancellation final, no
// notification pending and react-notify holding no commit, the read
// models caught up and the stream unchanged for two seconds.
func drain(ctx context.Context, v *verifier, acks []Ack, timeout time.Duration) error {
	payouts, reserved := map[string]bool{}, map[string]bool{}
	for _, a := range acks {
		if !a.OK() || a.Repeat {
			continue
		}
		switch a.Op {
		case api.WalletWithdraw.Name:
			var rep api.WithdrawReply
			if json.Unmarshal(a.Reply, &rep) == nil {
				payouts[rep.PayoutID] = true
			}
		case api.DepositResolve.Name:
			var rep api.ResolveDepositReply
			if json.Unmarshal(a.Reply, &rep) == nil && rep.PayoutID != "" {
				payouts[rep.PayoutID] = true
			}
		case api.OrderCancel.Name:
			var rep api.CancelOrderReply
			if json.Unmarshal(a.Reply, &rep) == nil && rep.Status == domain.StatusCancelReserved {
				reserved[rep.OrderID] = true
			}
		}
	}
	// A simulated transfer shows after the bank's lag, and is recorded by
	// the next scan.
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(simLag + 3*scanInterval):
	}
	deadline := time.Now().Add(timeout)
	var last api.Seq
	stable := time.Now()
	for {
		for id := range payouts {
			p, err := ask(ctx, v, api.PayoutGet, api.PayoutRequest{PayoutID: id})
			if err == nil && payoutFinal(p.Status) {
				delete(payouts, id)
			}
		}
		for id := range reserved {
			o, err := ask(ctx, v, api.OrderGet, api.GetOrderRequest{OrderID: id})
			if err == nil && o.Status != string(domain.StatusCancelReserved) {
				delete(reserved, id)
			}
		}
		pending, nerr := ask(ctx, v, api.NotifyList, api.NotifyListRequest{Status: api.NotificationPending, PageRequest: api.PageRequest{Limit: 1}})
		unsent := nerr != nil || len(pending.Notifications) > 0
		if !unsent {
			// The notifications not created yet: react-notify's commits in
			// flight at the last kill come back only after its AckWait
			// (30 s), and the stream may be still meanwhile.
			unsent, nerr = reactorBusy(ctx, v.js, reactNotify)
		}
		st, err := ask(ctx, v, api.ProjectionStatus, api.ProjectionStatusRequest{})
		if err == nil && st.StreamLastSeq != last {
			last, stable = st.StreamLastSeq, time.Now()
		}
		if err == nil && len(payouts) == 0 && len(reserved) == 0 && !unsent && st.Lag == 0 && time.Since(stable) >= 2*time.Second {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("not idle after %v: %d payouts unfinished %v, %d reserved cancellations not final %v, notifications pending %v (%v), lag %d (%v)",
				timeout, len(payouts), firstKeys(payouts), len(reserved), firstKeys(reserved), unsent, nerr, st.Lag, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func firstKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		if len(out) == 3 {
			break
		}
		out = append(out, k)
	}
	return out
}

// orderExpect is what the acks say about one order.
type orderExpect struct {
	submit    api.SubmitOrderReply
	buyer     string
	cancelled string             // the acknowledged cancel status, if any
	deposits  []domain.DepositID // acknowledged as paying it (matched, assigned)
}

// verify runs every check on the acks (read back from the log) against
// the stream and the read models.
func verify(ctx context.Context, rep *Report, v *verifier, acks []Ack, f *facts) {
	sameAnswers(rep, acks)
	seen := checkAcks(rep, acks, f)
	checkOrders(ctx, rep, v, seen.orders)
	checkBills(ctx, rep, v, seen.bills, f)
	checkPayouts(ctx, rep, v, seen.withdrawals, seen.bankRefunds, f)
	checkDuplicates(rep, f)
	checkBooks(ctx, rep, v, f)
	dead := rep.check("no dead letters")
	if dl, err := ask(ctx, v, api.DeadLetterList, api.DeadLettersRequest{PageRequest: api.PageRequest{Limit: 500}}); err != nil {
		dead.fail("deadletter.list: %v", err)
	} else {
		dead.Checked = 1
		for _, d := range dl.DeadLetters {
			dead.fail("%s seq %d: %s", d.Part, d.Seq, d.Error)
		}
	}
}

// acked is what the acks say the read models must show.
type acked struct {
	orders      map[string]*orderExpect
	bills       map[string]*billExpect
	withdrawals []Ack
	bankRefunds []api.ResolveDepositReply
}

// checkAcks checks every original ack (repeats are sameAnswers') against
// the stream: recorded deposits, resolutions, refusals and simulated
// transfers; it returns what the read-model checks need.
func checkAcks(rep *Report, acks []Ack, f *facts) acked {
	seen := acked{orders: map[string]*orderExpect{}, bills: map[string]*billExpect{}}
	order := func(id string) *orderExpect { return entry(seen.orders, id) }
	deposits := rep.check("recorded deposits kept")
	resolutions := rep.check("resolutions kept")
	refusals := rep.check("refusals expected, wrote nothing")
	sims := rep.check("simulated transfers recorded")
	bills := rep.check("store payments and bills recorded")
	var ownDuplicate, simLost int
	for _, a := range acks {
		if a.Repeat {
			continue
		}
		if !a.OK() {
			checkRefusal(refusals, a, f)
			continue
		}
		checkBillAcks(bills, a, f, seen.bills)
		switch a.Op {
		case api.OrderSubmit.Name:
			req, r, err := decodeAck[api.SubmitOrderRequest, api.SubmitOrderReply](a)
			if err != nil {
				deposits.fail("%v", err)
				continue
			}
			o := order(r.OrderID)
			o.submit, o.buyer = r, req.BuyerID
		case api.OrderCancel.Name:
			_, r, err := decodeAck[api.CancelOrderRequest, api.CancelOrderReply](a)
			if err == nil {
				order(r.OrderID).cancelled = string(r.Status)
			}
		case api.DepositRecord.Name:
			req, r, err := decodeAck[api.RecordDepositRequest, api.RecordDepositReply](a)
			if err != nil {
				deposits.fail("%v", err)
				continue
			}
			recs := f.recorded[req.BankTxnID]
			deposits.expect(len(recs) == 1, "bank txn %s (ack %d, %s): recorded %d times", req.BankTxnID, a.N, r.Outcome, len(recs))
			deposits.expect(r.DepositID == string(domain.NewDepositID(req.AccountNumber, req.BankTxnID)), "ack %d: deposit id %s is not the bank txn's", a.N, r.DepositID)
			if len(recs) == 1 {
				switch {
				case r.Outcome == domain.OutcomeDuplicate:
					if f.recordedKey[recs[0].DepositID] == a.Key {
						ownDuplicate++ // its own earlier attempt recorded it
					}
				default:
					deposits.expect(recs[0].Outcome == r.Outcome, "deposit %s: acknowledged %s, recorded %s", r.DepositID, r.Outcome, recs[0].Outcome)
				}
			}
			if r.Outcome == domain.OutcomeMatched {
				o := order(r.OrderID)
				o.deposits = append(o.deposits, domain.DepositID(r.DepositID))
			}
		case api.DepositResolve.Name:
			req, r, err := decodeAck[api.ResolveDepositRequest, api.ResolveDepositReply](a)
			if err != nil {
				resolutions.fail("%v", err)
				continue
			}
			d := domain.DepositID(req.DepositID)
			found := slices.ContainsFunc(f.resolved[d], func(e domain.DepositResolved) bool { return e.Action == req.Action })
			resolutions.expect(found, "deposit %s: %s acknowledged (ack %d), not in the stream", d, req.Action, a.N)
			resolutions.expect(len(f.resolved[d]) <= 1+f.reopened[d], "deposit %s resolved %d times, reopened %d", d, len(f.resolved[d]), f.reopened[d])
			switch req.Action {
			case domain.ResolveRefundToWallet:
				n := f.credits[creditRef(domain.UserID(req.UserID), req.DepositID)]
				resolutions.expect(n == 1, "deposit %s refunded to wallet %s %d times", d, req.UserID, n)
			case domain.ResolveAssignOrder:
				o := order(req.OrderID)
				o.deposits = append(o.deposits, d)
			case domain.ResolveRefundToBank:
				seen.bankRefunds = append(seen.bankRefunds, r)
			}
		case api.WalletWithdraw.Name:
			seen.withdrawals = append(seen.withdrawals, a)
		case api.SimBankTransfer.Name:
			_, r, err := decodeAck[api.SimTransferRequest, api.SimTransferReply](a)
			if err != nil {
				sims.fail("%v", err)
				continue
			}
			n := len(f.recorded[r.BankTxnID])
			switch {
			case n > 1:
				sims.expect(false, "simulated transfer %s recorded %d times", r.BankTxnID, n)
			case n == 0 && !rep.killedNear(a.At):
				sims.expect(false, "simulated transfer %s (ack %d at %s) never recorded, and no kill came within %v", r.BankTxnID, a.N, a.At.Format(time.RFC3339Nano), recordMargin)
			case n == 0:
				simLost++
			default:
				sims.Checked++
			}
		}
	}
	deposits.Note = fmt.Sprintf("%d retries answered duplicate after their own first attempt recorded the deposit", ownDuplicate)
	sims.Note = fmt.Sprintf("%d lost with the in-process simulated bank at a kill", simLost)
	return seen
}

// killedNear says a kill came within recordMargin after t (or just before:
// the ack may have been read a moment after the engine died).
func (r *Report) killedNear(t time.Time) bool {
	for _, k := range r.kills {
		if !k.Before(t.Add(-time.Second)) && k.Before(t.Add(recordMargin)) {
			return true
		}
	}
	return false
}

// sameAnswers: a repeat with an acknowledged key and body gets the
// original answer again, marked replayed.
func sameAnswers(rep *Report, acks []Ack) {
	c := rep.check("same key, same answer")
	first := map[string]Ack{}
	for _, a := range acks {
		if a.Key == "" {
			continue
		}
		k := a.Op + "\x00" + a.Key
		orig, seen := first[k]
		if !seen {
			first[k] = a
			continue
		}
		c.expect(a.Status == orig.Status && a.Code == orig.Code && string(a.Reply) == string(orig.Reply),
			"%s key %s: ack %d answered %d %s %s, ack %d answered %d %s %s", a.Op, a.Key, orig.N, orig.Status, orig.Code, orig.Reply, a.N, a.Status, a.Code, a.Reply)
		if a.Status == 200 {
			c.expect(a.Replayed, "%s key %s: ack %d repeats ack %d but is not marked replayed", a.Op, a.Key, a.N, orig.N)
		}
	}
}

// checkRefusal: a definitive error is one the workload provokes, and the
// command wrote nothing under its key.
func checkRefusal(c *Check, a Ack, f *facts) {
	c.expect(expectedRefusals[a.Op][a.Code], "%s key %s (ack %d): unexpected %d %s: %s", a.Op, a.Key, a.N, a.Status, a.Code, a.Reply)
	if a.Key == "" {
		return
	}
	if ep, ok := endpointByName(a.Op); ok {
		n := f.used[ep.Subject+"\x00"+a.Key]
		c.expect(n == 0, "%s key %s refused %s but %d commits carry the key", a.Op, a.Key, a.Code, n)
	}
}

// checkOrders: every acknowledged order exists as acknowledged, with the
// acknowledged status or a later one, and holds the deposits that paid it.
func checkOrders(ctx context.Context, rep *Report, v *verifier, orders map[string]*orderExpect) {
	c := rep.check("orders kept")
	ids := slices.Sorted(maps.Keys(orders))
	askEach(ctx, v, c, ids, func(id string) string { return "order " + id }, api.OrderGet,
		func(id string) api.GetOrderRequest { return api.GetOrderRequest{OrderID: id} }, func(id string, view api.OrderView) {
			want := orders[id]
			c.Checked++
			if want.submit.OrderID != "" {
				if view.Amount != want.submit.Amount || view.BuyerID != want.buyer || view.DepositorName != want.submit.DepositorName {
					c.fail("order %s: acknowledged %d for %s as %q, now %d for %s as %q", id, want.submit.Amount, want.buyer, want.submit.DepositorName, view.Amount, view.BuyerID, view.DepositorName)
				}
			}
			switch {
			case want.cancelled != "" && view.Status != string(domain.StatusCancelled):
				c.fail("order %s: cancel acknowledged as %s, now %s", id, want.cancelled, view.Status)
			case len(want.deposits) > 0 && view.Status != string(domain.StatusPaid) && view.Status != string(domain.StatusCancelled):
				c.fail("order %s: payment acknowledged, now %s", id, view.Status)
			}
			for _, d := range want.deposits {
				if !slices.Contains(view.DepositIDs, string(d)) {
					c.fail("order %s: deposit %s acknowledged as paying it, not among its deposits %v", id, d, view.DepositIDs)
				}
			}
		})
	c.Note = fmt.Sprintf("%d orders", len(orders))
}

// checkPayouts: every acknowledged withdrawal and refund to the bank is a
// payout, requested once, finished once (a failed withdrawal's money back
// in the wallet once).
func checkPayouts(ctx context.Context, rep *Report, v *verifier, withdrawals []Ack, refunds []api.ResolveDepositReply, f *facts) {
	c := rep.check("payouts kept and finished")
	type want struct {
		id, source, sourceID string
		amount               int64
	}
	var all []want
	for _, a := range withdrawals {
		req, r, err := decodeAck[api.WithdrawRequest, api.WithdrawReply](a)
		if err != nil {
			c.fail("%v", err)
			continue
		}
		all = append(all, want{r.PayoutID, domain.PayoutFromWallet, req.UserID, req.Amount})
		c.expect(f.debits[domain.PayoutID(r.PayoutID)] == 1, "withdrawal %s: wallet debited %d times", r.PayoutID, f.debits[domain.PayoutID(r.PayoutID)])
	}
	for _, r := range refunds {
		all = append(all, want{id: r.PayoutID, source: domain.PayoutFromDeposit, sourceID: r.DepositID})
	}
	var settled, failed int
	askEach(ctx, v, c, all, func(w want) string { return "payout " + w.id }, api.PayoutGet,
		func(w want) api.PayoutRequest { return api.PayoutRequest{PayoutID: w.id} }, func(w want, p api.PayoutView) {
			c.expect(p.Source == w.source && p.SourceID == w.sourceID && (w.amount == 0 || p.Amount == w.amount),
				"payout %s: acknowledged %s %s %d, is %s %s %d", w.id, w.source, w.sourceID, w.amount, p.Source, p.SourceID, p.Amount)
			c.expect(payoutFinal(p.Status), "payout %s is still %s", w.id, p.Status)
			pid := domain.PayoutID(w.id)
			switch {
			case p.Status == string(domain.PayoutFailedStatus) && w.source == domain.PayoutFromWallet:
				failed++
				n := f.credits[creditRef(domain.UserID(w.sourceID), domain.ReversalRef(domain.PayoutID(w.id)))]
				c.expect(n == 1, "failed withdrawal %s returned to the wallet %d times", w.id, n)
			case p.Status == string(domain.PayoutFailedStatus):
				failed++
				c.expect(f.reopened[domain.DepositID(w.sourceID)] >= 1, "failed refund %s: deposit %s not reopened", w.id, w.sourceID)
			case p.Status == string(domain.PayoutSettledStatus):
				settled++
			}
			c.expect(f.finished[pid] == 1, "payout %s finished %d times in the stream", w.id, f.finished[pid])
		})
	c.Note = fmt.Sprintf("%d payouts: %d settled, %d failed", len(all), settled, failed)
}

// checkDuplicates: nothing in the stream happened twice.
// once expects each count in counts to be 1; what, a format with one verb
// for the key, names it in a failure, followed by the count.
func once[K comparable](c *Check, counts map[K]int, what string) {
	for k, n := range counts {
		c.expect(n == 1, what+" %d times", k, n)
	}
}

func checkDuplicates(rep *Report, f *facts) {
	keys := rep.check("one commit per key and aggregate")
	for k, n := range f.keyed {
		keys.expect(n == 1, "%s key %s on %s: %d commits", k.command, k.key, k.aggregate, n)
	}
	txns := rep.check("bank transactions recorded once")
	for txn, recs := range f.recorded {
		txns.expect(len(recs) == 1, "bank txn %s recorded %d times", txn, len(recs))
	}
	stores := rep.check("store payments recorded once")
	for d, ps := range f.storePaid {
		stores.expect(len(ps) == 1, "deposit %s: %d store payments", d, len(ps))
	}
	closes := rep.check("bills end at most once")
	once(closes, f.closes, "bill %s ended")
	notes := rep.check("one notification per event and recipient")
	once(notes, f.notesFor, "notification for event and recipient %q created")
	for id, nc := range f.notes {
		notes.expect(f.events[nc.SourceEventID], "notification %s: its source event %s is not in the stream", id, nc.SourceEventID)
	}
	for id, what := range f.called {
		_, ok := f.notes[id]
		notes.expect(ok, "%s calls for notification %s, never created", what, id)
	}
	sent := rep.check("notifications sent once")
	for id := range f.notes {
		sent.expect(f.sent[id] == 1 && f.dead[id] == 0, "notification %s: sent %d times, dead-lettered %d times", id, f.sent[id], f.dead[id])
	}
	for id, n := range f.sent {
		if _, ok := f.notes[id]; !ok {
			sent.expect(false, "notification %s sent %d times, never created", id, n)
		}
	}
	paid := rep.check("orders paid at most once")
	once(paid, f.paid, "order %s paid")
	credits := rep.check("wallet moves once per reference")
	once(credits, f.credits, "wallet credit %q (user and reference)")
	once(credits, f.debits, "payout %s debited")
	payouts := rep.check("payouts requested and finished once")
	for id, n := range f.requested {
		payouts.expect(n == 1 && f.finished[id] == 1, "payout %s: requested %d times, finished %d times", id, n, f.finished[id])
	}
	for id, n := range f.finished {
		if f.requested[id] == 0 {
			payouts.expect(false, "payout %s finished %d times, never requested", id, n)
		}
	}
	if f.unknown > 0 {
		rep.note("%d events of types this build does not know were skipped", f.unknown)
	}
}

// checkBooks: the trial balance sums to 0 at the stream's end, and every
// wallet is minus its ledger account and what the stream says.
func checkBooks(ctx context.Context, rep *Report, v *verifier, f *facts) {
	tb := rep.check("trial balance 0")
	bal, err := ask(ctx, v, api.LedgerTrialBalance, api.TrialBalanceRequest{})
	if err != nil {
		tb.fail("trial_balance: %v", err)
		return
	}
	var sum int64
	ledger := map[string]int64{}
	for _, a := range bal.Accounts {
		sum += a.Balance
		ledger[a.Account] = a.Balance
	}
	tb.expect(bal.Total == 0 && sum == 0, "total %d, accounts sum to %d", bal.Total, sum)
	tb.expect(uint64(bal.AsOfSeq) == uint64(f.lastSeq), "as of seq %d, stream at %d", bal.AsOfSeq, f.lastSeq)
	tb.Note = fmt.Sprintf("%d accounts as of seq %d", len(bal.Accounts), bal.AsOfSeq)

	wallets := rep.check("wallets equal the ledger")
	users := map[string]bool{}
	for account := range ledger {
		if u, ok := strings.CutPrefix(account, domain.AccountWallet("")); ok {
			users[u] = true
		}
	}
	for u := range f.balance {
		users[string(u)] = true
	}
	askEach(ctx, v, wallets, slices.Sorted(maps.Keys(users)), func(u string) string { return "wallet " + u }, api.WalletGet,
		func(u string) api.WalletRequest { return api.WalletRequest{UserID: u} }, func(u string, w api.WalletView) {
			l, s := ledger[domain.AccountWallet(domain.UserID(u))], f.balance[domain.UserID(u)]
			wallets.expect(w.Balance == -l && w.Balance == s, "wallet %s: balance %d, ledger account %d, stream credits minus debits %d", u, w.Balance, l, s)
		})
}

// replayResult is the part of 'bankbook replay --json' the check reads.
type replayResult struct {
	LastSeq     uint64 `json:"last_seq"`
	ContentHash string `json:"content_hash"`
	Compared    bool   `json:"compared"`
	Same        bool   `json:"same"`
	LiveSeq     uint64 `json:"live_seq"`
	LiveHash    string `json:"live_hash"`
}

// checkReplay runs 'bankbook replay' against the idle engine: the rebuilt
// read models must have the live ones' content hash. An engine that moved
// on during the replay is asked again, a few times.
func checkReplay(ctx context.Context, rep *Report, bin, url, seed, dir string, lastSeq uint64) {
	c := rep.check("replay equals live")
	for attempt := 1; attempt <= 3; attempt++ {
		out := filepath.Join(dir, fmt.Sprintf("replay-%d", attempt))
		r := runCLI(ctx, bin, 5*time.Minute, "replay", "--out", out, "--json", "--nats-url", url, "--nkey", seed, "--timeout", "60s")
		var res replayResult
		if err := r.result(&res); err != nil {
			c.fail("replay: %v", err)
			return
		}
		_ = os.RemoveAll(out)
		if !res.Compared {
			rep.note("replay %d: live read models at seq %d, replay at %d: not compared", attempt, res.LiveSeq, res.LastSeq)
			time.Sleep(time.Second)
			continue
		}
		c.expect(res.Same, "replay to seq %d: content hash %s, live %s", res.LastSeq, res.ContentHash, res.LiveHash)
		c.expect(res.LastSeq == lastSeq, "replay reached seq %d, the stream was at %d", res.LastSeq, lastSeq)
		c.Note = fmt.Sprintf("seq %d, hash %.16s…", res.LastSeq, res.ContentHash)
		return
	}
	c.fail("the live read models kept moving: never compared")
}
