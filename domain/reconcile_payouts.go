package domain

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// PayoutReportLine is one line of the payout provider's report (the CSV
// dialect payout_id,status,amount,fee,settled_at of `bankbook reconcile
// payouts`): a payout the provider finalised, settled or failed, and when.
type PayoutReportLine struct {
	PayoutID  string    `json:"payout_id"`
	Status    string    `json:"status"` // settled or failed
	Amount    int64     `json:"amount"`
	Fee       int64     `json:"fee" bankbook:"required"` // 0 is a fee: a request must give it
	SettledAt time.Time `json:"settled_at"`
}

// RecordedPayout is a payout as the event stream recorded it, as much of it
// as reconciliation compares.
type RecordedPayout struct {
	PayoutID string
	Status   PayoutStatus
	Amount   int64
	Fee      int64
	// FinalAt is when it was settled or failed (zero while requested), and
	// FinalSeq the stream sequence of the commit that recorded it (0:
	// unknown).
	FinalAt  time.Time
	FinalSeq uint64
	// NeverTaken is a payout failed because the provider refused it and
	// did not know it (its failure PayoutRefusedPrefix): no report of the
	// provider's holds it, so leaving it out is no finding.
	NeverTaken bool
}

// PayoutRefusedPrefix begins the failure of a payout the provider refused
// and, asked, did not know: the engine failed it, and the provider never
// took it.
const PayoutRefusedPrefix = "refused: "

// PayoutNeverTaken reports whether a payout of status and failure is one
// the provider refused and did not know (PayoutRefusedPrefix): none of
// its reports holds it.
func PayoutNeverTaken(status PayoutStatus, failure string) bool {
	return status == PayoutFailedStatus && strings.HasPrefix(failure, PayoutRefusedPrefix)
}

// EarlierPayoutRuns is what the payouts runs recorded before a run
// compared: a payout one of them compared is not missing at the provider
// because a later report leaves it out.
type EarlierPayoutRuns struct {
	// Named are the payout_ids, of those a run asks about, that an earlier
	// run named in any category: on its report, or carried into it, or
	// found missing at the provider or carried out of it.
	Named map[string]bool
	// Covers are the earlier runs' periods, each with the sequence the run
	// read the recorded payouts as of: it compared every payout recorded
	// settled or failed in its period, or within ReconcileTimingWindow
	// after, by that sequence (what its truncated lists leave out too).
	Covers []PayoutRunCover
}

// PayoutRunCover is what one payouts run compared of the recorded
// payouts: those settled or failed from From to ReconcileTimingWindow after
// To, recorded at or before AsOfSeq.
type PayoutRunCover struct {
	RunID   ReconciliationID `json:"run_id"`
	From    time.Time        `json:"from"`
	To      time.Time        `json:"to"`
	AsOfSeq uint64           `json:"as_of_seq"`
}

// Span returns the earliest start and the latest end of the earlier runs'
// periods, and the latest sequence one read the recorded payouts as of
// (all zero: no run yet).
func (e EarlierPayoutRuns) Span() (from, to time.Time, lastRead uint64) {
	for i, c := range e.Covers {
		if i == 0 || c.From.Before(from) {
			from = c.From
		}
		if i == 0 || c.To.After(to) {
			to = c.To
		}
		lastRead = max(lastRead, c.AsOfSeq)
	}
	return from, to, lastRead
}

// unread reports whether p, dated before a period that begins at start,
// is one no earlier run read although the runs cover its time: recorded
// after the latest of them read (dated from the earliest one's start), or
// dated between the latest end they compared and start. The runs are taken
// to come in the order of their periods, as statements do.
func (e EarlierPayoutRuns) unread(p RecordedPayout, start time.Time) bool {
	if len(e.Covers) == 0 || !p.FinalAt.Before(start) {
		return false
	}
	from, to, lastRead := e.Span()
	return (!p.FinalAt.Before(from) && p.FinalSeq > lastRead) || p.FinalAt.After(to.Add(ReconcileTimingWindow))
}

