package timers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/internal/kvcas"
	"github.com/bankbook/bankbook/internal/subject"
)

// A turn lets the handlers of a timer's firings take turns across
// instances: the worker hands each firing to one instance, but two
// firings of one timer (a work that armed its next firing, due at once,
// before it finished) may be handled at once by two. A handler holds the
// turn of (kind, id) while it does what must not run beside another
// firing's; one that finds it held asks to be called again later.
//
// The turn is a message on <prefix>.turn.<kind>.<id>, written only when
// the subject holds none, or holds one whose time ran out, by
// compare-and-set on the subject's last sequence, and removed when the
// turn ends. A handler that died (an instance killed) leaves its turn to
// run out: it holds the time it lasts until, by the clock of the instance
// that took it, which the others compare with their own.

// TurnHeldError is returned when another handler holds the turn.
type TurnHeldError struct {
	Kind, ID string
	// Until is when the turn runs out at the latest, by its holder's clock.
	Until time.Time
}

func (e *TurnHeldError) Error() string {
	return fmt.Sprintf("timers: the turn of %s/%s is held until %s", e.Kind, e.ID, e.Until.UTC().Format(time.RFC3339Nano))
}

// turn is a turn as stored.
type turn struct {
	Until time.Time `json:"until"`
}

// TakeTurn takes the turn of (kind, id) for d, unless another holder's
// has not run out: a *TurnHeldError, also when another takes it at the
// same moment. end ends the turn (a turn that cannot be removed runs out).
// kind and id must be subject tokens.
func (t *Timers) TakeTurn(ctx context.Context, kind, id string, d time.Duration) (end func(), err error) {
	if !subject.Token(kind) || !subject.Token(id) {
		return nil, fmt.Errorf("timers: kind %q and id %q must be subject tokens", kind, id)
	}
	subj := t.cfg.Prefix + ".turn." + kind + "." + id
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for {
		var last uint64 // the run-out turn taken over; 0: none held
		m, err := t.stream.GetLastMsgForSubject(ctx, subj)
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
		case err != nil:
			return nil, fmt.Errorf("turn of timer %s/%s: %w", kind, id, err)
		default:
			var held turn
			if json.Unmarshal(m.Data, &held) == nil && time.Now().Before(held.Until) {
				return nil, &TurnHeldError{Kind: kind, ID: id, Until: held.Until}
			}
			last = m.Sequence
		}
		data, err := json.Marshal(turn{Until: time.Now().Add(d).UTC()})
		if err != nil {
			return nil, err
		}
		ack, err := t.js.Publish(ctx, subj, data, jetstream.WithExpectLastSequencePerSubject(last))
		if kvcas.Conflict(err) {
			continue // taken (or ended) meanwhile: look again
		}
		if err != nil {
			return nil, fmt.Errorf("turn of timer %s/%s: %w", kind, id, err)
		}
		if last != 0 {
			_ = t.stream.DeleteMsg(ctx, last)
		}
		return func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := t.stream.DeleteMsg(ctx, ack.Sequence); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
				t.cfg.Log.Warn().Err(err).Str("kind", kind).Str("id", id).Msg("a timer's turn was not ended; it runs out")
			}
		}, nil
	}
}
