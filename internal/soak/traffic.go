package soak

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/client"
	"github.com/bankbook/bankbook/domain"
)

// Accounts the workload pays out to: the simulated firm-banking provider
// sends to the first and fails every transfer to the second (the money
// returns to the wallet).
var (
	payoutAccount  = domain.BankAccount{Bank: "Shinhan", Number: "110123456789", Holder: "Soak Tester"}
	failingAccount = domain.BankAccount{Bank: "Shinhan", Number: "000000000000", Holder: "Soak Tester"}
)

// expectedRefusals are the definitive errors the workload provokes on
// purpose; any other refusal is a finding.
var expectedRefusals = map[string]map[string]bool{
	api.WalletWithdraw.Name: {"insufficient_funds": true},
}

// counters are the run's request counts, shared by the clients.
type counters struct {
	requests   atomic.Int64 // attempts sent
	acks       atomic.Int64 // definitive answers, logged before counted
	refusals   atomic.Int64 // of which errors
	repeats    atomic.Int64 // requests repeated on purpose with an acked key
	unresolved atomic.Int64 // requests that got no definitive answer within their budget
	simUnknown atomic.Int64 // simulated transfers whose answer was lost (not retried: not idempotent)

	mu      sync.Mutex
	retries map[string]int64 // by reason
	lost    []string         // unresolved requests: op and key
	errs    []error          // what stopped a client (ack log failures, panics)
}

func (c *counters) retry(reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.retries == nil {
		c.retries = map[string]int64{}
	}
	c.retries[reason]++
}

func (c *counters) unanswered(op, key string) {
	c.unresolved.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.lost) < 20 {
		c.lost = append(c.lost, op+" "+key)
	}
}

func (c *counters) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.errs = append(c.errs, err)
}

// traffic is what the clients share.
type traffic struct {
	cfg   Config
	runID string
	log   *ackLog
	n     *counters
}

// worker is one client: one NATS connection, buyers who submit orders in
// turn, and a user orphans are refunded to. Buyers take turns because a
// buyer may hold only so many unpaid orders (cancelled ones count for the
// name grace), and a buyer name only so many depositor names.
type worker struct {
	t      *traffic
	id     int
	c      *client.Client
	rng    *rand.Rand
	user   string
	buyers []buyer
	orders int      // orders submitted: whose turn it is
	funded []string // users whose wallet got money: who may withdraw
	seq    int      // numbers the worker's keys and IDs
	last   api.Seq  // the highest seq of the worker's acks: its reads wait for it
	// acked are this worker's keyed acks, for repeats.
	acked []Ack
	// unpaid are orders paid through the simulated bank and left open: if
	// the transfer died with the engine, they are cancelled later.
	unpaid []unpaidOrder
	// distributor bills stores, which pay to their dedicated accounts.
	distributor string
	stores      []*store
}

type unpaidOrder struct {
	id string
	at time.Time
}

type buyer struct{ id, name string }

// buyersPerClient is how many buyers take turns in one client: enough that
// none reaches the limit of unpaid orders in a long run.
const buyersPerClient = 64

func newWorker(t *traffic, id int, nc *nats.Conn, seed uint64) *worker {
	w := &worker{
		t: t, id: id, c: client.New(nc),
		rng:         rand.New(rand.NewPCG(seed, uint64(id)+1)),
		user:        fmt.Sprintf("soak-%s-c%02d-u", t.runID, id),
		distributor: fmt.Sprintf("soak-%s-c%02d-d", t.runID, id),
		stores:      newStores(t.runID, id),
	}
	for b := range buyersPerClient {
		// The name and a three-digit suffix fit serve's default depositor-name-max (10).
		w.buyers = append(w.buyers, buyer{id: fmt.Sprintf("soak-%s-c%02d-b%02d", t.runID, id, b), name: fmt.Sprintf("S%02dB%02d", id, b)})
	}
	return w
}

// fund notes that user's wallet got money.
func (w *worker) fund(user string) {
	if user != "" && !slices.Contains(w.funded, user) {
		w.funded = append(w.funded, user)
	}
}

// maxIterations bounds a worker's loop beyond the run's time limit.
const maxIterations = 1_000_000

// run does iterations until stop closes or ctx ends.
func (w *worker) run(ctx context.Context, stop <-chan struct{}) {
	defer func() {
		if r := recover(); r != nil {
			w.t.n.fail(fmt.Errorf("client %d panicked: %v", w.id, r))
		}
	}()
	for range maxIterations {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		default:
		}
		w.iteration(ctx)
	}
}

