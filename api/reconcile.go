package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bankbook/bankbook/domain"
)

// Reconciliation (API.md "Audit and reconciliation"): a bank statement
// compared with the recorded deposits. Each run is an aggregate of type
// "reconciliation" whose one event, reconcile.completed, is its result; the
// run's ID derives from the input file's SHA-256, so the same file is the
// same run and running it again answers the recorded result.

// CodeReconciliationNotFound (404): bankbook.q.reconcile.get of a run_id
// that names no run; details run_id.
const CodeReconciliationNotFound = "reconciliation_not_found"

// MaxReconcileLines bounds the lines of one statement (the body is also
// bounded, to 768 KiB).
const MaxReconcileLines = 10000

// StatementLine is one transaction of a bank statement: the columns of the
// CSV dialect of `bankbook deposit import`.
type StatementLine = domain.StatementLine

// ReconcileBankRequest is the body of bankbook.cmd.reconcile.bank: the
// statement's transactions in file order (a bank_txn_id may repeat: that
// is a duplicate finding) and the SHA-256 of the file they were read from,
// which identifies the run.
type ReconcileBankRequest struct {
	FileSHA256 string          `json:"file_sha256"`
	Lines      []StatementLine `json:"lines"`
	// Period, when given, is the time the statement covers, both ends
	// inclusive: every account it covers is compared over all of it, not
	// only from its first to its last line (a statement of a day, which
	// vouches for the hours before its first transfer and after its
	// last). Every line must be in it.
	Period *ReconcilePeriod `json:"period,omitempty"`
	// Accounts, with a period, are accounts the statement covers besides
	// those of its lines: accounts it shows no transfer to in the period,
	// whose deposits recorded in it are then missing at the bank.
	Accounts []string `json:"accounts,omitempty"`
}

// ReconcilePeriod is a period, both ends inclusive.
type ReconcilePeriod = domain.ReconcilePeriod

// Validate checks the request: file_sha256 is 64 lower-case hex digits;
// 1 to MaxReconcileLines lines, each as bankbook.cmd.deposit.record checks
// a transaction (details.field names the line: "lines[3].amount").
func (r ReconcileBankRequest) Validate() error {
	if err := validateSHA256("file_sha256", r.FileSHA256); err != nil {
		return err
	}
	if len(r.Lines) == 0 || len(r.Lines) > MaxReconcileLines {
		return invalid("lines", "must hold 1 to %d transactions, got %d", MaxReconcileLines, len(r.Lines))
	}
	for i, l := range r.Lines {
		err := RecordDepositRequest{BankTxnID: l.BankTxnID, AccountNumber: l.AccountNumber, DepositorName: l.DepositorName,
			Amount: l.Amount, DepositedAt: l.DepositedAt}.Validate()
		var de *domain.Error
		if errors.As(err, &de) {
			field, _ := de.Details["field"].(string)
			msg := strings.TrimPrefix(de.Message, field+": ")
			if field == "" {
				field = "amount" // domain.NewMoney's refusals name no field
			}
			return invalid(fmt.Sprintf("lines[%d].%s", i, field), "%s", msg)
		}
		if err != nil {
			return invalid(fmt.Sprintf("lines[%d]", i), "%v", err)
		}
	}
	if p := r.Period; p != nil {
		if err := validatePeriod(*p, len(r.Lines), func(i int) (time.Time, string) {
			return r.Lines[i].DepositedAt, fmt.Sprintf("lines[%d].deposited_at", i)
		}); err != nil {
			return err
		}
	} else if len(r.Accounts) > 0 {
		return invalid("accounts", "need a period")
	}
	if len(r.Accounts) > MaxReconcileLines {
		return invalid("accounts", "must hold at most %d accounts, got %d", MaxReconcileLines, len(r.Accounts))
	}
	for i, a := range r.Accounts {
		if err := domain.ValidateAccountNumber(fmt.Sprintf("accounts[%d]", i), a); err != nil {
			return err
		}
	}
	return nil
}

// Canonical writes every time in UTC.
func (r ReconcileBankRequest) Canonical() ReconcileBankRequest {
	lines := make([]StatementLine, len(r.Lines))
	for i, l := range r.Lines {
		l.DepositedAt = l.DepositedAt.UTC()
		lines[i] = l
	}
	r.Lines = lines
	if p := r.Period; p != nil {
		r.Period = &ReconcilePeriod{From: p.From.UTC(), To: p.To.UTC()}
	}
	return r
}

