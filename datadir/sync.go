package datadir

import (
	"io/fs"
	"os"
	"path/filepath"
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
	return err // an *fs.PathError: it names dir
}

// SyncTree makes every file and directory under root durable, root
// included: for a tree written without syncs (a restore's store) before
// it is moved into place.
func SyncTree(root string) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && !d.Type().IsRegular() {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		err = f.Sync()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err // an *fs.PathError: it names the file
	})
}
