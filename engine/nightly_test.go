package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/bankfeed"
	"github.com/bankbook/bankbook/commands"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/firmbanking"
	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/timers"
	"github.com/bankbook/bankbook/watermarks"
)

// A nightly run's period is the day before it in its zone, the run's
// time of day to the same time the day before (23 or 25 hours where the
// clocks change), and the next run is the first such time after a moment.
func TestNightlySchedule(t *testing.T) {
	seoul, _ := time.LoadLocation("Asia/Seoul")
	n, err := parseNightly("03:00", "Asia/Seoul")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ now, want time.Time }{
		{time.Date(2026, 12, 7, 2, 59, 59, 0, seoul), time.Date(2026, 12, 7, 3, 0, 0, 0, seoul)},
		{time.Date(2026, 12, 7, 3, 0, 0, 0, seoul), time.Date(2026, 12, 8, 3, 0, 0, 0, seoul)},
		{time.Date(2026, 12, 31, 23, 0, 0, 0, seoul), time.Date(2027, 1, 1, 3, 0, 0, 0, seoul)},
		// The same instant in UTC: the zone decides the day.
		{time.Date(2026, 12, 6, 17, 59, 0, 0, time.UTC), time.Date(2026, 12, 7, 3, 0, 0, 0, seoul)},
	} {
		if got, err := n.next(c.now); err != nil || !got.Equal(c.want) {
			t.Errorf("next after %s: %s, %v; want %s", c.now, got, err, c.want)
		}
	}
	if from, err := n.prev(time.Date(2026, 12, 7, 3, 0, 0, 0, seoul)); err != nil || !from.Equal(time.Date(2026, 12, 6, 3, 0, 0, 0, seoul)) {
		t.Errorf("prev: %s, %v", from, err)
	}
	ny, _ := time.LoadLocation("America/New_York")
	n, err = parseNightly("02:30:15", "America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	// The clocks went back an hour on 2026-11-01: that day had 25 hours.
	to := time.Date(2026, 11, 1, 2, 30, 15, 0, ny)
	if from, err := n.prev(to); err != nil || to.Sub(from) != 25*time.Hour {
		t.Errorf("the day the clocks went back: from %s to %s (%v), %v", from, to, to.Sub(from), err)
	}
	for _, c := range []struct{ at, zone, want string }{
		{"3:00", "Asia/Seoul", "HH:MM"},
		{"24:00", "Asia/Seoul", "HH:MM"},
		{"03:00:00:00", "Asia/Seoul", "HH:MM"},
		{"tonight", "Asia/Seoul", "HH:MM"},
		{"03:00", "Mars/Olympus", "IANA"},
		{"03:00", "", "IANA"},
		{"03:00", "Local", "IANA"}, // each machine's own: instances would disagree
	} {
		if _, err := parseNightly(c.at, c.zone); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q in %q: %v, want %q", c.at, c.zone, err, c.want)
		}
	}
	cfg := Defaults()
	cfg.DataDir = t.TempDir()
	cfg.ReconcilePayoutsAt = "03:00"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "needs a firm-banking provider") {
		t.Errorf("without a provider: %v", err)
	}
	cfg.ReconcilePayoutsAt, cfg.ReconcileBankAt = "", "04:00"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "reconcile-bank-at needs a bank feed") {
		t.Errorf("without a bank feed: %v", err)
	}
	cfg.ReconcileBankAt = "4 o'clock"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "reconcile-bank-at: \"4 o'clock\" must be a time of day") {
		t.Errorf("a bank run at no time of day: %v", err)
	}
	cfg.ReconcilePayoutsAt, cfg.ReconcileBankAt, cfg.BankSim = "03:00", "04:00", true
	if err := cfg.Validate(); err != nil {
		t.Errorf("with the simulated ones: %v", err)
	}
}

// Consecutive runs chain: each run's period starts where the one before
// it ended, also where the run's time of day does not exist on a day (the
// clocks jump from midnight to one in Santiago), so the day before it in
// the zone is not where the run before it was.
func TestNightlyRunsChain(t *testing.T) {
	santiago, err := time.LoadLocation("America/Santiago")
	if err != nil {
		t.Fatal(err)
	}
	for _, at := range []string{"00:00", "00:30", "03:00"} {
		n, err := parseNightly(at, "America/Santiago")
		if err != nil {
			t.Fatal(err)
		}
		if n.To, err = n.next(time.Date(2026, 8, 20, 12, 0, 0, 0, santiago)); err != nil {
			t.Fatal(err)
		}
		for range 40 { // across 2026-09-06, when 00:00 to 01:00 does not exist
			from, err := n.from()
			if err != nil || !from.Before(n.To) {
				t.Fatalf("%s: the period of the run at %s: from %s, %v", at, n.To, from, err)
			}
			following, err := n.following()
			if err != nil {
				t.Fatal(err)
			}
			if next, _ := following.from(); !next.Equal(n.To) {
				t.Fatalf("%s: the run at %s starts its period at %s, the run before it ended at %s", at, following.To, next, n.To)
			}
			n = following
		}
	}
}

// A changed --reconcile-payouts-at (or --reconcile-bank-at) applies from
// the run after the one armed: that run keeps its time, the next one is at
// the new time, and its period starts where the armed one's ended (no gap,
// no overlap).
func TestNightlyChangedTimeAppliesFromTheRunAfter(t *testing.T) {
	e, ctx, js, tm := nightlyEngine(t)
	stream, err := js.Stream(ctx, "BANKBOOK_TIMERS")
	if err != nil {
		t.Fatal(err)
	}
	seoul, err := time.LoadLocation("Asia/Seoul")
	if err != nil {
		t.Fatal(err)
	}
	for _, job := range []nightlyJob{payoutsNightly, bankNightly} {
		t.Run(job.what, func(t *testing.T) {
			// armed returns the armed run's time and payload.
			armed := func() (time.Time, []byte) {
				t.Helper()
				m, err := stream.GetLastMsgForSubject(ctx, "bankbook.timer.sched."+job.timer+"."+nightlyID)
				if err != nil {
					t.Fatal(err)
				}
				at, err := time.Parse(time.RFC3339Nano, strings.TrimPrefix(m.Header.Get(jetstream.ScheduleHeader), "@at "))
				if err != nil {
					t.Fatal(err)
				}
				return at, m.Data
			}
			// Armed for the next 03:00 in Seoul; then an instance starts with 05:30.
			if err := e.armNightly(ctx, tm, job, "03:00", "Asia/Seoul"); err != nil {
				t.Fatal(err)
			}
			first, _ := armed()
			if l := first.In(seoul); l.Hour() != 3 || l.Minute() != 0 || !first.After(time.Now()) {
				t.Fatalf("armed at %s, want the next 03:00 in Seoul", l)
			}
			if err := e.armNightly(ctx, tm, job, "05:30", "Asia/Seoul"); err != nil {
				t.Fatal(err)
			}
			if at, _ := armed(); !at.Equal(first) {
				t.Fatalf("the armed run moved from %s to %s: a changed time applies from the run after it", first, at)
			}
			// The armed run fires (handled here, as the worker would), then the
			// run after it.
			var periods [][2]time.Time
			run := func(_ context.Context, _ zerolog.Logger, from, to time.Time) (time.Duration, error) {
				periods = append(periods, [2]time.Time{from, to})
				return 0, nil
			}
			fire := func() {
				t.Helper()
				_, payload := armed()
				if wait, err := e.runNightly(ctx, tm, job, true, timers.Due{Kind: job.timer, ID: nightlyID, Payload: payload, Delivered: 1}, run); wait != 0 || err != nil {
					t.Fatalf("run: wait %v, %v", wait, err)
				}
			}
			fire()
			second, payload := armed()
			if want := first.Add(150 * time.Minute); !second.Equal(want) {
				t.Fatalf("the run after the one at %s is armed at %s (payload %s), want %s, at the new time", first.In(seoul), second.In(seoul), payload, want.In(seoul))
			}
			var n nightly
			if err := json.Unmarshal(payload, &n); err != nil || n.At != "05:30" {
				t.Fatalf("the next run's payload %s: %v", payload, err)
			}
			fire()
			if third, _ := armed(); !third.Equal(second.Add(24 * time.Hour)) {
				t.Fatalf("the run after the one at %s is armed at %s", second.In(seoul), third.In(seoul))
			}
			want := [][2]time.Time{{first.Add(-24 * time.Hour), first}, {first, second}}
			if len(periods) != 2 || !periods[0][0].Equal(want[0][0]) || !periods[0][1].Equal(want[0][1]) ||
				!periods[1][0].Equal(want[1][0]) || !periods[1][1].Equal(want[1][1]) {
				t.Fatalf("the periods run: %v, want %v: each run's period starts where the one before it ended", periods, want)
			}
			if err := e.armNightly(ctx, tm, job, "off", "Asia/Seoul"); err != nil {
				t.Fatal(err)
			}
			if _, err := stream.GetLastMsgForSubject(ctx, "bankbook.timer.sched."+job.timer+"."+nightlyID); !errors.Is(err, jetstream.ErrMsgNotFound) {
				t.Fatalf("after off: %v, want no run armed", err)
			}
		})
	}
}

