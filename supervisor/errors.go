package supervisor

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrDuplicate means a part of that name is already registered.
	ErrDuplicate = errors.New("supervisor: duplicate part")
	// ErrStopped means the supervisor was stopped: no part can be added.
	ErrStopped = errors.New("supervisor: stopped")
	// ErrReturned is the error recorded for a part whose Run returned nil
	// before it was asked to stop.
	ErrReturned = errors.New("supervisor: part returned before stop")
	// ErrStopTimeout means Stop's context ended before every part stopped.
	ErrStopTimeout = errors.New("supervisor: parts did not stop in time")
)

// StopError names the parts that had not stopped when Stop's context ended.
// It matches ErrStopTimeout.
type StopError struct {
	Parts []string
}

func (e *StopError) Error() string {
	return fmt.Sprintf("supervisor: %d part(s) did not stop in time: %s", len(e.Parts), strings.Join(e.Parts, ", "))
}

// Is makes errors.Is(err, ErrStopTimeout) true.
func (e *StopError) Is(target error) bool { return target == ErrStopTimeout }

// PanicError is the error recorded for a part whose Run panicked.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }
