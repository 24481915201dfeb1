package bankfeed

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/supervisor"
)

// Defaults of Scanner.
const (
	DefaultScanInterval = 5 * time.Minute
	DefaultScanOverlap  = 10 * time.Minute
)

// Recorder records one bank transaction. It must be idempotent on BankTxnID:
// recording a transaction already recorded succeeds, changes nothing and
// reports recorded false; a transaction this call recorded reports true.
// The Scanner calls it from several goroutines at once (Concurrency).
type Recorder interface {
	Record(ctx context.Context, t Transaction) (recorded bool, err error)
}

// Watermarks stores, per account, the instant before which every deposit has
// been recorded.
type Watermarks interface {
	// Watermark returns the account's watermark; zero when there is none.
	Watermark(ctx context.Context, account string) (time.Time, error)
	// Advance raises the account's watermark to upTo. It never moves a
	// watermark backwards: an earlier upTo is a no-op.
	Advance(ctx context.Context, account string, upTo time.Time) error
}

// Scanner ingests one account feed from a Source: each scan records every new
// transaction through the Recorder and then advances the account's watermark.
// The feed is one account, optionally with its virtual sub-accounts (see
// IsSubAccount). See the package documentation for its guarantees.
type Scanner struct {
	// Source is the account-scan API. Required.
	Source Source
	// Account is the account number ingested, and the key of the feed's one
	// watermark; transactions for other accounts are dropped (compared with
	// NormalizeAccountNumber) unless IsSubAccount keeps them. Required.
	Account string
	// IsSubAccount, when set, reports whether a normalised account number
	// other than Account's is one of its virtual sub-accounts: numbers that
	// route money into Account (dedicated accounts allocated from a range,
	// say). Transactions for such numbers are kept and recorded like
	// Account's own, with their own AccountNumber, and are covered by
	// Account's watermark: a provider's feed of an account with its virtual
	// accounts is one feed. nil means no sub-accounts: every other account
	// is dropped.
	//
	// It is called for every row of a scan result whose account is not
	// Account (repeats included), with the number in NormalizeAccountNumber
	// form (never ""), from the goroutine running the scan; so it should be
	// a cheap, pure test such as a range check. Prefer the whole range to a
	// directory of allocated numbers: a transfer to a number of the range
	// that nobody holds still landed in Account, and the Recorder should
	// record it (as an orphan, say) rather than the scanner drop it.
	IsSubAccount func(number string) bool
	// Recorder records transactions. Required.
	Recorder Recorder
	// Watermarks stores the account's watermark. Required.
	Watermarks Watermarks
	// Interval is the time between scans in Run. 0 means DefaultScanInterval.
	Interval time.Duration
	// Overlap is how far before the watermark each scan starts, as a margin
	// against a provider whose CompleteUpTo is optimistic. 0 means
	// DefaultScanOverlap; a negative value means none.
	Overlap time.Duration
	// Now is the scanner's clock; nil means time.Now. A CompleteUpTo later
	// than Now is clamped to Now before the watermark advances: no provider
	// can vouch for deposits that have not happened yet, and a watermark
	// pushed into the future by a bug or a fast clock would hide every
	// deposit made before it for good.
	Now func() time.Time
	// Log receives one line per scan (debug when it went well, warn when it
	// failed). The zero value logs nothing.
	Log zerolog.Logger
	// Concurrency is how many transactions of one scan are recorded at
	// once. Transactions that can touch the same order or bill are
	// recorded one after another in deposit order: those with the same
	// depositor name (compared as domain.NormalizeName does) on the
	// account itself, and those on the same sub-account. 0 means
	// DefaultScanConcurrency; 1 records every transaction in turn.
	Concurrency int
}

// DefaultScanConcurrency is Scanner.Concurrency's default.
const DefaultScanConcurrency = 8

