package auth

import "errors"

var (
	// ErrInvalidUser means an identity's name, role or credential is not
	// acceptable (details in the wrapped message).
	ErrInvalidUser = errors.New("auth: invalid user")
	// ErrAuthFile means the --auth-file could not be read or parsed.
	ErrAuthFile = errors.New("auth: auth file")
	// ErrSeedFile means a seed file is unreadable, malformed, or readable by
	// others than its owner.
	ErrSeedFile = errors.New("auth: seed file")
)
