package datadir

import (
	"errors"
	"fmt"
	"os"
)

// ErrDirBusy means another process, or another LockDir in this one, holds
// the directory's own lock (LockDir).
var ErrDirBusy = errors.New("datadir: directory is in use")

// LockDir takes an exclusive operating-system lock on dir itself (flock(2)
// on the directory, no file is made in it) for this process, or fails at
// once with an error matching ErrDirBusy if another process or another
// LockDir in this one holds it. It is for directories a command fills on
// its own (a replay's output), where a LOCK file would be out of place.
// release unlocks it and may be called more than once. Like Lock, the lock
// ends when the process does, and elsewhere than on Linux, macOS and the
// BSDs LockDir returns an error matching errors.ErrUnsupported.
func LockDir(dir string) (release func() error, err error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("datadir: %w", err)
	}
	switch err := flock(f); {
	case errors.Is(err, errHeld):
		_ = f.Close()
		return nil, fmt.Errorf("%w: %s", ErrDirBusy, dir)
	case err != nil:
		_ = f.Close()
		return nil, fmt.Errorf("datadir: lock %s: %w", dir, err)
	}
	return releaser(f, dir, nil), nil
}
