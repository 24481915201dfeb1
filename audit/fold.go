package audit

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
)

// Open item kinds.
const (
	KindOrphanDeposit = "orphan_deposit"
	KindPayout        = "payout"
	KindWalletPayment = "wallet_payment"
)

// walletPrefix is the ledger account prefix of wallets (domain.AccountWallet).
var walletPrefix = domain.AccountWallet("")

// folder folds the stream, commit by commit, into what the checks compare.
type folder struct {
	opts Options
	// now is the verification's time (Options.Now, read once).
	now      time.Time
	setAside map[eventstore.Seq]bool
	findings []Finding
	checked  Checked

	// trial_balance
	balances   map[string]int64
	unbalanced bool // the first imbalance is reported, not the ones after
	// overflowed are the accounts whose balance left the 64-bit range
	// (each reported once): the books no longer hold their sums.
	overflowed map[string]bool

	// bank_transactions: (account, bank txn id) → the seq of its deposit;
	// the money each deposit brought in from the bank, and its recorded
	// amount
	bankTxns map[string]eventstore.Seq
	inflows  map[domain.DepositID]*inflow

	// wallets
	wallets map[domain.UserID]*walletState
	// refunds holds every order.refunded by order and deposit (none: the
	// paid amount): what a refund credit to a wallet must match (backed),
	// once.
	refunds map[refundKey]*refund
	// orders holds each order folded from its events (domain.Order): what
	// an order.paid must find it in.
	orders map[domain.OrderID]domain.Order
	// paidRefunded holds the seq of each order's refund of its paid amount
	// (from orders payable): an order's is refunded once.
	paidRefunded map[domain.OrderID]eventstore.Seq
	// inDebit are the liability accounts found with a debit balance (each
	// reported once).
	inDebit map[string]bool

	// clearing: open items by account, then ID
	open map[string]map[string]*OpenItem
	// resolved holds each deposit's latest resolution, failed the payouts
	// that failed: what lets money leave a clearing account (release).
	resolved map[domain.DepositID]domain.DepositResolved
	failed   map[domain.PayoutID]bool
	// sources holds where each payout's money came from (the wallet.debited
	// or deposit.resolved that moved it to payouts pending): where it goes
	// back to if the payout fails.
	sources map[domain.PayoutID]*payoutSource
	// spenders holds whose wallet spent money on each order
	// (wallet.spent): the order's buyer takes it, or gets it back.
	spenders map[domain.OrderID]domain.UserID

	// aggregates: each aggregate's last version
	aggs map[eventstore.Ref]*aggState

	// chains: each aggregate's commits (without their events), in order
	chains map[eventstore.Ref][]eventstore.Commit

	// storeLinks holds, by deposit, the link a store payment's deposit was
	// recorded for (deposit.recorded) and the link the payment was booked
	// on (store.payment_received): the two are one.
	storeLinks map[domain.DepositID]*storeLink
	// linkStates holds each link as its events left it (links).
	linkStates map[string]domain.Link
	// uses holds, by deposit, its deposit.recorded and the events that
	// moved its money from the bank: the outcome says what they did.
	uses map[domain.DepositID]*depositUse

	// reconciliations: the seq of each run's result
	runs map[string]eventstore.Seq
}

type walletState struct {
	w domain.Wallet
	// diverged is the seq from which the wallet and its ledger account
	// have differed (0: they agree).
	diverged eventstore.Seq
}

// payoutSource is where a payout's money came from: a user's wallet
// (domain.PayoutFromWallet) or an orphan deposit (domain.PayoutFromDeposit).
type payoutSource struct {
	kind, id string
	amount   int64
	at       eventstore.Seq     // the seq of the event that moved it
	to       domain.BankAccount // where the source said to send it
	// payFrom is the company account its payout.requested sends it from.
	payFrom string
	// requested is the seq of the payout's payout.requested (0: none yet).
	requested eventstore.Seq
	// result is the payout's first payout.settled or payout.failed, at
	// resultSeq ("": none yet).
	result    string
	resultSeq eventstore.Seq
}

// is reports whether the source is kind id.
func (s payoutSource) is(kind, id string) bool { return s.kind == kind && s.id == id }

// storeLink is a store payment's link as its deposit and its payment name
// it ("": not seen yet).
type storeLink struct {
	recorded, paid string
}

type aggState struct {
	version int // the last event's; -1: unknown (after a damaged commit)
}

func newFolder(opts Options, setAside map[eventstore.Seq]bool) *folder {
	return &folder{
		opts: opts, now: opts.Now(), setAside: setAside,
		balances: map[string]int64{}, overflowed: map[string]bool{},
		bankTxns: map[string]eventstore.Seq{}, inflows: map[domain.DepositID]*inflow{},
		wallets: map[domain.UserID]*walletState{}, refunds: map[refundKey]*refund{},
		orders: map[domain.OrderID]domain.Order{}, inDebit: map[string]bool{},
		open:     map[string]map[string]*OpenItem{domain.AccountSuspense: {}, domain.AccountPayoutsPending: {}, domain.AccountWalletPayments: {}},
		resolved: map[domain.DepositID]domain.DepositResolved{}, failed: map[domain.PayoutID]bool{},
		sources: map[domain.PayoutID]*payoutSource{}, spenders: map[domain.OrderID]domain.UserID{},
		aggs:   map[eventstore.Ref]*aggState{},
		chains: map[eventstore.Ref][]eventstore.Commit{},
		runs:   map[string]eventstore.Seq{},

		storeLinks:   map[domain.DepositID]*storeLink{},
		linkStates:   map[string]domain.Link{},
		uses:         map[domain.DepositID]*depositUse{},
		paidRefunded: map[domain.OrderID]eventstore.Seq{},
	}
}

func (f *folder) add(fd Finding) { f.findings = append(f.findings, fd) }

// commit folds one commit.
func (f *folder) commit(ctx context.Context, c eventstore.Commit) error {
	f.checked.Commits++
	ref := c.Ref()
	if ref.Type != "" {
		// The links only: the events are not needed again.
		link := c
		link.Events = nil
		f.chains[ref] = append(f.chains[ref], link)
	}
	agg := f.aggs[ref]
	if agg == nil && ref.Type != "" {
		agg = &aggState{}
		f.aggs[ref] = agg
	}

	// no_event_skipped: a damaged commit, or an event the codec cannot
	// decode.
	problem := ""
	var events []domain.Event
	if c.Damaged != nil {
		problem = c.Damaged.Err.Error()
	} else {
		events = make([]domain.Event, len(c.Events))
		for i, e := range c.Events {
			ev, err := f.opts.Codec.Decode(e.EventType, e.SchemaVersion, e.Data)
			if err != nil {
				problem = fmt.Sprintf("event %s (%s): %v", e.EventID, e.EventType, err)
				break
			}
			events[i] = ev
		}
	}
	if problem != "" {
		f.checked.Damaged++
		aside, err := f.isSetAside(ctx, c.Seq)
		if err != nil {
			return err
		}
		if aside {
			f.checked.SetAside++
		} else {
			f.add(Finding{Check: CheckNoEventSkipped, Seq: c.Seq, Aggregate: refString(ref),
				Message: fmt.Sprintf("commit at seq %d is skipped by every projection and not set aside: %s", c.Seq, problem)})
		}
		if agg != nil {
			agg.version = -1
		}
		return nil
	}
	f.checked.Events += len(c.Events)

	// aggregates: versions (the links are the chains check's)
	for i, e := range c.Events {
		if agg.version >= 0 && e.Version != agg.version+1+i {
			f.add(Finding{Check: CheckAggregates, Seq: c.Seq, Aggregate: ref.String(),
				Message: fmt.Sprintf("event %s at seq %d is version %d of %s, want %d", e.EventID, c.Seq, e.Version, ref, agg.version+1+i)})
			break
		}
	}
	if n := len(c.Events); n > 0 {
		agg.version = c.Events[n-1].Version
	}

	f.dated(c)
	deltas := map[string]int64{}
	touched := map[domain.UserID]bool{}
	f.links(c, events)
	for i, ev := range events {
		f.postings(c, ev, deltas)
		f.deposit(c, c.Events[i], ev)
		f.outcome(c, ev)
		f.order(c, ev, events[i+1:])
		f.wallet(c, ev, touched)
		f.clearing(c, ev)
		f.storePayment(c, ev)
		f.reconciliation(c, ref, ev)
	}
	f.trialBalance(c, deltas)
	f.liabilities(c, deltas)
	for acct := range deltas {
		if u, ok := strings.CutPrefix(acct, walletPrefix); ok {
			touched[domain.UserID(u)] = true
		}
	}
	for u := range touched {
		ws := f.walletOf(u)
		if ws.w.Balance+f.balances[domain.AccountWallet(u)] != 0 {
			if ws.diverged == 0 {
				ws.diverged = c.Seq
			}
		} else {
			ws.diverged = 0
		}
	}
	return nil
}

