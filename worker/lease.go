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

	"github.com/bankbook/bankbook/internal/kvcas"
)

// HolderRedrive is the holder of the lease a redrive takes (Loop.Redrive).
const HolderRedrive = "redrive"

// Lease is a hold on a dead letter for a while: while one lasts nobody
// takes another. A redrive holds one while the part's handler runs the work
// again; a decision that must not race that handler (an operator recording
// a payout's result by hand while a redrive may be sending it) holds one
// while it decides. A lease is a message on the dead letter's lease
// subject in the lease stream (DeadConfig.LeaseStream), written only when the subject holds
// none (a compare-and-set) and removed by the NATS server when its
// per-message TTL runs out, or by Release: the server's clock alone says
// when a lease ends, so instances whose clocks differ agree on it.
type Lease struct {
	Holder string `json:"holder"`
	// Seconds is how long the lease was taken for.
	Seconds int64 `json:"seconds"`
	// Until is when the lease ends at the latest, by the clock of whoever
	// reads it (for messages only).
	Until time.Time `json:"-"`

	seq uint64 // the lease's message, for Release
}

// LeasedError is returned when another holder's lease has not ended yet.
type LeasedError struct{ Lease Lease }

func (e *LeasedError) Error() string {
	return fmt.Sprintf("worker: dead letter held by %s until about %s", e.Lease.Holder, e.Lease.Until.UTC().Format(time.RFC3339))
}

// Is makes errors.Is(err, ErrLeased) true.
func (e *LeasedError) Is(target error) bool { return target == ErrLeased }

// ErrLeased matches every *LeasedError.
var ErrLeased = errors.New("worker: dead letter held")

// redriveRecordTTL is how long the record of a dead letter's last redrive
// is kept: far longer than any status lag it is read for, and longer than a
// dead letter waits for an operator, who must know that a permanent one was
// redriven (its work may have run: a payout sent) however long ago.
const redriveRecordTTL = 400 * 24 * time.Hour

func (d *DeadLetters) subjectOf(dl DeadLetter, kind string) string {
	return d.cfg.LeasePrefix + "." + dl.Part + "." + kind + "." + strconv.FormatUint(dl.ID, 10)
}

// Lease takes a lease on dl for holder, lasting dur (whole seconds, at
// least one), unless another lease on it has not ended yet: a
// *LeasedError, also when another holder takes one at the same moment. A
// redrive's lease also records, for LastRedrive, that a redrive runs until
// the lease's end at the latest.
func (d *DeadLetters) Lease(ctx context.Context, dl DeadLetter, holder string, dur time.Duration) (Lease, error) {
	ctx, cancel := d.withTimeout(ctx)
	defer cancel()
	secs := max(1, int64((dur+time.Second-1)/time.Second))
	l := Lease{Holder: holder, Seconds: secs, Until: d.cfg.Now().Add(time.Duration(secs) * time.Second)}
	ack, err := d.putRecord(ctx, d.subjectOf(dl, "lease"), l, time.Duration(secs)*time.Second, jetstream.WithExpectLastSequencePerSubject(0))
	if kvcas.Conflict(err) {
		held := Lease{Holder: "another holder"}
		if at, seq, gerr := d.lastRecord(ctx, d.subjectOf(dl, "lease"), &held); gerr == nil && seq != 0 {
			held.Until = at.Add(time.Duration(held.Seconds) * time.Second)
		}
		return Lease{}, &LeasedError{Lease: held}
	}
	if err != nil {
		return Lease{}, fmt.Errorf("lease of dead letter %d: %w", dl.ID, err)
	}
	l.seq = ack.Sequence
	if holder == HolderRedrive {
		if err := d.recordRedrive(ctx, dl, redriveRecord{Seconds: secs}); err != nil {
			_ = d.Release(ctx, dl, l)
			return Lease{}, err
		}
	}
	return l, nil
}

// Release ends l now (a lease that ran out meanwhile, and another holder's
// since, are left alone: sequences are never reused). A redrive's release
// records its end first; should that fail, LastRedrive reads the lease's
// end instead, which is later.
func (d *DeadLetters) Release(ctx context.Context, dl DeadLetter, l Lease) error {
	ctx, cancel := d.withTimeout(ctx)
	defer cancel()
	var recErr error
	if l.Holder == HolderRedrive {
		recErr = d.recordRedrive(ctx, dl, redriveRecord{Ended: true})
	}
	if err := d.leases.DeleteMsg(ctx, l.seq); err != nil {
		if _, gerr := d.leases.GetMsg(ctx, l.seq); !errors.Is(gerr, jetstream.ErrMsgNotFound) {
			return errors.Join(recErr, fmt.Errorf("end the lease of dead letter %d: %w", dl.ID, err))
		}
	}
	return recErr
}

// redriveRecord is what a redrive of a dead letter left: it started and
// runs for Seconds at most, or it Ended (when the record was stored).
type redriveRecord struct {
	Seconds int64 `json:"seconds,omitempty"`
	Ended   bool  `json:"ended,omitempty"`
}

func (d *DeadLetters) recordRedrive(ctx context.Context, dl DeadLetter, r redriveRecord) error {
	if _, err := d.putRecord(ctx, d.subjectOf(dl, "redrive"), r, redriveRecordTTL); err != nil {
		return fmt.Errorf("record the redrive of dead letter %d: %w", dl.ID, err)
	}
	return nil
}

// LastRedrive returns when dl's last redrive ended, by the NATS server's
// clock (zero: never redriven, or more than redriveRecordTTL ago): when its release
// was recorded, or, if it was not (its instance died), when its lease ran
// out. Its handler may have acted until then.
func (d *DeadLetters) LastRedrive(ctx context.Context, dl DeadLetter) (time.Time, error) {
	ctx, cancel := d.withTimeout(ctx)
	defer cancel()
	var r redriveRecord
	at, seq, err := d.lastRecord(ctx, d.subjectOf(dl, "redrive"), &r)
	switch {
	case err != nil:
		return time.Time{}, fmt.Errorf("last redrive of dead letter %d: %w", dl.ID, err)
	case seq == 0:
		return time.Time{}, nil
	case r.Ended:
		return at, nil
	}
	return at.Add(time.Duration(r.Seconds) * time.Second), nil
}

// putRecord stores v, as JSON, on subject in the lease stream, kept for
// ttl (by the server's clock), with opts (a compare-and-set).
func (d *DeadLetters) putRecord(ctx context.Context, subject string, v any, ttl time.Duration, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	msg := nats.NewMsg(subject)
	msg.Data = body
	return d.js.PublishMsg(ctx, msg, append(opts, jetstream.WithMsgTTL(ttl))...)
}

// lastRecord decodes the last record on subject in the lease stream into
// v and returns when it was stored and its sequence (0: there is none).
func (d *DeadLetters) lastRecord(ctx context.Context, subject string, v any) (at time.Time, seq uint64, err error) {
	raw, err := d.leases.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return time.Time{}, 0, nil
	}
	if err != nil {
		return time.Time{}, 0, err
	}
	if err := json.Unmarshal(raw.Data, v); err != nil {
		return time.Time{}, 0, fmt.Errorf("record %d on %s: %w", raw.Sequence, subject, err)
	}
	return raw.Time, raw.Sequence, nil
}
