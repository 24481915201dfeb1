package domain

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"
)

// AggregateReconciliation is the aggregate type name of reconciliation
// runs: one comparison of an outside party's file (a bank statement, a
// payout provider's report) with what the event stream recorded. A run is
// its own aggregate so that reconciliation is itself auditable: its result
// is an event.
const AggregateReconciliation = "reconciliation"

// ReconciliationID identifies a run: NewReconciliationID.
type ReconciliationID string

// Kinds of reconciliation run.
const (
	ReconcileKindBank    = "bank"    // a bank statement against the recorded deposits
	ReconcileKindPayouts = "payouts" // a provider's report against the payouts
)

// ActorTimer is the actor of what the engine does when a timer falls due:
// an order's expiry or cancellation, a nightly reconciliation run.
const ActorTimer = "timer"

// FileSHA256 is the file_sha256 of a reconciled file: the lower-case hex
// SHA-256 of its bytes, which identifies its run (NewReconciliationID).
func FileSHA256(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// NewReconciliationID derives a run's ID from its kind and the SHA-256 (lower
// case hex) of its input file's bytes: "rec_" and the first 24 hex digits of
// SHA-256(kind NUL file_sha256). The same file of the same kind is the same
// run.
func NewReconciliationID(kind, fileSHA256 string) ReconciliationID {
	sum := sha256.Sum256([]byte(kind + "\x00" + fileSHA256))
	return ReconciliationID("rec_" + hex.EncodeToString(sum[:])[:24])
}

// ValidateReconciliationID checks that id has the form NewReconciliationID
// gives: "rec_" and 24 lower case hex digits.
func ValidateReconciliationID(field, id string) error {
	if err := ValidateID(field, id); err != nil {
		return err
	}
	hexPart, ok := strings.CutPrefix(id, "rec_")
	if !ok || len(hexPart) != 24 || strings.Trim(hexPart, "0123456789abcdef") != "" {
		return Invalid(field, "must be rec_ and 24 lower case hex digits, as a run's reply gives it")
	}
	return nil
}

// ReconcileTimingWindow is how close to the end of the period a statement
// covers a recorded deposit missing from the statement is taken for a
// timing difference (the bank dated it into its next statement) rather
// than a finding.
const ReconcileTimingWindow = 5 * time.Minute

// MaxReconcileItems bounds the items a run records of every category but
// timing_difference, carried items left aside (its counts are always
// complete). A run with more
// records the first MaxReconcileItems, findings before matches, and says
// Truncated: the event, and the reply that carries it, must fit in one NATS
// message (1 MiB). Timing differences are never left out: the next run
// settles them from this one's event (a run whose timing differences do not
// fit is refused).
const MaxReconcileItems = 1000

// StatementLine is one transaction of a bank statement (the CSV dialect of
// `bankbook deposit import`, package bankfeed).
type StatementLine struct {
	BankTxnID     string    `json:"bank_txn_id"`
	AccountNumber string    `json:"account_number"`
	DepositorName string    `json:"depositor_name"`
	Amount        int64     `json:"amount"`
	DepositedAt   time.Time `json:"deposited_at"`
}

// RecordedDeposit is a deposit as the event stream recorded it
// (deposit.recorded), as much of it as reconciliation compares.
type RecordedDeposit struct {
	DepositID     string    `json:"deposit_id"`
	BankTxnID     string    `json:"bank_txn_id"`
	AccountNumber string    `json:"account_number"`
	Amount        int64     `json:"amount"`
	DepositedAt   time.Time `json:"deposited_at"`
	RecordedAt    time.Time `json:"recorded_at"`
}

// ReconcileAccount is one account a statement covers, and the period: from
// its first to its last transaction on that account, or the statement's period
// when it was given one (inclusive).
type ReconcileAccount struct {
	AccountNumber string    `json:"account_number"` // normalised
	From          time.Time `json:"from"`
	To            time.Time `json:"to"`
	// ScanWatermark is the account's scan watermark when the run was made
	// (nil: the engine never completed a scan of it).
	ScanWatermark *time.Time `json:"scan_watermark,omitempty"`
	// CarryBase is the run that last wrote the account's open timing
	// differences, which this run took in and settled (none, possibly),
	// empty when no run of the account came before: the carry projection
	// tells runs in turn from runs at once by it.
	CarryBase ReconciliationID `json:"carry_base,omitempty"`
	// GapFrom is set when the account's earlier runs ended before From: the
	// latest end of their periods plus ReconcileTimingWindow. Deposits
	// recorded after it and before From were on no statement reconciled
	// before; this run compares them too.
	GapFrom *time.Time `json:"gap_from,omitempty"`
	// ComparedSeq is the stream sequence the account's recorded deposits
	// were read as of (0 on runs recorded before it was kept): the next run
	// of the account compares those recorded after it and deposited before
	// its own period, which no run compared.
	ComparedSeq uint64 `json:"compared_seq,omitempty"`
	// LateAfterSeq is set when this run looked for such deposits: the
	// ComparedSeq of the account's earlier runs.
	LateAfterSeq uint64 `json:"late_after_seq,omitempty"`
}

// ReconcileCarry is what the runs of a reconciliation scope (a bank
// account, or the payout provider) leave for its next run.
type ReconcileCarry struct {
	// Items are the timing differences left open, each with CarriedFrom
	// set, and Base the run that last wrote them, however few ("" when no
	// run of the scope came before).
	Items []ReconcileItem
	Base  ReconciliationID
	// CoveredTo is the latest end of a period the scope's runs covered
	// (zero: none has), and CoveredFrom the earliest start, for a bank
	// account (payouts runs: EarlierPayoutRuns).
	CoveredTo, CoveredFrom time.Time
	// ComparedSeq, for a bank account, is the latest sequence its runs
	// read its deposits as of (ReconcileAccount.ComparedSeq; 0: none kept).
	ComparedSeq uint64
	// Unrecorded are what the scope's runs found on a statement or report
	// and not in the ledger (missing_in_ledger): a bank account's
	// transactions, or the provider's payouts. Each has CarriedFrom set,
	// and stays until a run reports it again: one recorded since was on a
	// statement (not missing at the bank), a payout's result is compared
	// with its line. At most MaxUnrecordedCarried, the latest.
	Unrecorded []ReconcileItem
}

// MaxUnrecordedCarried bounds ReconcileCarry.Unrecorded per scope (a bank
// account, or the payout provider).
const MaxUnrecordedCarried = 1000

// ReconcilePeriod is the period an input covers, both ends inclusive.
type ReconcilePeriod struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// ReconcileItem is one finding or match of a run.
type ReconcileItem struct {
	// BankTxnID and AccountNumber (normalised) name the transaction of a
	// bank run; PayoutID the payout of a payouts run.
	BankTxnID     string `json:"bank_txn_id,omitempty"`
	AccountNumber string `json:"account_number,omitempty"`
	PayoutID      string `json:"payout_id,omitempty"`
	// StatementAmount is the amount on the statement (0: not on it);
	// LedgerAmount the recorded one (0: not recorded).
	StatementAmount int64 `json:"statement_amount,omitempty"`
	LedgerAmount    int64 `json:"ledger_amount,omitempty"`
	// Payouts runs: the fee and status the provider reports and the
	// recorded ones.
	StatementFee    int64  `json:"statement_fee,omitempty"`
	LedgerFee       int64  `json:"ledger_fee,omitempty"`
	StatementStatus string `json:"statement_status,omitempty"`
	LedgerStatus    string `json:"ledger_status,omitempty"`
	// At is when the money arrived, as the statement (or, for an item not
	// on it, the recorded deposit) says.
	At time.Time `json:"at"`
	// DepositIDs are the recorded deposits of the transaction.
	DepositIDs []string `json:"deposit_ids,omitempty"`
	// StatementCount is how many times the transaction is on the statement
	// (duplicates).
	StatementCount int `json:"statement_count,omitempty"`
	// Note says why the item is in its category, when that is not obvious.
	Note string `json:"note,omitempty"`
	// CarriedFrom names the run that first reported the item as a timing
	// difference, when an earlier run carried it into this one; or, for a
	// transaction recorded after a run reported it missing_in_ledger, that
	// run.
	CarriedFrom ReconciliationID `json:"carried_from,omitempty"`
}

// ReconcileCounts are the number of items of each category of a run
// (complete even when the items are truncated).
type ReconcileCounts struct {
	Matched          int `json:"matched"`
	MissingInLedger  int `json:"missing_in_ledger"`
	MissingAtBank    int `json:"missing_at_bank"`
	AmountMismatch   int `json:"amount_mismatch"`
	Duplicate        int `json:"duplicate"`
	TimingDifference int `json:"timing_difference"`
}

// Findings is the number of items that need an operator: every category
// but matched and timing_difference.
func (c ReconcileCounts) Findings() int {
	return c.MissingInLedger + c.MissingAtBank + c.AmountMismatch + c.Duplicate
}

// ReconcileItems are a run's items per category, each never nil.
type ReconcileItems struct {
	Matched []ReconcileItem `json:"matched"`
	// MissingInLedger: at the bank, not recorded on its account, and not
	// waiting for the scanner (a deposit under the bank_txn_id on another
	// account is never matched across accounts).
	MissingInLedger []ReconcileItem `json:"missing_in_ledger"`
	// MissingAtBank: recorded on an account in the period, not on the
	// statement (payouts runs: settled or failed in the period, not on the
	// provider's report).
	MissingAtBank []ReconcileItem `json:"missing_at_bank"`
	// AmountMismatch: the same transaction at another amount.
	AmountMismatch []ReconcileItem `json:"amount_mismatch"`
	// Duplicate: the same transaction (account and bank_txn_id) twice on
	// the statement (or recorded as more than one deposit, which
	// bankbook's deposit IDs never produce). Ambiguous: never matched.
	Duplicate []ReconcileItem `json:"duplicate"`
	// TimingDifference: not a finding; carried to the next run of the
	// account (bank) or of the provider (payouts), which settles it:
	// matched or a finding once its input covers the item, carried again
	// while it does not.
	TimingDifference []ReconcileItem `json:"timing_difference"`
}

// ReconciliationCompleted records a run: what it compared and what it found.
type ReconciliationCompleted struct {
	RunID      ReconciliationID `json:"run_id"`
	Kind       string           `json:"kind"`
	FileSHA256 string           `json:"file_sha256"`
	// Accounts are the accounts and periods a bank statement covers (none
	// for a payouts run).
	Accounts []ReconcileAccount `json:"accounts"`
	// Period is the period a payouts report covers (its first to its last
	// settled_at), or the period a bank statement was given with (nil
	// otherwise: each account's period is its own).
	Period *ReconcilePeriod `json:"period,omitempty"`
	// CarryBase, on a payouts run, is the run that last wrote the
	// provider's open timing differences, which this run took in and
	// settled (none, possibly; empty: no payouts run came before); a bank
	// run says it per account.
	CarryBase ReconciliationID `json:"carry_base,omitempty"`
	// Lines is the number of lines of the input.
	Lines int `json:"lines"`
	// LinesSHA256 is the SHA-256 of the input's lines as the engine got
	// them (their JSON), which a repeat under the same FileSHA256 must
	// match (empty on runs recorded before it was kept).
	LinesSHA256 string `json:"lines_sha256,omitempty"`
	// LedgerAsOfSeq is the stream sequence the read models compared had
	// applied.
	LedgerAsOfSeq uint64          `json:"ledger_as_of_seq"`
	Counts        ReconcileCounts `json:"counts"`
	ReconcileItems
	// Truncated: more than MaxReconcileItems items; the counts are complete,
	// the lists hold the first MaxReconcileItems (findings first).
	Truncated   bool      `json:"truncated"`
	CompletedAt time.Time `json:"completed_at"`
}

// EventType implements Event.
func (ReconciliationCompleted) EventType() string { return "reconcile.completed" }

// Reconciliation is the state of one run.
type Reconciliation struct {
	Run     ReconciliationCompleted
	Version int
}

// Exists reports whether the run was recorded.
func (r Reconciliation) Exists() bool { return r.Version > 0 }

// Apply returns the state after e.
func (r Reconciliation) Apply(e Event) Reconciliation {
	if c, ok := e.(ReconciliationCompleted); ok {
		r.Run = c
	}
	r.Version++
	return r
}

// DecideReconcile records a run once: a run already recorded (the same
// file again) needs nothing, and keeps its first result.
func DecideReconcile(r Reconciliation, c ReconciliationCompleted) ([]Event, error) {
	if r.Exists() {
		return nil, nil
	}
	return []Event{c}, nil
}

// BankReconcileInput is what ReconcileBank compares.
type BankReconcileInput struct {
	RunID      ReconciliationID
	FileSHA256 string
	// Lines are the statement's transactions in file order; a bank_txn_id
	// may repeat (a duplicate).
	Lines []StatementLine
	// Recorded are the recorded deposits of the statement's accounts from
	// the start of each account's period to ReconcileTimingWindow after its
	// end, and every recorded deposit of a bank_txn_id on the statement
	// (any account, any time). Repeats are ignored.
	Recorded []RecordedDeposit
	// Watermarks are the scan watermarks by normalised account number
	// (absent or zero: never scanned).
	Watermarks map[string]time.Time
	// Carried are the timing differences the latest earlier run of each of
	// the statement's accounts left open, and CarryBases those runs by
	// normalised account number. Recorded must also hold every deposit
	// recorded under their bank_txn_ids.
	Carried    []ReconcileItem
	CarryBases map[string]ReconciliationID
	// CoveredTo is, by normalised account number, the latest end of a
	// period an earlier run of the account covered (absent: none). Recorded
	// must also hold the account's deposits from there to its period.
	CoveredTo map[string]time.Time
	// ComparedSeqs are, by normalised account number, the sequences
	// Recorded's deposits of the account's period were read as of
	// (ReconcileAccount.ComparedSeq).
	ComparedSeqs map[string]uint64
	// Late are deposits of the statement's accounts recorded after the
	// account's earlier runs read its deposits (after their ComparedSeq,
	// up to this run's) and deposited before this run compares, from the
	// start of the earliest period they covered: no run compared them.
	// LateAfter holds that earlier ComparedSeq by normalised account number.
	Late      []RecordedDeposit
	LateAfter map[string]uint64
	// Unrecorded are the statement accounts' ReconcileCarry.Unrecorded: a
	// Late deposit among them is compared with its earlier statement line.
	Unrecorded    []ReconcileItem
	LedgerAsOfSeq uint64
	Now           time.Time
	// Period and Accounts, when Period is set, are the statement's period
	// and the accounts it covers besides its lines' (CoveredAccounts).
	Period   *ReconcilePeriod
	Accounts []string
}

// CoveredAccounts returns the accounts a statement covers, each with its
// period, sorted by account number: without a period, its lines' accounts,
// each from its first to its last line (StatementAccounts); with one,
// those and accounts, each over the whole period.
func CoveredAccounts(lines []StatementLine, period *ReconcilePeriod, accounts []string) []ReconcileAccount {
	out := StatementAccounts(lines)
	if period == nil {
		return out
	}
	seen := map[string]bool{}
	for i := range out {
		out[i].From, out[i].To = period.From.UTC(), period.To.UTC()
		seen[out[i].AccountNumber] = true
	}
	for _, a := range accounts {
		if n := NormalizeAccountNumber(a); !seen[n] {
			seen[n] = true
			out = append(out, ReconcileAccount{AccountNumber: n, From: period.From.UTC(), To: period.To.UTC()})
		}
	}
	slices.SortFunc(out, func(a, b ReconcileAccount) int { return cmp.Compare(a.AccountNumber, b.AccountNumber) })
	return out
}

// StatementAccounts returns the accounts lines cover, each with its period,
// sorted by account number.
func StatementAccounts(lines []StatementLine) []ReconcileAccount {
	byAcct := map[string]*ReconcileAccount{}
	for _, l := range lines {
		n := NormalizeAccountNumber(l.AccountNumber)
		a := byAcct[n]
		if a == nil {
			a = &ReconcileAccount{AccountNumber: n, From: l.DepositedAt.UTC(), To: l.DepositedAt.UTC()}
			byAcct[n] = a
		}
		if l.DepositedAt.Before(a.From) {
			a.From = l.DepositedAt.UTC()
		}
		if l.DepositedAt.After(a.To) {
			a.To = l.DepositedAt.UTC()
		}
	}
	out := make([]ReconcileAccount, 0, len(byAcct))
	for _, a := range byAcct {
		out = append(out, *a)
	}
	slices.SortFunc(out, func(a, b ReconcileAccount) int { return cmp.Compare(a.AccountNumber, b.AccountNumber) })
	return out
}

// GapFrom is where the deposits of an account that no earlier run compared
// begin, for a period starting at from when the account's earlier runs
// covered up to coveredTo (zero: none did): coveredTo plus
// ReconcileTimingWindow, the last time the run that covered it compared,
// if that is before from; otherwise zero (no gap). The window is left out
// because that run matched by bank_txn_id deposits recorded in it, which
// this run cannot tell from the others.
func GapFrom(coveredTo, from time.Time) time.Time {
	if coveredTo.IsZero() {
		return time.Time{}
	}
	if end := coveredTo.Add(ReconcileTimingWindow).UTC(); end.Before(from) {
		return end
	}
	return time.Time{}
}

// ReconcileBank compares a bank statement with the recorded deposits. It
// matches a statement line only to the one deposit recorded under its
// bank_txn_id on its account, at its amount; everything else is a finding
// or a timing difference, never a guess. A transaction is an account's
// bank_txn_id (banks number transactions per account, as NewDepositID
// does), so one bank_txn_id on two accounts is two transactions:
//
//   - duplicate: the transaction is on the statement more than once, or
//     recorded as more than one deposit;
//   - amount_mismatch: recorded once on the account, at another amount;
//   - missing_in_ledger: not recorded on the account, and not waiting for
//     the scanner (the note names a deposit recorded under that
//     bank_txn_id on another account, if any);
//   - timing_difference (statement side): not recorded, and deposited at
//     or after the account's scan watermark: the scanner has not covered
//     it yet;
//   - missing_at_bank: recorded on a covered account within its period,
//     or between the end of the account's earlier runs' periods and this
//     one (GapFrom), or recorded since those runs read the account's
//     deposits and deposited in a time they had compared (Late), not on
//     the statement;
//   - timing_difference (ledger side): recorded, not on the statement,
//     within ReconcileTimingWindow of the end of the period.
func ReconcileBank(in BankReconcileInput) ReconciliationCompleted {
	accounts := CoveredAccounts(in.Lines, in.Period, in.Accounts)
	period := map[string]ReconcileAccount{}
	for i, a := range accounts {
		if wm := in.Watermarks[a.AccountNumber]; !wm.IsZero() {
			wm = wm.UTC()
			accounts[i].ScanWatermark = &wm
		}
		accounts[i].CarryBase = in.CarryBases[a.AccountNumber]
		if gap := GapFrom(in.CoveredTo[a.AccountNumber], a.From); !gap.IsZero() {
			accounts[i].GapFrom = &gap
		}
		accounts[i].ComparedSeq = in.ComparedSeqs[a.AccountNumber]
		accounts[i].LateAfterSeq = in.LateAfter[a.AccountNumber]
		period[a.AccountNumber] = accounts[i]
	}
	// A bank transaction is its account and its bank_txn_id (the bank
	// numbers transactions per account, as deposit IDs do); byTxn, by
	// bank_txn_id alone, only names a deposit on another account in a note.
	byKey := map[string][]RecordedDeposit{}
	byTxn := map[string][]RecordedDeposit{}
	seen := map[string]bool{}
	var recorded []RecordedDeposit
	for _, d := range slices.Concat(in.Recorded, in.Late) {
		if seen[d.DepositID] {
			continue
		}
		seen[d.DepositID] = true
		k := txnKey(d.AccountNumber, d.BankTxnID)
		byKey[k] = append(byKey[k], d)
		byTxn[d.BankTxnID] = append(byTxn[d.BankTxnID], d)
		recorded = append(recorded, d)
	}
	count := map[string]int{}
	for _, l := range in.Lines {
		count[txnKey(l.AccountNumber, l.BankTxnID)]++
	}

	items := ReconcileItems{
		Matched: []ReconcileItem{}, MissingInLedger: []ReconcileItem{}, MissingAtBank: []ReconcileItem{},
		AmountMismatch: []ReconcileItem{}, Duplicate: []ReconcileItem{}, TimingDifference: []ReconcileItem{},
	}
	done := map[string]bool{} // transactions (txnKey) accounted for
	for _, l := range in.Lines {
		k := txnKey(l.AccountNumber, l.BankTxnID)
		if done[k] {
			continue
		}
		done[k] = true
		acct := NormalizeAccountNumber(l.AccountNumber)
		recs := byKey[k]
		it := ReconcileItem{BankTxnID: l.BankTxnID, AccountNumber: acct, StatementAmount: l.Amount, At: l.DepositedAt.UTC(), DepositIDs: depositIDs(recs)}
		switch {
		case count[k] > 1:
			it.StatementCount = count[k]
			it.Note = fmt.Sprintf("on the statement %d times", it.StatementCount)
			if len(recs) == 1 {
				it.LedgerAmount = recs[0].Amount // recorded once: its amount, as a payouts run gives
			}
			items.Duplicate = append(items.Duplicate, it)
		case items.placeRecorded(it, recs):
		default:
			if wm := period[acct].ScanWatermark; wm != nil && !l.DepositedAt.Before(*wm) {
				it.Note = "deposited at or after the scan watermark " + FormatTime(*wm) + ": not scanned yet, carried to the next run"
				items.TimingDifference = append(items.TimingDifference, it)
				break
			}
			it.Note = elsewhere(byTxn[l.BankTxnID])
			items.MissingInLedger = append(items.MissingInLedger, it)
		}
	}

	// Carried items the statement does not name are settled by what is
	// recorded now: the statement covers their time, or they are carried
	// again.
	for _, c := range in.Carried {
		k := txnKey(c.AccountNumber, c.BankTxnID)
		if done[k] {
			continue // on the statement: matched or reported with the lines
		}
		done[k] = true
		acct := NormalizeAccountNumber(c.AccountNumber)
		recs := byKey[k]
		it := c
		it.DepositIDs, it.Note = depositIDs(recs), ""
		if c.StatementAmount != 0 { // on an earlier statement, not recorded then
			switch {
			case items.placeRecorded(it, recs):
			default:
				if wm := period[acct].ScanWatermark; wm == nil || !c.At.Before(*wm) {
					it.Note = "still not scanned: carried to the next run"
					items.TimingDifference = append(items.TimingDifference, it)
				} else {
					it.Note = "the scanner has passed it since, and it was never recorded"
					if e := elsewhere(byTxn[c.BankTxnID]); e != "" {
						it.Note += "; " + e
					}
					items.MissingInLedger = append(items.MissingInLedger, it)
				}
			}
			continue
		}
		// Recorded, not on an earlier statement: it belongs on this one
		// once this one ends past it.
		// Once the window before its end no longer holds it (as for a
		// deposit this run reads first, exactly the window before the end
		// is outside it).
		if p, covered := period[acct]; covered && !p.To.Before(c.At.Add(ReconcileTimingWindow)) {
			it.Note = "not on the next statement either"
			items.MissingAtBank = append(items.MissingAtBank, it)
			continue
		}
		it.Note = "not covered yet: carried to the next run"
		items.TimingDifference = append(items.TimingDifference, it)
	}

	slices.SortFunc(recorded, func(a, b RecordedDeposit) int {
		return cmp.Or(cmp.Compare(NormalizeAccountNumber(a.AccountNumber), NormalizeAccountNumber(b.AccountNumber)),
			a.DepositedAt.Compare(b.DepositedAt), cmp.Compare(a.DepositID, b.DepositID))
	})
	for _, d := range recorded {
		k := txnKey(d.AccountNumber, d.BankTxnID)
		if done[k] {
			continue
		}
		acct := NormalizeAccountNumber(d.AccountNumber)
		p, covered := period[acct]
		inGap := covered && p.GapFrom != nil && d.DepositedAt.After(*p.GapFrom) && d.DepositedAt.Before(p.From)
		if !covered || (d.DepositedAt.Before(p.From) && !inGap) || d.DepositedAt.After(p.To.Add(ReconcileTimingWindow)) {
			continue
		}
		done[k] = true
		recs := byKey[k]
		it := ReconcileItem{BankTxnID: d.BankTxnID, AccountNumber: acct, LedgerAmount: d.Amount, At: d.DepositedAt.UTC(), DepositIDs: depositIDs(recs)}
		switch {
		case len(recs) > 1:
			it.Note = fmt.Sprintf("recorded as %d deposits", len(recs))
			items.Duplicate = append(items.Duplicate, it)
		case inGap:
			it.Note = fmt.Sprintf("recorded between the account's previous statement (compared up to %s) and this one (from %s): on no statement reconciled", FormatTime(*p.GapFrom), FormatTime(p.From))
			items.MissingAtBank = append(items.MissingAtBank, it)
		case d.DepositedAt.After(p.To.Add(-ReconcileTimingWindow)):
			it.Note = fmt.Sprintf("recorded within %s of the end of the statement's period (%s): carried to the next run", ReconcileTimingWindow, FormatTime(p.To))
			items.TimingDifference = append(items.TimingDifference, it)
		default:
			items.MissingAtBank = append(items.MissingAtBank, it)
		}
	}
	unrecorded := map[string]ReconcileItem{}
	for _, u := range in.Unrecorded {
		unrecorded[txnKey(u.AccountNumber, u.BankTxnID)] = u
	}
	for _, d := range in.Late {
		k := txnKey(d.AccountNumber, d.BankTxnID)
		acct := NormalizeAccountNumber(d.AccountNumber)
		if done[k] || period[acct].LateAfterSeq == 0 {
			continue
		}
		done[k] = true
		if u, ok := unrecorded[k]; ok {
			items.placeRecorded(ReconcileItem{BankTxnID: d.BankTxnID, AccountNumber: acct, StatementAmount: u.StatementAmount, At: u.At.UTC(),
				DepositIDs: depositIDs(byKey[k]), CarriedFrom: u.CarriedFrom,
				Note: fmt.Sprintf("found missing in the ledger by run %s, recorded since", u.CarriedFrom)}, byKey[k])
			continue
		}
		items.MissingAtBank = append(items.MissingAtBank, ReconcileItem{BankTxnID: d.BankTxnID, AccountNumber: acct, LedgerAmount: d.Amount, At: d.DepositedAt.UTC(),
			DepositIDs: depositIDs(byKey[k]),
			Note:       fmt.Sprintf("recorded after the account's earlier runs compared its time (they read deposits up to sequence %d): on no statement reconciled", period[acct].LateAfterSeq)})
	}

	items.markCarried(in.Carried, func(it ReconcileItem) string { return txnKey(it.AccountNumber, it.BankTxnID) })
	out := ReconciliationCompleted{
		RunID: in.RunID, Kind: ReconcileKindBank, FileSHA256: in.FileSHA256, Accounts: accounts, Lines: len(in.Lines),
		LedgerAsOfSeq: in.LedgerAsOfSeq, CompletedAt: in.Now.UTC(),
		Counts: ReconcileCounts{
			Matched: len(items.Matched), MissingInLedger: len(items.MissingInLedger), MissingAtBank: len(items.MissingAtBank),
			AmountMismatch: len(items.AmountMismatch), Duplicate: len(items.Duplicate), TimingDifference: len(items.TimingDifference),
		},
	}
	if p := in.Period; p != nil {
		out.Period = &ReconcilePeriod{From: p.From.UTC(), To: p.To.UTC()}
	}
	out.ReconcileItems, out.Truncated = items.bounded(MaxReconcileItems)
	return out
}

// placeRecorded files a transaction of a statement (it) whose category the
// deposits recorded for it (recs: its account and bank_txn_id) decide:
// duplicate (recorded more than once, which bankbook's deposit IDs, one per
// account and bank_txn_id, never produce; kept for any input that holds
// more), amount_mismatch or matched (recorded once). It reports false,
// filing nothing, when nothing is recorded: the caller decides between
// timing_difference and missing_in_ledger.
func (items *ReconcileItems) placeRecorded(it ReconcileItem, recs []RecordedDeposit) bool {
	switch {
	case len(recs) > 1:
		it.Note = fmt.Sprintf("recorded as %d deposits", len(recs))
		items.Duplicate = append(items.Duplicate, it)
	case len(recs) == 1:
		it.LedgerAmount = recs[0].Amount
		if recs[0].Amount != it.StatementAmount {
			items.AmountMismatch = append(items.AmountMismatch, it)
		} else {
			items.Matched = append(items.Matched, it)
		}
	default:
		return false
	}
	return true
}

// elsewhere is the note of a transaction missing in the ledger whose
// bank_txn_id is recorded on other accounts (sameTxn: every deposit under
// it; none on the transaction's own account, or it would not be missing):
// it names one, never matched across accounts. "" when there is none.
func elsewhere(sameTxn []RecordedDeposit) string {
	if len(sameTxn) == 0 {
		return ""
	}
	d := sameTxn[0]
	return fmt.Sprintf("a deposit under this bank_txn_id is recorded on account %s (%s): not matched across accounts", NormalizeAccountNumber(d.AccountNumber), d.DepositID)
}

// txnKey names a bank transaction: its account (normalised) and its
// bank_txn_id.
func txnKey(account, bankTxnID string) string {
	return NormalizeAccountNumber(account) + "\x00" + bankTxnID
}

// Lists returns the item list of every category.
func (it *ReconcileItems) Lists() []*[]ReconcileItem {
	return []*[]ReconcileItem{&it.Matched, &it.MissingInLedger, &it.MissingAtBank, &it.AmountMismatch, &it.Duplicate, &it.TimingDifference}
}

// markCarried sets CarriedFrom on every item that settles or carries again
// one of carried (matched by key); items this run found first keep it
// unset.
func (it *ReconcileItems) markCarried(carried []ReconcileItem, key func(ReconcileItem) string) {
	if len(carried) == 0 {
		return
	}
	from := make(map[string]ReconciliationID, len(carried))
	for _, c := range carried {
		from[key(c)] = c.CarriedFrom
	}
	for _, list := range it.Lists() {
		for i := range *list {
			if run, ok := from[key((*list)[i])]; ok {
				(*list)[i].CarriedFrom = run
			}
		}
	}
}

// bounded keeps every timing difference, which the scope's next run
// settles, and at most limit other items: first those carried in from an
// earlier run (CarriedFrom set), then the rest, each in the order
// duplicate, amount_mismatch, missing_in_ledger, missing_at_bank, matched.
// It reports whether any was dropped. A carry however large is settled
// this way: a run whose carried items were all kept would not fit in a
// message once they were many (and no later run could ever settle them),
// and the carry projection needs them only when two runs of one scope
// cross (mergeCarry), where an item dropped here is carried once more and
// settled again by the next run.
func (it ReconcileItems) bounded(limit int) (ReconcileItems, bool) {
	lists := []*[]ReconcileItem{&it.Duplicate, &it.AmountMismatch, &it.MissingInLedger, &it.MissingAtBank, &it.Matched}
	keep := make([]map[int]bool, len(lists))
	truncated := false
	for _, carried := range []bool{true, false} {
		for i, list := range lists {
			if keep[i] == nil {
				keep[i] = map[int]bool{}
			}
			for j, x := range *list {
				if (x.CarriedFrom != "") != carried {
					continue
				}
				if limit > 0 {
					keep[i][j] = true
					limit--
				} else {
					truncated = true
				}
			}
		}
	}
	for i, list := range lists {
		kept := make([]ReconcileItem, 0, len(keep[i]))
		for j, x := range *list {
			if keep[i][j] {
				kept = append(kept, x)
			}
		}
		*list = kept
	}
	return it, truncated
}

func depositIDs(recs []RecordedDeposit) []string {
	if len(recs) == 0 {
		return nil
	}
	ids := make([]string, len(recs))
	for i, d := range recs {
		ids[i] = d.DepositID
	}
	slices.Sort(ids)
	return ids
}
