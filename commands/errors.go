package commands

import (
	"errors"
	"fmt"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
)

var (
	// ErrContention means the aggregate kept changing under the command and
	// the conflict retries ran out. Nothing was written; retry later (409).
	ErrContention = errors.New("commands: too many concurrent changes to the same aggregate")
	// ErrAggregateDamaged means the aggregate's history holds a damaged
	// commit: a message on its subject that is not a commit this engine can
	// read, or a commit with an event it cannot decode (an unknown type).
	// The command is refused and nothing is written, until an operator sets
	// the commit aside (eventstore.Store.SetAside); other aggregates are not
	// affected. The error is a *DamagedError (409 aggregate_damaged).
	ErrAggregateDamaged = errors.New("commands: the aggregate's history holds a damaged commit")
)

// DamagedError says which commit keeps an aggregate refused. It matches
// ErrAggregateDamaged, and its cause through Unwrap. As a *domain.Error it
// is the conflict aggregate_damaged with details seq, aggregate_type and
// aggregate_id, which the API layer answers with 409.
type DamagedError struct {
	Ref eventstore.Ref
	Seq eventstore.Seq
	Err error
}

func (e *DamagedError) Error() string {
	return fmt.Sprintf("commands: %s is refused: its history holds a damaged commit at seq %d: %v", e.Ref, e.Seq, e.Err)
}

// Is makes errors.Is(err, ErrAggregateDamaged) true.
func (e *DamagedError) Is(target error) bool { return target == ErrAggregateDamaged }

// Unwrap returns the cause.
func (e *DamagedError) Unwrap() error { return e.Err }

// As makes errors.As(err, &de) with a *domain.Error yield the conflict the
// API answers: 409 aggregate_damaged.
func (e *DamagedError) As(target any) bool {
	de, ok := target.(**domain.Error)
	if !ok {
		return false
	}
	*de = &domain.Error{
		Kind: domain.KindConflict,
		Code: api.CodeAggregateDamaged,
		Message: fmt.Sprintf("%s %s cannot be read or changed: its history holds a damaged commit at seq %d; "+
			"an operator must set it aside (bankbook.cmd.event.set_aside)", e.Ref.Type, e.Ref.ID, e.Seq),
		Details: map[string]any{"seq": uint64(e.Seq), "aggregate_type": e.Ref.Type, "aggregate_id": e.Ref.ID},
	}
	return true
}

// damaged turns the event store's report of a damaged commit into a
// *DamagedError; other errors pass unchanged.
func damaged(ref eventstore.Ref, err error) error {
	if de, ok := errors.AsType[*eventstore.DamagedError](err); ok {
		return &DamagedError{Ref: ref, Seq: de.Seq, Err: err}
	}
	return err
}