// reconciliation checks a reconciliation run's aggregate: its one event is
// its result, reconcile.completed, under the ID its kind and input file
// give, with counts that its lists hold (all of them, unless the run says
// it left some out: engines before timing differences were never cut
// left those out too).
func (f *folder) reconciliation(c eventstore.Commit, ref eventstore.Ref, ev domain.Event) {
	e, ok := ev.(domain.ReconciliationCompleted)
	if ref.Type != domain.AggregateReconciliation && !ok {
		return
	}
	bad := func(format string, a ...any) {
		f.add(Finding{Check: CheckReconciliations, Seq: c.Seq, Aggregate: refString(ref), Message: fmt.Sprintf(format, a...)})
	}
	if !ok {
		bad("a reconciliation run holds a %T, not its result", ev)
		return
	}
	if want := domain.NewReconciliationID(e.Kind, e.FileSHA256); ref.Type != domain.AggregateReconciliation || ref.ID != string(e.RunID) || e.RunID != want {
		bad("the result of run %s (%s of file %s) is recorded on %s; its ID is %s", e.RunID, e.Kind, e.FileSHA256, ref, want)
	}
	if first, ok := f.runs[ref.ID]; ok {
		bad("run %s has a second result (the first at seq %d): a run is recorded once", ref.ID, first)
		return
	}
	f.runs[ref.ID] = c.Seq
	counts := []struct {
		name  string
		n     int
		items []domain.ReconcileItem
	}{
		{"matched", e.Counts.Matched, e.Matched}, {"missing_in_ledger", e.Counts.MissingInLedger, e.MissingInLedger},
		{"missing_at_bank", e.Counts.MissingAtBank, e.MissingAtBank}, {"amount_mismatch", e.Counts.AmountMismatch, e.AmountMismatch},
		{"duplicate", e.Counts.Duplicate, e.Duplicate}, {"timing_difference", e.Counts.TimingDifference, e.TimingDifference},
	}
	for _, k := range counts {
		if k.n < len(k.items) || !e.Truncated && k.n != len(k.items) {
			bad("run %s counts %d %s and lists %d (truncated %v)", e.RunID, k.n, k.name, len(k.items), e.Truncated)
		}
	}
}

func refString(r eventstore.Ref) string {
	if r.Type == "" {
		return ""
	}
	return r.String()
}

func (f *folder) isSetAside(ctx context.Context, seq eventstore.Seq) (bool, error) {
	if f.setAside[seq] {
		return true, nil
	}
	for _, ask := range []func(context.Context, eventstore.Seq) (bool, error){f.opts.SetAsideRecords, f.opts.SetAside} {
		if ask == nil {
			continue
		}
		ok, err := ask(ctx, seq)
		if err != nil {
			return false, fmt.Errorf("%w: whether seq %d is set aside: %w", ErrCannotRun, seq, err)
		}
		if ok {
			return true, nil
		}
	}
	return false, nil
}

// postings folds an event's postings into the balances and the commit's
// deltas, and reports a malformed posting (trial_balance).
func (f *folder) postings(c eventstore.Commit, ev domain.Event, deltas map[string]int64) {
	for _, p := range domain.Postings(ev) {
		f.checked.Postings++
		if p.Debit == "" || p.Credit == "" || p.Debit == p.Credit || p.Amount <= 0 {
			f.add(Finding{Check: CheckTrialBalance, Seq: c.Seq, Aggregate: c.Ref().String(),
				Message: fmt.Sprintf("%s at seq %d posts a malformed entry: debit %q, credit %q, amount %d", ev.EventType(), c.Seq, p.Debit, p.Credit, p.Amount)})
		}
		deltas[p.Debit] += p.Amount
		deltas[p.Credit] -= p.Amount
	}
}

// trialBalance applies a commit's deltas and checks the sum of all
// balances.
func (f *folder) trialBalance(c eventstore.Commit, deltas map[string]int64) {
	var (
		sum  int64
		over []Finding
	)
	for acct, d := range deltas {
		b := f.balances[acct]
		f.balances[acct] = b + d
		sum += d
		if (d > 0 && b+d < b) || (d < 0 && b+d > b) {
			if !f.overflowed[acct] {
				f.overflowed[acct] = true
				over = append(over, Finding{Check: CheckTrialBalance, Seq: c.Seq, Aggregate: c.Ref().String(), Account: acct,
					Message: fmt.Sprintf("the balance of %s leaves the 64-bit range at seq %d (%d + %d): the books cannot hold it, and every sum over it after this is wrong", acct, c.Seq, b, d)})
			}
		}
	}
	// Several in one commit: by account, so that two runs report alike.
	slices.SortFunc(over, func(a, b Finding) int { return strings.Compare(a.Account, b.Account) })
	for _, o := range over {
		f.add(o)
	}
	if sum != 0 && !f.unbalanced {
		f.unbalanced = true
		f.add(Finding{Check: CheckTrialBalance, Seq: c.Seq, Aggregate: c.Ref().String(), Deltas: maps.Clone(deltas),
			Message: fmt.Sprintf("the trial balance is %d after the commit at seq %d, not 0", sum, c.Seq)})
	}
}

// liabilityPrefix starts the ledger accounts of what is owed to others:
// wallets, orders payable, distributors payable, suspense, payouts
// pending. Money leaves each only after it came in (domain.Postings), so
// none is ever in debit.
const liabilityPrefix = "liabilities:"

// liabilities reports, once per account, a liability account the commit
// left in debit: more left it than ever came in (a refund credited twice,
// a withdrawal from an empty wallet), which no balanced, chained commit
// the engine writes can do.
func (f *folder) liabilities(c eventstore.Commit, deltas map[string]int64) {
	var found []string
	for acct, d := range deltas {
		if d > 0 && f.balances[acct] > 0 && strings.HasPrefix(acct, liabilityPrefix) && !f.inDebit[acct] {
			found = append(found, acct)
		}
	}
	slices.Sort(found) // several in one commit: in a stable order
	for _, acct := range found {
		b := f.balances[acct]
		f.inDebit[acct] = true
		check, what := CheckTrialBalance, "liability account "+acct
		if u, ok := strings.CutPrefix(acct, walletPrefix); ok {
			check, what = CheckWallets, "wallet "+u
		}
		f.add(Finding{Check: check, Seq: c.Seq, Aggregate: c.Ref().String(), Account: acct,
			Message: fmt.Sprintf("%s is in debit by %d after the commit at seq %d: more left it than ever came in", what, b, c.Seq)})
	}
}

// futureSkew is how far after the verification's own time an event may be
// dated (clocks of different machines differ) before it is a finding.
const futureSkew = time.Hour

// dated reports an event dated after the verification's time: no engine
// writes one, and a forged date would hold off what is checked after a
// delay (money in for a deposit never recorded) for as long as it says.
func (f *folder) dated(c eventstore.Commit) {
	limit := f.now.Add(futureSkew)
	for _, e := range c.Events {
		if e.OccurredAt.After(limit) {
			f.add(Finding{Check: CheckAggregates, Seq: c.Seq, Aggregate: c.Ref().String(),
				Message: fmt.Sprintf("event %s (%s) at seq %d occurred at %s, after this verification's time", e.EventID, e.EventType, c.Seq, domain.FormatTime(e.OccurredAt))})
			return
		}
	}
}

