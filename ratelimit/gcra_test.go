package ratelimit

import (
	"errors"
	"math"
	"testing"
	"time"
)

const ms = int64(time.Millisecond)

// TestReserveSchedule: given a schedule, when a reservation is made at
// now, then it gets the slot GCRA allows, or a wait and no change.
func TestReserveSchedule(t *testing.T) {
	p := newParams(Limit{Rate: 5, Margin: 0.05}) // T = 210ms
	p3 := newParams(Limit{Rate: 5, Burst: 3, Margin: 0.05})
	if p.interval != 210*ms || p.tau != 0 || p3.tau != 420*ms {
		t.Fatalf("interval %d tau %d/%d, want 210ms, 0 and 420ms", p.interval, p.tau, p3.tau)
	}
	for _, tc := range []struct {
		name    string
		p       params
		st      state
		now     int64
		maxWait time.Duration
		slot    int64
		tat     int64
		wait    time.Duration
	}{
		{name: "empty schedule: now", p: p, now: 1000 * ms, slot: 1000 * ms, tat: 1210 * ms},
		{name: "idle schedule: now", p: p, st: state{TAT: 500 * ms}, now: 1000 * ms, slot: 1000 * ms, tat: 1210 * ms},
		{name: "busy: the TAT, within maxWait", p: p, st: state{TAT: 1100 * ms}, now: 1000 * ms, maxWait: 100 * time.Millisecond, slot: 1100 * ms, tat: 1310 * ms},
		{name: "busy beyond maxWait: wait", p: p, st: state{TAT: 1100 * ms}, now: 1000 * ms, maxWait: 99 * time.Millisecond, wait: 100 * time.Millisecond},
		{name: "busy, maxWait 0: wait", p: p, st: state{TAT: 1000*ms + 1}, now: 1000 * ms, wait: 1},
		{name: "negative maxWait is 0", p: p, st: state{TAT: 1000 * ms}, now: 1000 * ms, maxWait: -time.Second, slot: 1000 * ms, tat: 1210 * ms},
		{name: "paused: not before the pause", p: p, st: state{TAT: 900 * ms, PausedUntil: 1500 * ms}, now: 1000 * ms, maxWait: time.Second, slot: 1500 * ms, tat: 1710 * ms},
		{name: "paused beyond maxWait", p: p, st: state{PausedUntil: 1500 * ms}, now: 1000 * ms, maxWait: 100 * time.Millisecond, wait: 500 * time.Millisecond},
		{name: "burst: early within tolerance", p: p3, st: state{TAT: 1400 * ms}, now: 1000 * ms, slot: 1000 * ms, tat: 1610 * ms},
		{name: "burst used up: wait", p: p3, st: state{TAT: 1430 * ms}, now: 1000 * ms, wait: 10 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next, slot, wait := tc.p.reserve(tc.st, tc.now, tc.maxWait)
			if wait != tc.wait {
				t.Fatalf("wait %v, want %v", wait, tc.wait)
			}
			if wait > 0 {
				if next != tc.st {
					t.Fatalf("state changed to %+v while waiting", next)
				}
				return
			}
			if slot != tc.slot || next.Slot != slot || next.TAT != tc.tat || next.PausedUntil != tc.st.PausedUntil {
				t.Fatalf("slot %d, next %+v; want slot %d, TAT %d", slot, next, tc.slot, tc.tat)
			}
		})
	}
}

// TestSaturatedSlotsAreOneIntervalApart: reservations made faster than the
// rate get consecutive slots exactly one emission interval apart, and no
// rolling second holds more than Rate of them.
func TestSaturatedSlotsAreOneIntervalApart(t *testing.T) {
	for _, rate := range []float64{1, 5, 7, 100} {
		p := newParams(Limit{Rate: rate})
		var st state
		var slots []int64
		now := int64(1_000_000)
		for range 3 * int(rate) {
			next, slot, wait := p.reserve(st, now, time.Hour)
			if wait != 0 {
				t.Fatalf("rate %v: wait %v within maxWait", rate, wait)
			}
			if n := len(slots); n > 0 && slot-slots[n-1] != p.interval {
				t.Fatalf("rate %v: slots %d apart, want %d", rate, slot-slots[n-1], p.interval)
			}
			slots, st = append(slots, slot), next
			now += p.interval / 3 // asking three times as fast as the rate
		}
		if got := maxInWindow(slots, int64(time.Second)); got > int(rate) {
			t.Fatalf("rate %v: %d slots in a rolling second", rate, got)
		}
	}
}