// compared reports whether an earlier run compared p.
func (e EarlierPayoutRuns) compared(p RecordedPayout) bool {
	if e.Named[p.PayoutID] {
		return true
	}
	for _, c := range e.Covers {
		if p.FinalSeq != 0 && p.FinalSeq <= c.AsOfSeq && !p.FinalAt.Before(c.From) && !p.FinalAt.After(c.To.Add(ReconcileTimingWindow)) {
			return true
		}
	}
	return false
}

// PayoutReconcileInput is what ReconcilePayouts compares.
type PayoutReconcileInput struct {
	RunID      ReconciliationID
	FileSHA256 string
	// Lines are the report's lines in file order; a payout_id may repeat
	// (a duplicate).
	Lines []PayoutReportLine
	// Period, if not nil, is the time the report covers (ReportPeriod).
	Period *ReconcilePeriod
	// Later are payouts on a later part of the same report (a day of more
	// than a run holds, reconciled as several runs): that part's run
	// compares them, so this one leaves them out, not on its report though
	// they may be recorded final by its end.
	Later map[string]bool
	// Recorded are the recorded payouts of the report's payout_ids and
	// every payout settled or failed from the start of the report's period
	// to ReconcileTimingWindow after its end. Repeats are ignored.
	Recorded []RecordedPayout
	// Carried are the timing differences the latest earlier payouts run,
	// CarryBase, left open; Recorded must also hold their payouts.
	Carried   []ReconcileItem
	CarryBase ReconciliationID
	// Earlier is what earlier payouts runs compared, Named asked about
	// the recorded payouts of the period: a payout the provider reported
	// on an earlier report, whose result the engine recorded only within
	// this report's period (once it learnt it), is not missing from this
	// one; nor is one an earlier run found missing already. Recorded must
	// also hold the payouts they did not read before this period began
	// (EarlierPayoutRuns.unread: recorded after the latest run read, or
	// dated between the latest period compared and this one), which this
	// run compares.
	Earlier EarlierPayoutRuns
	// Unrecorded are the payouts earlier runs found on a report and
	// missing in the ledger (ReconcileCarry.Unrecorded of the payouts
	// scope): one whose result is recorded since is compared with that
	// report's line. Recorded must also hold their payouts.
	Unrecorded    []ReconcileItem
	LedgerAsOfSeq uint64
	Now           time.Time
}

// ReportPeriod is the period a provider's report covers: given, the
// period it was sent with (the report of a day; every line is in it),
// otherwise its first to its last settled_at.
func ReportPeriod(lines []PayoutReportLine, given *ReconcilePeriod) ReconcilePeriod {
	if given != nil {
		return ReconcilePeriod{From: given.From.UTC(), To: given.To.UTC()}
	}
	var p ReconcilePeriod
	for i, l := range lines {
		at := l.SettledAt.UTC()
		if i == 0 || at.Before(p.From) {
			p.From = at
		}
		if i == 0 || at.After(p.To) {
			p.To = at
		}
	}
	return p
}

