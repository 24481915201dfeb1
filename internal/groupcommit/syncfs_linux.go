package groupcommit

import (
	"context"
	"fmt"

	"golang.org/x/sys/unix"
)

// File-system magic numbers (statfs f_type) Open knows.
var fileSystems = map[int64]string{
	0xEF53:     "ext2/3/4", // one magic number for the three
	0x58465342: "xfs",
	0x9123683E: "btrfs",
	0x794C7630: "overlayfs",
	0x01021994: "tmpfs",
	0x65735546: "fuse",
}

// Open returns a Syncer that syncs the file system holding dir (syncfs(2)):
// every file on it, the server's store and anything else written there.
// It syncs once before it returns: what an earlier process left unsynced
// (one that crashed, or ran under fast) is durable before anyone reads it,
// since the Syncer counts only its own writes.
// It refuses a kernel before Linux 5.8, whose syncfs does not report
// write-back errors, and a FUSE file system, whose syncfs may do nothing.
func Open(dir string) (*Syncer, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return nil, fmt.Errorf("groupcommit: uname: %w", err)
	}
	release := unix.ByteSliceToString(u.Release[:])
	if !atLeast(release, 5, 8) {
		return nil, fmt.Errorf("%w: Linux %s reports no write-back errors from syncfs (5.8 or later needed)", ErrUnsupported, release)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return nil, fmt.Errorf("groupcommit: statfs %s: %w", dir, err)
	}
	fs, ok := fileSystems[int64(st.Type)]
	if !ok {
		fs = fmt.Sprintf("0x%X", st.Type)
	}
	if fs == "fuse" {
		return nil, fmt.Errorf("%w: %s is on a FUSE file system, whose syncfs may not sync", ErrUnsupported, dir)
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("groupcommit: open %s: %w", dir, err)
	}
	s := New(func() error { return unix.Syncfs(fd) })
	s.close = func() error { return unix.Close(fd) }
	s.fs = fs
	if err := s.Wait(context.Background()); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}