// A run handed again (it waits for its input, or failed) arms the run
// after it only while that one is not armed yet: a time of day changed
// meanwhile (another instance, or a restart) stays, and a run waiting for
// more than a day does not arm again a run that has fired already.
func TestNightlyRunHandedAgainKeepsTheNextRun(t *testing.T) {
	e, ctx, _, tm := nightlyEngine(t)
	job := bankNightly
	armed := func() (time.Time, nightly) {
		t.Helper()
		at, payload, ok, err := tm.Schedule(ctx, job.timer, nightlyID)
		if err != nil || !ok {
			t.Fatalf("schedule: armed %v, %v", ok, err)
		}
		var n nightly
		if err := json.Unmarshal(payload, &n); err != nil {
			t.Fatal(err)
		}
		return at, n
	}
	if err := e.armNightly(ctx, tm, job, "03:00", "Asia/Seoul"); err != nil {
		t.Fatal(err)
	}
	first, _ := armed()
	_, payload, _, _ := tm.Schedule(ctx, job.timer, nightlyID)
	due := timers.Due{Kind: job.timer, ID: nightlyID, Payload: payload, Delivered: 1}
	waiting := func(context.Context, zerolog.Logger, time.Time, time.Time) (time.Duration, error) {
		return nightlyIncomplete, nil
	}
	// The run fires and waits for the bank; meanwhile an instance starts
	// with 05:30, which applies from the run after it.
	if wait, err := e.runNightly(ctx, tm, job, true, due, waiting); wait != nightlyIncomplete || err != nil {
		t.Fatalf("run: wait %v, %v", wait, err)
	}
	second, _ := armed()
	if err := e.armNightly(ctx, tm, job, "05:30", "Asia/Seoul"); err != nil {
		t.Fatal(err)
	}
	due.Delivered++
	if wait, err := e.runNightly(ctx, tm, job, true, due, waiting); wait != nightlyIncomplete || err != nil {
		t.Fatalf("run again: wait %v, %v", wait, err)
	}
	if at, n := armed(); !at.Equal(second) || n.At != "05:30" || !n.From.Equal(first) {
		t.Fatalf("after the waiting run was handed again the next run is armed at %s with %+v, want at %s with 05:30 from %s", at, n, second, first)
	}
	// The run after it fired and armed the one after that; the first run,
	// still waiting, is handed again.
	_, payload, _, _ = tm.Schedule(ctx, job.timer, nightlyID)
	if _, err := e.runNightly(ctx, tm, job, true, timers.Due{Kind: job.timer, ID: nightlyID, Payload: payload, Delivered: 1}, waiting); err != nil {
		t.Fatal(err)
	}
	third, _ := armed()
	due.Delivered++
	if _, err := e.runNightly(ctx, tm, job, true, due, waiting); err != nil {
		t.Fatal(err)
	}
	if at, _ := armed(); !at.Equal(third) || !third.After(second) {
		t.Fatalf("the run at %s armed again after the run at %s fired: %s", second, third, at)
	}
}

// A run whose schedule fired while no instance could run it (none with
// the provider, or none serving yet) arms nothing until one can; an
// instance starting meanwhile finds no run armed and arms the next one
// from its own clock. When the waiting run is handed at last, that run's
// period starts where the waiting one's ends: no day between them is left
// out (the engine was down for days), whatever the time of day.
func TestNightlyRunChainsTheRunArmedWhileItWaited(t *testing.T) {
	e, ctx, _, tm := nightlyEngine(t)
	job := bankNightly
	end := time.Now().Add(-72 * time.Hour).UTC().Truncate(time.Hour)
	at := end.Format("15:04")
	payload, err := json.Marshal(nightly{At: at, Zone: "UTC", From: end.Add(-24 * time.Hour), To: end})
	if err != nil {
		t.Fatal(err)
	}
	waiting := timers.Due{Kind: job.timer, ID: nightlyID, Payload: payload, Delivered: 1}
	var periods [][2]time.Time
	run := func(_ context.Context, _ zerolog.Logger, from, to time.Time) (time.Duration, error) {
		periods = append(periods, [2]time.Time{from, to})
		return 0, nil
	}
	// Handed to an instance without the provider: it waits, arming nothing.
	if wait, err := e.runNightly(ctx, tm, job, false, waiting, run); wait != nightlyNoProvider || err != nil {
		t.Fatalf("without the provider: wait %v, %v", wait, err)
	}
	// An instance with it starts, days later, and arms the next run.
	if err := e.armNightly(ctx, tm, job, at, "UTC"); err != nil {
		t.Fatal(err)
	}
	waiting.Delivered++
	if wait, err := e.runNightly(ctx, tm, job, true, waiting, run); wait != 0 || err != nil {
		t.Fatalf("the waiting run: wait %v, %v", wait, err)
	}
	next, payload, ok, err := tm.Schedule(ctx, job.timer, nightlyID)
	if err != nil || !ok {
		t.Fatalf("schedule: armed %v, %v", ok, err)
	}
	if wait, err := e.runNightly(ctx, tm, job, true, timers.Due{Kind: job.timer, ID: nightlyID, Payload: payload, Delivered: 1}, run); wait != 0 || err != nil {
		t.Fatalf("the run at %s: wait %v, %v", next, wait, err)
	}
	if len(periods) != 2 || !periods[1][0].Equal(end) || !periods[1][1].Equal(next) {
		t.Fatalf("the periods run: %v, want the second from %s (where the first ended) to %s", periods, end, next)
	}
}

