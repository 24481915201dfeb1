package server

import "time"

// SetCompleteDelay delays storing the outcome of each command with an
// Idempotency-Key by d, until restore is called.
func SetCompleteDelay(d time.Duration) (restore func()) {
	completeDelay.Store(int64(d))
	return func() { completeDelay.Store(0) }
}
