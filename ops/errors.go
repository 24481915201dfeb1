package ops

import "errors"

var (
	// ErrInvalidConfig means a Config failed Validate; the wrapped errors say
	// which fields.
	ErrInvalidConfig = errors.New("ops: invalid config")
	// ErrRunning means Run was called while the same Server was already
	// running. Run may be called again once the previous Run has returned.
	ErrRunning = errors.New("ops: server already running")
	// ErrListen means Run could not bind its listen address. Nothing was
	// served.
	ErrListen = errors.New("ops: listen")
)