// A day's statement of more lines than a run holds is several runs, each
// over its part of the day: from its first line (the day's start, for the
// first) to just before the next run's first line, so that together they
// cover the day once; lines of one instant stay in one run unless more
// than a run holds share it.
func TestStatementParts(t *testing.T) {
	from := time.Date(2026, 12, 6, 18, 0, 0, 0, time.UTC)
	to := from.Add(24 * time.Hour)
	at := func(h int) time.Time { return from.Add(time.Duration(h) * time.Hour) }
	var txns []bankfeed.Transaction
	for i, h := range []int{1, 2, 3, 3, 4, 5, 5, 5, 5, 6} {
		txns = append(txns, bankfeed.Transaction{BankTxnID: fmt.Sprintf("T-%d", i), DepositedAt: at(h)})
	}
	type part struct {
		ids      string
		from, to time.Time
	}
	var got []part
	parts, _ := statementParts(txns, from, to, 3, 10)
	for _, p := range parts {
		var ids []string
		for _, l := range p.lines {
			ids = append(ids, l.BankTxnID)
		}
		got = append(got, part{strings.Join(ids, ","), p.period.From, p.period.To})
	}
	ns := time.Nanosecond
	want := []part{
		{"T-0,T-1", from, at(3).Add(-ns)},
		{"T-2,T-3,T-4", at(3), at(5).Add(-ns)},
		{"T-5,T-6,T-7", at(5), at(5)},
		{"T-8,T-9", at(5), to.Add(-ns)},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("parts:\n got %v\nwant %v", got, want)
	}
	if one, _ := statementParts(txns, from, to, 10, 10); len(one) != 1 || len(one[0].lines) != 10 || !one[0].period.From.Equal(from) || !one[0].period.To.Equal(to.Add(-ns)) {
		t.Fatalf("a day within one run: %+v", one)
	}
	// A run also holds the lines of at most so many accounts.
	var on []bankfeed.Transaction
	for i, a := range []string{"1-1", "2-2", "11", "3-3"} {
		on = append(on, bankfeed.Transaction{BankTxnID: fmt.Sprintf("A-%d", i), AccountNumber: a, DepositedAt: at(i + 1)})
	}
	if parts, _ := statementParts(on, from, to, 10, 2); len(parts) != 2 || len(parts[0].lines) != 3 || !parts[0].period.To.Equal(at(4).Add(-ns)) ||
		len(parts[1].lines) != 1 || !parts[1].period.From.Equal(at(4)) {
		t.Fatalf("two accounts a run: %+v", parts)
	}
}

// A deposit the bank never showed, dated within the timing window before
// the end of a night's period on a dedicated account, is a timing
// difference that night and missing at the bank the night after, also
// when the bank shows no transfer to that account and the engine records
// no deposit on it the day after; and so is a deposit recorded after a
// night's run, dated in its day, on an account it covered: every account a
// run left something open on is covered by the next night's run.
func TestNightlyBankRunSettlesWhatTheNightBeforeCarried(t *testing.T) {
	b := newBankNights(t)
	e, day0, day1, day2 := b.e, b.day0, b.day1, b.day2
	// The bank shows one transfer to the collection account on each of
	// two days in the past, and one to a dedicated account.
	b.transfer(t, e.cfg.CollectNumber, day0.Add(time.Hour))
	b.transfer(t, "5001-000888", day0.Add(3*time.Hour))
	b.transfer(t, e.cfg.CollectNumber, day1.Add(time.Hour))
	forged := b.record(t, "FORGE-LATE", "5001-000777", 30000, day1.Add(-2*time.Minute))
	b.scanned(t)

	night := func(from, to time.Time) api.ReconcileReply {
		t.Helper()
		rep, ok := b.night(t, from, to)
		if !ok {
			t.Fatalf("the run of %s recorded nothing", from)
		}
		return rep
	}
	first := night(day0, day1)
	if len(first.TimingDifference) != 1 || first.TimingDifference[0].BankTxnID != "FORGE-LATE" || first.Findings != 0 || len(first.Matched) != 2 {
		t.Fatalf("the first night: %+v, want the forged deposit carried as a timing difference", first)
	}
	// Recorded after the first night, dated in its day, on an account the
	// bank shows no transfer to the day after either.
	late := b.record(t, "LATE-IMPORT", "5001-000888", 9000, day0.Add(4*time.Hour))
	second := night(day1, day2)
	var covered []string
	for _, a := range second.Accounts {
		covered = append(covered, a.AccountNumber)
	}
	missing := map[string]string{}
	for _, it := range second.MissingAtBank {
		missing[it.BankTxnID] = strings.Join(it.DepositIDs, ",")
	}
	if len(missing) != 2 || missing["FORGE-LATE"] != forged || missing["LATE-IMPORT"] != late || len(second.TimingDifference) != 0 {
		t.Fatalf("the second night covers %v and finds missing at the bank %v, %d timing differences: want the carried deposit %s and the late one %s",
			covered, missing, len(second.TimingDifference), forged, late)
	}
}

// A day in which the bank shows no transfer records no run, and the run
// after it covers that day too (two quiet days in a row: one longer
// period): a deposit recorded in it that the bank never showed is missing
// at the bank then, not only logged.
func TestNightlyBankDayWithoutTransfersIsComparedTheNightAfter(t *testing.T) {
	b := newBankNights(t)
	e, dayBefore, day0, day1, day2, day3 := b.e, b.day0.Add(-24*time.Hour), b.day0, b.day1, b.day2, b.day2.Add(24*time.Hour)
	b.transfer(t, e.cfg.CollectNumber, dayBefore.Add(time.Hour))
	// Days 0 and 1: no transfer at the bank, and a deposit recorded on
	// day 0.
	forged := b.record(t, "FORGED", e.cfg.CollectNumber, 50000, day0.Add(2*time.Hour))
	b.transfer(t, e.cfg.CollectNumber, day2.Add(time.Hour))
	b.scanned(t)
	if _, ok := b.night(t, dayBefore, day0); !ok {
		t.Fatal("the first night recorded no run")
	}
	for _, d := range []time.Time{day0, day1} {
		if rep, ok := b.night(t, d, d.Add(24*time.Hour)); ok {
			t.Fatalf("the day %s without transfers at the bank recorded %+v", d, rep)
		}
		if d == day0 && !b.logged("error", "the next run compares this day too") {
			t.Errorf("the day with a deposit and no transfer at the bank logged:\n%s", b.logs)
		}
	}
	rep, ok := b.night(t, day2, day3)
	if !ok {
		t.Fatal("the night after recorded no run")
	}
	if len(rep.MissingAtBank) != 1 || !slices.Equal(rep.MissingAtBank[0].DepositIDs, []string{forged}) || len(rep.Matched) != 1 {
		t.Fatalf("the night after: missing at the bank %+v, matched %d: want the deposit %s of the days without transfers, and the day's transfer matched",
			rep.MissingAtBank, len(rep.Matched), forged)
	}
	if p := rep.Period; p == nil || !p.From.Equal(day0) {
		t.Errorf("the night after's period %+v, want from %s", p, day0)
	}
}

// The first nightly run finding no transfer at the bank on a day the
// engine recorded a deposit in records nothing, and no later run compares
// that day (they start where the last recorded one ended): it says so, at
// error, with how to reconcile it by hand.
func TestNightlyBankFirstNightWithoutTransfers(t *testing.T) {
	b := newBankNights(t)
	b.record(t, "FORGED", b.e.cfg.CollectNumber, 50000, b.day0.Add(2*time.Hour))
	b.scanned(t)
	if rep, ok := b.night(t, b.day0, b.day1); ok {
		t.Fatalf("a day without transfers at the bank recorded %+v", rep)
	}
	if !b.logged("error", "no nightly run is recorded yet, so no later one compares this day: reconcile it by hand (bankbook reconcile bank") {
		t.Errorf("the first night logged:\n%s", b.logs)
	}
}

