package worker

import (
	"context"
	"encoding/base64"
	"time"
)

// Uncertain work: a part's work on some key (a payout) ended in a way that
// says nothing of whether it took effect at a third party (a send answered
// with a 5xx, a timeout). Each instance notes it in the lease stream, on
// <LeasePrefix>.P.uncertain.K (part P, key K base64url), so that every
// instance can tell how long ago any of them last did work of unknown
// outcome on the key, by the NATS server's clock: a provider may take a
// while to show a transfer it accepted, and an instance deciding that the
// provider never accepted one must wait that long after the last such send,
// whichever instance made it.

// uncertainTTL is how long a note is kept: far longer than any provider's
// status lag it is read for.
const uncertainTTL = 24 * time.Hour

func (d *DeadLetters) uncertainSubject(part, key string) string {
	return d.cfg.LeasePrefix + "." + part + ".uncertain." + base64.RawURLEncoding.EncodeToString([]byte(key))
}

// NoteUncertain notes that part's work on key just ended with an unknown
// outcome.
func (d *DeadLetters) NoteUncertain(ctx context.Context, part, key string) error {
	ctx, cancel := d.withTimeout(ctx)
	defer cancel()
	_, err := d.putRecord(ctx, d.uncertainSubject(part, key), struct{}{}, uncertainTTL)
	return err
}

// LastUncertain returns when part's work on key last ended with an unknown
// outcome, by the NATS server's clock (zero: never, or more than a day ago).
func (d *DeadLetters) LastUncertain(ctx context.Context, part, key string) (time.Time, error) {
	ctx, cancel := d.withTimeout(ctx)
	defer cancel()
	var v struct{}
	at, _, err := d.lastRecord(ctx, d.uncertainSubject(part, key), &v)
	return at, err
}
