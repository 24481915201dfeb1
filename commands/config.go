package commands

import (
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/bankbook/bankbook/domain"
)

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
	// a concurrent change. Default 8.
	ConflictRetries int
	// NameGrace is how long a closed (cancelled or paid) order keeps its
	// depositor name: a deposit under it within the grace is refunded to the
	// buyer's wallet instead of becoming an orphan, and no new order gets the
	// name. 0 frees names at once (bankbook serve's default is 24h).
	NameGrace time.Duration
	// FinaliseRetry is how long a due cancellation waits for the bank scan
	// before it looks again. Default 30s.
	FinaliseRetry time.Duration
	// OrphanReservationAge is how long a depositor-name reservation whose
	// order never appeared is respected before another order may take the
	// name (the submit that made it failed). Default 1m.
	OrphanReservationAge time.Duration
	// CacheSize is how many aggregates of each type keep their latest
	// state in memory. Default 100000.
	CacheSize int
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// NewID makes IDs. Default UUIDv7 strings.
	NewID func() string
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
	if c.NameGrace < 0 {
		c.NameGrace = 0
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
	return errors.Join(errs...)
}
