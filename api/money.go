package api

import (
	"strings"
	"time"

	"github.com/bankbook/bankbook/domain"
)

// RecordDepositRequest is the body of bankbook.cmd.deposit.record: one bank
// transaction as the bank reported it.
type RecordDepositRequest struct {
	BankTxnID     string    `json:"bank_txn_id"`
	AccountNumber string    `json:"account_number"`
	DepositorName string    `json:"depositor_name"`
	Amount        int64     `json:"amount"`
	Currency      string    `json:"currency,omitempty"`
	DepositedAt   time.Time `json:"deposited_at"`
}

// Validate checks the request fields. deposited_at must lie in the window
// of domain.ValidateBankTime (from 2000 to a few minutes ahead of now).
func (r RecordDepositRequest) Validate() error {
	switch {
	case r.BankTxnID == "" || len(r.BankTxnID) > 128:
		return domain.Invalid("bank_txn_id", "must be 1-128 characters")
	case !printableASCII(r.BankTxnID):
		return domain.Invalid("bank_txn_id", "must be printable ASCII without spaces")
	}
	if err := domain.ValidateAccountNumber("account_number", r.AccountNumber); err != nil {
		return err
	}
	if err := domain.ValidateName("depositor_name", r.DepositorName); err != nil {
		return err
	}
	if _, err := domain.NewMoney(r.Amount, r.Currency); err != nil {
		return err
	}
	return domain.ValidateBankTime("deposited_at", r.DepositedAt, time.Now())
}

// Canonical returns the request as the engine compares and executes it:
// deposited_at in UTC. The account number stays as the bank wrote it (the
// event records it so).
func (r RecordDepositRequest) Canonical() RecordDepositRequest {
	r.DepositedAt = r.DepositedAt.UTC()
	r.Currency = defaultCurrency(r.Currency)
	return r
}

