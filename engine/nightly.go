package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
	_ "time/tzdata" // --reconcile-time-zone names a zone on machines without a zone database too

	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/bankfeed"
	"github.com/bankbook/bankbook/commands"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/firmbanking"
	"github.com/bankbook/bankbook/timers"
	"github.com/bankbook/bankbook/worker"
)

// A nightly reconciliation is one timer, (its kind, nightlyID), armed for
// the next run; each run arms the one after it before it reconciles, so a
// run that fails (and is retried, or dead-lettered) does not stop the
// next.
const (
	timerReconcilePayouts = "reconcile_payouts"
	timerReconcileBank    = "reconcile_bank"
	nightlyID             = "daily"
	// nightlyNoProvider is how long a run handed to an instance without a
	// provider to fetch the report from waits for one with it.
	nightlyNoProvider = time.Minute
	// nightlyTurn is how long a run holds its kind's turn at most: longer
	// than a timer's handler runs (20 s), so that it runs out, should the
	// instance holding it die, before a run of the kind waits long.
	nightlyTurn = 30 * time.Second
	// nightlyTurnWait is how long a run waits for the turn another run of
	// its kind holds before it looks again.
	nightlyTurnWait = 2 * time.Second
)

// nightlyJob is one of the nightly reconciliations.
type nightlyJob struct {
	timer  string // the timer's kind
	what   string // what it reconciles, in logs: "payouts" or "bank"
	kind   string // its runs' kind (domain.ReconcileKindBank, ReconcileKindPayouts)
	flag   string // the serve flag that sets its time of day
	byHand string // how an operator reconciles a period by hand
}

var (
	payoutsNightly = nightlyJob{timer: timerReconcilePayouts, what: "payouts", kind: domain.ReconcileKindPayouts, flag: "reconcile-payouts-at",
		byHand: "bankbook reconcile payouts --report F --from T --to T"}
	bankNightly = nightlyJob{timer: timerReconcileBank, what: "bank", kind: domain.ReconcileKindBank, flag: "reconcile-bank-at",
		byHand: "bankbook reconcile bank --statement F --from T --to T"}
)

// nightly is when a nightly reconciliation runs: every day at a time of
// day in a zone. It is also the timer's payload, so the instance that
// handles a run needs no flag of its own.
type nightly struct {
	At   string `json:"at"`   // HH:MM or HH:MM:SS
	Zone string `json:"zone"` // an IANA zone
	// From and To are the run's period: it reconciles the provider's
	// report of [From, To). To is the run's scheduled time; From is the
	// scheduled time of the run before it, so that consecutive runs leave
	// no gap and no overlap (also where the time of day does not exist
	// on a day, or after the time of day changed). Zero, for the first
	// run: the same time of day the day before To (prev). A run starts
	// earlier where the runs before it left a period uncovered
	// (nightlyStart).
	From time.Time `json:"from,omitzero"`
	To   time.Time `json:"to"`
}

// parseNightly reads a time of day (--reconcile-payouts-at,
// --reconcile-bank-at) and --reconcile-time-zone.
func parseNightly(at, zone string) (nightly, error) {
	// "Local" (which LoadLocation takes) is each machine's own zone:
	// instances configured alike could disagree on the time of a run.
	if _, err := time.LoadLocation(zone); err != nil || zone == "" || zone == "Local" {
		return nightly{}, fmt.Errorf("reconcile-time-zone %q is not an IANA time zone such as Asia/Seoul", zone)
	}
	if _, _, _, err := clock(at); err != nil {
		return nightly{}, err
	}
	return nightly{At: at, Zone: zone}, nil
}

// clock parses HH:MM or HH:MM:SS.
func clock(at string) (h, m, s int, err error) {
	for _, layout := range []string{"15:04:05", "15:04"} {
		if t, perr := time.Parse(layout, at); perr == nil && len(at) == len(layout) {
			return t.Hour(), t.Minute(), t.Second(), nil
		}
	}
	return 0, 0, 0, fmt.Errorf("%q must be a time of day, HH:MM or HH:MM:SS (or off)", at)
}

