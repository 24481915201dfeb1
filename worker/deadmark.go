package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A dead-lettered message is terminated, so that its consumer never
// delivers it again: only a redrive runs its work again, and only while it
// holds the dead letter (Lease). Should the Term be lost, or the instance
// die between recording the dead letter and terminating the message, the
// consumer would deliver it again after its AckWait and the part would run
// the work outside any lease, racing an operator's decision on the dead
// letter (a payout resolved as failed while it is sent). So the loop marks
// the message before it terminates it, on <LeasePrefix>.P.dead.S.Q (part P,
// stream S, sequence Q) in the lease stream, and removes the mark once the
// server confirmed the Term. A message delivered again whose mark is still
// there is terminated, not handled.

// deadMarkTTL is how long a mark whose Term was never confirmed is kept:
// the lease stream's age limit. A message delivered again later than that
// is handled again.
const deadMarkTTL = 2 * redriveRecordTTL

func (d *DeadLetters) markSubject(part, stream string, seq uint64) string {
	return d.cfg.LeasePrefix + "." + part + ".dead." + stream + "." + strconv.FormatUint(seq, 10)
}

// deadMark is the body of a mark.
type deadMark struct {
	DeadLetterID uint64 `json:"dead_letter_id"`
}

// mark notes that the message dl was recorded from is dead-lettered and
// its Term not yet confirmed.
func (d *DeadLetters) mark(ctx context.Context, dl DeadLetter) error {
	ctx, cancel := d.withTimeout(ctx)
	defer cancel()
	body, err := json.Marshal(deadMark{DeadLetterID: dl.ID})
	if err != nil {
		return err
	}
	msg := nats.NewMsg(d.markSubject(dl.Part, dl.Stream, dl.Seq))
	msg.Data = body
	if _, err := d.js.PublishMsg(ctx, msg, jetstream.WithMsgTTL(deadMarkTTL)); err != nil {
		return fmt.Errorf("mark %s seq %d dead-lettered: %w", dl.Stream, dl.Seq, err)
	}
	return nil
}

// unmark removes the mark of the message at seq of stream for part.
func (d *DeadLetters) unmark(ctx context.Context, part, stream string, seq uint64) error {
	ctx, cancel := d.withTimeout(ctx)
	defer cancel()
	if err := d.leases.Purge(ctx, jetstream.WithPurgeSubject(d.markSubject(part, stream, seq))); err != nil {
		return fmt.Errorf("unmark %s seq %d: %w", stream, seq, err)
	}
	return nil
}

// marked returns the dead letter recorded from the message at seq of
// stream for part, if that message is marked: dead-lettered, its Term not
// confirmed.
func (d *DeadLetters) marked(ctx context.Context, part, stream string, seq uint64) (uint64, bool, error) {
	ctx, cancel := d.withTimeout(ctx)
	defer cancel()
	raw, err := d.leases.GetLastMsgForSubject(ctx, d.markSubject(part, stream, seq))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("is %s seq %d dead-lettered: %w", stream, seq, err)
	}
	var m deadMark
	if err := json.Unmarshal(raw.Data, &m); err != nil {
		return 0, false, fmt.Errorf("is %s seq %d dead-lettered: %w", stream, seq, err)
	}
	return m.DeadLetterID, true, nil
}