// KeyForm is the canonical request as an Idempotency-Key compares it: the
// account number normalised, as the deposit's ID takes it, so that a
// repeat that groups its digits otherwise is the same transaction.
func (r RecordDepositRequest) KeyForm() RecordDepositRequest {
	r.AccountNumber = domain.NormalizeAccountNumber(r.AccountNumber)
	return r
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// RecordDepositReply is the reply of bankbook.cmd.deposit.record.
type RecordDepositReply struct {
	DepositID string                `json:"deposit_id"`
	Outcome   domain.DepositOutcome `json:"outcome"`
	OrderID   string                `json:"order_id,omitempty"`
	UserID    string                `json:"user_id,omitempty"`
	Reason    domain.OrphanReason   `json:"reason,omitempty"`
	// BillID is the bill a store payment went to (outcome store_payment;
	// absent for an unbilled payment).
	BillID string `json:"bill_id,omitempty"`
	Written
}

// ScanCompleteRequest is the body of bankbook.cmd.deposit.scan_complete: an
// external bank feed reports that every transaction deposited on the account
// before CompleteUpTo has been recorded.
type ScanCompleteRequest struct {
	AccountNumber string    `json:"account_number"`
	CompleteUpTo  time.Time `json:"complete_up_to"`
}

// Validate checks the request: complete_up_to must lie in the window of
// domain.ValidateBankTime (the handler then refuses any time after now).
func (r ScanCompleteRequest) Validate() error {
	if err := domain.ValidateAccountNumber("account_number", r.AccountNumber); err != nil {
		return err
	}
	return domain.ValidateBankTime("complete_up_to", r.CompleteUpTo, time.Now())
}

// Canonical returns the request with complete_up_to in UTC.
func (r ScanCompleteRequest) Canonical() ScanCompleteRequest {
	r.CompleteUpTo = r.CompleteUpTo.UTC()
	return r
}

// ScanCompleteReply is the reply of bankbook.cmd.deposit.scan_complete. It
// writes the scan watermark, not the event stream: its Seq is 0.
type ScanCompleteReply struct {
	AccountNumber string `json:"account_number"`
	Watermark     string `json:"watermark"`
	Written
}

// ResolveDepositRequest is the body of bankbook.cmd.deposit.resolve.
type ResolveDepositRequest struct {
	DepositID   string              `json:"deposit_id"`
	Action      string              `json:"action"`
	OrderID     string              `json:"order_id,omitempty"`
	UserID      string              `json:"user_id,omitempty"`
	BankAccount *domain.BankAccount `json:"bank_account,omitempty"`
	// PayoutID is planned by the engine for refund_to_bank; never sent.
	PayoutID string `json:"-"`
}

// Validate checks the request: the action's own target is required and
// valid, and the targets of other actions are refused (a request says one
// thing). The bank account must be canonical (see Canonical).
func (r ResolveDepositRequest) Validate() error {
	if err := domain.ValidateID("deposit_id", r.DepositID); err != nil {
		return err
	}
	present := map[string]bool{"order_id": r.OrderID != "", "user_id": r.UserID != "", "bank_account": r.BankAccount != nil}
	var target string
	switch r.Action {
	case domain.ResolveAssignOrder:
		target = "order_id"
	case domain.ResolveRefundToWallet:
		target = "user_id"
	case domain.ResolveRefundToBank:
		target = "bank_account"
	default:
		return domain.Invalid("action", "must be assign_order, refund_to_wallet or refund_to_bank")
	}
	for _, field := range []string{"order_id", "user_id", "bank_account"} {
		if field != target && present[field] {
			return domain.Invalid(field, "is not used by %s (send only %s)", r.Action, target)
		}
	}
	if !present[target] {
		return domain.Invalid(target, "is required for %s", r.Action)
	}
	switch target {
	case "order_id":
		return domain.ValidateID("order_id", r.OrderID)
	case "user_id":
		return domain.ValidateID("user_id", r.UserID)
	}
	return domain.ValidateBankAccount("bank_account", *r.BankAccount)
}

// Canonical returns the request as the engine compares and executes it:
// the bank account in domain.CanonicalBankAccount form.
func (r ResolveDepositRequest) Canonical() ResolveDepositRequest {
	if r.BankAccount != nil {
		a := domain.CanonicalBankAccount(*r.BankAccount)
		r.BankAccount = &a
	}
	return r
}

// ResolveDepositReply is the reply of bankbook.cmd.deposit.resolve.
type ResolveDepositReply struct {
	DepositID string `json:"deposit_id"`
	Outcome   string `json:"outcome"`
	OrderID   string `json:"order_id,omitempty"`
	UserID    string `json:"user_id,omitempty"`
	PayoutID  string `json:"payout_id,omitempty"`
	Written
}

// WalletRequest is the body of bankbook.q.wallet.get: a user's balance and
// one page of its movements, oldest first.
type WalletRequest struct {
	UserID string `json:"user_id"`
	PageRequest
}

// Validate checks the request.
func (q WalletRequest) Validate() error {
	if err := domain.ValidateID("user_id", q.UserID); err != nil {
		return err
	}
	return q.PageRequest.Validate()
}

// WithdrawRequest is the body of bankbook.cmd.wallet.withdraw.
type WithdrawRequest struct {
	UserID      string             `json:"user_id"`
	Amount      int64              `json:"amount"`
	Currency    string             `json:"currency,omitempty"`
	BankAccount domain.BankAccount `json:"bank_account"`
	// PayoutID is planned by the engine; never sent.
	PayoutID string `json:"-"`
}

// Validate checks the request. The bank account must be canonical (see
// Canonical): what firm banking accepts.
func (r WithdrawRequest) Validate() error {
	if err := domain.ValidateID("user_id", r.UserID); err != nil {
		return err
	}
	if _, err := domain.NewMoney(r.Amount, r.Currency); err != nil {
		return err
	}
	return domain.ValidateBankAccount("bank_account", r.BankAccount)
}

// Canonical returns the request as the engine compares and executes it:
// the bank account in domain.CanonicalBankAccount form.
func (r WithdrawRequest) Canonical() WithdrawRequest {
	r.BankAccount = domain.CanonicalBankAccount(r.BankAccount)
	r.Currency = defaultCurrency(r.Currency)
	return r
}

// WithdrawReply is the reply of bankbook.cmd.wallet.withdraw.
type WithdrawReply struct {
	PayoutID string `json:"payout_id"`
	Status   string `json:"status"`
	Written
}

// DepositRequest is the body of bankbook.q.deposit.get.
type DepositRequest struct {
	DepositID string `json:"deposit_id"`
	ReadAfter
}

// Validate checks the request.
func (q DepositRequest) Validate() error { return domain.ValidateID("deposit_id", q.DepositID) }

// PayoutRequest is the body of bankbook.q.payout.get.
type PayoutRequest struct {
	PayoutID string `json:"payout_id"`
	ReadAfter
}

// Validate checks the request.
func (q PayoutRequest) Validate() error { return domain.ValidateID("payout_id", q.PayoutID) }

// ResolvePayoutRequest is the body of bankbook.cmd.payout.resolve: an
// operator's record of the final result of a payout whose work the payouts
// part could not finish (dead-lettered), as the provider reports it.
type ResolvePayoutRequest struct {
	PayoutID string `json:"payout_id"`
	// Outcome is "settled" (the money was sent) or "failed" (it was not:
	// it goes back to its source).
	Outcome string `json:"outcome"`
	// Fee and ProviderRef are the provider's, for a settled payout only.
	Fee         int64  `json:"fee,omitempty"`
	ProviderRef string `json:"provider_ref,omitempty"`
	// Reason says how the operator knows (required).
	Reason string `json:"reason"`
	// Force records the result without the engine's checks (a dead letter
	// of the payout's work, the provider's agreement): for a provider gone
	// for good, a payout it keeps pending, or no provider at all. The
	// operator answers for it; the failure's reason says it was forced.
	Force bool `json:"force,omitempty"`
}

// MaxProviderRefLength is the longest provider reference a resolve takes.
const MaxProviderRefLength = 64

// Validate checks the request.
func (r ResolvePayoutRequest) Validate() error {
	if err := domain.ValidateID("payout_id", r.PayoutID); err != nil {
		return err
	}
	switch domain.PayoutStatus(r.Outcome) {
	case domain.PayoutSettledStatus:
		if r.Fee < 0 || r.Fee > domain.MaxAmount {
			return invalid("fee", "must be between 0 and %d", domain.MaxAmount)
		}
		if len(r.ProviderRef) > MaxProviderRefLength || !printableASCII(r.ProviderRef) {
			return invalid("provider_ref", "must be at most %d printable ASCII characters", MaxProviderRefLength)
		}
	case domain.PayoutFailedStatus:
		if r.Fee != 0 || r.ProviderRef != "" {
			return invalid("outcome", "a failed payout takes no fee or provider_ref")
		}
	default:
		return invalid("outcome", "must be settled or failed")
	}
	if strings.TrimSpace(r.Reason) == "" {
		return invalid("reason", "is required: how the provider's result is known")
	}
	return domain.ValidateReason(r.Reason)
}

// Canonical removes the reason's surrounding white space, as the result
// records it.
func (r ResolvePayoutRequest) Canonical() ResolvePayoutRequest {
	r.Reason = strings.TrimSpace(r.Reason)
	return r
}

// ResolvePayoutReply is the reply of bankbook.cmd.payout.resolve: the
// payout's status after it.
type ResolvePayoutReply struct {
	PayoutID string `json:"payout_id"`
	Status   string `json:"status"`
	Written
}

// TrialBalanceRequest is the body of bankbook.q.ledger.trial_balance ({} or
// empty for the first page).
type TrialBalanceRequest struct {
	// Limit caps the accounts of one page: 1 to MaxTrialBalancePage, 0 or
	// absent for MaxTrialBalancePage (one wallet account per user makes the
	// list grow with the users; a page always fits a NATS message).
	Limit  int    `json:"limit,omitempty"`
	Cursor string `json:"cursor,omitempty"`
	ReadAfter
}

// MaxTrialBalancePage is the largest (and the default) trial-balance page.
const MaxTrialBalancePage = 5000

// Validate checks the request.
func (q TrialBalanceRequest) Validate() error {
	if q.Limit < 0 || q.Limit > MaxTrialBalancePage {
		return invalid("limit", "must be between 1 and %d (0 or absent: %d)", MaxTrialBalancePage, MaxTrialBalancePage)
	}
	return validateCursor(q.Cursor)
}

// PageLimit is Limit with the default applied.
func (q TrialBalanceRequest) PageLimit() int {
	if q.Limit == 0 {
		return MaxTrialBalancePage
	}
	return q.Limit
}

// TrialBalanceReply is the reply of bankbook.q.ledger.trial_balance: one
// page of accounts in name order; Total is the sum over every account.
type TrialBalanceReply struct {
	Accounts   []AccountBalance `json:"accounts"`
	Total      int64            `json:"total"`
	AsOfSeq    Seq              `json:"as_of_seq"`
	NextCursor string           `json:"next_cursor,omitempty"`
}

// LedgerAccountRequest is the body of bankbook.q.ledger.account.
type LedgerAccountRequest struct {
	Account string `json:"account"`
	PageRequest
}

// Validate checks the request.
func (q LedgerAccountRequest) Validate() error {
	if err := domain.ValidateLedgerAccount("account", q.Account); err != nil {
		return err
	}
	return q.PageRequest.Validate()
}

// LedgerAccountReply is the reply of bankbook.q.ledger.account.
type LedgerAccountReply struct {
	Account    string        `json:"account"`
	Balance    int64         `json:"balance"`
	Entries    []LedgerEntry `json:"entries"`
	NextCursor string        `json:"next_cursor,omitempty"`
}

// ProjectionStatusRequest is the body of bankbook.q.projection.status.
type ProjectionStatusRequest struct {
	// Hash asks for the read models' content hash (reads every record).
	Hash bool `json:"hash,omitempty"`
	// LockID, with Hash, asks only the instance whose lock_id it is for
	// the hash: another instance answers without one, at no cost, so a
	// tool that asks until that instance answers makes no other hash its
	// read models.
	LockID string `json:"lock_id,omitempty"`
	ReadAfter
}

// maxLockID bounds a request's lock_id (an instance's is 26 characters).
const maxLockID = 64

// Validate checks lock_id: letters and digits, at most 64.
func (r ProjectionStatusRequest) Validate() error {
	if len(r.LockID) > maxLockID {
		return invalid("lock_id", "must be at most %d characters", maxLockID)
	}
	for _, c := range r.LockID {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return invalid("lock_id", "must be letters and digits")
		}
	}
	return nil
}

