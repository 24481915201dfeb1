package eventstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Deny delete and deny purge keep a client from removing a message, but an
// identity that may update the stream (the engine's) could still lower its
// limits, and the server would then drop messages itself: a maximum age, a
// maximum of messages (per subject, or in all) or of bytes, per-message
// TTLs. These are the settings that keep every message, as StreamConfig
// sets them; the server refuses to lift deny delete or deny purge once set.

// Loss names each setting of have under which the server may drop a
// message of the event stream, with its value ("max_msgs_per_subject=1");
// none on a stream that keeps every message.
func Loss(have jetstream.StreamConfig) []string {
	var out []string
	if have.MaxAge != 0 {
		out = append(out, fmt.Sprintf("max_age=%s", have.MaxAge))
	}
	if have.MaxMsgs > 0 {
		out = append(out, fmt.Sprintf("max_msgs=%d", have.MaxMsgs))
	}
	if have.MaxBytes > 0 {
		out = append(out, fmt.Sprintf("max_bytes=%d", have.MaxBytes))
	}
	if have.MaxMsgsPerSubject > 0 {
		out = append(out, fmt.Sprintf("max_msgs_per_subject=%d", have.MaxMsgsPerSubject))
	}
	if have.AllowMsgTTL {
		out = append(out, "allow_msg_ttl=true")
	}
	if have.Retention != jetstream.LimitsPolicy {
		// Interest or work queue: a message goes once every consumer has
		// it, and the engine's have all of them.
		out = append(out, "retention="+have.Retention.String())
	}
	if !have.DenyDelete {
		out = append(out, "deny_delete=false")
	}
	if !have.DenyPurge {
		out = append(out, "deny_purge=false")
	}
	return out
}

// keepAll returns have with the settings Loss names put back to those of
// StreamConfig, every other setting left as it is (another instance may
// have brought those to a newer configuration). Per-message TTLs stay
// allowed once they are: the server refuses to turn them off, and asking
// would fail the whole update (Guarded.Remaining names them).
func keepAll(have jetstream.StreamConfig) jetstream.StreamConfig {
	have.MaxAge, have.MaxMsgs, have.MaxBytes, have.MaxMsgsPerSubject = 0, -1, -1, -1
	have.DenyDelete, have.DenyPurge, have.Retention = true, true, jetstream.LimitsPolicy
	return have
}

// Guarded is what one look of Guard saw.
type Guarded struct {
	At time.Time
	// Loss names the settings under which the server could drop messages
	// (Loss) that the look found, and put back unless Restore says why not.
	Loss    []string
	Restore error
	// Remaining names what Loss still finds once the look put the rest
	// back: per-message TTLs, which the server never turns off again.
	Remaining []string
	// Lost counts the sequences the stream holds no message at: deleted
	// inside it, or gone from its head. The stream denies deletes and
	// purges, so every one is a commit lost.
	Lost uint64
	// Err is why the look could not read the stream's state (nothing else
	// is set then).
	Err error
}

func (g Guarded) String() string {
	var parts []string
	if g.Err != nil {
		parts = append(parts, "the event stream's state could not be read: "+g.Err.Error())
	}
	if len(g.Loss) > 0 {
		s := fmt.Sprintf("the event stream's settings were changed so that the server may drop messages (%s), seen at %s", strings.Join(g.Loss, ", "), g.At.UTC().Format(time.RFC3339))
		switch {
		case g.Restore != nil:
			s += "; putting them back failed: " + g.Restore.Error()
		case len(g.Remaining) > 0:
			s += "; put back but for " + strings.Join(g.Remaining, ", ") + ", which the server does not undo"
		default:
			s += "; put back"
		}
		parts = append(parts, s)
	}
	if g.Lost > 0 {
		parts = append(parts, fmt.Sprintf("the event stream has lost %d commits (sequences without a message): bankbook audit verify names them; restore the stream (docs/operations.md, \"A damaged event log\")", g.Lost))
	}
	if len(parts) == 0 {
		return "the event stream keeps every message"
	}
	return strings.Join(parts, "; ")
}

// Guard looks at the event stream's settings and state until ctx ends: on
// every advisory the server publishes for the stream (updated, deleted,
// ...), and every
// interval besides (an advisory can be missed). When Loss names a
// setting, the look puts the settings that keep every message back at once
// (keepAll). Each look is handed to saw. Guard returns only when ctx ends
// (nil) or it cannot subscribe to the advisories.
func (s *Store) Guard(ctx context.Context, interval time.Duration, saw func(Guarded)) error {
	updates := make(chan struct{}, 1)
	sub, err := s.js.Conn().Subscribe("$JS.EVENT.ADVISORY.STREAM.*."+s.cfg.Stream, func(*nats.Msg) {
		select {
		case updates <- struct{}{}:
		default:
		}
	})
	if err != nil {
		return fmt.Errorf("eventstore: watch the event stream's settings: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		saw(s.look(ctx))
		select {
		case <-ctx.Done():
			return nil
		case <-updates:
		case <-tick.C:
		}
	}
}

// look reads the stream's settings and state once, and puts back what
// Loss names.
func (s *Store) look(ctx context.Context) Guarded {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	g := Guarded{At: s.cfg.Now()}
	info, err := s.stream.Info(ctx)
	if err != nil {
		g.Err = err
		return g
	}
	g.Loss = Loss(info.Config)
	switch undone := keepAll(info.Config); {
	case len(g.Loss) == 0:
	case len(Loss(undone)) == len(g.Loss):
		// Nothing an update can put back (per-message TTLs alone): none
		// is sent, since each is an advisory that brings another look.
		g.Remaining = g.Loss
	default:
		if st, err := s.js.UpdateStream(ctx, undone); err != nil {
			g.Restore = err
		} else {
			info = st.CachedInfo()
			g.Remaining = Loss(info.Config)
		}
	}
	g.Lost = uint64(info.State.NumDeleted)
	if info.State.FirstSeq > 1 {
		g.Lost += info.State.FirstSeq - 1
	}
	return g
}