// ReconcilePayouts compares a payout provider's report with the recorded
// payouts, by payout_id only:
//
//   - duplicate: the payout_id is on the report more than once;
//   - missing_in_ledger: no such payout recorded, or recorded without its
//     result more than ReconcileTimingWindow before the end of the
//     report's period;
//   - timing_difference: recorded without its result, reported within
//     ReconcileTimingWindow of the end of the period (the result is on its
//     way); or recorded settled or failed within that window of the end,
//     not on the report;
//   - amount_mismatch: another status, amount or (settled) fee;
//   - matched: the same status and amount, and for a settlement the fee;
//   - missing_at_bank (at the provider): recorded settled or failed in the
//     period, or before it but unread by the earlier runs, not on the
//     report, nor compared by an earlier run (Earlier).
func ReconcilePayouts(in PayoutReconcileInput) ReconciliationCompleted {
	period := ReportPeriod(in.Lines, in.Period)
	byID := map[string]RecordedPayout{}
	var recorded []RecordedPayout
	for _, p := range in.Recorded {
		if _, ok := byID[p.PayoutID]; ok {
			continue
		}
		byID[p.PayoutID] = p
		recorded = append(recorded, p)
	}
	count := map[string]int{}
	for _, l := range in.Lines {
		count[l.PayoutID]++
	}
	items := ReconcileItems{
		Matched: []ReconcileItem{}, MissingInLedger: []ReconcileItem{}, MissingAtBank: []ReconcileItem{},
		AmountMismatch: []ReconcileItem{}, Duplicate: []ReconcileItem{}, TimingDifference: []ReconcileItem{},
	}
	nearEnd := func(at time.Time) bool { return at.After(period.To.Add(-ReconcileTimingWindow)) }
	done := map[string]bool{}
	for _, l := range in.Lines {
		if done[l.PayoutID] {
			continue
		}
		done[l.PayoutID] = true
		it := ReconcileItem{PayoutID: l.PayoutID, StatementAmount: l.Amount, StatementFee: l.Fee, StatementStatus: l.Status, At: l.SettledAt.UTC()}
		p, ok := byID[l.PayoutID]
		if ok {
			it.LedgerAmount, it.LedgerFee, it.LedgerStatus = p.Amount, p.Fee, string(p.Status)
		}
		switch {
		case count[l.PayoutID] > 1:
			it.StatementCount = count[l.PayoutID]
			it.Note = fmt.Sprintf("on the report %d times", it.StatementCount)
			items.Duplicate = append(items.Duplicate, it)
		case !ok:
			items.MissingInLedger = append(items.MissingInLedger, it)
		case p.Status == PayoutRequestedStatus && nearEnd(l.SettledAt):
			it.Note = fmt.Sprintf("the result is not recorded yet, reported within %s of the end of the report's period: carried to the next run", ReconcileTimingWindow)
			items.TimingDifference = append(items.TimingDifference, it)
		case p.Status == PayoutRequestedStatus:
			it.Note = "the provider's result is not recorded"
			items.MissingInLedger = append(items.MissingInLedger, it)
		default:
			items.compareResult(it, p)
		}
	}
	for id := range in.Later {
		done[id] = true
	}
	// Carried items the report does not name are settled by what is
	// recorded now once the report covers their time, or carried again.
	covers := func(at time.Time) bool { return len(in.Lines) > 0 && !nearEnd(at) }
	for _, c := range in.Carried {
		if done[c.PayoutID] {
			continue
		}
		done[c.PayoutID] = true
		it := c
		it.Note = ""
		p, ok := byID[c.PayoutID]
		if ok {
			it.LedgerAmount, it.LedgerFee, it.LedgerStatus = p.Amount, p.Fee, string(p.Status)
		}
		if c.StatementStatus == "" { // recorded final, not on an earlier report
			switch {
			case ok && p.NeverTaken:
				// Never at the provider: no report holds it.
			case covers(c.At):
				it.Note = "not on the next report either"
				items.MissingAtBank = append(items.MissingAtBank, it)
			default:
				it.Note = "not covered yet: carried to the next run"
				items.TimingDifference = append(items.TimingDifference, it)
			}
			continue
		}
		// On an earlier report, its result not recorded then.
		switch {
		case !ok:
			items.MissingInLedger = append(items.MissingInLedger, it)
		case p.Status == PayoutRequestedStatus && covers(c.At):
			it.Note = "the provider's result is still not recorded"
			items.MissingInLedger = append(items.MissingInLedger, it)
		case p.Status == PayoutRequestedStatus:
			it.Note = "the result is not recorded yet: carried to the next run"
			items.TimingDifference = append(items.TimingDifference, it)
		default:
			items.compareResult(it, p)
		}
	}
	// Reported by an earlier run while the ledger had no result for them:
	// compared with that line once the result is recorded, whatever this
	// report holds, or carried on (the provider said failed and the
	// engine recorded settled is money the books get wrong).
	for _, u := range in.Unrecorded {
		p, ok := byID[u.PayoutID]
		if done[u.PayoutID] || !ok || p.Status == PayoutRequestedStatus {
			continue
		}
		done[u.PayoutID] = true
		items.compareResult(ReconcileItem{PayoutID: u.PayoutID, StatementAmount: u.StatementAmount, StatementFee: u.StatementFee,
			StatementStatus: u.StatementStatus, At: u.At.UTC(), LedgerAmount: p.Amount, LedgerFee: p.Fee, LedgerStatus: string(p.Status),
			CarriedFrom: u.CarriedFrom,
			Note:        fmt.Sprintf("its result found missing in the ledger by run %s, recorded since", u.CarriedFrom)}, p)
	}
	slices.SortFunc(recorded, func(a, b RecordedPayout) int {
		return cmp.Or(a.FinalAt.Compare(b.FinalAt), cmp.Compare(a.PayoutID, b.PayoutID))
	})
	for _, p := range recorded {
		if done[p.PayoutID] || p.FinalAt.IsZero() || len(in.Lines) == 0 || p.NeverTaken ||
			p.FinalAt.After(period.To.Add(ReconcileTimingWindow)) || in.Earlier.compared(p) {
			continue
		}
		before := p.FinalAt.Before(period.From)
		if before && !in.Earlier.unread(p, period.From) {
			continue
		}
		done[p.PayoutID] = true
		it := ReconcileItem{PayoutID: p.PayoutID, LedgerAmount: p.Amount, LedgerFee: p.Fee, LedgerStatus: string(p.Status), At: p.FinalAt.UTC()}
		switch {
		case before:
			it.Note = "recorded before the report's period, where no earlier report's run read it: not on this report either"
		case nearEnd(p.FinalAt):
			it.Note = fmt.Sprintf("recorded within %s of the end of the report's period (%s): carried to the next run", ReconcileTimingWindow, FormatTime(period.To))
			items.TimingDifference = append(items.TimingDifference, it)
			continue
		}
		items.MissingAtBank = append(items.MissingAtBank, it)
	}
	items.markCarried(in.Carried, func(it ReconcileItem) string { return it.PayoutID })
	out := ReconciliationCompleted{
		RunID: in.RunID, Kind: ReconcileKindPayouts, FileSHA256: in.FileSHA256, Accounts: []ReconcileAccount{}, Period: &period, CarryBase: in.CarryBase,
		Lines: len(in.Lines), LedgerAsOfSeq: in.LedgerAsOfSeq, CompletedAt: in.Now.UTC(),
		Counts: ReconcileCounts{
			Matched: len(items.Matched), MissingInLedger: len(items.MissingInLedger), MissingAtBank: len(items.MissingAtBank),
			AmountMismatch: len(items.AmountMismatch), Duplicate: len(items.Duplicate), TimingDifference: len(items.TimingDifference),
		},
	}
	out.ReconcileItems, out.Truncated = items.bounded(MaxReconcileItems)
	return out
}

// compareResult files a payout the provider reported (it: its status,
// amount and fee on the report) whose result is recorded (p): matched when
// the status and amount agree, and the fee (which a failure does not
// have: a fee charged for one is money the books do not expect);
// amount_mismatch otherwise. What the mismatch is follows it.Note, if any.
func (items *ReconcileItems) compareResult(it ReconcileItem, p RecordedPayout) {
	note := func(format string, a ...any) {
		if it.Note != "" {
			it.Note += "; "
		}
		it.Note += fmt.Sprintf(format, a...)
	}
	switch {
	case string(p.Status) != it.StatementStatus:
		note("%s at the provider, %s in the ledger", it.StatementStatus, p.Status)
		items.AmountMismatch = append(items.AmountMismatch, it)
	case p.Status == PayoutFailedStatus && it.StatementFee != 0:
		note("the provider charged a fee of %d for a failed payout", it.StatementFee)
		items.AmountMismatch = append(items.AmountMismatch, it)
	case p.Amount != it.StatementAmount || p.Status == PayoutSettledStatus && p.Fee != it.StatementFee:
		items.AmountMismatch = append(items.AmountMismatch, it)
	default:
		items.Matched = append(items.Matched, it)
	}
}
