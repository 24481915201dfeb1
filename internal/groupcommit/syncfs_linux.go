package groupcommit

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Open returns a Syncer that syncs the file system holding dir (syncfs(2)):
// every file on it, the server's store and anything else written there.
func Open(dir string) (*Syncer, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("groupcommit: open %s: %w", dir, err)
	}
	s := New(func() error { return unix.Syncfs(fd) })
	s.close = func() error { return unix.Close(fd) }
	return s, nil
}