// iteration submits an order and does one of the things that can happen
// to it, then maybe withdraws from the wallet, bills a store or pays one
// of its bills, and repeats an earlier request. Every order ends paid,
// cancelled, or cancel-reserved (which becomes cancelled), so buyer names
// do not run out.
func (w *worker) iteration(ctx context.Context) {
	w.closeUnpaid(ctx)
	b := w.buyers[w.orders%len(w.buyers)]
	w.orders++
	o, ok := w.submit(ctx, b)
	if !ok {
		return
	}
	collect := o.CollectAccount.Number
	switch p := w.rng.IntN(100); {
	case p < 25: // paid by a recorded transfer, maybe cancelled after (refund to the wallet)
		if rec, ok := w.record(ctx, collect, o.DepositorName, o.Amount); ok && rec.Outcome == domain.OutcomeMatched && w.rng.IntN(2) == 0 {
			w.cancel(ctx, o.OrderID, true, b.id)
		}
	case p < 40: // paid through the simulated bank and its scanner; maybe cancelled at once
		w.simTransfer(ctx, o.DepositorName, o.Amount)
		if w.rng.IntN(2) == 0 {
			w.cancel(ctx, o.OrderID, true, b.id)
		} else {
			w.unpaid = append(w.unpaid, unpaidOrder{o.OrderID, time.Now()})
		}
	case p < 50: // the wrong amount: an orphan, refunded to the wallet or to the bank
		if rec, ok := w.record(ctx, collect, o.DepositorName, o.Amount+100); ok && rec.Outcome == domain.OutcomeOrphaned {
			if w.rng.IntN(10) < 7 {
				w.resolve(ctx, api.ResolveDepositRequest{DepositID: rec.DepositID, Action: domain.ResolveRefundToWallet, UserID: w.user})
			} else {
				to := payoutAccount
				w.resolve(ctx, api.ResolveDepositRequest{DepositID: rec.DepositID, Action: domain.ResolveRefundToBank, BankAccount: &to})
			}
		}
		w.cancel(ctx, o.OrderID, false, b.id)
	case p < 60: // a name nobody holds: an orphan an operator assigns to the order
		if rec, ok := w.record(ctx, collect, fmt.Sprintf("NX%06d", w.rng.IntN(1_000_000)), o.Amount); ok && rec.Outcome == domain.OutcomeOrphaned {
			w.resolve(ctx, api.ResolveDepositRequest{DepositID: rec.DepositID, Action: domain.ResolveAssignOrder, OrderID: o.OrderID})
		}
	case p < 65: // the wrong amount through the simulated bank: an orphan left in the queue
		w.simTransfer(ctx, o.DepositorName, o.Amount+100)
		w.cancel(ctx, o.OrderID, false, b.id)
	case p < 85:
		w.cancel(ctx, o.OrderID, false, b.id)
	default: // reserved, final once the scan has covered the cancel window
		w.cancel(ctx, o.OrderID, true, b.id)
	}
	if w.rng.IntN(100) < w.t.cfg.WithdrawPercent {
		w.withdraw(ctx)
	}
	if w.rng.IntN(100) < 30 {
		w.billing(ctx)
	}
	if w.rng.IntN(100) < 10 {
		w.repeat(ctx)
	}
}

// closeUnpaid cancels (deposited: the buyer did transfer) the orders left
// to the simulated bank that are still unpaid well after the bank's lag:
// their transfer died with a killed engine. Buyers have a limit of unpaid
// orders.
func (w *worker) closeUnpaid(ctx context.Context) {
	keep := w.unpaid[:0]
	for _, u := range w.unpaid {
		if time.Since(u.at) < simLag+3*time.Second {
			keep = append(keep, u)
			continue
		}
		q := api.GetOrderRequest{OrderID: u.id}
		q.MinSeq = w.last
		var o api.OrderView
		if query(ctx, w, api.OrderGet, q, &o) && o.Status == string(domain.StatusAwaitingDeposit) {
			w.cancel(ctx, u.id, true, o.BuyerID)
		}
	}
	w.unpaid = keep
}

func (w *worker) next(prefix string) string {
	w.seq++
	return fmt.Sprintf("%s-%s-c%02d-%d", prefix, w.t.runID, w.id, w.seq)
}

func (w *worker) submit(ctx context.Context, b buyer) (api.SubmitOrderReply, bool) {
	req := api.SubmitOrderRequest{BuyerID: b.id, BuyerName: b.name, Amount: 1000 + 100*int64(w.rng.IntN(500))}
	if w.rng.IntN(2) == 0 {
		req.OrderID = w.next("ord") // half client-chosen, half planned by the engine
	}
	rep, _, ok := send(ctx, w, api.OrderSubmit, req, w.next("key"))
	return rep, ok
}

