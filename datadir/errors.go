package datadir

import (
	"errors"
	"fmt"
)

// ErrLocked means another process, or another Lock in this one, holds the
// data directory. It is matched by every *LockedError.
var ErrLocked = errors.New("datadir: data directory is in use")

// LockedError says which data directory is held, and by whom if known.
type LockedError struct {
	// Dir is the data directory.
	Dir string
	// PID is the process ID the holder wrote into the lock file; 0 if the
	// file did not say (the holder is still writing it, or is not bankbook).
	PID int
}

func (e *LockedError) Error() string {
	holder := "another process"
	if e.PID > 0 {
		holder = fmt.Sprintf("process %d", e.PID)
	}
	return fmt.Sprintf("%v: %s is locked by %s (its %s); stop that engine first, or give this one another data directory",
		ErrLocked, e.Dir, holder, LockFile)
}

// Is makes errors.Is(err, ErrLocked) true.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }
