package audit

import "errors"

var (
	// ErrInvalidOptions means Options cannot run a verification (no Reader).
	ErrInvalidOptions = errors.New("audit: invalid options")
	// ErrCannotRun wraps why a verification could not run to the end: the
	// event stream could not be read, or the live read models could be
	// neither opened nor asked for. A Report with findings is not an error.
	ErrCannotRun = errors.New("audit: verification could not run")
)
