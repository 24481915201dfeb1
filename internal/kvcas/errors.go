package kvcas

import "errors"

var (
	// ErrUnchanged is returned by a decide function to leave the entry as
	// it is. Update then returns the revision read (0 for an absent entry)
	// and a nil error.
	ErrUnchanged = errors.New("kvcas: leave the entry unchanged")

	// ErrTooManyConflicts means every write Update tried lost to a
	// concurrent writer.
	ErrTooManyConflicts = errors.New("kvcas: the entry kept changing")
)