// ScanStats describes one scan.
type ScanStats struct {
	// Seen is how many distinct transactions for the account (its
	// sub-accounts included) the scan returned.
	Seen int
	// SubAccounts is how many of Seen were for a sub-account rather than
	// the account itself (see Scanner.IsSubAccount).
	SubAccounts int
	// Recorded is how many of them were handed to the Recorder successfully
	// (already-recorded ones included: the Recorder is idempotent).
	Recorded int
	// Repeats is how many rows of the result repeated a transaction already
	// kept from it; OtherAccounts how many rows were for another account
	// (neither the account nor one of its sub-accounts) and were dropped.
	Repeats, OtherAccounts int
	// Late are the bank_txn_ids of the transactions recorded for the first
	// time though dated before the watermark the scan started from, in
	// deposit order: an earlier scan (or a statement import) was told the
	// data was complete up to the watermark, and it was not (see warnLate).
	Late []string
	// CompleteUpTo is what the Source reported (before any clamping to
	// Now).
	CompleteUpTo time.Time
	// Watermark is the account's watermark after the scan.
	Watermark time.Time
}

// Validate checks the configuration.
func (s *Scanner) Validate() error {
	var errs []error
	if s.Source == nil {
		errs = append(errs, errors.New("source is required"))
	}
	if strings.TrimSpace(s.Account) == "" {
		errs = append(errs, errors.New("account is required"))
	}
	if s.Recorder == nil {
		errs = append(errs, errors.New("recorder is required"))
	}
	if s.Watermarks == nil {
		errs = append(errs, errors.New("watermarks is required"))
	}
	if s.Interval < 0 {
		errs = append(errs, fmt.Errorf("interval must not be negative, got %v", s.Interval))
	}
	if s.Concurrency < 0 {
		errs = append(errs, fmt.Errorf("concurrency must not be negative, got %d", s.Concurrency))
	}
	return errors.Join(errs...)
}

func (s *Scanner) interval() time.Duration {
	if s.Interval == 0 {
		return DefaultScanInterval
	}
	return s.Interval
}

func (s *Scanner) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

func (s *Scanner) overlap() time.Duration {
	switch {
	case s.Overlap == 0:
		return DefaultScanOverlap
	case s.Overlap < 0:
		return 0
	}
	return s.Overlap
}

// ScanOnce runs one scan: it reads the watermark wm, scans from wm−Overlap
// (from the zero time when there is no watermark), drops transactions for
// other accounts (keeping the sub-accounts IsSubAccount accepts) and
// repeats, validates every transaction, records them in DepositedAt order,
// and only when all are recorded advances the watermark to the result's
// CompleteUpTo (at most Now) if that is later than wm.
//
// Any error (reading the watermark, the scan, an invalid transaction, two
// different transactions under one BankTxnID, a failed Record, advancing)
// ends the scan and leaves the watermark where it was, so the next scan
// covers the same ground again: an invalid transaction stops ingestion until
// it is fixed at the provider rather than being skipped silently.
func (s *Scanner) ScanOnce(ctx context.Context) (ScanStats, error) {
	var st ScanStats
	if err := s.Validate(); err != nil {
		return st, fmt.Errorf("scanner: %w", err)
	}
	wm, err := s.Watermarks.Watermark(ctx, s.Account)
	if err != nil {
		return st, fmt.Errorf("read watermark of %s: %w", s.Account, err)
	}
	st.Watermark = wm
	var since time.Time
	if !wm.IsZero() {
		since = wm.Add(-s.overlap())
	}
	res, err := s.Source.Scan(ctx, since)
	if err != nil {
		return st, fmt.Errorf("scan %s since %s: %w", s.Account, since.UTC().Format(time.RFC3339Nano), err)
	}
	st.CompleteUpTo = res.CompleteUpTo

	account := NormalizeAccountNumber(s.Account)
	f, err := selectFeed(account, s.IsSubAccount, res.Transactions)
	st.Repeats, st.OtherAccounts, st.SubAccounts = f.repeats, f.others, f.subs
	if err != nil {
		return st, fmt.Errorf("scan %s: %w", s.Account, err)
	}
	if len(f.conflicts) > 0 {
		return st, fmt.Errorf("scan %s: %w: %q", s.Account, ErrConflictingDuplicate, f.conflicts[0].BankTxnID)
	}
	txns := f.txns
	st.Seen = len(txns)
	slices.SortStableFunc(txns, byDepositOrder)
	recorded, late, err := s.record(ctx, account, txns, wm)
	st.Recorded = recorded
	if len(late) > 0 {
		s.warnLate(wm, late)
		for _, t := range late {
			st.Late = append(st.Late, t.BankTxnID)
		}
	}
	if err != nil {
		return st, err
	}
	upTo := res.CompleteUpTo
	if now := s.now(); upTo.After(now) {
		s.Log.Warn().Str("account", s.Account).Time("complete_up_to", upTo).Time("now", now).
			Msg("provider reports completeness in the future; watermark clamped to now")
		upTo = now
	}
	if reported := res.CompleteUpTo; !reported.IsZero() && reported.Before(wm) {
		// The watermark stays. But the provider vouches for less than the
		// watermark, which an earlier scan of it (or a statement import)
		// set: a clock gone back, data being reprocessed. What was decided
		// on that coverage (reserved cancellations made final) may rest on
		// a claim the provider no longer makes. Compared before clamping,
		// so that an instance whose clock is behind the one that set the
		// watermark does not take its own clock for the provider's.
		s.Log.Warn().Str("account", s.Account).Time("complete_up_to", reported).Time("watermark", wm).
			Msg("provider reports complete_up_to behind the watermark; watermark kept")
	}
	if upTo.After(wm) {
		if err := s.Watermarks.Advance(ctx, s.Account, upTo); err != nil {
			return st, fmt.Errorf("advance watermark of %s: %w", s.Account, err)
		}
		st.Watermark = upTo
	}
	return st, nil
}

