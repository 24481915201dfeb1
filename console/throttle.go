package console

import (
	"slices"
	"sync"
	"time"
)

// maxThrottleKeys bounds the keys a throttle holds by default. Past it,
// the keys with the fewest attempts are forgotten first: a scan of many
// names or addresses, one attempt each, cannot fill memory, nor push out
// a key that is being attacked in earnest.
const maxThrottleKeys = 50_000

// throttle counts login attempts per name and per client address within a
// window; a key with max attempts in the window is locked out until its
// oldest counted attempt leaves the window.
//
// An attempt is counted before its secret is checked (begin), atomically
// with the lockout check, so that logins sent in parallel cannot all pass
// the check before any of their failures is counted. An attempt that
// succeeds, or that failed for a reason other than its secret, is taken
// back (forgive).
type throttle struct {
	max     int
	window  time.Duration
	now     func() time.Time
	maxKeys int

	mu       sync.Mutex
	failures map[string][]time.Time
}

func newThrottle(max int, window time.Duration, now func() time.Time) *throttle {
	return &throttle{max: max, window: window, now: now, maxKeys: maxThrottleKeys, failures: map[string][]time.Time{}}
}

// begin counts an attempt against every key unless one of them is locked
// out; then it counts nothing and says how long the lockout lasts. The
// returned time names the attempt for forgive.
func (t *throttle) begin(keys ...string) (at time.Time, wait time.Duration) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if wait = t.lockedForLocked(now, keys...); wait > 0 {
		return time.Time{}, wait
	}
	for _, k := range keys {
		t.failures[k] = append(t.pruneLocked(k, now), now)
	}
	t.boundLocked(now)
	return now, 0
}

// forgive takes back the attempt begin counted at at against keys.
func (t *throttle) forgive(at time.Time, keys ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		fs := t.failures[k]
		if i := slices.IndexFunc(fs, at.Equal); i >= 0 {
			fs = slices.Delete(fs, i, i+1)
		}
		if len(fs) == 0 {
			delete(t.failures, k)
		} else {
			t.failures[k] = fs
		}
	}
}

// lockedFor reports how long the first locked key stays locked; 0 when none is.
func (t *throttle) lockedFor(keys ...string) time.Duration {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lockedForLocked(now, keys...)
}

func (t *throttle) lockedForLocked(now time.Time, keys ...string) time.Duration {
	var wait time.Duration
	for _, k := range keys {
		fs := t.pruneLocked(k, now)
		if len(fs) >= t.max {
			wait = max(wait, fs[len(fs)-t.max].Add(t.window).Sub(now))
		}
	}
	return wait
}

// boundLocked keeps the map within maxKeys, forgetting the keys with the
// fewest attempts first.
func (t *throttle) boundLocked(now time.Time) {
	if len(t.failures) <= t.maxKeys {
		return
	}
	for k := range t.failures {
		t.pruneLocked(k, now)
	}
	for n := 1; len(t.failures) > t.maxKeys; n++ {
		for k, fs := range t.failures {
			if len(fs) <= n && len(t.failures) > t.maxKeys {
				delete(t.failures, k)
			}
		}
	}
}

// succeed forgets the failures of key: the name or the device that logged
// in (not the address).
func (t *throttle) succeed(key string) {
	t.mu.Lock()
	delete(t.failures, key)
	t.mu.Unlock()
}

// keys is how many keys the throttle holds (for tests).
func (t *throttle) keys() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.failures)
}

func (t *throttle) pruneLocked(k string, now time.Time) []time.Time {
	fs := t.failures[k]
	i := 0
	for i < len(fs) && now.Sub(fs[i]) >= t.window {
		i++
	}
	fs = fs[i:]
	if len(fs) == 0 {
		delete(t.failures, k)
		return nil
	}
	t.failures[k] = fs
	return fs
}