// next is the first scheduled time after t; prev, the scheduled time a day
// before to (the start of the first run's period, see period). Both are in n's zone,
// so a day is 23 or 25 hours where the clocks change.
func (n nightly) next(t time.Time) (time.Time, error) {
	at, err := n.on(t, 0)
	for days := 1; err == nil && !at.After(t); days++ {
		at, err = n.on(t, days)
	}
	return at, err
}

func (n nightly) prev(to time.Time) (time.Time, error) { return n.on(to, -1) }

// on is the scheduled time of the day days after t's, in n's zone.
func (n nightly) on(t time.Time, days int) (time.Time, error) {
	loc, err := time.LoadLocation(n.Zone)
	if err != nil {
		return time.Time{}, err
	}
	h, m, s, err := clock(n.At)
	if err != nil {
		return time.Time{}, err
	}
	d := t.In(loc).AddDate(0, 0, days)
	return time.Date(d.Year(), d.Month(), d.Day(), h, m, s, 0, loc), nil
}

// from is the start of the run's period, [from, To): the scheduled time
// of the run before it (prev, for the first run).
func (n nightly) from() (time.Time, error) {
	if !n.From.IsZero() {
		return n.From, nil
	}
	return n.prev(n.To)
}

// following is the run after n: at the next scheduled time, its period
// starting where n's ends.
func (n nightly) following() (nightly, error) {
	to, err := n.next(n.To)
	if err != nil {
		return nightly{}, err
	}
	return nightly{At: n.At, Zone: n.Zone, From: n.To, To: to}, nil
}

// armNightly arms job's nightly run as its flag (at) says: "off" disarms
// it, a time of day arms the next run unless one is armed already (a run
// that fell due while the engine was down fires when it comes back; a
// changed time takes effect from the run after it: the armed run keeps its
// time and period, and is armed again with the new time of day and zone,
// which the run arms the next one with), and "" leaves it as other
// instances set it.
func (e *Engine) armNightly(ctx context.Context, tm *timers.Timers, job nightlyJob, at, zone string) error {
	switch at {
	case "":
		return nil
	case "off":
		return tm.Disarm(ctx, job.timer, nightlyID)
	}
	n, err := parseNightly(at, zone)
	if err != nil {
		return err
	}
	if at, payload, armed, err := tm.Schedule(ctx, job.timer, nightlyID); err != nil {
		return err
	} else if armed {
		var cur nightly
		if json.Unmarshal(payload, &cur) == nil && cur.At == n.At && cur.Zone == n.Zone && cur.To.Equal(at) {
			e.log.Info().Time("next_run", at).Msgf("nightly %s reconciliation armed", job.what)
			return nil
		}
		// Armed with another time of day or zone: armed again, at its
		// time and for its period, with this one. Should the run fire
		// meanwhile, it fires once more: the same input again, the same
		// run (and its next is armed again).
		cur.To = at
		if cur.From.IsZero() {
			cur.From, _ = cur.prev(at) // zero from an unreadable payload: the day before, at the new time
		}
		cur.At, cur.Zone = n.At, n.Zone
		return e.armRun(ctx, tm, job, cur)
	}
	if n.To, err = n.next(time.Now()); err != nil {
		return err
	}
	return e.armRun(ctx, tm, job, n)
}

func (e *Engine) armRun(ctx context.Context, tm *timers.Timers, job nightlyJob, n nightly) error {
	payload, err := json.Marshal(n)
	if err != nil {
		return err
	}
	if err := tm.Arm(ctx, job.timer, nightlyID, n.To, payload); err != nil {
		return err
	}
	e.log.Info().Time("next_run", n.To).Str("at", n.At).Str("zone", n.Zone).Msgf("nightly %s reconciliation armed", job.what)
	return nil
}

// nightlyRun is what a run of a nightly job does with its period [from,
// to): a positive wait to be called again after it (its input is not
// ready yet), or an error to be retried.
type nightlyRun func(ctx context.Context, log zerolog.Logger, from, to time.Time) (time.Duration, error)