// ProjectionStatusReply is the reply of bankbook.q.projection.status.
type ProjectionStatusReply struct {
	Checkpoint    Seq    `json:"checkpoint"`
	StreamLastSeq Seq    `json:"stream_last_seq"`
	Lag           uint64 `json:"lag"`
	Hash          string `json:"hash,omitempty"`
	HashAtSeq     Seq    `json:"hash_at_seq,omitempty"`
	// BlockedAt is the commit the read models cannot apply, which holds
	// them at Checkpoint until an operator acts; Blocked says why.
	BlockedAt Seq    `json:"blocked_at,omitempty"`
	Blocked   string `json:"blocked,omitempty"`
	// LockID is the ID of the engine's lock on its data directory, as its
	// LOCK file says (datadir.Holder): a tool that finds a data directory
	// held can tell whether this engine is the one holding it.
	LockID string `json:"lock_id,omitempty"`
	// ProjectionVersions is the version of each of the engine's
	// projections, by name: a content hash compares only with one of read
	// models of the same versions.
	ProjectionVersions map[string]int `json:"projection_versions,omitempty"`
}

// SimTransferRequest is the body of bankbook.sim.bank.transfer.
type SimTransferRequest struct {
	DepositorName string `json:"depositor_name"`
	Amount        int64  `json:"amount"`
	Currency      string `json:"currency,omitempty"`
	// AccountNumber defaults to the collection account.
	AccountNumber string `json:"account_number,omitempty"`
}

// Validate checks the request.
func (q SimTransferRequest) Validate() error {
	if err := domain.ValidateName("depositor_name", q.DepositorName); err != nil {
		return err
	}
	if _, err := domain.NewMoney(q.Amount, q.Currency); err != nil {
		return err
	}
	if q.AccountNumber != "" {
		return domain.ValidateAccountNumber("account_number", q.AccountNumber)
	}
	return nil
}

// SimTransferReply is the reply of bankbook.sim.bank.transfer.
type SimTransferReply struct {
	BankTxnID   string `json:"bank_txn_id"`
	DepositedAt string `json:"deposited_at"`
	// Scanned says whether the engine's bank scan covers the account (the
	// collection account and its dedicated sub-accounts): a transfer to
	// any other account is never seen.
	Scanned bool `json:"scanned"`
}
