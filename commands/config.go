package commands

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/bankbook/bankbook/domain"
)

// MaxTimerSpan is the furthest ahead of its arming that a command's timer
// may fall due: the payment deadline, and the cancel window with the name
// grace after it. Timers are schedules in the timers stream, whose
// messages age out after 90 days (timers.Config.MaxAge): one armed further
// out would never fire.
const MaxTimerSpan = 30 * 24 * time.Hour

// Config configures the command handlers. Zero values mean defaults.
type Config struct {
	// CollectAccount is the account buyers transfer to. Required.
	CollectAccount domain.BankAccount
	// CancelWindow is how long after submit a reserved cancellation becomes
	// final (the scan window). Default 5m.
	CancelWindow time.Duration
	// DepositorNameMax is the longest depositor name handed out, in
	// characters, suffix included; banks truncate longer ones. Default 10.
	DepositorNameMax int
	// ConflictRetries is how often a command reloads and decides again after
	// a concurrent change by another instance (the commands of one instance
	// on one aggregate take turns, so they do not conflict), with a growing,
	// jittered pause between attempts. Default 8.
	ConflictRetries int
	// Snapshots stores aggregate snapshots (snapshots.Store); nil: none,
	// and a cold load reads every commit of the aggregate.
	Snapshots Snapshots
	// SnapshotEvery is after how many commits a repository stores an
	// aggregate's state again: commits it read or appended since the last
	// snapshot it stored or loaded. Default 100.
	SnapshotEvery int
	// NameGrace is how long a closed (cancelled or paid) order keeps its
	// depositor name: a deposit under it within the grace is refunded to the
	// buyer's wallet instead of becoming an orphan, and no new order gets the
	// name. 0 frees names at once (bankbook serve's default is 24h).
	NameGrace time.Duration
	// PaymentDeadline is how long after submission an order waits for its
	// deposit: an order still awaiting it then expires (once the bank scan
	// has covered the deadline) and its depositor name is freed after the
	// name grace. Recorded on each order at submit. Default 24h.
	PaymentDeadline time.Duration
	// MaxUnpaidOrders is how many unpaid orders one buyer may hold
	// (domain.Order.HoldsUnpaidName: open, or cancelled or expired unpaid
	// within the name grace); a submit beyond it is refused with
	// domain.ErrTooManyUnpaidOrders. It keeps one buyer from using up the
	// depositor names of a buyer name. Default 20.
	MaxUnpaidOrders int
	// MinWithdrawal is the smallest amount a wallet withdrawal may move
	// (each payout costs a firm-banking fee); a smaller one is refused with
	// invalid_input. 0: any amount.
	MinWithdrawal int64
	// NameProbes is how many of a buyer name's 1000 depositor names a
	// submit tries before it is refused with
	// domain.ErrDepositorNamesExhausted, which bounds what a refused submit
	// costs. Default 64: a submit is refused only when about 90 % of the
	// names are held (0.9^64 ≈ 0.1 %). 1000 tries every name.
	NameProbes int
	// FinaliseRetry is how long a due cancellation or expiry waits for the
	// bank scan before it looks again. Default 30s.
	FinaliseRetry time.Duration
	// OrphanReservationAge is how long a depositor-name reservation whose
	// order never appeared is respected before another order may take the
	// name (the submit that made it failed). Default 1m.
	OrphanReservationAge time.Duration
	// StoreFeeBps is the platform fee on a store payment, in basis points
	// of its amount (0–10000, rounded down). Recorded on each payment.
	StoreFeeBps int
	// SettlementDays is after how many business days a store payment is
	// settled to its distributor (D+N, Asia/Seoul, weekends and
	// SettlementHolidays skipped). Recorded on each payment.
	SettlementDays int
	// SettlementHolidays are the weekdays that are no business days for
	// settlement dates (domain.SettlementDate). The zero value: none.
	SettlementHolidays domain.Holidays
	// CacheSize is how many aggregates of each type keep their latest
	// state in memory. Default 100000.
	CacheSize int
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// NewID makes IDs. Default UUIDv7 strings.
	NewID func() string
	// BeforeAppend, when set (group commit), is waited for right before
	// each append: what the command wrote before it (a key's claim, a
	// name, a timer) and what it read must be durable before the commit
	// that relies on them is written (groupcommit.Syncer.WaitDirty).
	BeforeAppend func(context.Context) error
}

func (c *Config) setDefaults() {
	if c.CancelWindow == 0 {
		c.CancelWindow = 5 * time.Minute
	}
	if c.DepositorNameMax == 0 {
		c.DepositorNameMax = 10
	}
	if c.ConflictRetries == 0 {
		c.ConflictRetries = 8
	}
	if c.SnapshotEvery == 0 {
		c.SnapshotEvery = 100
	}
	if c.NameGrace < 0 {
		c.NameGrace = 0
	}
	if c.PaymentDeadline == 0 {
		c.PaymentDeadline = 24 * time.Hour
	}
	if c.MaxUnpaidOrders == 0 {
		c.MaxUnpaidOrders = 20
	}
	if c.NameProbes == 0 {
		c.NameProbes = 64
	}
	if c.FinaliseRetry == 0 {
		c.FinaliseRetry = 30 * time.Second
	}
	if c.OrphanReservationAge == 0 {
		c.OrphanReservationAge = time.Minute
	}
	if c.CacheSize == 0 {
		c.CacheSize = 100_000
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.NewID == nil {
		c.NewID = func() string { return uuid.Must(uuid.NewV7()).String() }
	}
}

// Validate reports every problem with c.
func (c Config) Validate() error {
	var errs []error
	if c.CollectAccount.Bank == "" || c.CollectAccount.Number == "" || c.CollectAccount.Holder == "" {
		errs = append(errs, errors.New("collect account needs bank, number and holder"))
	}
	if c.CancelWindow < time.Second {
		errs = append(errs, errors.New("cancel window must be at least 1s"))
	}
	if c.DepositorNameMax < 4 {
		errs = append(errs, errors.New("depositor name max must be at least 4 (one character and three digits)"))
	}
	if c.ConflictRetries < 1 {
		errs = append(errs, errors.New("conflict retries must be at least 1"))
	}
	if c.MinWithdrawal < 0 || c.MinWithdrawal > domain.MaxAmount {
		errs = append(errs, fmt.Errorf("min withdrawal must be between 0 and %d", domain.MaxAmount))
	}
	if c.StoreFeeBps < 0 || c.StoreFeeBps > domain.MaxFeeBps {
		errs = append(errs, fmt.Errorf("store fee must be between 0 and %d basis points", domain.MaxFeeBps))
	}
	if c.SettlementDays < 0 || c.SettlementDays > 30 {
		errs = append(errs, errors.New("settlement days must be between 0 and 30"))
	}
	if c.SnapshotEvery < 1 {
		errs = append(errs, errors.New("snapshot every must be at least 1 commit"))
	}
	if c.PaymentDeadline < time.Second || c.PaymentDeadline > MaxTimerSpan {
		errs = append(errs, errors.New("payment deadline must be between 1s and 30 days"))
	}
	if c.CancelWindow+c.NameGrace > MaxTimerSpan {
		errs = append(errs, errors.New("cancel window and name grace together must be at most 30 days"))
	}
	if c.MaxUnpaidOrders < 1 {
		errs = append(errs, errors.New("max unpaid orders must be at least 1"))
	}
	if c.NameProbes < 1 || c.NameProbes > domain.DepositorSuffixes {
		errs = append(errs, fmt.Errorf("name probes must be between 1 and %d", domain.DepositorSuffixes))
	}
	return errors.Join(errs...)
}
