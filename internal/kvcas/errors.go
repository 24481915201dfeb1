package kvcas

import "errors"

var (
	// ErrUnchanged is returned by a decide function to leave the entry as
	// it is. Update then returns the revision read (0 for an absent entry)
	// and a nil error.
	ErrUnchanged = errors.New("kvcas: leave the entry unchanged")
	// ErrRemove is returned by a decide function to remove the entry: it
	// is purged at the revision read (Options.RemoveTTL makes the purge
	// marker expire, and the key's subject leave the stream with it).
	// Update then returns 0 and a nil error; an absent entry needs
	// nothing.
	ErrRemove = errors.New("kvcas: remove the entry")

	// ErrTooManyConflicts means every write Update tried lost to a
	// concurrent writer.
	ErrTooManyConflicts = errors.New("kvcas: the entry kept changing")
)
