package ratelimit

import (
	"encoding/json"
	"fmt"
	"time"
)

// state is the value stored under a limiter's key. All times are server
// time in Unix nanoseconds (the clock of the JetStream server that stamps
// the bucket's messages).
type state struct {
	// TAT is GCRA's theoretical arrival time: with Burst 1, the earliest
	// slot the next reservation can get.
	TAT int64 `json:"tat"`
	// Slot is the slot the last reservation got (0 if the last write was a
	// pause).
	Slot int64 `json:"slot,omitempty"`
	// PausedUntil: no slot before it (0 = never paused).
	PausedUntil int64 `json:"paused_until,omitempty"`
	// Rate and Burst are the limit of the last writer, for State.
	Rate  float64 `json:"rate"`
	Burst int     `json:"burst"`
	// By names the write: the writing Store and its call number. It makes
	// the bytes of every write unique, which kvcas needs to recognise a
	// write of its own whose answer was lost.
	By string `json:"by"`
}

// params is a Limit turned into GCRA's quantities, in nanoseconds.
type params struct {
	interval int64 // emission interval T = (1s/Rate)·(1+Margin)
	tau      int64 // tolerance τ = T·(Burst−1)
	rate     float64
	burst    int
	margin   time.Duration // Margin·1s: how late a slot may still be used
}

func newParams(l Limit) params {
	l = l.withDefaults()
	t := max(int64(float64(time.Second)/l.Rate*(1+l.Margin)), 1)
	return params{
		interval: t,
		tau:      t * int64(l.Burst-1),
		rate:     l.Rate,
		burst:    l.Burst,
		margin:   time.Duration(l.Margin * float64(time.Second)),
	}
}

// trusted returns st, or, when st lies further ahead of now than any
// pause (MaxPause) and the reservations made within maxWait of its end
// could have put it (a value written by hand, or by a server whose clock
// ran far ahead and came back), a schedule restarted at now + maxWait,
// after every slot another process may still hold (false). Trusting such
// a value would hold every slot, and every message waiting for one, for
// as long as it says: years.
func (p params) trusted(st state, now int64, maxWait time.Duration) (state, bool) {
	w := int64(min(max(maxWait, 0), MaxPause))
	if st.PausedUntil <= now+int64(MaxPause) && st.TAT <= now+int64(MaxPause)+p.tau+w+p.interval {
		return st, true
	}
	return state{TAT: now + w + p.tau, Rate: p.rate, Burst: p.burst}, false
}

// next is the earliest slot a reservation made at now can get.
func (p params) next(st state, now int64) int64 {
	return max(now, st.TAT-p.tau, st.PausedUntil)
}

// reserve is GCRA with reservations: the slot is the earliest instant at
// or after now that the schedule allows, and the schedule moves on by one
// emission interval past it. If that slot is more than maxWait after now,
// nothing is claimed and wait (> 0) says how far it is.
func (p params) reserve(st state, now int64, maxWait time.Duration) (next state, slot int64, wait time.Duration) {
	slot = p.next(st, now)
	if d := slot - now; d > int64(max(maxWait, 0)) {
		return st, 0, time.Duration(d)
	}
	return state{
		TAT:         max(st.TAT, slot) + p.interval,
		Slot:        slot,
		PausedUntil: st.PausedUntil,
		Rate:        p.rate,
		Burst:       p.burst,
	}, slot, 0
}

// pause moves the pause, and the schedule, to at least now+d: no slot is
// given before it, and the burst allowance is used up, so slots after a
// pause come one emission interval apart. Neither ever moves back; changed
// is false when both were already that far.
func (p params) pause(st state, now int64, d time.Duration) (next state, changed bool) {
	until := now + int64(d)
	next = st
	next.Slot = 0
	next.Rate, next.Burst = p.rate, p.burst
	if until > st.PausedUntil {
		next.PausedUntil, changed = until, true
	}
	if until+p.tau > st.TAT {
		next.TAT, changed = until+p.tau, true
	}
	return next, changed
}

func decodeState(b []byte) (state, error) {
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return state{}, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if st.TAT < 0 || st.PausedUntil < 0 {
		return state{}, fmt.Errorf("%w: negative time", ErrCorrupt)
	}
	return st, nil
}

func encodeState(st state) []byte {
	b, err := json.Marshal(st)
	if err != nil {
		panic(fmt.Sprintf("ratelimit: encode state: %v", err)) // only ints, a finite float and a string
	}
	return b
}
