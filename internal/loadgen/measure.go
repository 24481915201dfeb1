package loadgen

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/bankbook/bankbook/internal/benchkit"
)

// Phase is one side of one round of a cell: operations driven over a pool
// of clients for a while.
type Phase struct {
	Ops     int     `json:"ops"`
	Seconds float64 `json:"seconds"`
	PerSec  float64 `json:"per_sec"`
	P50us   float64 `json:"p50_us"`
	P99us   float64 `json:"p99_us"`
	CPUus   float64 `json:"cpu_us_per_op"` // engine process CPU per operation, tail included
	Idle    bool    `json:"idle"`          // the engine went idle after the phase
}

// phase drives op on clients workers for the configured duration (or
// number of operations) and reads the engine's CPU from the idle engine
// before to the idle engine after.
func (h *harness) phase(ctx context.Context, clients int, op func(w int) error) (Phase, error) {
	next := benchkit.Count(h.cfg.Ops)
	if h.cfg.Ops == 0 {
		var end time.Time // from the first operation: phaseOf settles first
		next = func() bool {
			if end.IsZero() {
				end = time.Now().Add(h.cfg.Duration)
			}
			return ctx.Err() == nil && time.Now().Before(end)
		}
	}
	return h.phaseOf(ctx, clients, next, op)
}

// phaseOf is phase for as long as next says.
func (h *harness) phaseOf(ctx context.Context, clients int, next func() bool, op func(w int) error) (Phase, error) {
	h.settle(ctx)
	cpu0, err := h.eng.CPU()
	if err != nil {
		return Phase{}, err
	}
	run, err := benchkit.Drive(clients, next, func(w, _ int) error { return op(w) })
	if err != nil {
		return Phase{}, err
	}
	if ctx.Err() != nil {
		return Phase{}, ctx.Err()
	}
	idle := h.settle(ctx)
	cpu1, err := h.eng.CPU()
	if err != nil {
		return Phase{}, err
	}
	p := Phase{Ops: run.N, Seconds: run.Elapsed.Seconds(), PerSec: run.PerSec(), P50us: run.Pct(0.50), P99us: run.Pct(0.99),
		Idle: idle}
	if run.N > 0 {
		p.CPUus = float64((cpu1 - cpu0).Microseconds()) / float64(run.N)
	}
	return p, nil
}

// Cell is one line of the submit table: a profile, with or without a key,
// a concurrency; the medians of its rounds.
type Cell struct {
	Profile string `json:"profile"`
	Key     bool   `json:"idempotency_key"`
	Clients int    `json:"clients"`
	// Submit and Raw are the medians of the rounds' figures.
	Submit Phase `json:"submit"`
	Raw    Phase `json:"raw"`
	// Ratio is the median of the rounds' submits/s over raw publishes/s.
	Ratio float64 `json:"ratio"`
	// CPURatio is engine CPU per submit over CPU per raw publish (medians).
	CPURatio float64 `json:"cpu_ratio"`
	Rounds   []Round `json:"rounds"`
}

// Round is one interleaved pair.
type Round struct {
	Raw    Phase `json:"raw"`
	Submit Phase `json:"submit"`
}

// cell measures submits against raw publishes at clients, in interleaved
// rounds, the baseline first.
func (h *harness) cell(ctx context.Context, key bool, clients int) (Cell, error) {
	c := Cell{Profile: h.profile, Key: key, Clients: clients}
	for r := range h.cfg.Rounds {
		raw, err := h.phase(ctx, clients, func(w int) error { return h.raw(ctx, w) })
		if err != nil {
			return c, fmt.Errorf("%s raw publish, %d clients, round %d: %w", h.profile, clients, r+1, err)
		}
		sub, err := h.phase(ctx, clients, func(w int) error { _, err := h.submit(ctx, w, key); return err })
		if err != nil {
			return c, fmt.Errorf("%s submit (key %v), %d clients, round %d: %w", h.profile, key, clients, r+1, err)
		}
		c.Rounds = append(c.Rounds, Round{Raw: raw, Submit: sub})
		h.log.Info().Bool("key", key).Int("clients", clients).Int("round", r+1).
			Float64("raw_per_s", raw.PerSec).Float64("submit_per_s", sub.PerSec).Msg("bench: round")
	}
	c.Submit, c.Raw, c.Ratio, c.CPURatio = summarize(c.Rounds)
	return c, nil
}

// summarize gives interleaved rounds' medians: each side's phase, the
// ratio of their rates (the median of the rounds' ratios) and of their CPU
// per operation.
func summarize(rounds []Round) (engine, raw Phase, ratio, cpuRatio float64) {
	engine = medianPhase(rounds, func(r Round) Phase { return r.Submit })
	raw = medianPhase(rounds, func(r Round) Phase { return r.Raw })
	ratio = medianOf(rounds, func(r Round) float64 { return safeDiv(r.Submit.PerSec, r.Raw.PerSec) })
	return engine, raw, ratio, safeDiv(engine.CPUus, raw.CPUus)
}

// medianOf is the median of f over rounds.
func medianOf(rounds []Round, f func(Round) float64) float64 {
	v := make([]float64, len(rounds))
	for i, r := range rounds {
		v[i] = f(r)
	}
	return median(v)
}

// medianPhase is the phase of rounds (which side, side says) whose every
// figure is the median of the rounds' (idle if every round's was).
func medianPhase(rounds []Round, side func(Round) Phase) Phase {
	of := func(f func(Phase) float64) float64 {
		return medianOf(rounds, func(r Round) float64 { return f(side(r)) })
	}
	return Phase{
		Ops: int(of(func(p Phase) float64 { return float64(p.Ops) })), Seconds: of(func(p Phase) float64 { return p.Seconds }),
		PerSec: of(func(p Phase) float64 { return p.PerSec }), P50us: of(func(p Phase) float64 { return p.P50us }),
		P99us: of(func(p Phase) float64 { return p.P99us }), CPUus: of(func(p Phase) float64 { return p.CPUus }),
		Idle: !slices.ContainsFunc(rounds, func(r Round) bool { return !side(r).Idle }),
	}
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func safeDiv(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
