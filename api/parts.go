package api

import "time"

// TimePart is one run of a file reconciled as several: its lines [Start,
// End) in time order, and the part of the file's period it covers (both
// ends inclusive).
type TimePart struct {
	Start, End int
	Period     ReconcilePeriod
}

// TimeParts splits n lines of [from, to), in time order (at), into runs of
// at most limit(start) lines from start on, each covering from its first
// line's time (from, for the first) to just before the next run's first
// line: lines of one instant stay in one run, unless more than a run
// holds share it (then two runs share that instant). A day longer than a
// run holds (the engine's nightly runs), or a file longer than a request
// carries (bankbook reconcile), is reconciled so, run after run.
func TimeParts(n int, at func(i int) time.Time, from, to time.Time, limit func(start int) int) []TimePart {
	var parts []TimePart
	start, first := from, 0
	for first < n {
		l := min(n, first+max(1, limit(first)))
		e := l
		for e < n && e > first+1 && at(e).Equal(at(e-1)) {
			e--
		}
		if e < n && at(e).Equal(at(e-1)) {
			e = l
		}
		end := to.Add(-time.Nanosecond)
		if e < n {
			end = at(e).Add(-time.Nanosecond)
			if last := at(e - 1); last.After(end) {
				end = last
			}
		}
		parts = append(parts, TimePart{Start: first, End: e, Period: ReconcilePeriod{From: start, To: end}})
		if e < n {
			start = at(e)
		}
		first = e
	}
	return parts
}

// SplitKey is a key whose lines are further apart than a run holds: its
// lines First and Last (indexes, in time order) are in different runs,
// each of which takes its line for the only one.
type SplitKey struct {
	Key         string
	First, Last int
}

// KeyedTimeParts is TimeParts keeping the lines of one key (an account's
// bank_txn_id, a payout_id) in one run, which finds them a duplicate: a
// run ends before a repeated key's first line rather than after it. The
// first key whose lines are further apart than a run holds, in two runs
// all the same, is returned too (nil: none).
func KeyedTimeParts(n int, at func(i int) time.Time, key func(i int) string, from, to time.Time, limit func(start int) int) ([]TimePart, *SplitKey) {
	last := make(map[string]int, n)
	for i := range n {
		last[key(i)] = i
	}
	// reach[b] is the last line of a key of the lines before b: a run may
	// end before b only if that is below b.
	reach := make([]int, n+1)
	for i := range n {
		reach[i+1] = max(reach[i], last[key(i)])
	}
	parts := TimeParts(n, at, from, to, func(start int) int {
		l := max(1, limit(start))
		for b := min(n, start+l); b > start; b-- {
			if b == n || reach[b] < b {
				return b - start
			}
		}
		return l
	})
	for _, p := range parts {
		for i := p.Start; i < p.End; i++ {
			if j := last[key(i)]; j >= p.End {
				return parts, &SplitKey{Key: key(i), First: i, Last: j}
			}
		}
	}
	return parts, nil
}
