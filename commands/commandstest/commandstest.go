// Package commandstest holds in-memory implementations of the command
// layer's narrow store interfaces — commands.Names, commands.Timers and
// commands.Watermarks — for unit tests of the command handlers and the
// process managers over the in-memory event store (eventstore/inmem).
//
// They keep the semantics the handlers rely on (a name held by another
// order is a *reservations.TakenError, a take-over checks the revision,
// watermarks only move forward); the storage behaviour of the real ones
// (reservations, timers, watermarks) is tested against JetStream in their
// own packages. Only tests import this package.
package commandstest

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/reservations"
)

// Names keeps depositor-name reservations in memory, like
// reservations.Store. It is safe for concurrent use.
type Names struct {
	now      func() time.Time
	mu       sync.Mutex
	m        map[string]held // by normalised name
	unpaid   map[domain.UserID][]reservations.Unpaid
	claims   map[domain.DepositID][]byte
	reserves int
}

type held struct {
	h   reservations.Holder
	rev uint64
}

// NewNames returns an empty set of reservations; now stamps them (nil:
// time.Now).
func NewNames(now func() time.Time) *Names {
	if now == nil {
		now = time.Now
	}
	return &Names{now: now, m: map[string]held{}, unpaid: map[domain.UserID][]reservations.Unpaid{}, claims: map[domain.DepositID][]byte{}}
}

// ClaimDeposit returns the first content claimed for id, like
// reservations.Store.ClaimDeposit (claims do not expire here, and leases
// are not kept: the handlers of one process take turns themselves).
func (n *Names) ClaimDeposit(_ context.Context, id domain.DepositID, content []byte, _ string) ([]byte, bool, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if first, ok := n.claims[id]; ok {
		return first, false, nil
	}
	n.claims[id] = content
	return content, true, nil
}

// Reserve reserves name for order, or renews the order's own reservation;
// a name another order holds returns a *reservations.TakenError.
func (n *Names) Reserve(_ context.Context, name string, order domain.OrderID) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.reserves++
	k := domain.NormalizeName(name)
	cur, ok := n.m[k]
	if ok && cur.h.OrderID != order {
		return &reservations.TakenError{Name: name, Holder: cur.h, Revision: cur.rev}
	}
	n.m[k] = held{h: reservations.Holder{OrderID: order, ReservedAt: n.now().UTC()}, rev: cur.rev + 1}
	return nil
}

// TakeOver gives name to order if its reservation is still at revision
// rev; otherwise the error matches reservations.ErrTaken.
func (n *Names) TakeOver(_ context.Context, name string, order domain.OrderID, rev uint64) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	k := domain.NormalizeName(name)
	if n.m[k].rev != rev {
		return reservations.ErrTaken
	}
	n.m[k] = held{h: reservations.Holder{OrderID: order, ReservedAt: n.now().UTC()}, rev: rev + 1}
	return nil
}

// Holder returns name's holder and revision, or reservations.ErrFree.
func (n *Names) Holder(_ context.Context, name string) (reservations.Holder, uint64, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	cur, ok := n.m[domain.NormalizeName(name)]
	if !ok {
		return reservations.Holder{}, 0, reservations.ErrFree
	}
	return cur.h, cur.rev, nil
}

// Reserves returns how many times Reserve was called: what submits cost.
func (n *Names) Reserves() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.reserves
}

// Release frees name if order holds it.
func (n *Names) Release(_ context.Context, name string, order domain.OrderID) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	k := domain.NormalizeName(name)
	if cur, ok := n.m[k]; ok && cur.h.OrderID == order {
		delete(n.m, k)
	}
	return nil
}

// Admit counts order against buyer's limit, like reservations.Store.Admit:
// entries counts reports false for are dropped; at the limit it returns a
// *reservations.LimitError. counts runs under the lock (it must not call
// back into Names).
func (n *Names) Admit(ctx context.Context, buyer domain.UserID, order domain.OrderID, limit int, counts reservations.Counts) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	var kept []reservations.Unpaid
	for _, u := range n.unpaid[buyer] {
		if u.OrderID == order {
			return nil
		}
		c, err := counts(ctx, u)
		if err != nil {
			return err
		}
		if c {
			kept = append(kept, u)
		}
	}
	if len(kept) >= limit {
		le := &reservations.LimitError{BuyerID: buyer, Limit: limit}
		for _, u := range kept {
			le.Orders = append(le.Orders, u.OrderID)
		}
		return le
	}
	n.unpaid[buyer] = append(kept, reservations.Unpaid{OrderID: order, AdmittedAt: n.now().UTC()})
	return nil
}

