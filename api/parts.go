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
