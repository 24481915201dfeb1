package engineproc

import "errors"

var (
	// ErrNotReady means the process could not be started, exited, or did
	// not answer 200 on /readyz in time; the message ends with its log.
	ErrNotReady = errors.New("engineproc: engine not ready")

	// ErrNotRunning means the call needs a running process.
	ErrNotRunning = errors.New("engineproc: not running")

	// ErrBuild means the bankbook binary could not be built.
	ErrBuild = errors.New("engineproc: build failed")
)