// cancel cancels the order of buyer; a paid one is refunded to the wallet.
func (w *worker) cancel(ctx context.Context, orderID string, deposited bool, buyer string) {
	rep, _, ok := send(ctx, w, api.OrderCancel, api.CancelOrderRequest{OrderID: orderID, Deposited: &deposited, Reason: "soak"}, w.next("key"))
	if ok && rep.Refund != nil {
		w.fund(buyer)
	}
}

func (w *worker) record(ctx context.Context, account, name string, amount int64) (api.RecordDepositReply, bool) {
	req := api.RecordDepositRequest{BankTxnID: w.next("TXN"), AccountNumber: account, DepositorName: name, Amount: amount,
		DepositedAt: time.Now().UTC().Truncate(time.Microsecond)}
	rep, _, ok := send(ctx, w, api.DepositRecord, req, w.next("key"))
	if ok && rep.Outcome == domain.OutcomeRefundedToWallet {
		w.fund(rep.UserID)
	}
	return rep, ok
}

func (w *worker) resolve(ctx context.Context, req api.ResolveDepositRequest) {
	if _, _, ok := send(ctx, w, api.DepositResolve, req, w.next("key")); ok && req.Action == domain.ResolveRefundToWallet {
		w.fund(req.UserID)
	}
}

// withdraw pays part of a funded wallet out; now and then to the failing
// account, and now and then more than the balance (refused).
func (w *worker) withdraw(ctx context.Context) {
	if len(w.funded) == 0 {
		return
	}
	user := w.funded[w.rng.IntN(len(w.funded))]
	var wallet api.WalletView
	q := api.WalletRequest{UserID: user}
	q.MinSeq = w.last
	if !query(ctx, w, api.WalletGet, q, &wallet) {
		return
	}
	req := api.WithdrawRequest{UserID: user, BankAccount: payoutAccount}
	switch {
	case w.rng.IntN(100) < 5:
		req.Amount = wallet.Balance + 1000
	case wallet.Balance <= 0:
		return
	default:
		req.Amount = 1 + w.rng.Int64N(wallet.Balance)
	}
	if w.rng.IntN(100) < 15 {
		req.BankAccount = failingAccount
	}
	send(ctx, w, api.WalletWithdraw, req, w.next("key"))
}

// repeat sends an acked request again with its key and body; the answer
// goes to the log, where the checks compare it with the first.
func (w *worker) repeat(ctx context.Context) {
	if len(w.acked) == 0 {
		return
	}
	a := w.acked[w.rng.IntN(len(w.acked))]
	info, ok := endpointByName(a.Op)
	if !ok {
		return
	}
	w.t.n.repeats.Add(1)
	sendRaw(ctx, w, info, a.Request, a.Key, true, "")
}

func endpointByName(name string) (api.Info, bool) {
	for _, ep := range api.Endpoints() {
		if ep.Name == name {
			return ep, true
		}
	}
	return api.Info{}, false
}

// simTransfer transfers money into the simulated bank. The simulator is
// not idempotent, so an attempt is repeated only when nobody received it.
func (w *worker) simTransfer(ctx context.Context, name string, amount int64) {
	body, _ := json.Marshal(api.SimTransferRequest{DepositorName: name, Amount: amount})
	deadline := time.Now().Add(w.t.cfg.RequestBudget)
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, w.t.cfg.AttemptTimeout)
		raw, err := w.c.Request(actx, api.SimBankTransfer.Subject, body, nil)
		cancel()
		w.t.n.requests.Add(1)
		if err == nil {
			w.ack(Ack{Op: api.SimBankTransfer.Name, Request: body, Status: 200, Reply: raw.Data, Attempts: attempt})
			return
		}
		if !errors.Is(err, nats.ErrNoResponders) || ctx.Err() != nil || time.Now().After(deadline) {
			w.t.n.simUnknown.Add(1)
			return
		}
		w.t.n.retry("no_responders")
		w.backoff(ctx, attempt)
	}
}

// ack logs a definitive answer (fsynced), then counts it.
func (w *worker) ack(a Ack) bool {
	a.Client, a.At = w.id, time.Now().UTC()
	if err := w.t.log.Append(a); err != nil {
		w.t.n.fail(err)
		return false
	}
	w.t.n.acks.Add(1)
	if a.Status != 200 {
		w.t.n.refusals.Add(1)
	}
	var s struct {
		Seq api.Seq `json:"seq"`
	}
	if a.OK() && json.Unmarshal(a.Reply, &s) == nil && s.Seq > w.last {
		w.last = s.Seq
	}
	if a.Key != "" && !a.Repeat {
		w.acked = append(w.acked, a)
	}
	return true
}