// validatePeriod checks a run's period and that each of its n lines'
// times (at) is in it.
func validatePeriod(p ReconcilePeriod, n int, at func(i int) (time.Time, string)) error {
	// A bank time, as a line's: the runs compare from the latest end of
	// a period they covered (an account's gap_from, the payouts runs'
	// span), so one in the far future would hide every later gap.
	now := time.Now()
	if err := domain.ValidateBankTime("period.from", p.From, now); err != nil {
		return err
	}
	if err := domain.ValidateBankTime("period.to", p.To, now); err != nil {
		return err
	}
	if p.To.Before(p.From) {
		return invalid("period", "must have a from and a to, from not after to")
	}
	for i := range n {
		if t, field := at(i); t.Before(p.From) || t.After(p.To) {
			return invalid(field, "is outside the period")
		}
	}
	return nil
}

func validateSHA256(field, s string) error {
	if len(s) != 64 {
		return invalid(field, "must be the SHA-256 of the file: 64 lower-case hex digits")
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return invalid(field, "must be the SHA-256 of the file: 64 lower-case hex digits")
		}
	}
	return nil
}

// ReconcileItem is one item of a run (domain.ReconcileItem).
type ReconcileItem = domain.ReconcileItem

// ReconcileReply is the reply of bankbook.cmd.reconcile.bank and
// bankbook.q.reconcile.get: the run as recorded — run_id, kind,
// file_sha256, accounts (each with its period), lines, ledger_as_of_seq,
// counts, one list per category (matched, missing_in_ledger,
// missing_at_bank, amount_mismatch, duplicate, timing_difference),
// truncated, completed_at — and whether it is clean.
type ReconcileReply struct {
	domain.ReconciliationCompleted
	// Findings counts the items that need an operator (every category but
	// matched and timing_difference); Clean is Findings == 0.
	Findings int  `json:"findings"`
	Clean    bool `json:"clean"`
	// Repeated: the run had been recorded before (the same file again);
	// this is that run, and nothing was written.
	Repeated bool `json:"repeated"`
	Written
}

// MarshalJSON writes the reply with every time in domain.TimeLayout, as
// API.md writes every time (fractional seconds always). The run's domain
// types carry time.Time, which encoding/json writes with as few fractional
// digits as the value needs, none for a whole second; the recorded event
// keeps that form, the reply does not.
func (r ReconcileReply) MarshalJSON() ([]byte, error) {
	out := reconcileReplyJSON{
		plainReconcileReply: plainReconcileReply(r),
		Accounts:            mapSlice(r.Accounts, newReconcileAccountJSON),
		CompletedAt:         domain.FormatTime(r.CompletedAt),
		Matched:             mapSlice(r.Matched, newReconcileItemJSON),
		MissingInLedger:     mapSlice(r.MissingInLedger, newReconcileItemJSON),
		MissingAtBank:       mapSlice(r.MissingAtBank, newReconcileItemJSON),
		AmountMismatch:      mapSlice(r.AmountMismatch, newReconcileItemJSON),
		Duplicate:           mapSlice(r.Duplicate, newReconcileItemJSON),
		TimingDifference:    mapSlice(r.TimingDifference, newReconcileItemJSON),
	}
	if p := r.Period; p != nil {
		out.Period = &reconcilePeriodJSON{From: domain.FormatTime(p.From), To: domain.FormatTime(p.To)}
	}
	return json.Marshal(out)
}

// plainReconcileReply is ReconcileReply without its MarshalJSON. The fields
// of reconcileReplyJSON and of the types below, each at a shallower depth
// than the field of the same JSON name it replaces, hide that field.
type plainReconcileReply ReconcileReply

type reconcileReplyJSON struct {
	plainReconcileReply
	Accounts         []reconcileAccountJSON `json:"accounts"`
	Period           *reconcilePeriodJSON   `json:"period,omitempty"`
	Matched          []reconcileItemJSON    `json:"matched"`
	MissingInLedger  []reconcileItemJSON    `json:"missing_in_ledger"`
	MissingAtBank    []reconcileItemJSON    `json:"missing_at_bank"`
	AmountMismatch   []reconcileItemJSON    `json:"amount_mismatch"`
	Duplicate        []reconcileItemJSON    `json:"duplicate"`
	TimingDifference []reconcileItemJSON    `json:"timing_difference"`
	CompletedAt      string                 `json:"completed_at"`
}

type reconcilePeriodJSON struct {
	From string `json:"from"`
	To   string `json:"to"`
}

type reconcileAccountJSON struct {
	domain.ReconcileAccount
	From          string  `json:"from"`
	To            string  `json:"to"`
	ScanWatermark *string `json:"scan_watermark,omitempty"`
	GapFrom       *string `json:"gap_from,omitempty"`
}

func newReconcileAccountJSON(a domain.ReconcileAccount) reconcileAccountJSON {
	return reconcileAccountJSON{ReconcileAccount: a, From: domain.FormatTime(a.From), To: domain.FormatTime(a.To),
		ScanWatermark: formatTimePtr(a.ScanWatermark), GapFrom: formatTimePtr(a.GapFrom)}
}

