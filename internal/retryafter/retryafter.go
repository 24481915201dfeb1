// Package retryafter reads HTTP Retry-After headers for bankbook's clients of
// third-party APIs (the bank feed and firm banking), and writes them for the
// simulators of those APIs.
package retryafter

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Parse reads a Retry-After value: delay-seconds (a decimal fraction is
// tolerated) or an HTTP date, relative to now. A date in the past is a zero
// wait; an absent, negative or unreadable value is not a wait at all (false).
// Huge values saturate instead of overflowing; callers cap them as they see fit.
func Parse(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if math.IsNaN(secs) || secs < 0 {
			return 0, false
		}
		if secs > float64(math.MaxInt64/int64(time.Second)) {
			return time.Duration(math.MaxInt64), true
		}
		return time.Duration(secs * float64(time.Second)), true
	}
	if at, err := http.ParseTime(v); err == nil {
		return max(at.Sub(now), 0), true
	}
	return 0, false
}

// Format writes a Retry-After value for a wait of d from now: whole seconds,
// rounded up, or with asDate the HTTP date that many seconds after now.
// Parse(Format(now, d, asDate), now) is d rounded up to a whole second.
func Format(now time.Time, d time.Duration, asDate bool) string {
	secs := int64(math.Ceil(d.Seconds()))
	if asDate {
		return now.Add(time.Duration(secs) * time.Second).UTC().Format(http.TimeFormat)
	}
	return strconv.FormatInt(secs, 10)
}