// runNightly handles a due run of job: once this instance serves, and if
// ready (it has the provider to fetch the input from; otherwise an
// instance that has takes it), it arms the next run (unless a later run
// is armed already) and calls run with the run's period, holding the
// turn of job's runs (timers.TakeTurn).
//
// The runs of a kind take turns, whatever instance handles them: the run
// after this one, armed before this one reads anything, fires at once
// when its time has passed too (the engine was down), and would
// otherwise read how far the runs got while this one reads its input,
// cover this one's day too, and be recorded first; this one, recorded
// after it over its day again, would carry as timing differences what the
// later run had matched, which the next night finds missing. Waiting for
// the turn, it reads how far the runs got once this one has recorded.
func (e *Engine) runNightly(ctx context.Context, tm *timers.Timers, job nightlyJob, ready bool, d timers.Due, run nightlyRun) (time.Duration, error) {
	var n nightly
	if err := json.Unmarshal(d.Payload, &n); err != nil || n.To.IsZero() {
		return 0, worker.Permanent(fmt.Errorf("nightly %s reconciliation: payload %q: %v", job.what, d.Payload, err))
	}
	if !ready || !e.serving.Load() {
		// e.server is set before serving is.
		return nightlyNoProvider, nil
	}
	from, err := n.from()
	if err != nil {
		return 0, worker.Permanent(fmt.Errorf("nightly %s reconciliation: %w", job.what, err))
	}
	following, err := n.following()
	if err != nil {
		return 0, worker.Permanent(fmt.Errorf("nightly %s reconciliation: %w", job.what, err))
	}
	// A run handed again (it waited, or failed) finds the run after it
	// armed already, maybe at a time of day changed since, or fired and
	// the one after it armed: that stays. One armed without a period
	// start (armNightly found none armed: this run's schedule had fired,
	// and it waited for an instance to run it) starts where this one ends.
	if at, payload, armed, err := tm.Schedule(ctx, job.timer, nightlyID); err != nil {
		return 0, err
	} else if !armed || !at.After(n.To) {
		if err := e.armRun(ctx, tm, job, following); err != nil {
			return 0, err
		}
	} else if next := (nightly{}); json.Unmarshal(payload, &next) == nil && next.From.IsZero() && next.To.Equal(at) {
		next.From = n.To
		if err := e.armRun(ctx, tm, job, next); err != nil {
			return 0, err
		}
	}
	log := e.log.With().Str("reconcile", job.what).Time("from", from).Time("to", n.To).Logger()
	end, err := tm.TakeTurn(ctx, job.timer, nightlyID, nightlyTurn)
	if held := (*timers.TurnHeldError)(nil); errors.As(err, &held) {
		log.Info().Time("held_until", held.Until).Msgf("nightly %s reconciliation: another run of it is reading or recording; this one waits for its turn", job.what)
		return nightlyTurnWait, nil
	}
	if err != nil {
		return 0, fmt.Errorf("nightly %s reconciliation: %w", job.what, err)
	}
	defer end()
	return run(ctx, log, from, n.To)
}

// recordNightly records a run of job with reconcile, as the actor "timer"
// with a correlation ID of its own (as every command of the engine's own
// work has), and logs it: at error if it found anything. An input the
// command refuses is refused again if retried: a dead letter at once.
func (e *Engine) recordNightly(log zerolog.Logger, job nightlyJob, reconcile func(commands.Meta) (api.ReconcileReply, error)) error {
	meta := commands.Meta{Command: "timer." + job.timer, CorrelationID: e.Commands.Deposits.NewID(), Actor: domain.ActorTimer}
	rep, err := reconcile(meta)
	if errors.Is(err, domain.ErrInvalidInput) {
		return worker.Permanent(fmt.Errorf("nightly %s reconciliation: %w", job.what, err))
	}
	if err != nil {
		return err
	}
	ev := log.Info()
	if rep.Findings > 0 {
		ev = log.Error()
	}
	ev.Str("run_id", string(rep.RunID)).Str("correlation_id", meta.CorrelationID).Int("findings", rep.Findings).Int("matched", len(rep.Matched)).
		Int("timing_difference", len(rep.TimingDifference)).Bool("repeated", rep.Repeated).
		Msgf("nightly %s reconciliation: 'bankbook reconcile get RUN_ID' lists what was found", job.what)
	return nil
}