// record hands txns (in deposit order) to the Recorder on Concurrency
// lanes at once. Each partition (partitionKey) belongs to one lane, given
// out in turn in the order the partitions first appear, and each lane
// records its transactions in deposit order: those that can touch the same
// order or bill one after another, in deposit order; with one lane, every
// transaction in deposit order. The first error stops every lane (after the
// transaction each is recording); every lane's error is returned, joined,
// with how many were recorded, and those recorded for the first time though
// dated before the watermark wm (in deposit order).
func (s *Scanner) record(ctx context.Context, account string, txns []Transaction, wm time.Time) (int, []Transaction, error) {
	lanes := s.Concurrency
	if lanes <= 0 {
		lanes = DefaultScanConcurrency
	}
	laneOf := map[string]int{}
	queues := make([][]Transaction, lanes)
	for _, t := range txns {
		k := partitionKey(account, t)
		l, ok := laneOf[k]
		if !ok {
			l = len(laneOf) % lanes
			laneOf[k] = l
		}
		queues[l] = append(queues[l], t)
	}
	var (
		mu       sync.Mutex
		recorded int
		late     []Transaction
		errs     []error
		failed   atomic.Bool
		wg       sync.WaitGroup
	)
	for _, q := range queues {
		if len(q) == 0 {
			continue
		}
		wg.Go(func() {
			for _, t := range q {
				if failed.Load() {
					return
				}
				created, err := s.recordOne(ctx, t)
				mu.Lock()
				if err == nil {
					recorded++
					if created && t.DepositedAt.Before(wm) {
						late = append(late, t)
					}
				} else {
					errs = append(errs, fmt.Errorf("record bank_txn_id %q: %w", t.BankTxnID, err))
				}
				mu.Unlock()
				if err != nil {
					failed.Store(true)
					return
				}
			}
		})
	}
	wg.Wait()
	slices.SortStableFunc(late, byDepositOrder)
	return recorded, late, errors.Join(errs...)
}

// maxLateLogged is how many late transactions one warning names.
const maxLateLogged = 10

// warnLate warns about transactions recorded for the first time though
// dated before the watermark wm. The watermark said every deposit before it
// was recorded, so what was decided on it may have come too early: a
// reserved cancellation or an expiry made final before such a deposit
// arrived. Its money is not lost (a late deposit for a closed order is
// refunded to the buyer's wallet within the name grace, and waits in the
// orphan queue after it), but the provider's data was not complete when it
// said so. The scan's overlap is what finds such a transaction at all.
func (s *Scanner) warnLate(wm time.Time, late []Transaction) {
	ids := make([]string, 0, min(len(late), maxLateLogged))
	for _, t := range late[:min(len(late), maxLateLogged)] {
		ids = append(ids, t.BankTxnID)
	}
	s.Log.Warn().Str("account", s.Account).Time("watermark", wm).Int("late", len(late)).Strs("bank_txn_ids", ids).
		Time("earliest_deposited_at", late[0].DepositedAt).
		Msg("transactions dated before the scan watermark were recorded only now: the data was reported complete too early (by the bank feed, or a statement import's --complete-up-to); reserved cancellations and expiries made final before them may have come too soon (their money goes to the buyer's wallet within the name grace, else to the orphan queue)")
}