func (w *worker) backoff(ctx context.Context, attempt int) {
	d := min(50*time.Millisecond<<min(attempt-1, 5), time.Second)
	d = d/2 + time.Duration(w.rng.Int64N(int64(d/2)+1))
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// send sends req to ep with the idempotency key until it gets a definitive
// answer, which it logs. ok says the answer was a success; a refusal comes
// back as *api.Error.
func send[Req, Rep any](ctx context.Context, w *worker, ep api.Endpoint[Req, Rep], req Req, key string) (Rep, *api.Error, bool) {
	return sendWant(ctx, w, ep, req, key, "")
}

// sendWant is send with what the answer must say logged beside it (Ack.Want).
func sendWant[Req, Rep any](ctx context.Context, w *worker, ep api.Endpoint[Req, Rep], req Req, key, want string) (Rep, *api.Error, bool) {
	var rep Rep
	body, err := json.Marshal(req)
	if err != nil {
		w.t.n.fail(fmt.Errorf("encode %s: %w", ep.Name, err))
		return rep, nil, false
	}
	a, ok := sendRaw(ctx, w, ep.Info, body, key, false, want)
	if !ok {
		return rep, nil, false
	}
	if !a.OK() {
		return rep, &api.Error{Status: a.Status, Code: a.Code}, false
	}
	if err := json.Unmarshal(a.Reply, &rep); err != nil {
		w.t.n.fail(fmt.Errorf("decode %s reply: %w", ep.Name, err))
		return rep, nil, false
	}
	return rep, nil, true
}

// sendRaw is send with the body as bytes: every attempt sends the same
// bytes with the same key. ok says a definitive answer was logged.
func sendRaw(ctx context.Context, w *worker, info api.Info, body []byte, key string, repeat bool, want string) (Ack, bool) {
	deadline := time.Now().Add(w.t.cfg.RequestBudget)
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, w.t.cfg.AttemptTimeout)
		raw, err := w.c.Request(actx, info.Subject, body, client.WithIdempotencyKey(key))
		cancel()
		w.t.n.requests.Add(1)
		var ae *api.Error
		errors.As(err, &ae)
		if err == nil || (ae != nil && definitive(ae)) {
			a := Ack{Op: info.Name, Key: key, Request: body, Status: 200, Reply: raw.Data, Replayed: raw.Replayed, Repeat: repeat, Want: want, Attempts: attempt}
			if ae != nil {
				a.Status, a.Code = ae.Status, ae.Code
			}
			return a, w.ack(a)
		}
		w.t.n.retry(retryReason(err, ae))
		if ctx.Err() != nil || time.Now().After(deadline) {
			w.t.n.unanswered(info.Name, key)
			return Ack{}, false
		}
		w.backoff(ctx, attempt)
	}
}

// definitive says the engine will give the same error to a repeat with the
// same key: every 4xx but a conflict, a key still in progress, throttling
// and read models not caught up.
func definitive(e *api.Error) bool {
	switch {
	case e.Status >= 500, e.Status == 429:
		return false
	case e.Status == 409 && (e.Code == api.CodeConflict || e.Code == "in_progress"):
		return false
	case e.Code == api.CodeNotCaughtUp:
		return false
	}
	return true
}

func retryReason(err error, ae *api.Error) string {
	switch {
	case ae != nil:
		return fmt.Sprintf("%d %s", ae.Status, ae.Code)
	case errors.Is(err, nats.ErrNoResponders):
		return "no_responders"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return "timeout"
	case errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrConnectionReconnecting), errors.Is(err, nats.ErrDisconnected):
		return "disconnected"
	}
	return "other"
}

// query asks a read-model query until it answers (retrying 5xx and
// transport errors within the request budget); queries change nothing and
// are not logged.
func query[Req, Rep any](ctx context.Context, w *worker, ep api.Endpoint[Req, Rep], req Req, out *Rep) bool {
	deadline := time.Now().Add(w.t.cfg.RequestBudget)
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, w.t.cfg.AttemptTimeout)
		rep, _, err := client.Do(actx, w.c, ep, req, nil)
		cancel()
		w.t.n.requests.Add(1)
		if err == nil {
			*out = rep
			return true
		}
		var ae *api.Error
		if errors.As(err, &ae) && definitive(ae) {
			w.t.n.fail(fmt.Errorf("%s: %w", ep.Name, err))
			return false
		}
		w.t.n.retry(retryReason(err, ae))
		if ctx.Err() != nil || time.Now().After(deadline) {
			return false
		}
		w.backoff(ctx, attempt)
	}
}
