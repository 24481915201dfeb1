package projections

import "errors"

var (
	// ErrGap means a batch does not continue right after the checkpoint: a
	// commit is missing. Nothing of the batch was applied. Streams never have
	// gaps, so this is a bug in the caller.
	ErrGap = errors.New("projections: sequence gap")
	// ErrLocked means another process (or another Store in this one) holds the
	// read-model file open. Open gives up after one second instead of waiting.
	ErrLocked = errors.New("projections: read-model file is in use")
	// ErrExists is returned by Replay when its target path already exists: a
	// replay always starts from an empty file.
	ErrExists = errors.New("projections: replay target exists")
	// ErrClosed is returned by a Store's methods after Close.
	ErrClosed = errors.New("projections: store closed")
	// ErrInconsistent means an event does not fit the read model, such as a
	// cancellation of an order that was never submitted. Nothing of the batch
	// was applied.
	ErrInconsistent = errors.New("projections: event does not fit the read model")
	// ErrBadCursor is returned for a page cursor this store did not hand out.
	ErrBadCursor = errors.New("projections: invalid cursor")
)
