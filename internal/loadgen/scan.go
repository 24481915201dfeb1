package loadgen

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/bankfeed"
	"github.com/bankbook/bankbook/client"
	"github.com/bankbook/bankbook/internal/benchkit"
)

// Scan is the bank scan target measured from outside: a fresh engine of
// Config.ScanProfile (fast by default) takes Transfers orders (not measured), then the bench records one
// exact transfer for each through bankbook.cmd.deposit.record as the feed
// identity, as a bank-feed scanner does, from Workers connections (as many
// as bankbook's scanner records at once), against raw publishes from as
// many connections, in interleaved rounds of Transfers/Rounds each.
type Scan struct {
	Profile   string `json:"profile"`
	Transfers int    `json:"transfers"`
	Workers   int    `json:"workers"`
	// Deposits and Raw are the medians of the rounds' figures; Ratio is
	// the median of the rounds' ratios.
	Deposits Phase   `json:"deposits"`
	Raw      Phase   `json:"raw"`
	Ratio    float64 `json:"ratio"`
	CPURatio float64 `json:"cpu_ratio"`
	Rounds   []Round `json:"rounds"` // Submit holds the deposits' phase
}

// paidBy is what a transfer needs to pay one order.
type paidBy struct {
	name, account string
	amount        int64
}

// scan measures Scan on its own engine.
func scan(ctx context.Context, cfg Config) (*Scan, error) {
	workers := bankfeed.DefaultScanConcurrency
	h, err := startHarness(ctx, cfg, cfg.ScanProfile, "scan", workers)
	if err != nil {
		return nil, err
	}
	defer h.close()
	orders := make([]paidBy, cfg.ScanTransfers)
	h.log.Info().Int("orders", len(orders)).Msg("bench: orders for the bank scan")
	if _, err := benchkit.Drive(workers, benchkit.Count(len(orders)), func(w, i int) error {
		rep, err := h.submit(ctx, w, true)
		orders[i] = paidBy{name: rep.DepositorName, account: rep.CollectAccount.Number, amount: rep.Amount}
		return err
	}); err != nil {
		return nil, fmt.Errorf("scan orders: %w", err)
	}
	feed := make([]*client.Client, workers)
	for w := range feed {
		nc, err := h.dial(auth.Feed, fmt.Sprintf("bench-feed-%d", w))
		if err != nil {
			return nil, err
		}
		feed[w] = client.New(nc)
	}

	s := &Scan{Profile: cfg.ScanProfile, Transfers: len(orders), Workers: workers}
	var next, matched atomic.Int64
	record := func(w int) error {
		i := next.Add(1) - 1
		o := orders[i]
		cctx, cancel := context.WithTimeout(ctx, cfg.RequestTimeout)
		defer cancel()
		rep, _, err := client.Do(cctx, feed[w], api.DepositRecord, api.RecordDepositRequest{
			BankTxnID: fmt.Sprintf("bench-%s-%d", h.runID, i), AccountNumber: o.account, DepositorName: o.name,
			Amount: o.amount, DepositedAt: time.Now().UTC()}, nil)
		if err != nil {
			return fmt.Errorf("%w: deposit record: %w", ErrRequest, err)
		}
		if rep.Outcome == "matched" {
			matched.Add(1)
		}
		return nil
	}
	per := len(orders) / cfg.Rounds
	for r := range cfg.Rounds {
		n := per
		if r == cfg.Rounds-1 {
			n = len(orders) - per*(cfg.Rounds-1)
		}
		raw, err := h.phaseOf(ctx, workers, benchkit.Count(n), func(w int) error { return h.raw(ctx, w) })
		if err != nil {
			return nil, fmt.Errorf("scan raw publish, round %d: %w", r+1, err)
		}
		dep, err := h.phaseOf(ctx, workers, benchkit.Count(n), record)
		if err != nil {
			return nil, fmt.Errorf("scan deposits, round %d: %w", r+1, err)
		}
		s.Rounds = append(s.Rounds, Round{Raw: raw, Submit: dep})
		h.log.Info().Int("round", r+1).Float64("raw_per_s", raw.PerSec).Float64("deposits_per_s", dep.PerSec).Msg("bench: scan round")
	}
	if m := matched.Load(); m != int64(len(orders)) {
		return nil, fmt.Errorf("%w: %d of %d transfers matched their order", ErrRequest, m, len(orders))
	}
	s.Deposits, s.Raw, s.Ratio, s.CPURatio = summarize(s.Rounds)
	return s, nil
}
