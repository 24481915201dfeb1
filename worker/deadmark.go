package worker

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// A dead-lettered message is terminated, so that its consumer never
// delivers it again: only a redrive runs its work again, and only while it
// holds the dead letter (Lease). Should the Term be lost, or the instance
// die between recording the dead letter and terminating the message (or
// before the server wrote the Term down), the consumer would deliver it
// again after its AckWait and the part would run the work outside any
// lease, racing an operator's decision on the dead letter (a payout
// resolved as failed while it is sent). So the loop marks the message
// before it terminates it, on <LeasePrefix>.P.dead.S.Q (part P, stream S,
// sequence Q) in the lease stream, and the mark stays until it expires. A
// message delivered again that carries a mark of its own (same subject and
// time: not another message at a sequence a recreated stream reused) is
// terminated, not handled.

// deadMarkTTL is how long a mark is kept. A message delivered again later
// than that is handled again.
const deadMarkTTL = 48 * time.Hour

func (d *DeadLetters) markSubject(part, stream string, seq uint64) string {
	return d.cfg.LeasePrefix + "." + part + ".dead." + stream + "." + strconv.FormatUint(seq, 10)
}

// deadMark is the body of a mark: the dead letter, and the marked
// message's subject and time, which tell it from another message at the
// same sequence of a stream created again.
type deadMark struct {
	DeadLetterID uint64    `json:"dead_letter_id"`
	Subject      string    `json:"subject"`
	Published    time.Time `json:"published"`
}

// mark notes that msg is dead-lettered as dl.
func (d *DeadLetters) mark(ctx context.Context, dl DeadLetter, msg Msg) error {
	ctx, cancel := d.withTimeout(ctx)
	defer cancel()
	m := deadMark{DeadLetterID: dl.ID, Subject: msg.Subject, Published: msg.Published}
	if _, err := d.putRecord(ctx, d.markSubject(dl.Part, dl.Stream, dl.Seq), m, deadMarkTTL); err != nil {
		return fmt.Errorf("mark %s seq %d dead-lettered: %w", dl.Stream, dl.Seq, err)
	}
	return nil
}

// marked returns the dead letter msg was recorded as, if part marked it
// dead-lettered.
func (d *DeadLetters) marked(ctx context.Context, part string, msg Msg) (uint64, bool, error) {
	ctx, cancel := d.withTimeout(ctx)
	defer cancel()
	var m deadMark
	_, seq, err := d.lastRecord(ctx, d.markSubject(part, msg.Stream, msg.Seq), &m)
	switch {
	case err != nil:
		return 0, false, fmt.Errorf("is %s seq %d dead-lettered: %w", msg.Stream, msg.Seq, err)
	case seq == 0, m.Subject != msg.Subject, !m.Published.Equal(msg.Published): // none, or another message's at that sequence
		return 0, false, nil
	}
	return m.DeadLetterID, true, nil
}