// A nightly run's events carry a correlation ID of their own, as the
// events of the engine's other work do (the scanner's, the timers'):
// every event's envelope has one, and audit.history shows it.
func TestNightlyRunIsCorrelated(t *testing.T) {
	b := newBankNights(t)
	b.transfer(t, b.e.cfg.CollectNumber, b.day0.Add(time.Hour))
	b.scanned(t)
	rep, ok := b.night(t, b.day0, b.day1)
	if !ok {
		t.Fatal("the night recorded no run")
	}
	commits, err := b.e.Events.Load(b.ctx, eventstore.Ref{Type: domain.AggregateReconciliation, ID: string(rep.RunID)}, 0)
	if err != nil || len(commits) == 0 {
		t.Fatalf("load run %s: %d commits, %v", rep.RunID, len(commits), err)
	}
	for _, c := range commits {
		for _, env := range c.Events {
			if env.CorrelationID == "" || env.Actor != domain.ActorTimer {
				t.Errorf("run %s: %s at seq %d has correlation_id %q, actor %q; want a generated correlation ID, actor %q",
					rep.RunID, env.EventType, c.Seq, env.CorrelationID, env.Actor, domain.ActorTimer)
			}
		}
	}
}

// A run reaches back for what no nightly run covered by at most 7 days
// before its own period (nightlyCatchUp). The time beyond that is said at
// error where deposits were recorded in it (no run compared them with the
// bank), at info where none were (a quiet week).
func TestNightlyBankCatchUpReachesBackAWeek(t *testing.T) {
	for _, forged := range []bool{false, true} {
		b := newBankNights(t)
		e, day2, day3 := b.e, b.day2, b.day2.Add(24*time.Hour)
		old := b.day0.Add(-8 * 24 * time.Hour)
		b.transfer(t, e.cfg.CollectNumber, old.Add(time.Hour))
		b.transfer(t, e.cfg.CollectNumber, day2.Add(time.Hour))
		if forged {
			b.record(t, "FORGED", e.cfg.CollectNumber, 50000, old.Add(36*time.Hour))
		}
		b.scanned(t)
		if _, ok := b.night(t, old, old.Add(24*time.Hour)); !ok {
			t.Fatal("the night ten days ago recorded no run")
		}
		rep, ok := b.night(t, day2, day3)
		if want := day2.Add(-nightlyCatchUp); !ok || rep.Period == nil || !rep.Period.From.Equal(want) {
			t.Fatalf("the night after nine days without a run: recorded %v over %+v, want from %s", ok, rep.Period, want)
		}
		const said = "no nightly run compared this time"
		if b.logged("error", said) != forged || !b.logged(map[bool]string{false: "info", true: "error"}[forged], said) {
			t.Errorf("a deposit recorded in the time beyond the week: %v; logged:\n%s", forged, b.logs)
		}
	}
}

// A night's run that has not finished (it waits for the bank, or was
// dead-lettered) is overtaken by the next night's, which covers its day
// too; when it runs after all, it finds its period covered and records
// nothing. Run in the other order, the later night would find the earlier
// day's transfer missing at the bank (uncompared since the run before).
func TestNightlyBankRunOvertakenCoversTheDayBefore(t *testing.T) {
	b := newBankNights(t)
	e, day0, day1, day2, day3 := b.e, b.day0, b.day1, b.day2, b.day2.Add(24*time.Hour)
	for _, d := range []time.Time{day0, day1, day2} {
		b.transfer(t, e.cfg.CollectNumber, d.Add(time.Hour))
	}
	b.scanned(t)
	if _, ok := b.night(t, day0, day1); !ok {
		t.Fatal("the first night recorded no run")
	}
	third, ok := b.night(t, day2, day3)
	if !ok || third.Findings != 0 || len(third.Matched) != 2 || third.Period == nil || !third.Period.From.Equal(day1) {
		t.Fatalf("the third night run before the second: recorded %v, %+v; want the transfers of both days matched, from %s", ok, third, day1)
	}
	if rep, ok := b.night(t, day1, day2); ok {
		t.Fatalf("the second night, run after the third covered it, recorded %+v", rep)
	}
}

// Two nights fall due at once (the engine was down): a run arms the
// next one before it reads anything, and that one fires at once, handled
// by another instance while the first still reads the bank's statement.
// The runs of a kind take turns: the night after waits for the night
// before to record its run, and then runs over its own day, so the runs
// are recorded in the order of their periods. Otherwise the night after
// covers both days, and the night before, recorded after it over its
// day again, carries as a timing difference a transfer of the day after
// that the later run had matched: the next night finds it missing at the
// bank.
func TestNightlyBankRunsOfTwoNightsDueAtOnceTakeTurns(t *testing.T) {
	b := newBankNights(t)
	e, ctx, day0, day1, day2 := b.e, b.ctx, b.day0, b.day1, b.day2
	day3 := day2.Add(24 * time.Hour)
	b.transfer(t, e.cfg.CollectNumber, day0.Add(time.Hour))
	b.transfer(t, e.cfg.CollectNumber, day1.Add(time.Hour))
	b.transfer(t, e.cfg.CollectNumber, day2.Add(time.Minute)) // a timing difference of the night of day 1
	b.transfer(t, e.cfg.CollectNumber, day2.Add(time.Hour))
	b.scanned(t)
	if _, ok := b.night(t, day0, day1); !ok {
		t.Fatal("the first night recorded no run")
	}
	// The night of day 1 reads the statement slowly; the night after it,
	// which it armed, is handed to another instance meanwhile.
	reading, proceed := make(chan struct{}), make(chan struct{})
	slow := b.e.reconcileBankNightly(&gatedSource{Source: b.sim, reading: reading, proceed: proceed}, b.marks, e.cfg.CollectNumber, time.Second)
	at := day2.Format("15:04")
	before := nightly{At: at, Zone: "UTC", From: day1, To: day2}
	after, err := before.following()
	if err != nil || !after.To.Equal(day3) {
		t.Fatalf("the night after %+v: %+v, %v", before, after, err)
	}
	due := func(n nightly) timers.Due {
		payload, err := json.Marshal(n)
		if err != nil {
			t.Fatal(err)
		}
		return timers.Due{Kind: bankNightly.timer, ID: nightlyID, Payload: payload, Delivered: 1}
	}
	type result struct {
		wait time.Duration
		err  error
	}
	first := make(chan result, 1)
	go func() {
		wait, err := e.runNightly(ctx, b.tm, bankNightly, true, due(before), slow)
		first <- result{wait, err}
	}()
	select {
	case <-reading:
	case r := <-first:
		t.Fatalf("the night of day 1 ended before it read the statement: %+v", r)
	}
	wait, err := e.runNightly(ctx, b.tm, bankNightly, true, due(after), b.run)
	close(proceed)
	if r := <-first; r.wait != 0 || r.err != nil {
		t.Fatalf("the night of day 1: wait %v, %v", r.wait, r.err)
	}
	if err != nil {
		t.Fatalf("the night of day 2 while the night before read: %v", err)
	}
	if wait > 0 {
		// It waited for its turn: handed again.
		if wait, err = e.runNightly(ctx, b.tm, bankNightly, true, due(after), b.run); wait != 0 || err != nil {
			t.Fatalf("the night of day 2 handed again: wait %v, %v", wait, err)
		}
	}
	if err := e.modelsCaughtUp(ctx, bankNightly); err != nil {
		t.Fatal(err)
	}
	runs, _, err := e.Models.ReconcileRuns(10, "")
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(runs) // in the order they were recorded
	var (
		end  time.Time
		last api.ReconcileReply
	)
	for _, r := range runs {
		if last, err = e.Commands.Deposits.Reconciliation(ctx, r.RunID); err != nil {
			t.Fatal(err)
		}
		if last.Period == nil || last.Period.From.Before(end) {
			t.Errorf("run %s over %+v recorded after a run up to %s: an older period after a later one", last.RunID, last.Period, end)
			continue
		}
		end = last.Period.To
	}
	if len(last.TimingDifference) > 0 {
		t.Errorf("the last run recorded, %s over %+v, carries %+v to the next night, which finds the bank's transfer missing at the bank", last.RunID, last.Period, last.TimingDifference)
	}
	if len(runs) != 3 || !end.Before(day3) || day3.Sub(end) > time.Microsecond {
		t.Errorf("%d runs, up to %s: want one a night, the last up to just before %s", len(runs), end, day3)
	}
}

