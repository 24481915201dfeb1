package projections

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/bankbook/bankbook/datadir"
)

// A read-model file opened with Options.Unsynced is not fsynced when a
// batch commits. Every write still reaches the operating system before the
// batch is acknowledged, so a process that dies (kill -9, a panic) leaves a
// whole file behind: the kernel writes it out. Only a machine that stops
// (power loss, a kernel crash) can lose writes, and then bbolt, which has no
// page checksums, could open a torn file without noticing.
//
// So before its first unsynced write the Store records the machine's boot
// ID in a marker beside the file (<file>.unsynced), fsynced, and a clean
// Close closes the file (bbolt waits for a running write and refuses
// later ones), then syncs it and removes the marker. An Open that finds a marker
// naming another boot knows the machine restarted while writes may not
// have reached the disk, and fails with ErrDamaged: the engine moves the
// file aside and rebuilds the read models from the event log, as it does
// for a truncated file. A marker naming this boot means only the process
// stopped; the file is used as it is.

// markerSuffix names the marker of an unsynced file: <file>.unsynced.
const markerSuffix = ".unsynced"

// bootIDPath holds the kernel's random ID of the current boot (Linux).
const bootIDPath = "/proc/sys/kernel/random/boot_id"

// Unsyncable reports whether this machine has the boot ID an unsynced file
// needs: without it Options.Unsynced is ignored and every batch is synced.
func Unsyncable() bool {
	_, err := bootID()
	return err == nil
}

// bootID returns an ID that changes whenever the machine starts. Tests
// replace it.
var bootID = func() (string, error) {
	b, err := os.ReadFile(bootIDPath)
	if err != nil {
		return "", err
	}
	id := strings.TrimSpace(string(b))
	if id == "" {
		return "", fmt.Errorf("%s is empty", bootIDPath)
	}
	return id, nil
}

// checkMarker fails with a *DamagedError if the file at path was left
// unsynced by an earlier boot of the machine. It reports whether a marker
// is there to remove: one of this boot, or one whose file is gone.
func checkMarker(path string) (present bool, err error) {
	b, err := os.ReadFile(path + markerSuffix)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read models %s: %w", path, err)
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return true, nil // the file is gone, and a new one starts: only the marker is left to remove
	}
	written := strings.TrimSpace(string(b))
	now, err := bootID()
	if err != nil || written == "" || written != now {
		return true, &DamagedError{Path: path, Reason: fmt.Sprintf("it was written without fsync (durability fast) and the machine has restarted since "+
			"(boot %q then, %q now): writes that had not reached the disk may be lost", written, now)}
	}
	return true, nil
}

// writeMarker records this boot's ID beside the file at path, durably,
// before the first unsynced write.
func writeMarker(path, boot string) error {
	name := path + markerSuffix
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.WriteString(boot + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("unsynced read models %s: %w", name, err)
	}
	return datadir.SyncDir(filepath.Dir(path))
}

// removeMarker removes the marker of the file at path once the file is
// synced.
func removeMarker(path string) error {
	if err := os.Remove(path + markerSuffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("unsynced read models %s: %w", path, err)
	}
	return datadir.SyncDir(filepath.Dir(path))
}

// syncFile fsyncs the file at path: every write any process made to it.
func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("sync read models %s: %w", path, err)
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync read models %s: %w", path, err)
	}
	return nil
}

// startSyncMode puts a writable Store's file in the mode opts ask for:
// unsynced (marker written first) when asked and the boot ID is known;
// otherwise synced, after syncing a file an earlier unsynced run of this
// boot left behind (marked) and removing its marker.
func (s *Store) startSyncMode(unsynced, marked bool) error {
	path := s.db.Path()
	if unsynced {
		if boot, err := bootID(); err == nil {
			if err := writeMarker(path, boot); err != nil {
				return err
			}
			s.db.NoSync, s.unsynced = true, true
			return nil
		}
	}
	if !marked {
		return nil
	}
	if err := s.db.Sync(); err != nil {
		return fmt.Errorf("sync read models %s: %w", path, err)
	}
	return removeMarker(path)
}

// Unsynced reports whether the Store commits without fsync (see
// Options.Unsynced): false when it was not asked, or when the machine's
// boot ID cannot be read (not Linux), for then a restart could not be told
// from a process exit.
func (s *Store) Unsynced() bool { return s.unsynced }
