package commands

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
)

// DepositLedger is where bank reconciliation reads the recorded deposits
// from: the read models (projections.Store, projection "deposit_index").
type DepositLedger interface {
	// DepositsOn returns the deposits recorded on account (compared
	// normalised) deposited from from to to, both inclusive, and the
	// sequence they are as of.
	DepositsOn(account string, from, to time.Time) ([]domain.RecordedDeposit, eventstore.Seq, error)
	// DepositsRecordedBetween returns the deposits on account whose commits
	// are after after and at most upTo, deposited from from and before
	// before.
	DepositsRecordedBetween(account string, after, upTo eventstore.Seq, from, before time.Time) ([]domain.RecordedDeposit, error)
	// DepositsWithTxn returns every deposit recorded under one of the bank
	// transaction IDs, on any account.
	DepositsWithTxn(bankTxnIDs []string) ([]domain.RecordedDeposit, error)
	CarriedLedger
}

// CarriedLedger is where a run finds the timing differences the latest
// earlier run of its scope left open (projection "reconcile_carry").
type CarriedLedger interface {
	// Carry returns it for a bank account (domain.ReconcileKindBank) or
	// for the payout provider (domain.ReconcileKindPayouts, account
	// ignored).
	Carry(kind, account string) (domain.ReconcileCarry, error)
}

// ReconcileBank compares a bank statement with the recorded deposits of
// the accounts and periods it covers (domain.ReconcileBank says how) and
// records the result as the run's one event, reconcile.completed.
//
// The run's ID derives from req.FileSHA256: if that run was recorded
// before, it is answered as recorded (Repeated) and nothing is compared or
// written. The run is created with the expectation that the aggregate has
// no commit, so two runs of the same file at once record one result, which
// both answer. The scan watermarks of the statement's accounts are read
// first, then caughtUp waits until ledger's read models hold every commit
// the stream holds, and returns the sequence they applied, recorded in
// the run: a transaction the scanner recorded before its watermark moved
// is then in ledger, and one it records while the run reads is a timing
// difference, never missing.
func (h *Deposits) ReconcileBank(ctx context.Context, meta Meta, req api.ReconcileBankRequest, ledger DepositLedger, caughtUp func(context.Context) (eventstore.Seq, error)) (api.ReconcileReply, error) {
	if err := req.Validate(); err != nil {
		return api.ReconcileReply{}, err
	}
	id := domain.NewReconciliationID(domain.ReconcileKindBank, req.FileSHA256)
	lines, err := linesSHA256(req.Lines)
	if err != nil {
		return api.ReconcileReply{}, err
	}
	if r, seq, err := h.runs.Get(ctx, string(id)); err != nil {
		return api.ReconcileReply{}, err
	} else if r.Exists() {
		return repeatedRun(r.Run, seq, runInput{lines: lines, period: req.Period})
	}

	covered := domain.CoveredAccounts(req.Lines, req.Period, req.Accounts)
	watermarks := map[string]time.Time{}
	for _, a := range covered {
		wm, err := h.marks.Watermark(ctx, h.feedAccount(a.AccountNumber))
		if err != nil {
			return api.ReconcileReply{}, fmt.Errorf("scan watermark of %s: %w", a.AccountNumber, err)
		}
		watermarks[a.AccountNumber] = wm
	}
	asOf, err := caughtUp(ctx)
	if err != nil {
		return api.ReconcileReply{}, err
	}
	in := domain.BankReconcileInput{RunID: id, FileSHA256: req.FileSHA256, Lines: req.Lines,
		Watermarks: watermarks, LedgerAsOfSeq: uint64(asOf), Now: h.Now(), Period: req.Period, Accounts: req.Accounts}
	txns := make([]string, 0, len(req.Lines))
	for _, l := range req.Lines {
		txns = append(txns, l.BankTxnID)
	}
	in.CarryBases, in.CoveredTo = map[string]domain.ReconciliationID{}, map[string]time.Time{}
	in.ComparedSeqs, in.LateAfter = map[string]uint64{}, map[string]uint64{}
	carries := map[string]domain.ReconcileCarry{}
	for _, a := range covered {
		carry, err := ledger.Carry(domain.ReconcileKindBank, a.AccountNumber)
		if err != nil {
			return api.ReconcileReply{}, fmt.Errorf("read the timing differences carried on %s: %w", a.AccountNumber, err)
		}
		carries[a.AccountNumber] = carry
		in.Unrecorded = append(in.Unrecorded, carry.Unrecorded...)
		in.CarryBases[a.AccountNumber], in.CoveredTo[a.AccountNumber] = carry.Base, carry.CoveredTo
		for _, c := range carry.Items {
			in.Carried = append(in.Carried, c)
			txns = append(txns, c.BankTxnID)
		}
	}
	recorded, err := ledger.DepositsWithTxn(txns)
	if err != nil {
		return api.ReconcileReply{}, fmt.Errorf("read recorded deposits: %w", err)
	}
	in.Recorded = recorded
	for _, a := range covered {
		// Late deposits are those dated before from; a gap's first
		// moment is not in the gap (the run that covered it compared it).
		from, lateBefore := a.From, a.From
		if gap := domain.GapFrom(in.CoveredTo[a.AccountNumber], a.From); !gap.IsZero() {
			from, lateBefore = gap, gap.Add(time.Nanosecond)
		}
		on, seq, err := ledger.DepositsOn(a.AccountNumber, from, a.To.Add(domain.ReconcileTimingWindow))
		if err != nil {
			return api.ReconcileReply{}, fmt.Errorf("read recorded deposits of %s: %w", a.AccountNumber, err)
		}
		in.Recorded = append(in.Recorded, on...)
		in.ComparedSeqs[a.AccountNumber] = uint64(seq)
		// Deposits recorded since the earlier runs read the account, in a
		// time before this run's: no run compared them.
		if c := carries[a.AccountNumber]; c.ComparedSeq > 0 && c.ComparedSeq < uint64(seq) {
			late, err := ledger.DepositsRecordedBetween(a.AccountNumber, eventstore.Seq(c.ComparedSeq), seq, c.CoveredFrom, lateBefore)
			if err != nil {
				return api.ReconcileReply{}, fmt.Errorf("read the deposits recorded on %s since its last run: %w", a.AccountNumber, err)
			}
			in.Late = append(in.Late, late...)
			in.LateAfter[a.AccountNumber] = c.ComparedSeq
		}
	}
	run := domain.ReconcileBank(in)
	run.LinesSHA256 = lines
	return h.recordRun(ctx, meta, id, run)
}