// nightlyStart is where a run of job over [from, to) starts, from how far
// the nightly runs of its kind recorded so far covered (covered, the
// latest end of a period one covered, inclusive; zero: none yet). A day
// with nothing to compare records no run, and a run that has not finished
// (it waits for its input, or was dead-lettered) may be overtaken by the
// run after it: a run starts where the last recorded one ended when that
// is earlier, by at most nightlyCatchUp, so that it covers those days
// too: from that run's end, that instant included (within: a run's last
// part may end within an instant it shares with the next, when more items
// share it than a run holds; the bank run, whose feed may date transfers
// without their time, reads that instant again where it finds transfers
// at it, and starts just after it otherwise; the payouts run always starts
// just after it). A run an earlier attempt recorded the first
// parts of goes on from the last one's end, that instant included. ok is
// false when a later run covered the whole period: nothing to run.
// recordedIn counts what the engine recorded in [from, to) (deposits on
// the feed's accounts, payouts made final): time beyond the bound that no
// run compared is an error only where it holds some (a quiet week is
// not).
func nightlyStart(log zerolog.Logger, job nightlyJob, covered, from, to time.Time, recordedIn func(from, to time.Time) (int, error)) (_ nightlyFrom, ok bool, err error) {
	reached := covered.Add(time.Nanosecond)
	switch {
	case covered.IsZero(): // the first nightly run
		return nightlyFrom{start: from, first: true}, true, nil
	case !reached.Before(to):
		log.Info().Time("covered_to", covered).Msgf("nightly %s reconciliation: a later run has covered this period", job.what)
		return nightlyFrom{}, false, nil
	case !covered.Before(from):
		log.Info().Time("period_from", covered).Msgf("nightly %s reconciliation: the period's first parts are recorded; the rest", job.what)
		return nightlyFrom{start: covered}, true, nil
	case !reached.Before(from):
		return nightlyFrom{start: from}, true, nil
	}
	within := false
	if earliest := from.Add(-nightlyCatchUp); reached.Before(earliest) {
		n, err := recordedIn(reached, earliest)
		if err != nil {
			return nightlyFrom{}, false, fmt.Errorf("nightly %s reconciliation: read what was recorded before the catch-up's start: %w", job.what, err)
		}
		ev := log.Info()
		if n > 0 {
			ev = log.Error().Int("recorded", n)
		}
		ev.Time("uncovered_from", reached).Time("uncovered_to", earliest).
			Msgf("nightly %s reconciliation: no nightly run compared this time, which is more than 7 days before this run's period: reconcile it by hand if anything was recorded in it (%s)", job.what, job.byHand)
		from = earliest
	} else {
		from, within = covered, true
	}
	log.Info().Time("period_from", from).Msgf("nightly %s reconciliation: the period starts where the last recorded run's ended (a day with nothing to compare, or a run that has not finished)", job.what)
	return nightlyFrom{start: from, within: within}, true, nil
}

// nightlyFrom is where a nightly run's period starts (nightlyStart).
type nightlyFrom struct {
	start time.Time
	// within: start is the last recorded run's end, an instant it may
	// share with the next.
	within bool
	// first: no nightly run of the kind is recorded yet, so a day this
	// run records nothing of is not compared by the next one (it starts
	// where the last recorded run ended).
	first bool
}

// uncompared is what a run that records nothing (its input had no line)
// says of its day: the next run compares it, unless this is the first.
func (n nightlyFrom) uncompared(job nightlyJob) string {
	if n.first {
		return "no nightly run is recorded yet, so no later one compares this day: reconcile it by hand (" + job.byHand + ")"
	}
	return "the next run compares this day too"
}

// modelsCaughtUp waits until the read models hold every commit the stream holds
// so far: what was recorded just before a nightly run, and each run
// recorded before it (its coverage, its carry).
func (e *Engine) modelsCaughtUp(ctx context.Context, job nightlyJob) error {
	last, err := e.Events.LastSeq(ctx)
	if err != nil {
		return fmt.Errorf("nightly %s reconciliation: the stream's last sequence: %w", job.what, err)
	}
	if err := e.Runner.WaitFor(ctx, last); err != nil {
		return fmt.Errorf("nightly %s reconciliation: %w", job.what, err)
	}
	return nil
}

