package loadgen

import "errors"

var (
	// ErrEngine means an engine (or bare server) process could not be
	// started or did not become ready.
	ErrEngine = errors.New("loadgen: engine not ready")

	// ErrRequest means a measured request failed (an error reply or a
	// timeout): the run stops, since the figure would be wrong.
	ErrRequest = errors.New("loadgen: request failed")
)
