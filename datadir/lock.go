package datadir

import (
	"bytes"
	"crypto/rand"
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
// The lock file says who holds it (Holder): the PID, and an ID new with
// every Lock.
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
	if err := writeHolder(f, os.Getpid(), rand.Text()); err != nil {
		_ = f.Close() // closing the file releases the lock
		return nil, fmt.Errorf("datadir: lock %s: %w", path, err)
	}
	// Empty the file while still holding the lock, so that the next
	// holder never reads a stale PID from us.
	return releaser(f, path, func() error { return f.Truncate(0) }), nil
}

// releaser returns the release func of a lock held on f (named name in
// errors): it calls before, if not nil, then unlocks and closes f, once;
// later calls return what the first did.
func releaser(f *os.File, name string, before func() error) func() error {
	var once sync.Once
	var rerr error
	return func() error {
		once.Do(func() {
			var berr error
			if before != nil {
				berr = before()
			}
			rerr = errors.Join(berr, unlock(f), f.Close())
			if rerr != nil {
				rerr = fmt.Errorf("datadir: release %s: %w", name, rerr)
			}
		})
		return rerr
	}
}

// writeHolder replaces the file's content with pid and id, a line each,
// on disk.
func writeHolder(f *os.File, pid int, id string) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	if _, err := f.WriteAt([]byte(strconv.Itoa(pid)+"\n"+id+"\n"), 0); err != nil {
		return err
	}
	return f.Sync()
}

// readPID returns the PID in the lock file, 0 if there is none.
func readPID(f *os.File) int {
	pid, _ := readHolder(f)
	return pid
}

// readHolder returns the PID and the ID in the lock file: 0 and "" for
// what it does not say (an older holder wrote only its PID).
func readHolder(f *os.File) (pid int, id string) {
	b, err := io.ReadAll(io.NewSectionReader(f, 0, 128))
	if err != nil {
		return 0, ""
	}
	first, rest, _ := bytes.Cut(b, []byte("\n"))
	if n, err := strconv.Atoi(string(bytes.TrimSpace(first))); err == nil && n > 0 {
		pid = n
	}
	line, _, _ := bytes.Cut(rest, []byte("\n"))
	return pid, string(bytes.TrimSpace(line))
}

// Holder returns what dir's lock file says of the process that took the
// lock last: its PID and the ID of that Lock ("" when the file does not
// say, or there is none). It does not tell whether the lock is still held:
// a holder killed leaves them behind; but a holder that releases the lock
// empties the file. An engine reports its ID (bankbook.q.projection.status),
// so that a tool that finds dir held can tell whether the engine it talks
// to is the one holding it.
func Holder(dir string) (pid int, id string) {
	f, err := os.Open(filepath.Join(dir, LockFile))
	if err != nil {
		return 0, ""
	}
	defer f.Close()
	return readHolder(f)
}