// inflow is what the ledger took in from the bank for one deposit.
type inflow struct {
	amount   int64            // posted from bank accounts so far
	seqs     []eventstore.Seq // the commits that posted it
	first    time.Time        // when the first of them occurred
	recorded bool             // its deposit.recorded was seen,
	at       eventstore.Seq   // at this seq,
	expected int64            // with this amount
	reported bool             // a finding was made already
}

// bankInflow returns the deposit an event moves money in from the bank
// for, and how much it posts from bank accounts (0: none).
func bankInflow(ev domain.Event) (domain.DepositID, int64) {
	var id domain.DepositID
	switch e := ev.(type) {
	case domain.OrderPaid:
		id = e.DepositID
	case domain.OrderRefunded:
		id = e.DepositID
	case domain.StorePaymentReceived:
		id = e.DepositID
	case domain.DepositRecorded:
		id = e.DepositID
	case domain.WalletCredited:
		// A deposit refunded to the wallet: the order's refund posts
		// nothing, the credit moves the money from the bank.
		if e.Kind == domain.CreditDepositRefund {
			id = domain.DepositID(e.Ref)
		}
	}
	if id == "" {
		return "", 0
	}
	var n int64
	for _, p := range domain.Postings(ev) {
		if strings.HasPrefix(p.Debit, bankPrefix) {
			n += p.Amount
		}
	}
	return id, n
}

// bankPrefix starts the ledger accounts of bank accounts.
var bankPrefix = domain.AccountBank("")

// deposit checks that no bank transaction is recorded twice, and that no
// deposit brings in more money from the bank than it was recorded with.
func (f *folder) deposit(c eventstore.Commit, env eventstore.Envelope, ev domain.Event) {
	if id, n := bankInflow(ev); n > 0 {
		in := f.inflowOf(id)
		in.amount += n
		in.seqs = append(in.seqs, c.Seq)
		if in.first.IsZero() {
			in.first = env.OccurredAt
			if now := f.now; in.first.After(now) {
				// A date after now (a finding of its own, dated) counts as
				// past the grace: it cannot hold off the check of money in
				// for a deposit never recorded.
				in.first = now.Add(-2 * unrecordedAfter)
			}
		}
		f.checkInflow(c, id, in)
	}
	f.depositAggregate(c, ev)
	d, ok := ev.(domain.DepositRecorded)
	if !ok {
		return
	}
	// Accounts are compared normalised, which leaves alone every character
	// a deposit may not hold: another spelling of the account (a Unicode
	// hyphen) would record the same transaction again under another key,
	// its money posted to a bank account the company does not have.
	numbers := []string{d.AccountNumber}
	if d.LandedOn != "" {
		numbers = append(numbers, d.LandedOn)
	}
	for _, n := range numbers {
		// Engines before the account rule (ValidateAccountNumber) took any
		// 1–64 characters, and their deposits stay in the log: an ASCII
		// spelling ("100.200.300") is one they recorded honestly. Only a
		// character outside printable ASCII (a Unicode look-alike of '-'
		// or of a digit) is another spelling no bank feed writes.
		if err := domain.ValidateAccountNumber("account_number", n); err != nil && !printableASCII(n) {
			f.add(Finding{Check: CheckBankTransactions, Seq: c.Seq, Aggregate: c.Ref().String(), Account: domain.AccountBank(n),
				Message: fmt.Sprintf("deposit %s at seq %d names account %q, which no recorded deposit can (%v): it is no account the engine compares, and its transaction %s may be recorded under another spelling", d.DepositID, c.Seq, n, err, d.BankTxnID)})
		}
	}
	key := domain.NormalizeAccountNumber(d.AccountNumber) + "\x00" + d.BankTxnID
	if first, dup := f.bankTxns[key]; dup {
		f.add(Finding{Check: CheckBankTransactions, Seq: c.Seq, Aggregate: c.Ref().String(), Account: domain.AccountBank(d.AccountNumber),
			Message: fmt.Sprintf("bank transaction %s of account %s is recorded again at seq %d (deposit %s); it was first recorded at seq %d", d.BankTxnID, d.AccountNumber, c.Seq, d.DepositID, first)})
		return
	}
	f.bankTxns[key] = c.Seq
	in := f.inflowOf(d.DepositID)
	in.recorded, in.at, in.expected = true, c.Seq, d.Amount
	f.checkInflow(c, d.DepositID, in)
}

// depositAggregate checks that a deposit's events are on its own
// aggregate, and that a deposit.recorded is recorded under the ID its
// account and bank transaction give (domain.NewDepositID): the engine
// knows a transaction by that aggregate alone, and takes a transaction
// whose aggregate exists for a duplicate. A deposit.recorded on the
// aggregate of transaction T that names another transaction (or another
// account) makes the engine answer T, when it arrives, as a duplicate and
// never book it, while the transaction the event names is resolved, and
// paid out, as an orphan.
func (f *folder) depositAggregate(c eventstore.Commit, ev domain.Event) {
	var id domain.DepositID
	switch e := ev.(type) {
	case domain.DepositRecorded:
		id = e.DepositID
		want := domain.NewDepositID(e.AccountNumber, e.BankTxnID)
		if (id != want && id != earlyDepositID(e.AccountNumber, e.BankTxnID)) || c.AggregateType != domain.AggregateDeposit || c.AggregateID != string(id) {
			f.add(Finding{Check: CheckBankTransactions, Seq: c.Seq, Aggregate: c.Ref().String(), Account: domain.AccountBank(e.AccountNumber),
				Message: fmt.Sprintf("deposit.recorded at seq %d records bank transaction %s of account %s as deposit %s on %s, but that transaction's deposit is %s: a deposit is recorded on the aggregate its account and bank transaction give, and the transaction whose aggregate this is would be taken for a duplicate", c.Seq, e.BankTxnID, e.AccountNumber, id, c.Ref(), want)})
		}
		return
	case domain.DepositResolved:
		id = e.DepositID
	case domain.DepositReopened:
		id = e.DepositID
	default:
		return
	}
	if c.AggregateType != domain.AggregateDeposit || c.AggregateID != string(id) {
		f.add(Finding{Check: CheckBankTransactions, Seq: c.Seq, Aggregate: c.Ref().String(),
			Message: fmt.Sprintf("%s of deposit %s at seq %d is on %s, not on the deposit's own aggregate %s/%s", ev.EventType(), id, c.Seq, c.Ref(), domain.AggregateDeposit, id)})
	}
}

// earlyDepositID is a deposit's ID as the first engines that recorded
// deposits (1757182 to 0229e3c) derived it: from the account number as
// written, not normalised. Their deposits stay in the log under it.
func earlyDepositID(accountNumber, bankTxnID string) domain.DepositID {
	sum := sha256.Sum256([]byte(accountNumber + "\x00" + bankTxnID))
	return domain.DepositID("dep_" + hex.EncodeToString(sum[:16]))
}

func (f *folder) inflowOf(id domain.DepositID) *inflow { return entry(f.inflows, id) }

// checkInflow reports, once, a recorded deposit that has brought in more
// than its amount.
func (f *folder) checkInflow(c eventstore.Commit, id domain.DepositID, in *inflow) {
	if !in.recorded || in.amount <= in.expected || in.reported {
		return
	}
	in.reported = true
	f.add(Finding{Check: CheckBankTransactions, Seq: c.Seq, Aggregate: c.Ref().String(),
		Message: fmt.Sprintf("deposit %s was recorded with %d but the ledger took in %d from the bank for it (seqs %v): one transaction moved money more than once", id, in.expected, in.amount, in.seqs)})
}

// unrecordedAfter is how long money may come in from the bank for a
// deposit before the deposit is recorded: an attempt writes the deposit
// last, a moment after the order or the store payment, and a retry
// completes one that died in between.
const unrecordedAfter = 10 * time.Minute

