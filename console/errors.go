package console

import "errors"

var (
	// ErrInvalidConfig means a Config failed Validate; the wrapped errors say
	// which fields.
	ErrInvalidConfig = errors.New("console: invalid config")
	// ErrBadCredentials means a login named no known identity or gave a
	// secret that does not authenticate it. The login page says the same for
	// both, on purpose.
	ErrBadCredentials = errors.New("console: name or secret not accepted")
	// ErrRoleRefused means the identity authenticated but its role may not
	// use the console (only operator and auditor may).
	ErrRoleRefused = errors.New("console: role may not use the console")
	// ErrTooManySessions means a login was refused because the console
	// holds Config.MaxSessions sessions already.
	ErrTooManySessions = errors.New("console: too many open sessions")
	// ErrClosed means the console was closed: it starts no more sessions.
	ErrClosed = errors.New("console: closed")
)
