package datadir

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

// LockFile is the name of the lock file in a data directory.
const LockFile = "LOCK"

// Lock locks dir (creating it, mode 0700, if needed) for this process, or
// fails at once with a *LockedError if another process or another Lock in
// this one holds it. release unlocks it; it may be called more than once,
// and later calls return nil. The lock also ends when the process does.
func Lock(dir string) (release func() error, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("datadir: %w", err)
	}
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("datadir: open lock file: %w", err)
	}
	switch err := flock(f); {
	case errors.Is(err, errHeld):
		pid := readPID(f)
		_ = f.Close()
		return nil, &LockedError{Dir: dir, PID: pid}
	case err != nil:
		_ = f.Close()
		return nil, fmt.Errorf("datadir: lock %s: %w", path, err)
	}
	if err := writePID(f, os.Getpid()); err != nil {
		_ = f.Close() // closing the file releases the lock
		return nil, fmt.Errorf("datadir: lock %s: %w", path, err)
	}
	var once sync.Once
	var rerr error
	return func() error {
		once.Do(func() {
			// Empty the file while still holding the lock, so that the
			// next holder never reads a stale PID from us.
			terr := f.Truncate(0)
			rerr = errors.Join(terr, unlock(f), f.Close())
			if rerr != nil {
				rerr = fmt.Errorf("datadir: release %s: %w", path, rerr)
			}
		})
		return rerr
	}, nil
}

// writePID replaces the file's content with pid and a newline, on disk.
func writePID(f *os.File, pid int) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	if _, err := f.WriteAt([]byte(strconv.Itoa(pid)+"\n"), 0); err != nil {
		return err
	}
	return f.Sync()
}

// readPID returns the PID in the lock file, 0 if there is none.
func readPID(f *os.File) int {
	b, err := io.ReadAll(io.NewSectionReader(f, 0, 64))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}