// finishInflows reports deposits whose money is not what they were
// recorded with: less than it (money a recorded transaction left out), or
// money taken in for a deposit still not recorded unrecordedAfter later.
func (f *folder) finishInflows(now time.Time) {
	ids := slices.Sorted(maps.Keys(f.inflows))
	for _, id := range ids {
		in := f.inflows[id]
		switch {
		case in.reported:
		case in.recorded && in.amount < in.expected:
			f.add(Finding{Check: CheckBankTransactions, Seq: in.at,
				Message: fmt.Sprintf("deposit %s was recorded with %d but the ledger took in only %d from the bank for it (seqs %v)", id, in.expected, in.amount, in.seqs)})
		case !in.recorded && len(in.seqs) > 0 && now.Sub(in.first) > unrecordedAfter:
			f.add(Finding{Check: CheckBankTransactions, Seq: in.seqs[0],
				Message: fmt.Sprintf("the ledger took in %d from the bank for deposit %s (seqs %v) but the deposit was never recorded: the attempt that began it died and was not repeated (record the transaction again: it completes what was begun)", in.amount, id, in.seqs)})
		}
	}
}

func (f *folder) walletOf(u domain.UserID) *walletState { return entry(f.wallets, u) }

// entry returns m's value under k, a new zero one put there if there was
// none.
func entry[K comparable, V any](m map[K]*V, k K) *V {
	v := m[k]
	if v == nil {
		v = new(V)
		m[k] = v
	}
	return v
}

// wallet folds the events of wallet aggregates into their wallets.
func (f *folder) wallet(c eventstore.Commit, ev domain.Event, touched map[domain.UserID]bool) {
	if c.AggregateType != domain.AggregateWallet {
		return
	}
	u := domain.UserID(c.AggregateID)
	ws := f.walletOf(u)
	touched[u] = true
	switch e := ev.(type) {
	case domain.WalletCredited:
		if ws.w.Credited(e.Ref) {
			f.add(Finding{Check: CheckWallets, Seq: c.Seq, Aggregate: c.Ref().String(), Account: domain.AccountWallet(u),
				Message: fmt.Sprintf("wallet %s is credited again for %s (%d) at seq %d: a wallet is credited once per ref", u, e.Ref, e.Amount, c.Seq)})
		}
		if e.UserID != u {
			f.add(Finding{Check: CheckWallets, Seq: c.Seq, Aggregate: c.Ref().String(),
				Message: fmt.Sprintf("wallet.credited at seq %d names user %s on wallet %s", c.Seq, e.UserID, u)})
		}
		if problem := f.backed(c.Seq, e); problem != "" {
			f.add(Finding{Check: CheckWallets, Seq: c.Seq, Aggregate: c.Ref().String(), Account: domain.AccountWallet(u),
				Message: fmt.Sprintf("wallet.credited at seq %d gives wallet %s %d (%s, ref %s, from %s): %s", c.Seq, u, e.Amount, e.Kind, e.Ref, e.FromAccount, problem)})
		}
	case domain.WalletDebited:
		if e.UserID != u {
			f.add(Finding{Check: CheckWallets, Seq: c.Seq, Aggregate: c.Ref().String(),
				Message: fmt.Sprintf("wallet.debited at seq %d names user %s on wallet %s", c.Seq, e.UserID, u)})
		}
	case domain.WalletSpent:
		if e.UserID != u {
			f.add(Finding{Check: CheckWallets, Seq: c.Seq, Aggregate: c.Ref().String(),
				Message: fmt.Sprintf("wallet.spent at seq %d names user %s on wallet %s", c.Seq, e.UserID, u)})
		}
	}
	ws.w = ws.w.Apply(ev)
}

// refundKey names an order's refund: of a deposit, or (Deposit empty) of
// the paid amount.
type refundKey struct {
	Order   domain.OrderID
	Deposit domain.DepositID
}

// refund is an order's order.refunded, and the wallet credit that
// settled it (0: none yet).
type refund struct {
	r        domain.OrderRefunded
	credited eventstore.Seq
}

// orderMoves is, for each event that moves an order to another status,
// the statuses it moves an order from (docs/domain.md's table:
// domain.DecideCancel, FinaliseCancel, DecideExpire); "" is an order not
// yet submitted. order.paid has its own check in order.
var orderMoves = map[string][]domain.OrderStatus{
	domain.OrderSubmitted{}.EventType():      {""},
	domain.OrderCancelReserved{}.EventType(): {domain.StatusAwaitingDeposit},
	domain.OrderCancelled{}.EventType():      {domain.StatusAwaitingDeposit, domain.StatusCancelReserved, domain.StatusPaid},
	domain.OrderExpired{}.EventType():        {domain.StatusAwaitingDeposit},
}

