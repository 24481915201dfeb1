package commands

import "errors"

var (
	// ErrContention means the aggregate kept changing under the command and
	// the conflict retries ran out. Nothing was written; retry later (409).
	ErrContention = errors.New("commands: too many concurrent changes to the same aggregate")
)
