package process

import "errors"

var (
	// ErrNoProvider means a payout cannot be sent: no firm-banking provider
	// is configured. The payout stays requested and the reactor retries.
	ErrNoProvider = errors.New("process: no firm-banking provider is configured")
)