// order folds the events of orders: it remembers each order's buyer, and
// each refund for backed, by order and deposit, and a deposit's also by
// the deposit alone (a credit written before credits named their order
// has only the deposit). A refund goes to the order's buyer; an order's
// events are on the order's own aggregate, and move it only as
// orderMoves says. rest are the events after ev in its commit.
func (f *folder) order(c eventstore.Commit, ev domain.Event, rest []domain.Event) {
	bad := func(check, format string, a ...any) {
		f.add(Finding{Check: check, Seq: c.Seq, Aggregate: c.Ref().String(), Message: fmt.Sprintf(format, a...)})
	}
	if from, moves := orderMoves[ev.EventType()]; moves && c.AggregateType == domain.AggregateOrder {
		o := f.orders[domain.OrderID(c.AggregateID)]
		switch {
		case !slices.Contains(from, o.Status) && o.Status == "":
			bad(CheckAggregates, "%s at seq %d moves order %s, which was never submitted", ev.EventType(), c.Seq, c.AggregateID)
		case !slices.Contains(from, o.Status):
			bad(CheckAggregates, "%s at seq %d moves order %s, which is %s already: the engine writes it only for an order that is %s", ev.EventType(), c.Seq, c.AggregateID, o.Status, statusList(from))
		case o.Status == domain.StatusPaid && !refundsPaid(rest, o.ID):
			// domain.DecideCancel: the paid amount goes back with the
			// cancellation. Without it, the buyer's money stays in orders
			// payable for an order that is over.
			bad(CheckAggregates, "%s at seq %d cancels paid order %s without the refund of its paid amount %d in the same commit: the buyer's money stays in %s", ev.EventType(), c.Seq, o.ID, o.PaidAmount, domain.AccountPayableOrders)
		}
	}
	switch e := ev.(type) {
	case domain.OrderSubmitted:
		if c.AggregateType != domain.AggregateOrder || string(e.OrderID) != c.AggregateID {
			bad(CheckAggregates, "order.submitted of order %s at seq %d is on %s", e.OrderID, c.Seq, c.Ref())
		}
	case domain.OrderPaid:
		if c.AggregateType != domain.AggregateOrder || string(e.OrderID) != c.AggregateID {
			bad(CheckAggregates, "order.paid of order %s at seq %d is on %s", e.OrderID, c.Seq, c.Ref())
		}
		if !strings.HasPrefix(e.FromAccount, bankPrefix) && e.FromAccount != domain.AccountSuspense && e.FromAccount != domain.AccountWalletPayments {
			bad(CheckBankTransactions, "order.paid at seq %d pays order %s %d from %s: an order is paid from the bank account its deposit arrived on, from suspense, or from wallet payments", c.Seq, e.OrderID, e.Amount, e.FromAccount)
		}
		// An order is paid once, while it awaits its deposit, with its
		// amount (domain.DecideDeposit); any other deposit under its name
		// is refunded to its buyer or is an orphan. Paid otherwise, the
		// buyer's money stays in orders payable for an order that did
		// not take it.
		switch o := f.orders[e.OrderID]; {
		case !o.Exists():
			bad(CheckAggregates, "order.paid at seq %d pays order %s, which was never submitted", c.Seq, e.OrderID)
		case o.Status != domain.StatusAwaitingDeposit:
			bad(CheckAggregates, "order.paid at seq %d pays order %s, which is %s: only an order awaiting its deposit is paid", c.Seq, e.OrderID, o.Status)
		case e.Amount != o.Amount.Amount:
			bad(CheckAggregates, "order.paid at seq %d pays order %s %d; the order is for %d", c.Seq, e.OrderID, e.Amount, o.Amount.Amount)
		}
	case domain.OrderRefunded:
		o := f.orders[e.OrderID]
		submitted := o.Exists()
		switch {
		case c.AggregateType != domain.AggregateOrder || string(e.OrderID) != c.AggregateID:
			bad(CheckAggregates, "order.refunded of order %s at seq %d is on %s", e.OrderID, c.Seq, c.Ref())
		case !submitted:
			bad(CheckWallets, "order.refunded at seq %d refunds order %s, which was never submitted, to %s", c.Seq, e.OrderID, e.BuyerID)
		case o.BuyerID != e.BuyerID:
			bad(CheckWallets, "order.refunded at seq %d refunds order %s to %s; the order is %s's", c.Seq, e.OrderID, e.BuyerID, o.BuyerID)
		}
		// A deposit is refunded from where its money is
		// (domain.DecideDeposit copies it): the bank account it arrived
		// on, or suspense for an orphan assigned later. From any other
		// account (a distributor's payable, revenue) the refund takes
		// that money, and no bank money need come in for the deposit.
		if e.DepositID != "" && e.FromAccount != domain.AccountPayableOrders && !strings.HasPrefix(e.FromAccount, bankPrefix) && e.FromAccount != domain.AccountSuspense {
			bad(CheckWallets, "order.refunded at seq %d refunds deposit %s of order %s %d from %s: a deposit is refunded from the bank account it arrived on, or from suspense", c.Seq, e.DepositID, e.OrderID, e.Amount, e.FromAccount)
		}
		// A deposit is refunded only when its order no longer takes it
		// (domain.DecideDeposit): an order awaiting its deposit is paid
		// by it, or (another amount) leaves it an orphan.
		if e.DepositID != "" && submitted && o.Status == domain.StatusAwaitingDeposit {
			bad(CheckWallets, "order.refunded at seq %d refunds deposit %s of order %s %d to its buyer, but the order awaits its deposit: it is paid by it, not refunded", c.Seq, e.DepositID, e.OrderID, e.Amount)
		}
		// The paid amount leaves orders payable once, all of it, for an
		// order that was paid (domain.DecideCancel). The account holds
		// every paid order's money together: a refund of an order never
		// paid, of more than it paid, or twice, gives its buyer another
		// buyer's money and leaves the account in credit.
		if submitted && (e.DepositID == "" || e.FromAccount == domain.AccountPayableOrders) {
			first, twice := f.paidRefunded[e.OrderID]
			switch {
			case e.DepositID != "" || e.FromAccount != domain.AccountPayableOrders:
				bad(CheckWallets, "order.refunded at seq %d refunds order %s %d of deposit %q from %s: an order's paid amount is refunded from %s, a deposit from where it came in", c.Seq, e.OrderID, e.Amount, e.DepositID, e.FromAccount, domain.AccountPayableOrders)
			case o.PaidAmount == 0:
				bad(CheckWallets, "order.refunded at seq %d refunds order %s %d from %s, but the order was never paid", c.Seq, e.OrderID, e.Amount, e.FromAccount)
			case twice:
				bad(CheckWallets, "order.refunded at seq %d refunds order %s's paid amount again; it was refunded at seq %d", c.Seq, e.OrderID, first)
			case e.Amount != o.PaidAmount:
				bad(CheckWallets, "order.refunded at seq %d refunds order %s %d from %s; the order was paid %d", c.Seq, e.OrderID, e.Amount, e.FromAccount, o.PaidAmount)
			}
			if !twice {
				f.paidRefunded[e.OrderID] = c.Seq
			}
		}
		r := &refund{r: e}
		f.refunds[refundKey{e.OrderID, e.DepositID}] = r
		if e.DepositID != "" {
			f.refunds[refundKey{Deposit: e.DepositID}] = r
		}
	}
	if c.AggregateType == domain.AggregateOrder {
		id := domain.OrderID(c.AggregateID)
		f.orders[id] = f.orders[id].Apply(ev)
	}
}

// refundsPaid reports whether events hold the refund of order's paid
// amount (from orders payable, not of a deposit).
func refundsPaid(events []domain.Event, order domain.OrderID) bool {
	return slices.ContainsFunc(events, func(ev domain.Event) bool {
		r, ok := ev.(domain.OrderRefunded)
		return ok && r.OrderID == order && r.DepositID == "" && r.FromAccount == domain.AccountPayableOrders
	})
}

