package simlimit

import (
	"sync"
	"time"
)

// Kind is the shape of a limit.
type Kind int

const (
	// Fixed windows aligned on the clock.
	Fixed Kind = iota
	// Rolling windows: any interval of the window's length.
	Rolling
)

// Limiter admits requests at a limited rate.
type Limiter struct {
	kind   Kind
	limit  int
	window time.Duration

	mu sync.Mutex
	// Fixed: the current window's start and its requests.
	start time.Time
	count int
	// Rolling: the times of the last served requests, oldest first, at most
	// limit of them.
	served []time.Time
}

// NewFixed admits at most limit requests per window, windows aligned to
// multiples of window. limit ≤ 0 admits everything; window ≤ 0 means one
// second.
func NewFixed(limit int, window time.Duration) *Limiter { return newLimiter(Fixed, limit, window) }

// NewRolling admits at most limit requests in any interval of length window.
// limit ≤ 0 admits everything; window ≤ 0 means one second.
func NewRolling(limit int, window time.Duration) *Limiter {
	return newLimiter(Rolling, limit, window)
}

func newLimiter(kind Kind, limit int, window time.Duration) *Limiter {
	if window <= 0 {
		window = time.Second
	}
	return &Limiter{kind: kind, limit: limit, window: window}
}

// Limit is the number of requests admitted per window; 0 or less means no
// limit.
func (l *Limiter) Limit() int {
	if l == nil {
		return 0
	}
	return l.limit
}

// Allow reports whether a request arriving at now is served; if not,
// retryAfter is how long until one would be.
func (l *Limiter) Allow(now time.Time) (ok bool, retryAfter time.Duration) {
	if l == nil || l.limit <= 0 {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.kind == Fixed {
		return l.allowFixed(now)
	}
	return l.allowRolling(now)
}

func (l *Limiter) allowFixed(now time.Time) (bool, time.Duration) {
	if start := now.Truncate(l.window); !start.Equal(l.start) {
		l.start, l.count = start, 0
	}
	l.count++
	if l.count <= l.limit {
		return true, 0
	}
	return false, l.start.Add(l.window).Sub(now)
}

func (l *Limiter) allowRolling(now time.Time) (bool, time.Duration) {
	// Forget what left the window (now−window, now].
	cut := now.Add(-l.window)
	drop := 0
	for drop < len(l.served) && !l.served[drop].After(cut) {
		drop++
	}
	l.served = l.served[drop:]
	if len(l.served) < l.limit {
		at := now
		if n := len(l.served); n > 0 && l.served[n-1].After(at) {
			at = l.served[n-1] // the clock stepped back: keep the times in order
		}
		l.served = append(l.served, at)
		return true, 0
	}
	// Full: the oldest served request leaves the window first. (A clock
	// that stepped back still gets a positive wait.)
	return false, max(l.served[0].Add(l.window).Sub(now), time.Nanosecond)
}