// linesSHA256 is the SHA-256 of a run's input lines (lower-case hex).
func linesSHA256(lines any) (string, error) {
	b, err := json.Marshal(lines)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// runInput is what a repeat under a file hash must share with the run
// recorded for it: its lines (their linesSHA256) and the period it was
// given (nil: none; a payouts report's period is then its lines' span,
// which its run's holds).
type runInput struct {
	lines  string
	period *domain.ReconcilePeriod
}

// repeatedRun answers a run recorded before under the same file hash, if
// it was recorded for this input. The run's ID names the file by the hash
// its client sent, which the engine cannot check against bytes it never
// sees: other lines under a hash already reconciled are refused, or that
// file would be answered clean from then on; so is a bank statement over
// a period its run's does not hold (or none, or one where the run had
// none), which compared other times (and the accounts of that period), or
// its run would answer clean for times it never compared, and a payouts
// report over a period its run's does not hold. Within the run's period,
// the run compared all of it: the run answers.
func repeatedRun(run domain.ReconciliationCompleted, seq eventstore.Seq, in runInput) (api.ReconcileReply, error) {
	if run.LinesSHA256 != "" && run.LinesSHA256 != in.lines {
		return api.ReconcileReply{}, domain.Invalid("file_sha256", "run %s was recorded for this file_sha256 with other lines (%d): send the SHA-256 of the file these lines come from", run.RunID, run.Lines)
	}
	if (run.Kind == domain.ReconcileKindBank || in.period != nil) && !periodWithin(in.period, run.Period) {
		return api.ReconcileReply{}, domain.Invalid("period", "run %s was recorded for this file_sha256 over %s, which does not hold %s: the same file is one run; reconcile it over that period, or the file of this one",
			run.RunID, describePeriod(run.Period), describePeriod(in.period))
	}
	return reconcileReply(run, seq, true), nil
}

// periodWithin reports whether p and run are both absent, or p lies
// within run.
func periodWithin(p, run *domain.ReconcilePeriod) bool {
	if p == nil || run == nil {
		return p == run
	}
	return !p.From.Before(run.From) && !p.To.After(run.To)
}

func describePeriod(p *domain.ReconcilePeriod) string {
	if p == nil {
		return "no period"
	}
	return "the period " + domain.FormatTime(p.From) + " to " + domain.FormatTime(p.To)
}

// feedAccount is the account whose scan watermark covers number: the
// collection account for its dedicated sub-accounts (one feed, one
// watermark: bankfeed), number itself otherwise.
func (h *Deposits) feedAccount(number string) string {
	if h.links != nil && h.links.accounts.InRange(number) {
		return domain.NormalizeAccountNumber(h.cfg.CollectAccount.Number)
	}
	return number
}

// Scanned reports whether the bank scan covers account number: the
// collection account and its dedicated sub-accounts.
func (h *Deposits) Scanned(number string) bool {
	return domain.NormalizeAccountNumber(h.feedAccount(number)) == domain.NormalizeAccountNumber(h.cfg.CollectAccount.Number)
}

// recordRun records a run once (expected sequence 0: a new aggregate) and
// answers it; if the run was recorded meanwhile, it answers that one.
func (h *Deposits) recordRun(ctx context.Context, meta Meta, id domain.ReconciliationID, run domain.ReconciliationCompleted) (api.ReconcileReply, error) {
	// Every timing difference and every account is kept (the next run
	// settles them from this event), so a run with very many must be
	// refused rather than cut. The reply writes every time with its
	// microseconds, so it is larger than the event: both must fit, or the
	// run would be recorded and its client told only that its answer was
	// lost.
	if n, err := runBytes(run); err != nil {
		return api.ReconcileReply{}, err
	} else if n > maxRunBytes {
		return api.ReconcileReply{}, domain.Invalid("lines", "the run's %d accounts and %d timing differences do not fit in one message (%d KiB of at most %d): reconcile a shorter period or fewer accounts at once",
			len(run.Accounts), run.Counts.TimingDifference, n>>10, maxRunBytes>>10)
	}
	out, err := h.runs.Execute(ctx, meta, string(id), func(r domain.Reconciliation) ([]domain.Event, error) {
		return domain.DecideReconcile(r, run)
	}, nil)
	if err != nil {
		return api.ReconcileReply{}, err
	}
	if len(out.Events) == 0 { // recorded meanwhile, by another attempt
		return repeatedRun(out.State.Run, out.Seq, runInput{lines: run.LinesSHA256, period: run.Period})
	}
	c := run.Counts
	h.log.Info().Str("run_id", string(id)).Str("kind", run.Kind).Str("file_sha256", run.FileSHA256).Int("lines", run.Lines).
		Int("matched", c.Matched).Int("missing_in_ledger", c.MissingInLedger).Int("missing_at_bank", c.MissingAtBank).
		Int("amount_mismatch", c.AmountMismatch).Int("duplicate", c.Duplicate).Int("timing_difference", c.TimingDifference).
		Bool("truncated", run.Truncated).Uint64("seq", uint64(out.Seq)).Msg("reconciliation recorded")
	return reconcileReply(out.State.Run, out.Seq, false), nil
}

// maxRunBytes bounds a run's event, which its reply carries too: both must
// fit in one NATS message (1 MiB) with their envelopes.
const maxRunBytes = 900 << 10

// runBytes is the size of run's event or of its reply, whichever is larger.
func runBytes(run domain.ReconciliationCompleted) (int, error) {
	event, err := json.Marshal(run)
	if err != nil {
		return 0, err
	}
	reply, err := json.Marshal(reconcileReply(run, 0, false))
	if err != nil {
		return 0, err
	}
	return max(len(event), len(reply)), nil
}

// Reconciliation returns a recorded run; domain.ErrReconciliationNotFound
// for an ID that names none.
func (h *Deposits) Reconciliation(ctx context.Context, runID string) (api.ReconcileReply, error) {
	r, seq, err := h.runs.Get(ctx, runID)
	if err != nil {
		return api.ReconcileReply{}, err
	}
	if !r.Exists() {
		return api.ReconcileReply{}, domain.ErrReconciliationNotFound.With("", map[string]any{"run_id": runID})
	}
	return reconcileReply(r.Run, seq, false), nil
}

func reconcileReply(run domain.ReconciliationCompleted, seq eventstore.Seq, repeated bool) api.ReconcileReply {
	n := run.Counts.Findings()
	return api.ReconcileReply{ReconciliationCompleted: run, Findings: n, Clean: n == 0, Repeated: repeated, Written: written(seq)}
}

// PayoutLedger is where payout reconciliation reads the recorded payouts
// from: the read models (projections.Store, projections "payouts" and
// "payout_index").
type PayoutLedger interface {
	// Payout returns one payout; false if it is not recorded.
	Payout(id string) (api.PayoutView, bool, error)
	// PayoutsFinalIn returns the payouts settled or failed from from to to,
	// both inclusive.
	PayoutsFinalIn(from, to time.Time) ([]api.PayoutView, error)
	// PayoutsFinalRecordedAfter returns the payouts whose result a commit
	// after sequence after recorded.
	PayoutsFinalRecordedAfter(after eventstore.Seq) ([]api.PayoutView, error)
	// PayoutRunCovers and PayoutsNamed return what the payouts runs
	// recorded so far compared: their periods, and which of ids they
	// named.
	PayoutRunCovers() ([]domain.PayoutRunCover, error)
	PayoutsNamed(ids []string) (map[string]bool, error)
	CarriedLedger
}

// ReconcilePayouts compares a payout provider's report with the recorded
// payouts (domain.ReconcilePayouts says how) and records the result as the
// run's one event, like ReconcileBank.
func (h *Deposits) ReconcilePayouts(ctx context.Context, meta Meta, req api.ReconcilePayoutsRequest, ledger PayoutLedger, asOf eventstore.Seq) (api.ReconcileReply, error) {
	if err := req.Validate(); err != nil {
		return api.ReconcileReply{}, err
	}
	id := domain.NewReconciliationID(domain.ReconcileKindPayouts, req.FileSHA256)
	lines, err := linesSHA256(req.Lines)
	if err != nil {
		return api.ReconcileReply{}, err
	}
	if r, seq, err := h.runs.Get(ctx, string(id)); err != nil {
		return api.ReconcileReply{}, err
	} else if r.Exists() {
		return repeatedRun(r.Run, seq, runInput{lines: lines, period: req.Period})
	}
	in := domain.PayoutReconcileInput{RunID: id, FileSHA256: req.FileSHA256, Lines: req.Lines, Period: req.Period, LedgerAsOfSeq: uint64(asOf), Now: h.Now()}
	if len(req.Later) > 0 {
		in.Later = map[string]bool{}
		for _, payout := range req.Later {
			in.Later[payout] = true
		}
	}
	add := func(v api.PayoutView) error {
		p := domain.RecordedPayout{PayoutID: v.PayoutID, Status: domain.PayoutStatus(v.Status), Amount: v.Amount, Fee: v.Fee,
			NeverTaken: domain.PayoutNeverTaken(domain.PayoutStatus(v.Status), v.Failure)}
		if p.Status != domain.PayoutRequestedStatus {
			at, err := time.Parse(time.RFC3339Nano, v.UpdatedAt)
			if err != nil {
				return fmt.Errorf("payout %s: updated_at %q: %w", v.PayoutID, v.UpdatedAt, err)
			}
			p.FinalAt, p.FinalSeq = at.UTC(), uint64(v.Seq)
		}
		in.Recorded = append(in.Recorded, p)
		return nil
	}
	carry, err := ledger.Carry(domain.ReconcileKindPayouts, "")
	if err != nil {
		return api.ReconcileReply{}, fmt.Errorf("read the timing differences carried: %w", err)
	}
	carried := carry.Items
	in.Carried, in.CarryBase, in.Unrecorded = carried, carry.Base, carry.Unrecorded
	ids := make([]string, 0, len(req.Lines)+len(carried)+len(carry.Unrecorded))
	for _, l := range req.Lines {
		ids = append(ids, l.PayoutID)
	}
	for _, c := range slices.Concat(carried, carry.Unrecorded) {
		ids = append(ids, c.PayoutID)
	}
	for _, id := range ids {
		v, ok, err := ledger.Payout(id)
		if err != nil {
			return api.ReconcileReply{}, fmt.Errorf("read payout %s: %w", id, err)
		}
		if ok {
			if err := add(v); err != nil {
				return api.ReconcileReply{}, err
			}
		}
	}
	if in.Earlier.Covers, err = ledger.PayoutRunCovers(); err != nil {
		return api.ReconcileReply{}, fmt.Errorf("read what earlier payouts runs compared: %w", err)
	}
	// The payouts of the period, and those before it that no earlier run
	// read (domain.EarlierPayoutRuns.unread).
	period := domain.ReportPeriod(req.Lines, req.Period)
	final, err := ledger.PayoutsFinalIn(period.From, period.To.Add(domain.ReconcileTimingWindow))
	if err != nil {
		return api.ReconcileReply{}, fmt.Errorf("read payouts of the period: %w", err)
	}
	if len(in.Earlier.Covers) > 0 {
		_, to, lastRead := in.Earlier.Span()
		late, err := ledger.PayoutsFinalRecordedAfter(eventstore.Seq(lastRead))
		if err != nil {
			return api.ReconcileReply{}, fmt.Errorf("read payouts recorded since the last run: %w", err)
		}
		final = append(final, late...)
		if gapFrom := to.Add(domain.ReconcileTimingWindow); gapFrom.Before(period.From) {
			gap, err := ledger.PayoutsFinalIn(gapFrom, period.From)
			if err != nil {
				return api.ReconcileReply{}, fmt.Errorf("read payouts between the last period and this one: %w", err)
			}
			final = append(final, gap...)
		}
	}
	ids = ids[:0]
	for _, v := range final {
		if err := add(v); err != nil {
			return api.ReconcileReply{}, err
		}
		ids = append(ids, v.PayoutID)
	}
	if in.Earlier.Named, err = ledger.PayoutsNamed(ids); err != nil {
		return api.ReconcileReply{}, fmt.Errorf("read what earlier payouts runs compared: %w", err)
	}
	run := domain.ReconcilePayouts(in)
	run.LinesSHA256 = lines
	return h.recordRun(ctx, meta, id, run)
}