// byDepositOrder orders transactions as a scan records them: by DepositedAt,
// then BankTxnID.
func byDepositOrder(a, b Transaction) int {
	if c := a.DepositedAt.Compare(b.DepositedAt); c != 0 {
		return c
	}
	return strings.Compare(a.BankTxnID, b.BankTxnID)
}

// recordOne records t, turning a panic of the Recorder into an error (with
// its stack) as the supervisor would for the scanner's own goroutine: a
// lane is a goroutine of its own.
func (s *Scanner) recordOne(ctx context.Context, t Transaction) (recorded bool, err error) {
	defer func() {
		if v := recover(); v != nil {
			recorded, err = false, &supervisor.PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return s.Recorder.Record(ctx, t)
}

// partitionKey is what a transaction shares with those it must be recorded
// after: its sub-account (a bill's dedicated account), or on the account
// itself its depositor name, which picks the one order it can pay.
func partitionKey(account string, t Transaction) string {
	if n := NormalizeAccountNumber(t.AccountNumber); n != "" && n != account {
		return "account\x00" + n
	}
	return "name\x00" + domain.NormalizeName(t.DepositorName)
}

// failingAfter is how many scans in a row must fail before the scanner
// reports itself failing to its supervisor (and /readyz): one lost scan is
// weather, three are an outage.
const failingAfter = 3

// Run calls ScanOnce at once and then every Interval until ctx ends, when it
// returns nil. A failed scan is logged and retried at the next tick; scans
// never overlap. A provider that asked to wait longer than an Interval
// (*WaitError) is asked again once its wait has passed, not before. Under a
// supervisor, failingAfter failed scans in a row report the part failing,
// and the next good scan reports it running again. Run returns an error
// only for an invalid configuration.
func (s *Scanner) Run(ctx context.Context) error {
	if err := s.Validate(); err != nil {
		return fmt.Errorf("scanner: %w", err)
	}
	health := supervisor.From(ctx)
	ticker := time.NewTicker(s.interval())
	defer ticker.Stop()
	failed := 0
	for {
		st, err := s.ScanOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		s.logScan(st, err)
		switch {
		case err == nil:
			failed = 0
			health.Report(nil)
		case failed+1 >= failingAfter:
			health.Report(fmt.Errorf("%d bank scans in a row failed: %w", failed+1, err))
			failed++
		default:
			failed++
		}
		if asked, ok := errors.AsType[*WaitError](err); ok && asked.Wait > s.interval() {
			// The ticks the wait skips are scans missed as surely as
			// failed ones: as many as an outage show as one.
			if failed < failingAfter && failed+int(asked.Wait/s.interval()) >= failingAfter {
				health.Report(fmt.Errorf("the bank asked to wait %v, until %s: no scan before then: %w",
					asked.Wait, time.Now().Add(asked.Wait).UTC().Format(time.RFC3339), err))
			}
			s.Log.Info().Str("account", s.Account).Str("scan_in", asked.Wait.String()).Msg("the bank asked to wait; the next scan waits for it")
			pause := time.NewTimer(asked.Wait)
			select {
			case <-ctx.Done():
				pause.Stop()
				return nil
			case <-pause.C:
			}
			ticker.Reset(s.interval())
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

func (s *Scanner) logScan(st ScanStats, err error) {
	if err != nil {
		s.Log.Warn().Err(err).Str("account", s.Account).Int("seen", st.Seen).Int("recorded", st.Recorded).
			Msg("bank scan failed; retrying at the next tick")
		return
	}
	ev := s.Log.Debug().Str("account", s.Account).Int("seen", st.Seen).Int("recorded", st.Recorded).
		Int("sub_accounts", st.SubAccounts).Int("repeats", st.Repeats).Int("other_accounts", st.OtherAccounts)
	if !st.CompleteUpTo.IsZero() {
		ev = ev.Time("complete_up_to", st.CompleteUpTo)
	}
	if !st.Watermark.IsZero() {
		ev = ev.Time("watermark", st.Watermark)
	}
	ev.Msg("bank scan")
}
