//go:build !linux

package groupcommit

// Open fails with ErrUnsupported: only Linux syncs one file system.
func Open(dir string) (*Syncer, error) { return nil, ErrUnsupported }
