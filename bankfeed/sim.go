package bankfeed

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// DefaultSimOverlap is how far before since a SimBank scan reaches when
// SimOptions.Overlap is 0.
const DefaultSimOverlap = time.Minute

// DefaultSimPageSize is the page size of a SimBank scan when
// SimOptions.PageSize is 0.
const DefaultSimPageSize = 50

// SimOptions configures a SimBank. The zero value is a bank on the wall clock
// that shows every transfer at once, never fails and never repeats a
// transaction within one result (it still repeats them across scans).
type SimOptions struct {
	// Now is the bank's clock. nil means time.Now. Times are kept in UTC,
	// truncated to the microsecond (what domain.FormatTime writes).
	Now func() time.Time
	// Lag is the provider's refresh lag: a transfer deposited at t is
	// visible to Scan only when now ≥ t+Lag, and CompleteUpTo is now−Lag.
	Lag time.Duration
	// Overlap is how far before since a scan reaches, so that successive
	// scans overlap as they do at real providers. 0 means
	// DefaultSimOverlap; a negative value means no overlap.
	Overlap time.Duration
	// PageSize is how many transactions the bank reads per internal page.
	// 0 means DefaultSimPageSize.
	PageSize int
	// DuplicateRate in [0, 1] is the probability that a transaction is
	// repeated within one result (at the start of the next page, as
	// offset-based pagination does when the data moves underneath it).
	DuplicateRate float64
	// Delay is how long each Scan takes (it returns early with ctx's error
	// when ctx ends first).
	Delay time.Duration
	// NameLimit, when positive, truncates depositor names to that many
	// runes, as banks do with their depositor field (often 10–20).
	NameLimit int
	// Seed seeds the random source of transaction IDs and duplicates; 0
	// means a random seed. A fixed seed makes a run reproducible, but a
	// restarted bank then hands out the same IDs again: keep it 0 for a demo
	// whose ledger outlives the bank.
	Seed uint64
}

// Validate checks the options.
func (o SimOptions) Validate() error {
	var errs []error
	if o.Lag < 0 {
		errs = append(errs, fmt.Errorf("lag must not be negative, got %v", o.Lag))
	}
	if o.PageSize < 0 {
		errs = append(errs, fmt.Errorf("page size must not be negative, got %d", o.PageSize))
	}
	if !(o.DuplicateRate >= 0 && o.DuplicateRate <= 1) {
		errs = append(errs, fmt.Errorf("duplicate rate must be in [0, 1], got %v", o.DuplicateRate))
	}
	if o.Delay < 0 {
		errs = append(errs, fmt.Errorf("delay must not be negative, got %v", o.Delay))
	}
	if o.NameLimit < 0 {
		errs = append(errs, fmt.Errorf("name limit must not be negative, got %d", o.NameLimit))
	}
	return errors.Join(errs...)
}

// SimBank is an in-process simulated bank, for demos and tests only. It
// accepts transfers to any account number and answers account scans the way
// real providers do: with a refresh lag, overlapping and repeating results,
// optional duplicates within one result, outages on demand and slowness. It is
// safe for concurrent use.
//
// SimBank.Scan covers every account (like a provider feed for all of a
// customer's accounts); Source narrows it to one account, and SourceWith to
// one account with its virtual sub-accounts.
type SimBank struct {
	now      func() time.Time
	lag      time.Duration
	overlap  time.Duration
	pageSize int
	nameMax  int

	mu       sync.Mutex
	rng      *rand.Rand
	dupRate  float64
	delay    time.Duration
	failNext int
	scans    int
	seq      uint64
	txns     []Transaction // in the order of transfer
}

// NewSimBank returns an empty simulated bank.
func NewSimBank(opts SimOptions) (*SimBank, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("sim bank options: %w", err)
	}
	b := &SimBank{
		now:      opts.Now,
		lag:      opts.Lag,
		overlap:  opts.Overlap,
		pageSize: opts.PageSize,
		nameMax:  opts.NameLimit,
		dupRate:  opts.DuplicateRate,
		delay:    opts.Delay,
	}
	if b.now == nil {
		b.now = time.Now
	}
	switch {
	case b.overlap == 0:
		b.overlap = DefaultSimOverlap
	case b.overlap < 0:
		b.overlap = 0
	}
	if b.pageSize == 0 {
		b.pageSize = DefaultSimPageSize
	}
	seed := opts.Seed
	if seed == 0 {
		seed = rand.Uint64() | 1
	}
	b.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return b, nil
}

// clock reads the bank's clock in the form it stores times.
func (b *SimBank) clock() time.Time { return b.now().UTC().Truncate(time.Microsecond) }