// Forget drops order from buyer's unpaid orders, and the buyer once none
// is left, like reservations.Store.Forget.
func (n *Names) Forget(_ context.Context, buyer domain.UserID, order domain.OrderID) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	kept := slices.DeleteFunc(slices.Clone(n.unpaid[buyer]), func(u reservations.Unpaid) bool { return u.OrderID == order })
	if len(kept) == 0 {
		delete(n.unpaid, buyer)
	} else {
		n.unpaid[buyer] = kept
	}
	return nil
}

// Unpaid returns buyer's unpaid orders as Admit left them.
func (n *Names) Unpaid(buyer domain.UserID) []reservations.Unpaid {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.unpaid[buyer])
}

// Timers records the timers armed; nothing fires. It is safe for
// concurrent use.
type Timers struct {
	// Fail, when set, is asked before each Arm; an error it returns is
	// Arm's, and nothing is armed.
	Fail func(kind, id string) error

	mu    sync.Mutex
	armed []Armed
}

// Armed is one armed timer.
type Armed struct {
	Kind, ID string
	At       time.Time
}

// Arm records the timer.
func (t *Timers) Arm(_ context.Context, kind, id string, at time.Time, _ []byte) error {
	if t.Fail != nil {
		if err := t.Fail(kind, id); err != nil {
			return err
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.armed = append(t.armed, Armed{Kind: kind, ID: id, At: at})
	return nil
}

// Disarm forgets every timer armed for (kind, id).
func (t *Timers) Disarm(_ context.Context, kind, id string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.armed = slices.DeleteFunc(t.armed, func(a Armed) bool { return a.Kind == kind && a.ID == id })
	return nil
}

// Stalled reports the latest timer armed for (kind, id) as stalled when it
// was due before before: nothing fires here, so every armed timer stays
// stored, as one the NATS server holds without firing it.
func (t *Timers) Stalled(_ context.Context, kind, id string, before time.Time) (bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, a := range slices.Backward(t.armed) {
		if a.Kind == kind && a.ID == id {
			return a.At.Before(before), nil
		}
	}
	return false, nil
}

// Armed returns the timers armed and not disarmed so far, oldest first.
func (t *Timers) Armed() []Armed {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]Armed(nil), t.armed...)
}

// Watermarks keeps scan watermarks per normalised account number; they
// only move forward. It is safe for concurrent use.
type Watermarks struct {
	mu sync.Mutex
	m  map[string]time.Time
}

// Watermark returns the account's watermark; the zero time if none.
func (w *Watermarks) Watermark(_ context.Context, account string) (time.Time, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.m[domain.NormalizeAccountNumber(account)], nil
}

// Advance moves the account's watermark to upTo, never backwards.
func (w *Watermarks) Advance(_ context.Context, account string, upTo time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m == nil {
		w.m = map[string]time.Time{}
	}
	k := domain.NormalizeAccountNumber(account)
	if upTo.After(w.m[k]) {
		w.m[k] = upTo
	}
	return nil
}

// Accounts hands out dedicated account numbers in memory, like
// accounts.Directory: one per link, stable, from From upwards. It is safe
// for concurrent use.
type Accounts struct {
	From   uint64
	mu     sync.Mutex
	next   uint64
	byLink map[string]string
	byNum  map[string]string
}

// Allocate returns the link's number, giving it the next one the first time.
func (a *Accounts) Allocate(_ context.Context, linkID string) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.byLink == nil {
		a.byLink, a.byNum = map[string]string{}, map[string]string{}
	}
	if n, ok := a.byLink[linkID]; ok {
		return n, nil
	}
	n := strconv.FormatUint(a.From+a.next, 10)
	a.next++
	a.byLink[linkID], a.byNum[n] = n, linkID
	return n, nil
}

// Lookup returns the link a number belongs to.
func (a *Accounts) Lookup(_ context.Context, number string) (string, bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	id, ok := a.byNum[domain.NormalizeAccountNumber(number)]
	return id, ok, nil
}

// InRange reports whether number is one Allocate could hand out: as many
// digits as From, and From or above.
func (a *Accounts) InRange(number string) bool {
	n := domain.NormalizeAccountNumber(number)
	v, err := strconv.ParseUint(n, 10, 64)
	return err == nil && len(n) == len(strconv.FormatUint(a.From, 10)) && v >= a.From
}
