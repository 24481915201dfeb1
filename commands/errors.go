package commands

import "errors"

var (
	// ErrContention means the aggregate kept changing under the command and
	// the conflict retries ran out. Nothing was written; retry later (409).
	ErrContention = errors.New("commands: too many concurrent changes to the same aggregate")
	// ErrNotImplemented is returned for parts of the API that this engine
	// version does not provide yet (501).
	ErrNotImplemented = errors.New("commands: not implemented")
)
