package projections

import (
	"errors"
	"fmt"

	"github.com/bankbook/bankbook/eventstore"
)

var (
	// ErrGap means a batch does not continue right after a projection's
	// checkpoint: a commit is missing. Nothing of the batch was applied.
	// Streams never have gaps, so this is a bug in the caller, or a stream
	// whose files were edited (a message removed). It comes as a *GapError.
	ErrGap = errors.New("projections: sequence gap")
	// ErrLocked means another process (or another Store in this one) holds the
	// read-model file open for writing (or, for Open, open at all). Opening
	// gives up after one second instead of waiting.
	ErrLocked = errors.New("projections: read-model file is in use")
	// ErrExists is returned by Replay when its target path already exists: a
	// replay always starts from an empty file.
	ErrExists = errors.New("projections: replay target exists")
	// ErrBeyondEnd is returned by ReplayWith when ReplayOptions.UntilSeq is
	// beyond the stream's last sequence: there is no such point to replay
	// to (yet).
	ErrBeyondEnd = errors.New("projections: replay end beyond the stream's last sequence")
	// ErrClosed is returned by a Store's methods after Close.
	ErrClosed = errors.New("projections: store closed")
	// ErrInconsistent means an event does not fit the read model, such as a
	// cancellation of an order that was never submitted. Nothing of the batch
	// was applied.
	ErrInconsistent = errors.New("projections: event does not fit the read model")
	// ErrBadCursor is returned for a page cursor this store did not hand out.
	ErrBadCursor = errors.New("projections: invalid cursor")
	// ErrUnknownEvent means a commit holds an event of a type this engine's
	// codec does not know (a newer engine wrote it). Apply no longer fails
	// with it: such a commit is skipped and reported as a SkippedCommit (an
	// engine that knows the type rebuilds and applies it).
	ErrUnknownEvent = errors.New("projections: event type unknown to this engine")
	// ErrReadOnly is returned by Apply (and by Runner.Run) on a Store opened
	// with OpenReadOnly.
	ErrReadOnly = errors.New("projections: read models opened read-only")
	// ErrStale is returned by OpenReadOnly when the file does not hold a
	// registered projection at its version (or is no read-model file at
	// all): the file needs a rebuild, which only a writable Open starts.
	ErrStale = errors.New("projections: read-model file does not match the registered projections")
	// ErrRebuilding is returned by Hash while the projections stand at
	// different checkpoints (some are being rebuilt): no replay has the
	// same content.
	ErrRebuilding = errors.New("projections: projections are at different checkpoints")
	// ErrNotRegistered is returned by a query that needs a projection the
	// Store's registry does not have (a custom Options.Projections).
	ErrNotRegistered = errors.New("projections: query needs a projection that is not registered")
	// ErrInvalidOptions means the projection registry in Options is not
	// valid (see Options.Validate), or ReplayOptions ask for two ends.
	ErrInvalidOptions = errors.New("projections: invalid options")
	// ErrDamaged means the read-model file is not a whole bbolt file: it was
	// truncated, overwritten or is no bbolt file at all. Open and
	// OpenReadOnly detect it before anything reads the data (which would
	// crash the process on a truncated file). The read models are derived
	// data: move the file aside (MoveAside) or delete it, and a writable Open
	// creates a new one that the Runner rebuilds from the event log. The
	// error is a *DamagedError.
	ErrDamaged = errors.New("projections: read-model file is damaged")
)

// DamagedError says which read-model file is damaged and how.
type DamagedError struct {
	Path   string
	Reason string
}

func (e *DamagedError) Error() string {
	return fmt.Sprintf("%v: %s: %s; it holds only data derived from the event log: delete it or move it aside, and the engine rebuilds it from the log",
		ErrDamaged, e.Path, e.Reason)
}

// Is reports whether target is ErrDamaged.
func (e *DamagedError) Is(target error) bool { return target == ErrDamaged }

// CommitError says at which commit a batch failed. Nothing of the batch was
// applied; the commits before Seq could be. It matches its cause
// (ErrInconsistent, ...) with errors.Is.
type CommitError struct {
	Seq       eventstore.Seq
	EventID   string
	EventType string
	// Projection is the projection that refused the event.
	Projection string
	Err        error
}

func (e *CommitError) Error() string {
	if e.Projection != "" {
		return fmt.Sprintf("seq %d event %s (%s), projection %s: %v", e.Seq, e.EventID, e.EventType, e.Projection, e.Err)
	}
	return fmt.Sprintf("seq %d event %s (%s): %v", e.Seq, e.EventID, e.EventType, e.Err)
}

func (e *CommitError) Unwrap() error { return e.Err }

// GapError is ErrGap with where: Projection stood at Checkpoint, and the
// next commit it was handed was Got instead of Checkpoint+1.
type GapError struct {
	Projection string
	Checkpoint eventstore.Seq
	Got        eventstore.Seq
}

func (e *GapError) Error() string {
	return fmt.Sprintf("%v: projection %s at checkpoint %d, next commit expected at %d, got %d", ErrGap, e.Projection, e.Checkpoint, e.Checkpoint+1, e.Got)
}

// Is makes errors.Is(err, ErrGap) true.
func (e *GapError) Is(target error) bool { return target == ErrGap }