// Transfer deposits amount on account under depositorName, as a buyer's bank
// transfer would, and returns the transaction the bank records: a new unique
// BankTxnID ("SIM-" + ten-digit counter + "-" + eight random hex digits) and
// DepositedAt = now. The name is truncated to NameLimit runes first. An
// invalid transfer (blank name, amount out of range…) is refused with an
// error matching ErrInvalidTransaction.
func (b *SimBank) Transfer(depositorName string, amount int64, account string) (Transaction, error) {
	if b.nameMax > 0 {
		if r := []rune(depositorName); len(r) > b.nameMax {
			depositorName = string(r[:b.nameMax])
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	t := Transaction{
		BankTxnID:     "-", // placeholder so that validation checks the other fields
		AccountNumber: account,
		DepositorName: depositorName,
		Amount:        amount,
		DepositedAt:   b.clock(),
	}
	if err := t.Validate(); err != nil {
		return Transaction{}, err
	}
	b.seq++
	t.BankTxnID = fmt.Sprintf("SIM-%010d-%08x", b.seq, b.rng.Uint32())
	b.txns = append(b.txns, t)
	return t, nil
}

// Scan answers an account scan over every account. See Source for one
// account.
func (b *SimBank) Scan(ctx context.Context, since time.Time) (ScanResult, error) {
	return b.scan(ctx, since, nil)
}

// Source returns the account-scan API of one account. Account numbers are
// compared with NormalizeAccountNumber.
func (b *SimBank) Source(account string) Source {
	return b.SourceWith(account, nil)
}

// SourceWith returns the account-scan API of account with its virtual
// sub-accounts, like a provider's feed of a collection account that issues
// virtual account numbers: a scan answers the transfers to account and to
// every number for which isSubAccount is true (nil: none, as Source). Account
// numbers are compared with NormalizeAccountNumber, and isSubAccount is
// given the normalised number. It is called with the bank's lock held, so it
// must not call the bank.
func (b *SimBank) SourceWith(account string, isSubAccount func(number string) bool) Source {
	account = NormalizeAccountNumber(account)
	return simSource{bank: b, match: func(n string) bool {
		return n == account || (isSubAccount != nil && isSubAccount(n))
	}}
}

type simSource struct {
	bank  *SimBank
	match func(normalised string) bool
}

func (s simSource) Scan(ctx context.Context, since time.Time) (ScanResult, error) {
	return s.bank.scan(ctx, since, s.match)
}

// scan serves one scan; match, when not nil, selects the transactions by
// their normalised account number (nil: every account).
func (b *SimBank) scan(ctx context.Context, since time.Time, match func(normalised string) bool) (ScanResult, error) {
	if err := ctx.Err(); err != nil {
		return ScanResult{}, err
	}
	b.mu.Lock()
	b.scans++
	delay := b.delay
	fail := b.failNext > 0
	if fail {
		b.failNext--
	}
	b.mu.Unlock()

	if delay > 0 {
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return ScanResult{}, ctx.Err()
		case <-timer.C:
		}
	}
	if fail {
		return ScanResult{}, ErrOutage
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	complete := b.clock().Add(-b.lag)
	from := since.Add(-b.overlap)
	var hits []Transaction
	for _, t := range b.txns {
		if match != nil && !match(NormalizeAccountNumber(t.AccountNumber)) {
			continue
		}
		if t.DepositedAt.Before(from) || t.DepositedAt.After(complete) {
			continue
		}
		hits = append(hits, t)
	}
	// Newest first, like most providers; read page by page, and a page may
	// repeat some of the previous page's rows.
	slices.Reverse(hits)
	out := make([]Transaction, 0, len(hits))
	var carry []Transaction
	for start := 0; start < len(hits); start += b.pageSize {
		page := hits[start:min(start+b.pageSize, len(hits))]
		out = append(out, carry...)
		carry = carry[:0]
		out = append(out, page...)
		for _, t := range page {
			if b.dupRate > 0 && b.rng.Float64() < b.dupRate {
				carry = append(carry, t)
			}
		}
	}
	out = append(out, carry...)
	return ScanResult{Transactions: out, CompleteUpTo: complete}, nil
}

// FailNext makes the next n scans (over any account) fail with ErrOutage, as
// during a provider outage. n ≤ 0 ends a pending outage.
func (b *SimBank) FailNext(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failNext = max(n, 0)
}

// SetDelay sets how long each subsequent scan takes.
func (b *SimBank) SetDelay(d time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.delay = max(d, 0)
}

// SetDuplicateRate sets the probability, clamped to [0, 1], that a
// transaction is repeated within one result.
func (b *SimBank) SetDuplicateRate(p float64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !(p >= 0) { // also NaN
		p = 0
	}
	b.dupRate = min(p, 1)
}

// Transactions returns every transaction the bank holds, visible or not, in
// the order of transfer.
func (b *SimBank) Transactions() []Transaction {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.txns)
}

// Scans returns how many scans the bank has been asked for, failed ones
// included.
func (b *SimBank) Scans() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.scans
}