// gatedSource is a bank whose first scan waits, once it is asked, for
// proceed: a slow statement.
type gatedSource struct {
	bankfeed.Source
	reading, proceed chan struct{}
	once             sync.Once
}

func (g *gatedSource) Scan(ctx context.Context, since time.Time) (bankfeed.ScanResult, error) {
	g.once.Do(func() {
		close(g.reading)
		<-g.proceed
	})
	return g.Source.Scan(ctx, since)
}

// A run interrupted after its first part (here: its context ends) goes on
// from where that part ended when handed again: its lines are not sent
// again over another period (which the command refuses) when the first
// attempt started earlier than the run's own period, after a day without
// transfers at the bank.
func TestNightlyBankRunResumesAfterItsRecordedParts(t *testing.T) {
	b := newBankNights(t)
	partsOf(t, 2)
	e, day0, day1, day2, day3 := b.e, b.day0, b.day1, b.day2, b.day2.Add(24*time.Hour)
	b.transfer(t, e.cfg.CollectNumber, day0.Add(time.Hour))
	forged := b.record(t, "FORGED", e.cfg.CollectNumber, 50000, day1.Add(2*time.Hour)) // day 1: no transfer at the bank
	for h := range 3 {
		b.transfer(t, e.cfg.CollectNumber, day2.Add(time.Duration(h+1)*time.Hour))
	}
	b.scanned(t)
	if _, ok := b.night(t, day0, day1); !ok {
		t.Fatal("the first night recorded no run")
	}
	if rep, ok := b.night(t, day1, day2); ok {
		t.Fatalf("a day without transfers at the bank recorded %+v", rep)
	}
	// The third night, from day 1 on: its first part (day 1 and two of day
	// 2's transfers) is recorded, then the attempt ends.
	first := b.interruptAfterFirstPart(t, day2, day3)
	rep, err := e.Commands.Deposits.Reconciliation(b.ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.MissingAtBank) != 1 || !slices.Equal(rep.MissingAtBank[0].DepositIDs, []string{forged}) || len(rep.Matched) != 2 || !rep.Period.From.Equal(day1) {
		t.Fatalf("the first part: %+v", rep)
	}
	rest, ok := b.night(t, day2, day3)
	if !ok || rest.Findings != 0 || len(rest.Matched) != 1 || rest.Lines != 1 {
		t.Fatalf("the attempt after it: recorded %v, %+v; want the third transfer alone, matched", ok, rest)
	}
	if _, ok := b.night(t, day2, day3); ok {
		t.Fatal("the night handed once more recorded a run")
	}
}

// writerFunc is an io.Writer that hands each write to a func.
type writerFunc func([]byte)

func (w writerFunc) Write(p []byte) (int, error) { w(p); return len(p), nil }

// bankNights is a nightly engine with a simulated bank, for the bank
// run's tests; day0, day1 and day2 are whole hours 72, 48 and 24 hours
// (about) ago.
type bankNights struct {
	nights
	marks            *watermarks.Store
	sim              *bankfeed.SimBank
	clock            atomic.Pointer[time.Time] // the bank's clock; nil: now
	day0, day1, day2 time.Time
}

func newBankNights(t *testing.T) *bankNights {
	t.Helper()
	b := &bankNights{}
	var js jetstream.JetStream
	b.e, b.ctx, js, b.tm = nightlyEngine(t)
	var err error
	if b.marks, err = watermarks.Open(b.ctx, js, "", b.e.cfg.Replicas); err != nil {
		t.Fatal(err)
	}
	b.day0 = time.Now().Add(-72 * time.Hour).UTC().Truncate(time.Hour)
	b.day1, b.day2 = b.day0.Add(24*time.Hour), b.day0.Add(48*time.Hour)
	if b.sim, err = bankfeed.NewSimBank(bankfeed.SimOptions{Now: func() time.Time {
		if at := b.clock.Load(); at != nil {
			return *at
		}
		return time.Now()
	}}); err != nil {
		t.Fatal(err)
	}
	b.run = b.e.reconcileBankNightly(b.sim, b.marks, b.e.cfg.CollectNumber, time.Second)
	return b
}

// nights runs one nightly job's runs by hand, on an engine of its own.
type nights struct {
	e    *Engine
	tm   *timers.Timers
	ctx  context.Context
	run  nightlyRun
	logs string // what the last night logged
}

// night runs the nightly run of [from, to) and returns the first run it
// recorded; false if it recorded none.
func (n *nights) night(t *testing.T, from, to time.Time) (api.ReconcileReply, bool) {
	t.Helper()
	if runs := n.runs(t, from, to); len(runs) > 0 {
		return runs[0], true
	}
	return api.ReconcileReply{}, false
}

// runs runs the nightly run of [from, to) and returns the runs it
// recorded, in order.
func (n *nights) runs(t *testing.T, from, to time.Time) []api.ReconcileReply {
	t.Helper()
	var logs testenv.SyncBuffer
	wait, err := n.run(n.ctx, zerolog.New(&logs), from, to)
	n.logs = logs.String()
	if wait != 0 || err != nil {
		t.Fatalf("the run of %s: wait %v, %v (logged %s)", from, wait, err, n.logs)
	}
	var runs []api.ReconcileReply
	for line := range strings.Lines(n.logs) {
		var l struct {
			RunID string `json:"run_id"`
		}
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("the run of %s logged %q: %v", from, line, err)
		}
		if l.RunID != "" {
			rep, err := n.e.Commands.Deposits.Reconciliation(n.ctx, l.RunID)
			if err != nil {
				t.Fatal(err)
			}
			runs = append(runs, rep)
		}
	}
	return runs
}

// logged reports whether the last night logged a line at level holding
// msg.
func (n *nights) logged(level, msg string) bool {
	for line := range strings.Lines(n.logs) {
		if strings.Contains(line, `"level":"`+level+`"`) && strings.Contains(line, msg) {
			return true
		}
	}
	return false
}

// record records a deposit, as the scanner or an import would; its ID.
func (b *bankNights) record(t *testing.T, txn, account string, amount int64, at time.Time) string {
	t.Helper()
	rep, err := b.e.Commands.Deposits.RecordDeposit(b.ctx, commands.Meta{Command: api.DepositRecord.Subject, Actor: "test"},
		api.RecordDepositRequest{BankTxnID: txn, AccountNumber: account, DepositorName: "김은행", Amount: amount, DepositedAt: at})
	if err != nil {
		t.Fatalf("record %s: %v", txn, err)
	}
	return rep.DepositID
}