// nightlyStartOf reads how far the nightly runs of job covered, once the
// read models hold every run recorded so far, and returns where a run of
// [from, to) starts (nightlyStart).
func (e *Engine) nightlyStartOf(ctx context.Context, log zerolog.Logger, job nightlyJob, from, to time.Time, recordedIn func(from, to time.Time) (int, error)) (nightlyFrom, bool, error) {
	if err := e.modelsCaughtUp(ctx, job); err != nil {
		return nightlyFrom{}, false, err
	}
	covered, err := e.Models.NightlyCovered(job.kind)
	if err != nil {
		return nightlyFrom{}, false, fmt.Errorf("nightly %s reconciliation: how far the nightly runs covered: %w", job.what, err)
	}
	return nightlyStart(log, job, covered, from, to, recordedIn)
}

// reconcilePayoutsNightly is a run of the payouts reconciliation: it
// fetches the provider's report of the run's period (from where the last
// recorded nightly payouts run's period ended, when that is earlier, by
// at most nightlyCatchUp; nothing when a later run covered it:
// nightlyStart) and reconciles it as `bankbook reconcile payouts` does
// with the period given, as the actor "timer". A report of more than
// nightlyLines lines is several runs, in settled_at order, each over its
// part of the period. Each run's file is its lines written in the
// report's dialect (api.WritePayoutReport), so a run handled twice is
// recorded once.
func (e *Engine) reconcilePayoutsNightly(reporter firmbanking.Reporter) nightlyRun {
	return func(ctx context.Context, log zerolog.Logger, from, to time.Time) (time.Duration, error) {
		// final returns the payouts made final in [from, to) that a
		// report of the provider's holds: not those it refused and never
		// took (domain.PayoutNeverTaken).
		final := func(from, to time.Time) ([]api.PayoutView, error) {
			recorded, err := e.Models.PayoutsFinalIn(from, to.Add(-time.Nanosecond))
			if err != nil {
				return nil, fmt.Errorf("nightly payouts reconciliation: read the payouts made final from %s to %s: %w", from.Format(time.RFC3339), to.Format(time.RFC3339), err)
			}
			return slices.DeleteFunc(recorded, func(v api.PayoutView) bool {
				return domain.PayoutNeverTaken(domain.PayoutStatus(v.Status), v.Failure)
			}), nil
		}
		at, ok, err := e.nightlyStartOf(ctx, log, payoutsNightly, from, to, func(from, to time.Time) (int, error) {
			recorded, err := final(from, to)
			return len(recorded), err
		})
		if err != nil || !ok {
			return 0, err
		}
		// A payouts run's parts share an instant only where more than
		// 10,000 payouts were settled at one nanosecond: where the run
		// starts at the last recorded run's end (within), that run
		// compared that instant.
		from = at.start
		if at.within {
			from = from.Add(time.Nanosecond)
		}
		data, err := reporter.Report(ctx, from, to)
		if err != nil {
			return 0, fmt.Errorf("nightly reconciliation: the provider's report of %s to %s: %w", from.Format(time.RFC3339), to.Format(time.RFC3339), err)
		}
		lines, err := api.ParsePayoutReportLines(data)
		if err != nil && !errors.Is(err, api.ErrEmptyReport) {
			return 0, worker.Permanent(fmt.Errorf("nightly reconciliation: the provider's report of %s to %s: %w", from.Format(time.RFC3339), to.Format(time.RFC3339), err))
		}
		if lines = nightlyPayoutLines(log, lines, from, to); len(lines) == 0 {
			// Nothing to record a run of: a run needs lines. The next run
			// covers the day too (it starts where the last recorded run
			// ended), unless none is recorded yet (at.uncompared). Payouts
			// the engine recorded final meanwhile are what the provider
			// should have reported: said loudly now, and missing at the
			// provider in that run unless its report has them by then.
			recorded, err := final(from, to)
			if err != nil {
				return 0, err
			}
			if len(recorded) > 0 {
				ids := make([]string, 0, min(len(recorded), 10))
				for _, p := range recorded[:cap(ids)] {
					ids = append(ids, p.PayoutID)
				}
				log.Error().Int("recorded", len(recorded)).Strs("payout_ids", ids).
					Msg("nightly payouts reconciliation: the provider reported no payouts for a day in which the engine recorded some: ask the provider; " + at.uncompared(payoutsNightly))
				return 0, nil
			}
			log.Info().Msg("nightly payouts reconciliation: no payouts that day, at the provider or here")
			return 0, nil
		}
		parts, split := api.KeyedTimeParts(len(lines), func(i int) time.Time { return lines[i].SettledAt }, func(i int) string { return lines[i].PayoutID },
			from, to, func(int) int { return nightlyLines })
		logSplit(log, payoutsNightly, split, func(i int) (string, time.Time) { return lines[i].PayoutID, lines[i].SettledAt })
		for _, part := range parts {
			// A later part's payouts, recorded final just after this
			// part's end (a burst across it), are not this part's timing
			// differences: that part compares them.
			req := api.ReconcilePayoutsRequest{Lines: lines[part.Start:part.End], Period: &part.Period}
			for _, l := range lines[part.End:] {
				req.Later = append(req.Later, l.PayoutID)
			}
			if req.FileSHA256, err = api.PayoutReportSHA256(req.Lines); err != nil {
				return 0, err
			}
			if err := e.recordNightly(log, payoutsNightly, func(meta commands.Meta) (api.ReconcileReply, error) {
				return e.server.ReconcilePayouts(ctx, meta, req)
			}); err != nil {
				return 0, err
			}
		}
		return 0, nil
	}
}