// statusList writes statuses as "a, b or c"; "" is "not yet submitted".
func statusList(statuses []domain.OrderStatus) string {
	words := make([]string, len(statuses))
	for i, st := range statuses {
		words[i] = cmp.Or(string(st), "not yet submitted")
	}
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

// backed says why a wallet credit is not backed by what its kind says it
// is for ("": it is). A refund credit needs the order's order.refunded for
// the same buyer, amount and account before it; the other kinds come from
// the clearing account their money waits in, whose release checks the
// rest (an orphan's resolution, a failed payout). Without this, a credit
// that chains correctly and balances (from orders payable, or from
// revenue) would give a wallet money nothing owed it, and the wallet and
// its ledger account would agree.
func (f *folder) backed(seq eventstore.Seq, e domain.WalletCredited) string {
	switch e.Kind {
	case domain.CreditOrderRefund, domain.CreditDepositRefund:
		k := refundKey{Order: e.OrderID}
		if e.Kind == domain.CreditDepositRefund {
			k.Deposit = domain.DepositID(e.Ref)
		} else if k.Order == "" {
			// Written before credits named their order: the ref does.
			k.Order = domain.OrderID(strings.TrimPrefix(e.Ref, "order:"))
		}
		st, ok := f.refunds[k]
		switch {
		case !ok && k.Deposit != "":
			return fmt.Sprintf("no order.refunded of order %q refunds deposit %s", e.OrderID, k.Deposit)
		case !ok:
			return fmt.Sprintf("no order.refunded of order %q refunds its paid amount", e.OrderID)
		case st.r.BuyerID != e.UserID || st.r.Amount != e.Amount || st.r.FromAccount != e.FromAccount:
			return fmt.Sprintf("the order's order.refunded is for buyer %s, %d from %s", st.r.BuyerID, st.r.Amount, st.r.FromAccount)
		case st.credited != 0:
			return fmt.Sprintf("the order's order.refunded was credited already, at seq %d: a refund is credited once", st.credited)
		}
		st.credited = seq
	case domain.CreditOrphanRefund:
		if e.FromAccount != domain.AccountSuspense {
			return "an orphan's refund comes from " + domain.AccountSuspense
		}
	case domain.CreditPayoutReversal:
		if e.FromAccount != domain.AccountPayoutsPending {
			return "a failed payout's money comes back from " + domain.AccountPayoutsPending
		}
	case domain.CreditPaymentReversal:
		if e.FromAccount != domain.AccountWalletPayments || e.Ref != domain.PaymentReversalRef(e.OrderID) {
			return "a wallet's payment of an order comes back from " + domain.AccountWalletPayments + ", under the order's reversal ref"
		}
	default:
		return "no such kind of credit"
	}
	return ""
}

// storePayment checks a store payment's figures as
// domain.DecideStorePayment computes them: its fee is its fee_bps (at most
// domain.MaxFeeBps) of its amount, and its net the amount less the fee.
// The fee is what the distributor's payable gives to revenue, the net what
// settlement.expected tells the distributor it is paid: a fee above its
// rate takes the distributor's money, a net above the amount less the fee
// settles more than the payable holds.
func (f *folder) storePayment(c eventstore.Commit, ev domain.Event) {
	if d, ok := ev.(domain.DepositRecorded); ok && d.Outcome == domain.OutcomeStorePayment && d.LinkID != "" {
		f.storeLinkOf(c, d.DepositID, func(l *storeLink) { l.recorded = d.LinkID })
	}
	e, ok := ev.(domain.StorePaymentReceived)
	if !ok {
		return
	}
	f.storeLinkOf(c, e.DepositID, func(l *storeLink) { l.paid = e.LinkID })
	if e.FeeBps < 0 || e.FeeBps > domain.MaxFeeBps || e.Amount < 0 || e.Fee != domain.Fee(e.Amount, e.FeeBps) || e.Net != e.Amount-e.Fee {
		f.add(Finding{Check: CheckTrialBalance, Seq: c.Seq, Aggregate: c.Ref().String(), Account: domain.AccountPayableDistributor(e.DistributorID),
			Message: fmt.Sprintf("store.payment_received at seq %d (deposit %s) has amount %d, fee %d at %d bps and net %d: the fee is fee_bps of the amount (at most %d bps), the net the amount less the fee", c.Seq, e.DepositID, e.Amount, e.Fee, e.FeeBps, e.Net, domain.MaxFeeBps)})
	}
}

// storeLinkOf records what an event says of deposit id's link (set), and
// reports a store payment booked on another link than its deposit was
// recorded for: another store's bill paid, and (another distributor's
// link) another distributor's payable credited, with the money of a
// transfer to this store's dedicated account. Either is written first.
func (f *folder) storeLinkOf(c eventstore.Commit, id domain.DepositID, set func(*storeLink)) {
	l := entry(f.storeLinks, id)
	set(l)
	if l.recorded != "" && l.paid != "" && l.recorded != l.paid {
		f.add(Finding{Check: CheckAggregates, Seq: c.Seq, Aggregate: c.Ref().String(),
			Message: fmt.Sprintf("store payment %s is booked on link %s, but its deposit was recorded for link %s (seq %d)", id, l.paid, l.recorded, c.Seq)})
	}
}

// printableASCII reports whether s is 1–64 bytes of printable ASCII: what
// any version of the engine took as an account number from a bank feed.
func printableASCII(s string) bool {
	if s == "" || len(s) > domain.MaxAccountNumberLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// depositUse is what a deposit's deposit.recorded says of its money
// (recorded false: not seen yet) and the events that moved it from the
// bank before it (checked, and let go, when it comes). Only what checkUse
// compares is kept: verify holds every deposit of the log at once.
type depositUse struct {
	recorded bool
	outcome  domain.DepositOutcome
	order    domain.OrderID
	link     string
	name     string
	moves    []depositMove
}

// depositMove is an event that moved a deposit's money from the bank:
// what outcome it is, to which order or link, and (an order) the order's
// depositor name.
type depositMove struct {
	outcome domain.DepositOutcome
	target  string
	name    string
	what    string
	seq     eventstore.Seq
}

// outcome checks that a deposit's money went where its deposit.recorded
// says (commands.matchDeposit writes both): matched, the order it names
// was paid, and holds its depositor name; refunded to a wallet, that
// order's buyer was refunded; a store payment, a link was paid (which
// one, storeLinkOf). Otherwise one buyer's transfer pays another's
// order, or a store's money is booked to any distributor, and the
// deposit's record still names who sent it for what.
func (f *folder) outcome(c eventstore.Commit, ev domain.Event) {
	var (
		id domain.DepositID
		mv depositMove
	)
	switch e := ev.(type) {
	case domain.DepositRecorded:
		u := f.useOf(e.DepositID)
		u.recorded, u.outcome, u.order, u.link, u.name = true, e.Outcome, e.OrderID, e.LinkID, e.DepositorName
		for _, m := range u.moves {
			f.checkUse(c, e.DepositID, u, m)
		}
		u.moves = nil
		return
	case domain.OrderPaid:
		if !strings.HasPrefix(e.FromAccount, bankPrefix) {
			return // an orphan assigned later: from suspense
		}
		id, mv = e.DepositID, depositMove{outcome: domain.OutcomeMatched, target: string(e.OrderID), name: f.orders[e.OrderID].DepositorName}
	case domain.OrderRefunded:
		if e.DepositID == "" || !strings.HasPrefix(e.FromAccount, bankPrefix) {
			return
		}
		id, mv = e.DepositID, depositMove{outcome: domain.OutcomeRefundedToWallet, target: string(e.OrderID), name: f.orders[e.OrderID].DepositorName}
	case domain.StorePaymentReceived:
		id, mv = e.DepositID, depositMove{outcome: domain.OutcomeStorePayment, target: e.LinkID}
	default:
		return
	}
	mv.what, mv.seq = ev.EventType(), c.Seq
	u := f.useOf(id)
	if u.recorded {
		f.checkUse(c, id, u, mv)
		return
	}
	u.moves = append(u.moves, mv)
}

func (f *folder) useOf(id domain.DepositID) *depositUse { return entry(f.uses, id) }

// checkUse reports a move of deposit id's money that its record (rec)
// contradicts.
func (f *folder) checkUse(c eventstore.Commit, id domain.DepositID, rec *depositUse, m depositMove) {
	problem := ""
	switch {
	case rec.outcome != m.outcome:
		problem = fmt.Sprintf("it was recorded as %s (order %q, link %q)", rec.outcome, rec.order, rec.link)
	case m.outcome == domain.OutcomeStorePayment:
		return // the link: storeLinkOf
	case string(rec.order) != m.target:
		problem = fmt.Sprintf("it was recorded as %s for order %s", rec.outcome, rec.order)
	case m.name != "" && !domain.SameName(m.name, rec.name):
		problem = fmt.Sprintf("it was sent by %q, and order %s's depositor name is %q", rec.name, m.target, m.name)
	}
	if problem != "" {
		f.add(Finding{Check: CheckBankTransactions, Seq: c.Seq, Aggregate: c.Ref().String(),
			Message: fmt.Sprintf("%s at seq %d moved deposit %s's money from the bank as %s to %s, but %s (seq %d)", m.what, m.seq, id, m.outcome, m.target, problem, c.Seq)})
	}
}

// eventTime is when an event's envelope says it occurred.
func eventTime(c eventstore.Commit) time.Time {
	if len(c.Events) > 0 {
		return c.Events[0].OccurredAt
	}
	return time.Time{}
}

// The statuses of an orphan's open item that an operator may resolve
// (domain.Clearing's).
const (
	statusOrphaned = "orphaned"
	statusReopened = "reopened"
)

// clearing opens and closes the items of the suspense and payouts-pending
// accounts (domain.Clearing).
func (f *folder) clearing(c eventstore.Commit, ev domain.Event) {
	switch e := ev.(type) {
	case domain.PayoutSettled:
		f.result(c, e.PayoutID, ev)
	case domain.PayoutFailed:
		f.result(c, e.PayoutID, ev)
	case domain.DepositResolved:
		// An orphan is resolved while it is unresolved, once
		// (domain.DecideResolve): another resolution before the first
		// one's money moved would send it where the second one says.
		if it := f.open[domain.AccountSuspense][string(e.DepositID)]; it != nil && it.Status != statusOrphaned && it.Status != statusReopened {
			f.add(Finding{Check: CheckClearing, Seq: c.Seq, Aggregate: c.Ref().String(), Account: domain.AccountSuspense,
				Message: fmt.Sprintf("deposit.resolved at seq %d resolves deposit %s to %s (order %q, user %q), which is %s: an orphan is resolved once", c.Seq, e.DepositID, e.Action, e.OrderID, e.UserID, it.Status)})
		}
	}
	mv := domain.Clearing(ev)
	if mv.Close.Account != "" {
		f.release(c, ev)
		f.closes(c, ev, mv.Close)
		delete(f.open[mv.Close.Account], mv.Close.Key)
	}
	switch e := ev.(type) {
	case domain.DepositResolved:
		// A resolution is of the orphan's whole amount (domain.DecideResolve):
		// what it says moves is what moves later, so one for another amount
		// would let two orphans trade money and still sum up.
		if it := f.open[domain.AccountSuspense][string(e.DepositID)]; it != nil && it.Amount != e.Amount {
			f.add(Finding{Check: CheckClearing, Seq: c.Seq, Aggregate: c.Ref().String(), Account: domain.AccountSuspense,
				Message: fmt.Sprintf("deposit.resolved at seq %d resolves deposit %s for %d; its open item in %s is %d", c.Seq, e.DepositID, e.Amount, domain.AccountSuspense, it.Amount)})
		}
		f.resolved[e.DepositID] = e
		if e.Action == domain.ResolveRefundToBank {
			src := &payoutSource{kind: domain.PayoutFromDeposit, id: string(e.DepositID), amount: e.Amount, at: c.Seq}
			if e.To != nil {
				src.to = *e.To
			}
			f.source(c, ev, e.PayoutID, src)
		}
	case domain.WalletDebited:
		f.source(c, ev, e.PayoutID, &payoutSource{kind: domain.PayoutFromWallet, id: string(e.UserID), amount: e.Amount, to: e.To, at: c.Seq})
	case domain.WalletSpent:
		f.spenders[e.OrderID] = e.UserID
	case domain.PayoutRequested:
		f.requested(c, e)
	case domain.PayoutFailed:
		f.failed[e.PayoutID] = true
	}
	if o := mv.Open; o.Account != "" {
		since := o.Since
		if since.IsZero() {
			since = eventTime(c)
		}
		kind := KindPayout
		switch o.Account {
		case domain.AccountSuspense:
			kind = KindOrphanDeposit
		case domain.AccountWalletPayments:
			kind = KindWalletPayment
		}
		f.open[o.Account][o.Key] = &OpenItem{Account: o.Account, Kind: kind, ID: o.Key, Amount: o.Amount, Since: since, Seq: c.Seq, Status: o.Status}
	}
	if n := mv.Note; n.Account != "" {
		if it := f.open[n.Account][n.Key]; it != nil {
			it.Status = n.Status
		}
	}
}

// source records where payout id's money came from, and reports a payout
// ID that already moved money: a payout ID names one payout, debited once
// (domain.DecideWithdraw) and requested once (domain.DecideRequestPayout),
// and it is the provider's idempotency key. Under a reused ID, the money
// moved again is requested and settled again, and the provider, asked
// under the same key, sends nothing more: a wallet is debited, and the
// bank booked down, for money that never left it. The first source stays.
func (f *folder) source(c eventstore.Commit, ev domain.Event, id domain.PayoutID, src *payoutSource) {
	if first, ok := f.sources[id]; ok {
		f.add(Finding{Check: CheckClearing, Seq: c.Seq, Aggregate: c.Ref().String(), Account: domain.AccountPayoutsPending,
			Message: fmt.Sprintf("%s at seq %d moves %d from %s %s to %s for payout %s, whose ID moved %d from %s %s at seq %d already: a payout ID names one payout", ev.EventType(), c.Seq, src.amount, src.kind, src.id, domain.AccountPayoutsPending, id, first.amount, first.kind, first.id, first.at)})
		return
	}
	f.sources[id] = src
}

// requested checks a payout.requested against the source that moved its
// money to payouts pending (process.ReactToMoney copies it): the payouts
// part sends its amount to its account, once. Otherwise a user's
// withdrawal, or an orphan's refund, is sent to another account, or more
// of the company's money with it, while the settlement still closes the
// source's item for its amount.
func (f *folder) requested(c eventstore.Commit, e domain.PayoutRequested) {
	problem := ""
	src := f.sources[e.PayoutID]
	switch {
	case c.AggregateType != domain.AggregatePayout || c.AggregateID != string(e.PayoutID):
		problem = fmt.Sprintf("it is on %s", c.Ref())
	case src == nil:
		problem = "no wallet.debited or refund to the bank moved its money to " + domain.AccountPayoutsPending
	case src.requested != 0:
		problem = fmt.Sprintf("it was requested already, at seq %d: a payout is requested once", src.requested)
	case !src.is(e.Source, e.SourceID) || e.Amount != src.amount || e.To != src.to:
		problem = fmt.Sprintf("its source, %s %s, moved %d to be sent to %s %s (%s)", src.kind, src.id, src.amount, src.to.Bank, src.to.Number, src.to.Holder)
	}
	if src != nil && src.requested == 0 {
		src.requested, src.payFrom = c.Seq, e.PayFrom
	}
	if problem != "" {
		f.add(Finding{Check: CheckClearing, Seq: c.Seq, Aggregate: c.Ref().String(), Account: domain.AccountPayoutsPending,
			Message: fmt.Sprintf("payout.requested at seq %d sends payout %s %d from %s %s to %s %s (%s): %s", c.Seq, e.PayoutID, e.Amount, e.Source, e.SourceID, e.To.Bank, e.To.Number, e.To.Holder, problem)})
	}
}

// result checks a payout's result (domain.DecidePayoutResult): it is on
// the payout, which was requested (the payouts part sends only what
// payout.requested says), and it is the payout's only one. Settled
// without a request, or after it failed, a withdrawal's money is booked
// out of the bank though the provider never sent it, and its source never
// gets it back. (A result after the item closed is closes' finding.)
func (f *folder) result(c eventstore.Commit, id domain.PayoutID, ev domain.Event) {
	src := f.sources[id]
	problem := ""
	switch {
	case c.AggregateType != domain.AggregatePayout || c.AggregateID != string(id):
		problem = fmt.Sprintf("it is on %s", c.Ref())
	case src == nil:
		return // no item: closes names it
	case src.requested == 0:
		problem = "the payout was never requested: the payouts part sent nothing"
	case src.result != "" && f.open[domain.AccountPayoutsPending][string(id)] != nil:
		problem = fmt.Sprintf("it has a result already, %s at seq %d: a payout has one", src.result, src.resultSeq)
	}
	// A withdrawal is sent from the account its request names, and
	// settled from it (process.finalResult, domain.DecideResolvePayout:
	// PayFrom). Booked out of another bank account, that account is
	// booked down for money the provider took from the other, which then
	// shows money it no longer holds. (Engines before 977fbef settled
	// refunds to the bank from the collection account, whatever their
	// request named: only withdrawals are compared; and requests before
	// 977fbef named no account to send from.)
	if s, ok := ev.(domain.PayoutSettled); ok && problem == "" && src.kind == domain.PayoutFromWallet && src.requested != 0 && src.payFrom != "" &&
		domain.NormalizeAccountNumber(s.BankAccount) != domain.NormalizeAccountNumber(src.payFrom) {
		problem = fmt.Sprintf("it is booked out of bank account %q; its payout.requested (seq %d) sends it from %q", s.BankAccount, src.requested, src.payFrom)
	}
	if src != nil && src.result == "" {
		src.result, src.resultSeq = ev.EventType(), c.Seq
	}
	if problem != "" {
		f.add(Finding{Check: CheckClearing, Seq: c.Seq, Aggregate: c.Ref().String(), Account: domain.AccountPayoutsPending,
			Message: fmt.Sprintf("%s of payout %s at seq %d: %s", ev.EventType(), id, c.Seq, problem)})
	}
}

// closes checks that an event closing an open item moves the item's
// amount out of its clearing account: the account's balance equals the sum
// of its items only in total, so one item closed for less and another for
// more (or an item closed twice, in parts) would still sum up.
func (f *folder) closes(c eventstore.Commit, ev domain.Event, cl domain.ClearingItem) {
	var amount int64
	for _, p := range domain.Postings(ev) {
		if p.Debit == cl.Account {
			amount += p.Amount
		}
	}
	it := f.open[cl.Account][cl.Key]
	switch {
	case it == nil:
		f.add(Finding{Check: CheckClearing, Seq: c.Seq, Aggregate: c.Ref().String(), Account: cl.Account,
			Message: fmt.Sprintf("%s at seq %d moves %d out of %s for %s, which has no open item there", ev.EventType(), c.Seq, amount, cl.Account, cl.Key)})
	case it.Amount != amount:
		f.add(Finding{Check: CheckClearing, Seq: c.Seq, Aggregate: c.Ref().String(), Account: cl.Account,
			Message: fmt.Sprintf("%s at seq %d moves %d out of %s for %s, whose open item is %d", ev.EventType(), c.Seq, amount, cl.Account, cl.Key, it.Amount)})
	}
}

// release checks that money leaving a clearing account leaves it for the
// reason the account holds it: an orphan's money leaves suspense for an
// order or a wallet only after an operator's deposit.resolved of that
// deposit, for its amount and to what the resolution named; a payout's
// money comes back from payouts pending (to the wallet, or to suspense for
// a refund to the bank) only after the payout failed. Without this a
// well-formed commit moving an unresolved orphan's money would balance
// every account and close the item, and the orphan could be resolved, and
// paid out, again.
func (f *folder) release(c eventstore.Commit, ev domain.Event) {
	problem := ""
	switch e := ev.(type) {
	case domain.OrderPaid:
		if e.FromAccount == domain.AccountWalletPayments {
			// A wallet pays its own user's orders (domain.DecidePayFromWallet).
			if u, buyer := f.spenders[e.OrderID], f.orders[e.OrderID].BuyerID; u != buyer {
				problem = fmt.Sprintf("order.paid pays order %s %d from %s with the payment of wallet %q; the order is %s's", e.OrderID, e.Amount, domain.AccountWalletPayments, u, buyer)
			}
			break
		}
		r, ok := f.resolved[e.DepositID]
		switch {
		case !ok:
			problem = fmt.Sprintf("order.paid pays order %s %d from suspense with deposit %s, which no deposit.resolved assigned", e.OrderID, e.Amount, e.DepositID)
		case r.Action != domain.ResolveAssignOrder || r.OrderID != e.OrderID || r.Amount != e.Amount:
			problem = fmt.Sprintf("order.paid pays order %s %d from suspense with deposit %s, which was resolved to %s (order %q, %d)", e.OrderID, e.Amount, e.DepositID, r.Action, r.OrderID, r.Amount)
		}
	case domain.WalletCredited:
		if e.FromAccount == domain.AccountWalletPayments {
			// A payment the order did not take goes back to the wallet that
			// spent it, to no one else.
			if u := f.spenders[e.OrderID]; u != e.UserID {
				problem = fmt.Sprintf("wallet.credited returns %d of a payment of order %s to wallet %s; wallet %q spent it", e.Amount, e.OrderID, e.UserID, u)
			}
			break
		}
		if e.FromAccount == domain.AccountPayoutsPending {
			p := domain.PayoutID(strings.TrimPrefix(e.Ref, domain.ReversalRef("")))
			switch src, ok := f.sources[p]; {
			case !f.failed[p]:
				problem = fmt.Sprintf("wallet.credited returns %d of payout %s to wallet %s, which did not fail", e.Amount, p, e.UserID)
			case ok && !src.is(domain.PayoutFromWallet, string(e.UserID)):
				// A failed payout's money goes back where it came from
				// (process.returnMoney), to no one else.
				problem = fmt.Sprintf("wallet.credited returns %d of payout %s to wallet %s; the payout's money came from %s %s", e.Amount, p, e.UserID, src.kind, src.id)
			}
			break
		}
		d := domain.DepositID(e.Ref)
		r, ok := f.resolved[d]
		switch {
		case !ok:
			problem = fmt.Sprintf("wallet.credited gives wallet %s %d from suspense for deposit %s, which no deposit.resolved gave away", e.UserID, e.Amount, d)
		case r.Action == domain.ResolveRefundToBank || r.Amount != e.Amount || (r.Action == domain.ResolveRefundToWallet && r.UserID != e.UserID):
			problem = fmt.Sprintf("wallet.credited gives wallet %s %d from suspense for deposit %s, which was resolved to %s (user %q, %d)", e.UserID, e.Amount, d, r.Action, r.UserID, r.Amount)
		case r.Action == domain.ResolveAssignOrder && f.orders[r.OrderID].BuyerID != e.UserID:
			// Assigned to an order that no longer takes it: the money goes
			// to that order's buyer, to no one else.
			problem = fmt.Sprintf("wallet.credited gives wallet %s %d from suspense for deposit %s, which was assigned to order %s of buyer %q", e.UserID, e.Amount, d, r.OrderID, f.orders[r.OrderID].BuyerID)
		}
	case domain.DepositReopened:
		switch src, ok := f.sources[e.PayoutID]; {
		case !f.failed[e.PayoutID]:
			problem = fmt.Sprintf("deposit.reopened returns deposit %s's refund %s to suspense, but the payout did not fail", e.DepositID, e.PayoutID)
		case ok && !src.is(domain.PayoutFromDeposit, string(e.DepositID)):
			// Only the orphan a refund to the bank was of is reopened
			// (domain.DecideReopen).
			problem = fmt.Sprintf("deposit.reopened returns payout %s to suspense as deposit %s; the payout's money came from %s %s", e.PayoutID, e.DepositID, src.kind, src.id)
		}
	}
	if problem != "" {
		f.add(Finding{Check: CheckClearing, Seq: c.Seq, Aggregate: c.Ref().String(), Message: problem + fmt.Sprintf(" (seq %d)", c.Seq)})
	}
}

// finish reports what can only be checked at the end of the stream and
// fills rep.
func (f *folder) finish(rep *Report) {
	// wallets: every wallet, and every wallet account of the ledger.
	users := map[domain.UserID]bool{}
	for u := range f.wallets {
		users[u] = true
	}
	for acct := range f.balances {
		if u, ok := strings.CutPrefix(acct, walletPrefix); ok {
			users[domain.UserID(u)] = true
		}
	}
	for _, u := range slices.Sorted(maps.Keys(users)) {
		ws := f.walletOf(u)
		ledger := -f.balances[domain.AccountWallet(u)]
		if ws.w.Balance != ledger {
			f.add(Finding{Check: CheckWallets, Seq: ws.diverged, Aggregate: domain.AggregateWallet + "/" + string(u), Account: domain.AccountWallet(u),
				Message: fmt.Sprintf("wallet %s holds %d by its events but its ledger account %s holds %d (they differ since seq %d)", u, ws.w.Balance, domain.AccountWallet(u), ledger, ws.diverged)})
		}
	}
	f.checked.Wallets = len(f.wallets)

	// clearing: each account's balance is the sum of its open items.
	now := f.now
	f.finishInflows(now)
	for _, acct := range []string{domain.AccountSuspense, domain.AccountPayoutsPending, domain.AccountWalletPayments} {
		items := slices.SortedFunc(maps.Values(f.open[acct]), func(a, b *OpenItem) int {
			return cmp.Or(cmp.Compare(a.Seq, b.Seq), strings.Compare(a.ID, b.ID))
		})
		var sum int64
		for _, it := range items {
			sum += it.Amount
			age := now.Sub(it.Since)
			if it.Since.IsZero() || age < 0 {
				age = 0
			}
			it.Age, it.AgeSeconds = age.Round(time.Second).String(), int64(age/time.Second)
			rep.OpenItems = append(rep.OpenItems, *it)
		}
		if bal := -f.balances[acct]; bal != sum {
			f.add(Finding{Check: CheckClearing, Account: acct,
				Message: fmt.Sprintf("%s holds %d but its %d open items sum to %d: %d unexplained", acct, bal, len(items), sum, bal-sum)})
		}
	}
	// chains: every aggregate's links (eventstore.VerifyChain).
	refs := slices.SortedFunc(maps.Keys(f.chains), func(a, b eventstore.Ref) int { return strings.Compare(a.String(), b.String()) })
	for _, ref := range refs {
		commits := f.chains[ref]
		for _, b := range eventstore.VerifyChain(commits) {
			f.add(Finding{Check: CheckChains, Seq: b.Seq, Aggregate: ref.String(), Message: b.String()})
		}
		f.checked.Unchained += len(eventstore.Unchained(commits))
	}
	f.checked.OpenItems = len(rep.OpenItems)
	f.checked.Accounts = len(f.balances)
	f.checked.Aggregates = len(f.aggs)
	f.checked.BankTransactions = len(f.bankTxns)
	rep.Findings = append(rep.Findings, f.findings...)
	rv, rf := rep.Checked.ReadModels, rep.Checked.ReadModelsFile
	rep.Checked = f.checked
	rep.Checked.ReadModels, rep.Checked.ReadModelsFile = rv, rf
}