type reconcileItemJSON struct {
	domain.ReconcileItem
	At string `json:"at"`
}

func newReconcileItemJSON(it domain.ReconcileItem) reconcileItemJSON {
	return reconcileItemJSON{ReconcileItem: it, At: domain.FormatTime(it.At)}
}

func formatTimePtr(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := domain.FormatTime(*t)
	return &s
}

// mapSlice maps every element of in with f; nil stays nil.
func mapSlice[T, U any](in []T, f func(T) U) []U {
	if in == nil {
		return nil
	}
	out := make([]U, len(in))
	for i, v := range in {
		out[i] = f(v)
	}
	return out
}

// ReconcileGetRequest is the body of bankbook.q.reconcile.get.
type ReconcileGetRequest struct {
	RunID string `json:"run_id"`
	ReadAfter
}

// Validate checks the request.
func (q ReconcileGetRequest) Validate() error {
	return domain.ValidateReconciliationID("run_id", q.RunID)
}

// PayoutReportLine is one line of a payout provider's report.
type PayoutReportLine = domain.PayoutReportLine

// ReconcilePayoutsRequest is the body of bankbook.cmd.reconcile.payouts:
// the provider's report lines in file order (a payout_id may repeat: that
// is a duplicate finding) and the SHA-256 of the file, which identifies the
// run.
type ReconcilePayoutsRequest struct {
	FileSHA256 string             `json:"file_sha256"`
	Lines      []PayoutReportLine `json:"lines"`
	// Period, when given, is the time the report covers, both ends
	// inclusive (the provider's report of a day), rather than its first
	// to its last settled_at: the payouts recorded final in all of it are
	// compared. Every line's settled_at must be in it.
	Period *ReconcilePeriod `json:"period,omitempty"`
	// Later, in the engine only (never on the wire), are the payout_ids
	// of the same report's later parts, which their own runs compare: the
	// nightly run of a day of more than MaxReconcileLines payouts.
	Later []string `json:"-"`
}

// Validate checks the request: file_sha256 is 64 lower-case hex digits;
// 1 to MaxReconcileLines lines, each with a payout_id (an ID), status
// settled or failed, 0 < amount ≤ domain.MaxAmount, 0 ≤ fee ≤
// domain.MaxAmount, and a plausible settled_at (details.field names the
// line: "lines[3].fee").
func (r ReconcilePayoutsRequest) Validate() error {
	if err := validateSHA256("file_sha256", r.FileSHA256); err != nil {
		return err
	}
	if len(r.Lines) == 0 || len(r.Lines) > MaxReconcileLines {
		return invalid("lines", "must hold 1 to %d payouts, got %d", MaxReconcileLines, len(r.Lines))
	}
	now := time.Now()
	for i, l := range r.Lines {
		if p := PayoutLineProblems(l, func(name string) string { return fmt.Sprintf("lines[%d].%s", i, name) }, now); len(p) > 0 {
			return p[0]
		}
	}
	if p := r.Period; p != nil {
		return validatePeriod(*p, len(r.Lines), func(i int) (time.Time, string) {
			return r.Lines[i].SettledAt, fmt.Sprintf("lines[%d].settled_at", i)
		})
	}
	return nil
}

// PayoutLineProblems returns every problem of one report line, in column
// order, each naming its field as field(name) does; now bounds settled_at.
func PayoutLineProblems(l PayoutReportLine, field func(name string) string, now time.Time) []error {
	var errs []error
	if err := domain.ValidateID(field("payout_id"), l.PayoutID); err != nil {
		errs = append(errs, err)
	}
	if l.Status != string(domain.PayoutSettledStatus) && l.Status != string(domain.PayoutFailedStatus) {
		errs = append(errs, invalid(field("status"), "must be settled or failed"))
	}
	if l.Amount <= 0 || l.Amount > domain.MaxAmount {
		errs = append(errs, invalid(field("amount"), "must be 1 to %d", domain.MaxAmount))
	}
	if l.Fee < 0 || l.Fee > domain.MaxAmount {
		errs = append(errs, invalid(field("fee"), "must be 0 to %d", domain.MaxAmount))
	}
	if err := domain.ValidateBankTime(field("settled_at"), l.SettledAt, now); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// Canonical writes every time in UTC.
func (r ReconcilePayoutsRequest) Canonical() ReconcilePayoutsRequest {
	lines := make([]PayoutReportLine, len(r.Lines))
	for i, l := range r.Lines {
		l.SettledAt = l.SettledAt.UTC()
		lines[i] = l
	}
	r.Lines = lines
	if p := r.Period; p != nil {
		r.Period = &ReconcilePeriod{From: p.From.UTC(), To: p.To.UTC()}
	}
	return r
}