// nightlyPayoutLines returns the lines of a provider's report that a
// night of [from, to) reconciles, in settled_at order. A line outside the
// period asked for (a provider that takes its end as inclusive, say) is
// left to the run of its time: sent, it would be refused as outside the
// run's period.
func nightlyPayoutLines(log zerolog.Logger, lines []api.PayoutReportLine, from, to time.Time) []api.PayoutReportLine {
	slices.SortStableFunc(lines, func(a, b api.PayoutReportLine) int { return a.SettledAt.Compare(b.SettledAt) })
	var in, outside []api.PayoutReportLine
	for _, l := range lines {
		if l.SettledAt.Before(from) || !l.SettledAt.Before(to) {
			outside = append(outside, l)
		} else {
			in = append(in, l)
		}
	}
	if len(outside) > 0 {
		log.Warn().Int("lines", len(outside)).Str("payout_id", outside[0].PayoutID).Time("settled_at", outside[0].SettledAt).
			Msg("nightly payouts reconciliation: the provider reported payouts outside the period asked for: left out (one before it is an earlier night's, one at or after its end the next night's)")
	}
	return in
}

// How long a bank run waits for the bank to say its data is complete up to
// the period's end, and for the scanner to have recorded it: a scan
// interval, at least a second and at most nightlyIncomplete, or
// nightlyIncompleteLate (and said at warn) once the period ended
// nightlyLate ago.
const (
	nightlyIncomplete     = time.Minute
	nightlyIncompleteLate = 10 * time.Minute
	nightlyLate           = 30 * time.Minute
	// nightlyCatchUp is how far before its own period a bank run reaches
	// back to cover what no nightly run covered.
	nightlyCatchUp = 7 * 24 * time.Hour
	// nightlyAccounts bounds the accounts of one bank run's lines: a run
	// records each account it covers, and must fit in one message.
	nightlyAccounts = 1000
)

// nightlyLines bounds the lines of one bank run (a variable for tests).
var nightlyLines = api.MaxReconcileLines

