package commands

import (
	"context"
	"time"

	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/reservations"
)

// EventStore is what commands need of the event store: an aggregate's
// commits after a sequence, and one commit appended under the expectation
// of the aggregate's last sequence, with the semantics of the storetest
// contract. *eventstore.Store (JetStream) and *inmem.Store implement it.
type EventStore interface {
	Load(ctx context.Context, ref eventstore.Ref, after eventstore.Seq) ([]eventstore.Commit, error)
	Append(ctx context.Context, ref eventstore.Ref, expected eventstore.Seq, prevVersion int, commitID string, events []eventstore.Envelope) (eventstore.Commit, error)
}

// Names reserves depositor names for orders (reservations.Store). Reserve
// returns a *reservations.TakenError when another order holds the name;
// Holder returns reservations.ErrFree for a name nobody holds; Release
// frees a name only if order still holds it. Admit counts an order against
// its buyer's limit of unpaid orders, or returns a
// *reservations.LimitError.
type Names interface {
	Reserve(ctx context.Context, name string, order domain.OrderID) error
	TakeOver(ctx context.Context, name string, order domain.OrderID, revision uint64) error
	Holder(ctx context.Context, name string) (reservations.Holder, uint64, error)
	Release(ctx context.Context, name string, order domain.OrderID) error
	Admit(ctx context.Context, buyer domain.UserID, order domain.OrderID, limit int, counts reservations.Counts) error
	// Forget drops an order that no longer counts from its buyer's unpaid
	// orders, and the buyer's entry once it lists none.
	Forget(ctx context.Context, buyer domain.UserID, order domain.OrderID) error
	// ClaimDeposit claims a bank transaction for the attempt holder, with
	// what its request says of it, and returns what the first claim said
	// and whether this call created the claim; a
	// *reservations.ClaimHeldError while another attempt holds it
	// (reservations.Store.ClaimDeposit).
	ClaimDeposit(ctx context.Context, id domain.DepositID, content []byte, holder string) ([]byte, bool, error)
}

// Accounts is the dedicated account directory (accounts.Directory).
type Accounts interface {
	// Allocate returns the link's dedicated account number, claiming one
	// the first time.
	Allocate(ctx context.Context, linkID string) (string, error)
	// Lookup returns the link a dedicated account number belongs to.
	Lookup(ctx context.Context, number string) (linkID string, ok bool, err error)
	// InRange reports whether number is in the range dedicated accounts
	// are allocated from: a sub-account of the collection account, which
	// the collection account's feed and scan watermark cover.
	InRange(number string) bool
}

// Timers arms delayed work (timers.Timers).
type Timers interface {
	Arm(ctx context.Context, kind, id string, at time.Time, payload []byte) error
	Disarm(ctx context.Context, kind, id string) error
	// Stalled reports whether the schedule of (kind, id) is still stored
	// although it was due before before (timers.Timers.Stalled).
	Stalled(ctx context.Context, kind, id string, before time.Time) (bool, error)
}

// Watermarks tells how far the bank's data is known complete, per account
// (watermarks.Store).
type Watermarks interface {
	Watermark(ctx context.Context, account string) (time.Time, error)
	Advance(ctx context.Context, account string, upTo time.Time) error
}
