package soak

import "errors"

var (
	// ErrChecksFailed means the run completed and at least one check failed:
	// the Report says which.
	ErrChecksFailed = errors.New("soak: checks failed")

	// ErrEngine means the engine process could not be started or did not
	// become ready (after a kill, that is a finding too: the Report says so).
	ErrEngine = errors.New("soak: engine not ready")

	// ErrBuild means the bankbook binary could not be built.
	ErrBuild = errors.New("soak: build failed")
)