// reconcileBankNightly is a run of the bank reconciliation: the bank's
// statement of account and its dedicated accounts for the run's period
// (from where the last recorded nightly bank run's period ended, when that
// is earlier, by at most nightlyCatchUp; nothing when a later run covered
// it), read from the account-scan API once the bank says its data is complete
// up to the period's end (bankfeed.Statement) and the scanner's watermark
// has passed it, reconciled as `bankbook reconcile bank` does with the
// period given, as the actor "timer". Every account of the feed is covered
// over the whole period: the collection account, the accounts of the
// lines, and the dedicated accounts deposits were recorded on in it. A
// day of more than api.MaxReconcileLines deposits is several runs, each
// over its part of the period. Each run's file is its lines written in the
// import dialect (bankfeed.WriteCSV), so a run handled twice is recorded
// once.
func (e *Engine) reconcileBankNightly(src bankfeed.Source, marks bankfeed.Watermarks, account string, scanInterval time.Duration) nightlyRun {
	collect := domain.NormalizeAccountNumber(account)
	inFeed := func(n string) bool { return n == collect || e.Accounts.InRange(n) }
	return func(ctx context.Context, log zerolog.Logger, from, to time.Time) (time.Duration, error) {
		// feedDeposits returns the accounts of the feed deposits were
		// recorded on in [from, to], with how many on each, once the read
		// models hold every commit so far: the deposits the scanner
		// recorded just before, and each part of the run before.
		feedDeposits := func(from, to time.Time) (map[string]int, error) {
			if err := e.modelsCaughtUp(ctx, bankNightly); err != nil {
				return nil, err
			}
			recorded, err := e.Models.DepositAccountsIn(from, to.Add(time.Nanosecond))
			if err != nil {
				return nil, fmt.Errorf("nightly bank reconciliation: read the deposits of the day: %w", err)
			}
			maps.DeleteFunc(recorded, func(n string, _ int) bool { return !inFeed(n) })
			return recorded, nil
		}
		// Where a part ended within an instant it shares with the next
		// (more transfers share it than a run holds), the rest of that
		// instant's transfers are read from it (below).
		at, ok, err := e.nightlyStartOf(ctx, log, bankNightly, from, to, func(from, to time.Time) (int, error) {
			recorded, err := feedDeposits(from, to.Add(-time.Nanosecond))
			n := 0
			for _, c := range recorded {
				n += c
			}
			return n, err
		})
		if err != nil || !ok {
			return 0, err
		}
		start, within := at.start, at.within
		from = start
		wait := func(err error) (time.Duration, error) {
			if time.Since(to) > nightlyLate {
				log.Warn().Err(err).Msg("nightly bank reconciliation: waiting for the bank's data of the day")
				return nightlyIncompleteLate, nil
			}
			log.Info().Err(err).Msg("nightly bank reconciliation: waiting for the bank's data of the day")
			// The scanner's next scan may bring it.
			return min(nightlyIncomplete, max(scanInterval, time.Second)), nil
		}
		txns, err := bankfeed.Statement(ctx, src, account, e.Accounts.InRange, from, to)
		var incomplete *bankfeed.IncompleteError
		if errors.As(err, &incomplete) {
			return wait(err)
		}
		if err != nil {
			return 0, fmt.Errorf("nightly bank reconciliation: the bank's statement of %s to %s: %w", from.Format(time.RFC3339), to.Format(time.RFC3339), err)
		}
		if within && (len(txns) == 0 || !txns[0].DepositedAt.Equal(start)) {
			from = start.Add(time.Nanosecond) // the last recorded run compared that instant whole
		}
		// What the scanner has not recorded yet would be a timing
		// difference, carried for as long as its account has no run.
		if wm, err := marks.Watermark(ctx, account); err != nil {
			return 0, fmt.Errorf("nightly bank reconciliation: scan watermark of %s: %w", account, err)
		} else if wm.Before(to) {
			return wait(fmt.Errorf("the scanner has recorded the deposits up to %s, not yet up to %s", wm.UTC().Format(time.RFC3339Nano), to.UTC().Format(time.RFC3339Nano)))
		}
		if len(txns) == 0 {
			// Nothing to record a run of: a run needs lines. The next run
			// covers the day too (it starts where the last recorded run
			// ended), unless none is recorded yet (at.uncompared).
			// Deposits the engine recorded in it are what the bank
			// should have shown: said loudly now, and missing at the bank
			// in that run unless the bank shows them by then.
			recorded, err := feedDeposits(from, to.Add(-time.Nanosecond))
			if err != nil {
				return 0, err
			}
			if len(recorded) > 0 {
				n := 0
				for _, c := range recorded {
					n += c
				}
				log.Error().Int("recorded", n).Strs("accounts", slices.Sorted(maps.Keys(recorded))).
					Msg("nightly bank reconciliation: the bank shows no deposits for a day in which the engine recorded some: ask the bank; " + at.uncompared(bankNightly))
			} else {
				log.Info().Msg("nightly bank reconciliation: no deposits that day, at the bank or here")
			}
			return 0, nil
		}
		parts, split := statementParts(txns, from, to, nightlyLines, nightlyAccounts)
		logSplit(log, bankNightly, split, func(i int) (string, time.Time) { return txns[i].BankTxnID, txns[i].DepositedAt })
		for _, part := range parts {
			recorded, err := feedDeposits(part.period.From, part.period.To)
			if err != nil {
				return 0, err
			}
			// And those an earlier run left something open on (a timing
			// difference, a deposit recorded since in a time it covered),
			// which only a run of the account settles.
			open, err := e.Models.BankAccountsOpen(part.period.From)
			if err != nil {
				return 0, fmt.Errorf("nightly bank reconciliation: read the accounts earlier runs left open: %w", err)
			}
			covered := map[string]bool{}
			for _, n := range slices.Concat(slices.Collect(maps.Keys(recorded)), open) {
				if n != collect && inFeed(n) {
					covered[n] = true
				}
			}
			accounts := append([]string{collect}, slices.Sorted(maps.Keys(covered))...)
			sum, err := bankfeed.StatementSHA256(part.lines)
			if err != nil {
				return 0, err
			}
			req := api.ReconcileBankRequest{FileSHA256: sum, Lines: make([]api.StatementLine, 0, len(part.lines)),
				Period: &part.period, Accounts: accounts}
			for _, t := range part.lines {
				req.Lines = append(req.Lines, api.StatementLine(t))
			}
			// A run going on within an instant its last part shared with
			// the next reads that instant's transfers again: a part of
			// them recorded before, over a period holding this one's, is
			// that run again (repeated).
			if err := e.recordNightly(log, bankNightly, func(meta commands.Meta) (api.ReconcileReply, error) {
				return e.server.ReconcileBank(ctx, meta, req)
			}); err != nil {
				return 0, err
			}
		}
		return 0, nil
	}
}