// maxInWindow is the most of the sorted times in any half-open window of
// length w.
func maxInWindow(ts []int64, w int64) int {
	best, j := 0, 0
	for i := range ts {
		for ts[i]-ts[j] >= w {
			j++
		}
		best = max(best, i-j+1)
	}
	return best
}

// TestPauseMovesForwardOnly: a pause moves pause-until and the schedule
// forward, uses up the burst, and never moves either back.
func TestPauseMovesForwardOnly(t *testing.T) {
	p := newParams(Limit{Rate: 5, Burst: 3})
	st, changed := p.pause(state{TAT: 1100 * ms, Slot: 900 * ms}, 1000*ms, 2*time.Second)
	if !changed || st.PausedUntil != 3000*ms || st.TAT != 3000*ms+p.tau || st.Slot != 0 {
		t.Fatalf("pause: %+v changed %v; want paused until 3000ms, TAT 3000ms+tau", st, changed)
	}
	if _, changed := p.pause(st, 1000*ms, time.Second); changed {
		t.Fatal("a shorter pause changed the state")
	}
	// After the pause, slots are one interval apart: no burst.
	_, slot, _ := p.reserve(st, 3000*ms, 0)
	next, _, _ := p.reserve(st, 3000*ms, time.Hour)
	_, slot2, _ := p.reserve(next, 3000*ms, time.Hour)
	if slot != 3000*ms || slot2-slot != p.interval {
		t.Fatalf("slots after the pause at %d and %d, want 3000ms and one interval later", slot, slot2)
	}
	// A longer pause than the schedule moves both.
	st2, changed := p.pause(state{TAT: 9000 * ms}, 1000*ms, 500*time.Millisecond)
	if !changed || st2.TAT != 9000*ms || st2.PausedUntil != 1500*ms {
		t.Fatalf("pause behind the schedule: %+v, want TAT kept and pause-until set", st2)
	}
}

func TestDecodeState(t *testing.T) {
	st := state{TAT: 5, Slot: 4, PausedUntil: 3, Rate: 2.5, Burst: 2, By: "x-1"}
	got, err := decodeState(encodeState(st))
	if err != nil || got != st {
		t.Fatalf("round trip %+v, %v; want %+v", got, err, st)
	}
	for _, bad := range []string{"", "{", `{"tat":-1}`, `"x"`} {
		if _, err := decodeState([]byte(bad)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("decode %q: %v, want ErrCorrupt", bad, err)
		}
	}
}

func TestLimitValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		l    Limit
		ok   bool
	}{
		{"defaults", Limit{Rate: 5}, true},
		{"all set", Limit{Rate: 0.5, Burst: 4, Margin: 0.2}, true},
		{"zero rate", Limit{}, false},
		{"negative rate", Limit{Rate: -1}, false},
		{"infinite rate", Limit{Rate: math.Inf(1)}, false},
		{"negative burst", Limit{Rate: 1, Burst: -1}, false},
		{"negative margin", Limit{Rate: 1, Margin: -0.1}, false},
		{"margin 1", Limit{Rate: 1, Margin: 1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.l.Validate()
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrInvalidConfig)) {
				t.Fatalf("Validate = %v, want ok %v (errors matching ErrInvalidConfig)", err, tc.ok)
			}
		})
	}
	if got := (Limit{Rate: 5}).Interval(); got != 210*time.Millisecond {
		t.Fatalf("Interval = %v, want 210ms (1s/5 · 1.05)", got)
	}
}
