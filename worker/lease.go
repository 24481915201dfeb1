package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// HolderRedrive is the holder of the lease a redrive takes (Loop.Redrive).
const HolderRedrive = "redrive"

// Lease is a hold on a dead letter for a while: while one lasts nobody
// takes another. A redrive holds one while the part's handler runs the work
// again; a decision that must not race that handler (an operator recording
// a payout's result by hand while a redrive may be sending it) holds one
// while it decides. Leases are records in the dead-letter stream, written
// by compare-and-set on the dead letter's lease subject, so they hold
// across every engine instance.
type Lease struct {
	Holder string    `json:"holder"`
	At     time.Time `json:"at"`
	Until  time.Time `json:"until"`
	// LastRedrive is when the last redrive of the dead letter ended (its
	// lease's end; zero: never redriven): its handler may have acted until
	// then.
	LastRedrive time.Time `json:"last_redrive,omitzero"`

	seq uint64 // the record's sequence, for Release
}

// LeasedError is returned when another holder's lease has not ended yet.
type LeasedError struct{ Lease Lease }

func (e *LeasedError) Error() string {
	return fmt.Sprintf("worker: dead letter held by %s until %s", e.Lease.Holder, e.Lease.Until.UTC().Format(time.RFC3339))
}

// Is makes errors.Is(err, ErrLeased) true.
func (e *LeasedError) Is(target error) bool { return target == ErrLeased }

// ErrLeased matches every *LeasedError.
var ErrLeased = errors.New("worker: dead letter held")

func (d *DeadLetters) leaseSubject(dl DeadLetter) string {
	return d.cfg.Prefix + "." + dl.Part + ".lease." + strconv.FormatUint(dl.ID, 10)
}

// lastLease returns dl's latest lease record (zero, and sequence 0, when it
// has none).
func (d *DeadLetters) lastLease(ctx context.Context, dl DeadLetter) (Lease, error) {
	raw, err := d.stream.GetLastMsgForSubject(ctx, d.leaseSubject(dl))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return Lease{}, nil
	}
	if err != nil {
		return Lease{}, fmt.Errorf("lease of dead letter %d: %w", dl.ID, err)
	}
	var l Lease
	if err := json.Unmarshal(raw.Data, &l); err != nil {
		return Lease{}, fmt.Errorf("lease of dead letter %d: %w", dl.ID, err)
	}
	l.seq = raw.Sequence
	return l, nil
}

// Lease takes a lease on dl for holder, lasting d, unless another lease on
// it has not ended yet (a *LeasedError, also when another holder takes one
// at the same moment).
func (d *DeadLetters) Lease(ctx context.Context, dl DeadLetter, holder string, dur time.Duration) (Lease, error) {
	ctx, cancel := d.withTimeout(ctx)
	defer cancel()
	prev, err := d.lastLease(ctx, dl)
	if err != nil {
		return Lease{}, err
	}
	now := d.cfg.Now().UTC()
	if now.Before(prev.Until) {
		return Lease{}, &LeasedError{Lease: prev}
	}
	l := Lease{Holder: holder, At: now, Until: now.Add(dur), LastRedrive: prev.LastRedrive}
	if prev.Holder == HolderRedrive && prev.Until.After(l.LastRedrive) {
		l.LastRedrive = prev.Until
	}
	seq, err := d.writeLease(ctx, dl, l, prev.seq)
	if err != nil {
		if wrongLast(err) {
			taken, _ := d.lastLease(ctx, dl)
			return Lease{}, &LeasedError{Lease: taken}
		}
		return Lease{}, err
	}
	l.seq = seq
	return l, nil
}

// Release ends l now, if it is still dl's latest lease (one that expired
// and was taken over stays the new holder's). A redrive's end is recorded
// as its LastRedrive.
func (d *DeadLetters) Release(ctx context.Context, dl DeadLetter, l Lease) error {
	ctx, cancel := d.withTimeout(ctx)
	defer cancel()
	if now := d.cfg.Now().UTC(); now.Before(l.Until) {
		l.Until = now
	}
	if l.Holder == HolderRedrive && l.Until.After(l.LastRedrive) {
		l.LastRedrive = l.Until
	}
	if _, err := d.writeLease(ctx, dl, l, l.seq); err != nil && !wrongLast(err) {
		return err
	}
	return nil
}

// wrongLast reports a compare-and-set that lost: another record came first.
func wrongLast(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// writeLease stores l as dl's latest lease provided the latest is still
// the record at sequence last (0: none).
func (d *DeadLetters) writeLease(ctx context.Context, dl DeadLetter, l Lease, last uint64) (uint64, error) {
	body, err := json.Marshal(l)
	if err != nil {
		return 0, err
	}
	msg := nats.NewMsg(d.leaseSubject(dl))
	msg.Data = body
	ack, err := d.js.PublishMsg(ctx, msg, jetstream.WithExpectLastSequencePerSubject(last))
	if err != nil {
		return 0, fmt.Errorf("lease of dead letter %d: %w", dl.ID, err)
	}
	return ack.Sequence, nil
}

// LastRedrive returns when dl's last redrive ended (zero: never redriven),
// and the lease holding it now, if one has not ended.
func (d *DeadLetters) LastRedrive(ctx context.Context, dl DeadLetter) (ended time.Time, holding *Lease, err error) {
	ctx, cancel := d.withTimeout(ctx)
	defer cancel()
	l, err := d.lastLease(ctx, dl)
	if err != nil {
		return time.Time{}, nil, err
	}
	ended = l.LastRedrive
	if l.Holder == HolderRedrive && l.Until.After(ended) {
		ended = l.Until
	}
	if d.cfg.Now().Before(l.Until) {
		holding = &l
	}
	return ended, holding, nil
}