// logSplit logs, at error, a line of a night's input whose key (a
// transaction, a payout) is on it again further apart than a run holds
// (split, api.KeyedTimeParts; nil: none): each of the day's runs takes its
// line for the only one, and no duplicate is found. line gives a line's
// ID and time.
func logSplit(log zerolog.Logger, job nightlyJob, split *api.SplitKey, line func(i int) (string, time.Time)) {
	if split == nil {
		return
	}
	id, first := line(split.First)
	_, last := line(split.Last)
	log.Error().Str("id", id).Time("first", first).Time("last", last).
		Msgf("nightly %s reconciliation: a line is on the input more than once, further apart than a run holds: each of the day's runs takes its line for the only one, and no duplicate is found; reconcile those lines by hand as a file of their own", job.what)
}

// statementPart is the lines of one run of a day's statement and the part
// of the day it covers (both ends inclusive).
type statementPart struct {
	lines  []bankfeed.Transaction
	period api.ReconcilePeriod
}

// statementParts splits the statement of [from, to) (txns, in deposit
// order) into runs of at most maxLines lines on at most maxAccounts
// accounts, a transaction's lines in one run (api.KeyedTimeParts).
func statementParts(txns []bankfeed.Transaction, from, to time.Time, maxLines, maxAccounts int) ([]statementPart, *api.SplitKey) {
	var out []statementPart
	parts, split := api.KeyedTimeParts(len(txns), func(i int) time.Time { return txns[i].DepositedAt }, func(i int) string {
		return string(domain.NewDepositID(txns[i].AccountNumber, txns[i].BankTxnID)) // the transaction
	}, from, to, func(start int) int {
		limit, accounts := min(len(txns)-start, maxLines), map[string]bool{}
		for i, t := range txns[start : start+limit] {
			if a := domain.NormalizeAccountNumber(t.AccountNumber); !accounts[a] {
				if len(accounts) == maxAccounts {
					return i
				}
				accounts[a] = true
			}
		}
		return limit
	})
	for _, p := range parts {
		out = append(out, statementPart{lines: txns[p.Start:p.End], period: p.Period})
	}
	return out, split
}