// transfer makes a transfer of 12,000 won to account at the bank at at,
// and records its deposit.
func (b *bankNights) transfer(t *testing.T, account string, at time.Time) {
	t.Helper()
	b.clock.Store(&at)
	defer b.clock.Store(nil)
	tx, err := b.sim.Transfer("김은행", 12000, account)
	if err != nil {
		t.Fatal(err)
	}
	b.record(t, tx.BankTxnID, tx.AccountNumber, tx.Amount, tx.DepositedAt)
}

// partsOf makes a run's parts hold at most lines lines until t ends.
func partsOf(t *testing.T, lines int) {
	nightlyLines = lines
	t.Cleanup(func() { nightlyLines = api.MaxReconcileLines })
}

// scanned advances the collection account's scan watermark to now.
func (b *bankNights) scanned(t *testing.T) {
	t.Helper()
	if err := b.marks.Advance(b.ctx, b.e.cfg.CollectNumber, time.Now()); err != nil {
		t.Fatal(err)
	}
}

// nightlyEngine starts an engine with its own embedded server (fast, no
// HTTP) for a nightly test, and opens its timers; ctx ends with the test,
// or after two minutes.
func nightlyEngine(t *testing.T, opts ...func(*Config)) (*Engine, context.Context, jetstream.JetStream, *timers.Timers) {
	t.Helper()
	cfg := Defaults()
	cfg.DataDir, cfg.Listen, cfg.HTTPListen, cfg.Durability = filepath.Join(t.TempDir(), "data"), "127.0.0.1:0", "off", "fast"
	for _, o := range opts {
		o(&cfg)
	}
	e, err := Start(context.Background(), cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Stop(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	js, err := jetstream.New(e.nc)
	if err != nil {
		t.Fatal(err)
	}
	tm, err := timers.Open(ctx, js, timers.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return e, ctx, js, tm
}

// interruptAfterFirstPart runs the nightly run of [from, to) until it
// records its first part, and returns that part's run ID.
func (b *nights) interruptAfterFirstPart(t *testing.T, from, to time.Time) string {
	t.Helper()
	ctx, cancel := context.WithCancel(b.ctx)
	defer cancel()
	var first string
	if _, err := b.run(ctx, zerolog.New(writerFunc(func(p []byte) {
		var l struct {
			RunID string `json:"run_id"`
		}
		if json.Unmarshal(p, &l) == nil && l.RunID != "" && first == "" {
			first = l.RunID
			cancel()
		}
	})), from, to); err == nil || first == "" {
		t.Fatalf("the interrupted attempt of %s: %v, first part %q", from, err, first)
	}
	return first
}

// compared returns the bank_txn_ids the nightly runs recorded so far
// list as matched or missing in the ledger; it fails t on any other
// finding than the one a day split within an instant makes (the later
// part finds the earlier part's transfers of that instant missing at the
// bank, which that part matched).
func (b *bankNights) compared(t *testing.T) map[string]int {
	t.Helper()
	last, err := b.e.Events.LastSeq(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.e.Runner.WaitFor(b.ctx, last); err != nil {
		t.Fatal(err)
	}
	runs, _, err := b.e.Models.ReconcileRuns(1000, "")
	if err != nil {
		t.Fatal(err)
	}
	seen, missing := map[string]int{}, map[string]api.ReconcileReply{}
	for _, r := range runs {
		rep, err := b.e.Commands.Deposits.Reconciliation(b.ctx, string(r.RunID))
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range slices.Concat(rep.Matched, rep.MissingInLedger) {
			seen[it.BankTxnID]++
		}
		for _, it := range rep.MissingAtBank {
			missing[it.BankTxnID] = rep
		}
		if n := len(rep.MissingAtBank) + len(rep.MissingInLedger); rep.Findings != n {
			t.Errorf("run %s over %+v: %d findings, %d of them missing", rep.RunID, rep.Period, rep.Findings, n)
		}
	}
	for txn, rep := range missing {
		if seen[txn] == 0 {
			t.Errorf("run %s over %+v finds %s missing at the bank, which no run compared with the bank's line", rep.RunID, rep.Period, txn)
		}
	}
	return seen
}

// More transfers share an instant than a run holds, at the start of a
// night's period: the first part (from the period's start to that
// instant) is recorded, then the attempt ends. Handed again, the run goes
// on within that instant: its first part is not sent again over another
// period (refused: a dead letter), and every transfer of the instant is
// compared.
func TestNightlyBankRunResumesWithinAnInstantItsFirstPartShared(t *testing.T) {
	b := newBankNights(t)
	partsOf(t, 2)
	e, day0, day1 := b.e, b.day0, b.day1
	for range 3 {
		b.transfer(t, e.cfg.CollectNumber, day0.Add(time.Hour))
	}
	b.scanned(t)
	b.interruptAfterFirstPart(t, day0, day1)
	b.night(t, day0, day1) // handed again
	seen := b.compared(t)
	if len(seen) != 3 {
		t.Fatalf("the transfers compared: %v, want all three of the instant", seen)
	}
}

// A night's first part ends within an instant more transfers share than a
// run holds, and the attempt ends there; the next night's run, starting
// where that part ended, compares the rest of that instant's transfers.
func TestNightlyBankRunAfterAPartEndingWithinAnInstant(t *testing.T) {
	b := newBankNights(t)
	partsOf(t, 2)
	e, day0, day1, day2 := b.e, b.day0, b.day1, b.day2
	for range 3 {
		b.transfer(t, e.cfg.CollectNumber, day0.Add(time.Hour))
	}
	b.transfer(t, e.cfg.CollectNumber, day1.Add(time.Hour))
	b.scanned(t)
	b.interruptAfterFirstPart(t, day0, day1)
	// The night after runs (the first night's run is dead-lettered, or
	// still waits).
	b.night(t, day1, day2)
	seen := b.compared(t)
	if len(seen) != 4 {
		t.Fatalf("the transfers compared: %v, want the three of the first night's instant and the one of the day after", seen)
	}
}

// payoutNights is a nightly engine and a provider whose report holds the
// lines the test gives it, for the payouts run's tests; the engine records
// no payout, so every line is missing in the ledger. day0, day1 and day2
// are whole hours 72, 48 and 24 hours (about) ago.
type payoutNights struct {
	nights
	mu               sync.Mutex
	lines            []api.PayoutReportLine
	day0, day1, day2 time.Time
	inclusive        bool // the provider's report holds the lines at its end too
}

func newPayoutNights(t *testing.T) *payoutNights {
	t.Helper()
	p := &payoutNights{}
	p.e, p.ctx, _, _ = nightlyEngine(t)
	p.day0 = time.Now().Add(-72 * time.Hour).UTC().Truncate(time.Hour)
	p.day1, p.day2 = p.day0.Add(24*time.Hour), p.day0.Add(48*time.Hour)
	p.run = p.e.reconcilePayoutsNightly(p)
	return p
}

// settled has the provider report a payout settled at at; its ID.
func (p *payoutNights) settled(at time.Time) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	id := fmt.Sprintf("po-%d", len(p.lines)+1)
	p.lines = append(p.lines, api.PayoutReportLine{PayoutID: id, Status: "settled", Amount: 1000, Fee: 500, SettledAt: at})
	return id
}

// Report implements firmbanking.Reporter: the lines of [from, to), in the
// order they were given.
func (p *payoutNights) Report(_ context.Context, from, to time.Time) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var in []api.PayoutReportLine
	for _, l := range p.lines {
		if !l.SettledAt.Before(from) && (l.SettledAt.Before(to) || p.inclusive && l.SettledAt.Equal(to)) {
			in = append(in, l)
		}
	}
	var b strings.Builder
	err := api.WritePayoutReport(&b, in)
	return []byte(b.String()), err
}

// reported returns the payout IDs a run found on its report.
func reported(rep api.ReconcileReply) []string {
	var ids []string
	for _, it := range slices.Concat(rep.Matched, rep.MissingInLedger, rep.AmountMismatch, rep.Duplicate) {
		ids = append(ids, it.PayoutID)
	}
	slices.Sort(ids)
	return ids
}

// A day of more payouts than a run holds is several runs, in settled_at
// order (whatever the report's), each over its part of the day: from the
// day's start, or its first line, to just before the next part's first
// line, or the day's end. Handed again, the night records nothing more.
func TestNightlyPayoutsDayOfMoreThanARunHolds(t *testing.T) {
	p := newPayoutNights(t)
	partsOf(t, 3)
	var at []time.Time
	for h := range 7 {
		at = append(at, p.day1.Add(time.Duration(h+1)*time.Hour))
	}
	ids := map[time.Time]string{}
	for _, i := range []int{6, 0, 1, 5, 2, 3, 4} { // not in time order
		ids[at[i]] = p.settled(at[i])
	}
	runs := p.runs(t, p.day1, p.day2)
	want := []struct {
		from, to time.Time
		lines    []time.Time
	}{
		{p.day1, at[3].Add(-time.Nanosecond), at[0:3]},
		{at[3], at[6].Add(-time.Nanosecond), at[3:6]},
		{at[6], p.day2.Add(-time.Nanosecond), at[6:7]},
	}
	if len(runs) != len(want) {
		t.Fatalf("%d runs, want %d", len(runs), len(want))
	}
	for i, w := range want {
		var lines []string
		for _, a := range w.lines {
			lines = append(lines, ids[a])
		}
		slices.Sort(lines)
		r := runs[i]
		if r.Period == nil || !r.Period.From.Equal(w.from) || !r.Period.To.Equal(w.to) || !slices.Equal(reported(r), lines) || r.Findings != len(lines) {
			t.Errorf("run %d: period %+v, lines %v, %d findings; want %s to %s, %v", i, r.Period, reported(r), r.Findings, w.from, w.to, lines)
		}
	}
	if runs := p.runs(t, p.day1, p.day2); len(runs) != 0 {
		t.Fatalf("the night handed again recorded %d runs", len(runs))
	}
}

// A payout the provider reports twice in a day of several runs is one
// run's duplicate, wherever the day's parts would have ended: that run
// ends before its first line rather than between its two. Each run used
// to take its line for the only one, and match it.
func TestNightlyPayoutsKeepsADuplicateInOneRun(t *testing.T) {
	p := newPayoutNights(t)
	partsOf(t, 3)
	var ids []string
	for h := range 6 {
		ids = append(ids, p.settled(p.day1.Add(time.Duration(h+1)*time.Hour)))
	}
	p.mu.Lock()
	p.lines[3].PayoutID = ids[2] // the 3rd and 4th lines: runs of 3 would part them
	p.mu.Unlock()
	runs := p.runs(t, p.day1, p.day2)
	var dup []string
	for i, r := range runs {
		for _, it := range r.Duplicate {
			dup = append(dup, it.PayoutID)
			if it.StatementCount != 2 {
				t.Errorf("run %d: %s on the report %d times, want 2", i, it.PayoutID, it.StatementCount)
			}
		}
		for _, it := range slices.Concat(r.Matched, r.MissingInLedger, r.AmountMismatch) {
			if it.PayoutID == ids[2] {
				t.Errorf("run %d took %s, reported twice, for a payout reported once", i, ids[2])
			}
		}
	}
	if !slices.Equal(dup, []string{ids[2]}) || len(runs) < 2 {
		t.Fatalf("%d runs, duplicates %v; want several runs and %s a duplicate once", len(runs), dup, ids[2])
	}
}

// A night's payouts run that has not finished (the provider down, a dead
// letter) is overtaken by the next night's, which covers its day too, and
// records nothing when it runs after all; a day without payouts at the
// provider records no run, and the next night covers it.
func TestNightlyPayoutsRunOvertakenCoversTheDayBefore(t *testing.T) {
	p := newPayoutNights(t)
	var day [6]time.Time // the last ends about now
	for i := range day {
		day[i] = p.day2.Add(time.Duration(i-4) * 24 * time.Hour)
	}
	first := p.settled(day[0].Add(time.Hour))
	second := p.settled(day[1].Add(time.Hour))
	third := p.settled(day[2].Add(time.Hour))
	if rep, ok := p.night(t, day[0], day[1]); !ok || !slices.Equal(reported(rep), []string{first}) {
		t.Fatalf("the first night: %v, %+v", ok, rep)
	}
	rep, ok := p.night(t, day[2], day[3])
	if !ok || !slices.Equal(reported(rep), []string{second, third}) || rep.Period == nil || !rep.Period.From.Equal(day[1]) {
		t.Fatalf("the third night run before the second: recorded %v, %+v; want the payouts of both days, from %s", ok, rep, day[1])
	}
	if rep, ok := p.night(t, day[1], day[2]); ok {
		t.Fatalf("the second night, run after the third covered it, recorded %+v", rep)
	}
	// Day 3: no payout at the provider. Day 4's night covers it.
	if rep, ok := p.night(t, day[3], day[4]); ok {
		t.Fatalf("a day without payouts recorded %+v", rep)
	}
	fourth := p.settled(day[4].Add(time.Hour))
	if rep, ok := p.night(t, day[4], day[5]); !ok || !slices.Equal(reported(rep), []string{fourth}) || !rep.Period.From.Equal(day[3]) {
		t.Fatalf("the night after a day without payouts: %v, %+v; want from %s", ok, rep, day[3])
	}
}

// A payouts run interrupted after its first part goes on from where that
// part ended when handed again.
func TestNightlyPayoutsRunResumesAfterItsRecordedParts(t *testing.T) {
	p := newPayoutNights(t)
	partsOf(t, 2)
	var ids []string
	for h := range 3 {
		ids = append(ids, p.settled(p.day1.Add(time.Duration(h+1)*time.Hour)))
	}
	first := p.interruptAfterFirstPart(t, p.day1, p.day2)
	rep, err := p.e.Commands.Deposits.Reconciliation(p.ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(reported(rep), ids[:2]) {
		t.Fatalf("the first part: %+v", rep)
	}
	runs := p.runs(t, p.day1, p.day2)
	if len(runs) != 1 || !slices.Equal(reported(runs[0]), ids[2:]) {
		t.Fatalf("the attempt after it recorded %+v; want the third payout alone", runs)
	}
}

// A day of 10,001 payouts is two runs, of 10,000 and of 1 (each lists at
// most 1,000 items of a category, and counts them all).
func TestNightlyPayoutsDayOfMoreThanTenThousand(t *testing.T) {
	p := newPayoutNights(t)
	for i := range api.MaxReconcileLines + 1 {
		p.settled(p.day1.Add(time.Hour + time.Duration(i)*time.Second))
	}
	runs := p.runs(t, p.day1, p.day2)
	if len(runs) != 2 || runs[0].Lines != api.MaxReconcileLines || runs[0].Findings != api.MaxReconcileLines || runs[1].Lines != 1 {
		var lines []int
		for _, r := range runs {
			lines = append(lines, r.Lines)
		}
		t.Fatalf("%d runs of %v lines", len(runs), lines)
	}
}

// providerNights is a nightly payouts run on an engine that pays out
// through a fake provider (opts; token and fee set here), the report's
// source too, with a wallet holding 100,000 won since from.
type providerNights struct {
	nights
	from time.Time
}

func newProviderNights(t *testing.T, opts firmbanking.FakeOptions) *providerNights {
	t.Helper()
	opts.Token, opts.Fee = "test", 500
	srv := httptest.NewServer(firmbanking.NewFakeService(opts).Handler())
	t.Cleanup(srv.Close)
	w := &providerNights{from: time.Now().Add(-time.Minute)}
	w.e, w.ctx, _, _ = nightlyEngine(t, func(c *Config) {
		c.FirmbankURL, c.FirmbankToken, c.FirmbankStatusLag = srv.URL, "test", Duration(50*time.Millisecond)
	})
	w.run = w.e.reconcilePayoutsNightly(&firmbanking.Client{BaseURL: srv.URL, Token: "test"})
	dep, err := w.e.Commands.Deposits.RecordDeposit(w.ctx, providerMeta, api.RecordDepositRequest{BankTxnID: "FUND-1", AccountNumber: w.e.cfg.CollectNumber,
		DepositorName: "김지갑", Amount: 100000, DepositedAt: w.from})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.e.Commands.Deposits.ResolveDeposit(w.ctx, providerMeta, api.ResolveDepositRequest{DepositID: dep.DepositID, Action: domain.ResolveRefundToWallet, UserID: "u-wallet"}); err != nil {
		t.Fatal(err)
	}
	return w
}

var providerMeta = commands.Meta{Command: "test", Actor: "test"}

// withdraw pays amount out of the wallet to account; the payout's ID.
func (w *providerNights) withdraw(t *testing.T, amount int64, account string) string {
	t.Helper()
	rep, err := w.e.Commands.Wallets.Withdraw(w.ctx, providerMeta, api.WithdrawRequest{UserID: "u-wallet", Amount: amount, PayoutID: "po_" + w.e.Commands.Wallets.NewID(),
		BankAccount: domain.BankAccount{Bank: "신한은행", Number: account, Holder: "김지갑"}})
	if err != nil {
		t.Fatal(err)
	}
	return rep.PayoutID
}

// A day's payouts split into parts across a burst: the payouts of the
// later part, recorded final just after the earlier part's end, are
// compared by their own part, not carried by the earlier one as timing
// differences (a burst of thousands would not fit one run). Real payouts,
// made through the provider the report comes from.
func TestNightlyPayoutsPartsAcrossABurst(t *testing.T) {
	w := newProviderNights(t, firmbanking.FakeOptions{})
	var ids []string
	for i := range 4 {
		ids = append(ids, w.withdraw(t, int64(1000+i), "110-123-456789"))
	}
	testenv.CheckFor(t, 30*time.Second, func() error {
		for _, id := range ids {
			if v, ok, err := w.e.Models.Payout(id); err != nil || !ok || v.Status != "settled" {
				return fmt.Errorf("payout %s: %+v, %v", id, v, err)
			}
		}
		return nil
	})
	partsOf(t, 2)
	runs := w.runs(t, w.from, time.Now())
	if len(runs) != 2 {
		t.Fatalf("%d runs, want 2", len(runs))
	}
	for i, r := range runs {
		if len(r.Matched) != 2 || r.Findings != 0 || len(r.TimingDifference) != 0 {
			t.Errorf("part %d over %+v: matched %v, %d findings, timing differences %v", i, r.Period, reported(r), r.Findings, r.TimingDifference)
		}
	}
}

// A payout the provider refused and never took (failed "refused: …",
// its money returned) is on none of its reports: a day whose only payout
// it is has nothing to compare, and says so at info, not as payouts the
// provider left out ("ask the provider").
func TestNightlyPayoutsLeaveARefusedPayoutOut(t *testing.T) {
	const refused = "110-000-000000"
	w := newProviderNights(t, firmbanking.FakeOptions{RefuseAccounts: []string{refused}})
	id := w.withdraw(t, 1000, refused)
	testenv.CheckFor(t, 30*time.Second, func() error {
		if v, ok, err := w.e.Models.Payout(id); err != nil || !ok || !domain.PayoutNeverTaken(domain.PayoutStatus(v.Status), v.Failure) {
			return fmt.Errorf("payout %s: %+v, %v", id, v, err)
		}
		return nil
	})
	if runs := w.runs(t, w.from, time.Now()); len(runs) != 0 {
		t.Fatalf("%d runs of a day without a payout the provider took", len(runs))
	}
	if w.logged("error", "reported no payouts") || !w.logged("info", "no payouts that day") {
		t.Fatalf("a day whose only payout the provider refused logged:\n%s", w.logs)
	}
}

// A nightly payouts run recorded before the runs were sent with their day
// (by an engine before projection reconciliations 3: its period is its
// report's first to last line) is where the first night after the upgrade
// starts. The line of that instant, the whole of that run's report, is
// not sent again over the new night's period (refused: a dead letter
// every night until the provider reports another payout): a quiet day
// records no run, and the next run compares the day's payouts alone.
func TestNightlyPayoutsAfterARunWithoutItsDay(t *testing.T) {
	p := newPayoutNights(t)
	old := p.settled(p.day0.Add(time.Hour))
	data, err := p.Report(p.ctx, p.day0, p.day1)
	if err != nil {
		t.Fatal(err)
	}
	req, err := api.ParsePayoutReport(data)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := p.e.server.ReconcilePayouts(p.ctx, commands.Meta{Command: "timer." + timerReconcilePayouts, Actor: domain.ActorTimer}, req)
	if err != nil || !slices.Equal(reported(rep), []string{old}) {
		t.Fatalf("the run before the upgrade: %+v, %v", rep, err)
	}
	if rep, ok := p.night(t, p.day1, p.day2); ok {
		t.Fatalf("a day without payouts after it recorded %+v", rep)
	}
	next := p.settled(p.day2.Add(time.Hour))
	rep, ok := p.night(t, p.day2, p.day2.Add(24*time.Hour))
	if !ok || !slices.Equal(reported(rep), []string{next}) || rep.Period == nil || !rep.Period.From.Equal(p.day0.Add(time.Hour+time.Nanosecond)) {
		t.Fatalf("the night after: %v, %+v; want %s alone, from just after the earlier run's end", ok, rep, next)
	}
}

// A provider whose report holds the payouts settled at its end too (it
// takes the period's end as inclusive): such a line is left to the night
// of its time, said at warn, rather than sent outside its run's period
// (refused: a dead letter).
func TestNightlyPayoutsLineAtTheEndOfThePeriod(t *testing.T) {
	p := newPayoutNights(t)
	p.inclusive = true
	inDay := p.settled(p.day1.Add(time.Hour))
	atEnd := p.settled(p.day2)
	rep, ok := p.night(t, p.day1, p.day2)
	if !ok || !slices.Equal(reported(rep), []string{inDay}) || !p.logged("warn", "outside the period asked for") {
		t.Fatalf("the night: %v, %+v; logged\n%s", ok, rep, p.logs)
	}
	if rep, ok := p.night(t, p.day2, p.day2.Add(time.Hour)); !ok || !slices.Equal(reported(rep), []string{atEnd}) {
		t.Fatalf("the night after: %v, %+v", ok, rep)
	}
}
