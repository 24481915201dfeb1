package datadir

import (
	"fmt"
	"os"
)

// SyncDir makes the names created, renamed or removed in dir durable
// (fsync of the directory), as a rename into place needs before it is
// relied on.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
