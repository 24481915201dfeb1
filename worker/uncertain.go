package worker

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/internal/kvcas"
)

// Uncertain work: a part's work on some key (a payout's send) may take
// effect at a third party even when the part never learns that it did (a
// send answered with a 5xx, a timeout, an instance killed mid-send). Each
// such piece of work is noted before it starts (BeginUncertain), with how
// long after the note it may still take effect (its own deadline, fixed
// before the note, and the way to the third party), and noted again, once
// it is over, if the third party certainly did not act on it (EndUncertain:
// refused, throttled). Once the notes show that no work took effect, one
// instance may decide so for good (Decide): a compare-and-set on the notes,
// so no work begins after a reading that decided without it. Every note is
// written by compare-and-set too, and none after a decision, so the
// decision stays the last note: no work begins after it (BeginUncertain
// then answers *DecidedError), and a reading or an end notes nothing.
// The notes go on
// <LeasePrefix>.P.uncertain.K (part P, key K base64url) in the lease
// stream, where every instance reads them (Uncertainty), timed by the NATS
// server's clock alone: a provider may take a while to show a transfer it
// accepted, and an instance deciding that it never accepted one must wait
// that long after the last send that may have been accepted, whichever
// instance made it and whatever that instance's clock says.

// uncertainTTL is how long a note is kept: far longer than any status lag
// it is read for (MaxUncertainWait).
const uncertainTTL = 24 * time.Hour

// MaxUncertainWait bounds the waits that Uncertainty serves, and a work's
// bound: a note is kept twice as long, so it outlives a wait counted from
// its bound.
const MaxUncertainWait = uncertainTTL / 2

// uncertainNote is one note. Notes from before the op field existed ({})
// were written after a send of unknown outcome: they read as begun work
// never ended, which took effect by the note's time.
type uncertainNote struct {
	// Op is "begin" (work starts), "end" (the work begun at Began took no
	// effect), "look" (Uncertainty reading the server's time) or
	// "decided" (no more work on the key, for Reason).
	Op     string `json:"op,omitempty"`
	Began  uint64 `json:"began,omitempty"`
	Reason string `json:"reason,omitempty"`
	// WithinMS (begin) is how long after the note, in milliseconds, the
	// work may still take effect. A begin note without it (written by a
	// build that did not bound its work) counts unboundedWithin.
	WithinMS *int64 `json:"within_ms,omitempty"`
}

// unboundedWithin is the bound of a begin note that states none: more than
// any send's settle timeout and way to the provider of that build.
const unboundedWithin = time.Minute

// within is how long after n (a begin note) its work may take effect, at
// most the notes' life.
func (n uncertainNote) within() time.Duration {
	if n.WithinMS == nil {
		return unboundedWithin
	}
	return time.Duration(min(max(*n.WithinMS, 0), uncertainTTL.Milliseconds())) * time.Millisecond
}

// Uncertainty is what the notes on a key say, by the NATS server's clock.
type Uncertainty struct {
	// First is when the earliest work noted was begun or ended (zero:
	// none kept).
	First time.Time
	// LastOpen is the latest time by which work that was not ended as
	// without effect may have taken effect: each such work's note plus
	// its bound (zero: none). It may be after Now: the work may still be
	// under way.
	LastOpen time.Time
	// Now is the server's time when the notes were read (zero when
	// Decided: nothing is noted after a decision, not even a reading).
	Now time.Time
	// Decided is set when an instance decided that no more work is done
	// on the key (Decide), for Reason, at DecidedAt. No work begins after
	// it; work begun before it may still take effect until LastOpen.
	Decided   bool
	Reason    string
	DecidedAt time.Time

	look uint64 // the sequence of the reading's own note
}

// ServerClockMargin is how far the NATS server's clock is taken to be
// behind an instance's at most, where a reading has no time of the
// server's (ServerNow).
const ServerClockMargin = 5 * time.Second

// ServerNow is the server's time when u was read: Now, or, once decided
// (a reading then notes nothing, so it has no time of the server's), the
// later of the decision's time and local, an instance's clock, less
// ServerClockMargin. Waits counted from it are never too short.
func (u Uncertainty) ServerNow(local time.Time) time.Time {
	if !u.Now.IsZero() {
		return u.Now
	}
	if at := local.Add(-ServerClockMargin); at.After(u.DecidedAt) {
		return at
	}
	return u.DecidedAt
}

// QuietFor is how long, by the server's clock (ServerNow of local), it has
// been since the first work noted and since the latest time any work may
// have taken effect (LastOpen), and since each of also, whichever is
// latest; false when none of them is known (the notes gone).
func (u Uncertainty) QuietFor(local time.Time, also ...time.Time) (time.Duration, bool) {
	from := u.First
	for _, t := range append([]time.Time{u.LastOpen}, also...) {
		if t.After(from) {
			from = t
		}
	}
	if from.IsZero() {
		return 0, false
	}
	return u.ServerNow(local).Sub(from), true
}

// DecidedError is BeginUncertain's answer once an instance decided that no
// more work is done on the key: the work must not start; the decision, for
// Reason, stands.
type DecidedError struct{ Reason string }

func (e *DecidedError) Error() string { return "no more work: decided (" + e.Reason + ")" }

// ErrNotedSince is Decide's answer when a note came after the reading it
// decided on: read again.
var ErrNotedSince = errors.New("the uncertain work was noted again since it was read")

// ErrNoteContention is the answer of a note (BeginUncertain, Uncertainty,
// EndUncertain) when other notes on the key came first maxNoteRaces times
// in a row (instances noting the same work at once): nothing was noted;
// try again.
var ErrNoteContention = errors.New("other notes on the uncertain work kept coming first")

// maxNoteRaces bounds how often a note is tried again after another note
// came between the reading of the last one and its own (appendNote).
const maxNoteRaces = 10

// testHookBeforeNote, when set, runs between appendNote's reading of the
// last note and the writing of its own (tests).
var testHookBeforeNote func(subject string)

func (d *DeadLetters) uncertainSubject(part, key string) string {
	return d.cfg.LeasePrefix + "." + part + ".uncertain." + base64.RawURLEncoding.EncodeToString([]byte(key))
}

// BeginUncertain notes that part starts work on key whose outcome may stay
// unknown, and which may take effect until within after the note: the
// work's deadline must be set before BeginUncertain is called, and within
// must cover it and the way to the third party. EndUncertain takes the
// returned mark. Once an instance decided that no more work is done on
// key (Decide), it notes nothing and answers *DecidedError: the note is
// written only if the last one, read just before, is still the last.
func (d *DeadLetters) BeginUncertain(ctx context.Context, part, key string, within time.Duration) (uint64, error) {
	if within < 0 || within > MaxUncertainWait {
		return 0, fmt.Errorf("noting uncertain work on %s %q: a bound of %v, want 0 to %v", part, key, within, MaxUncertainWait)
	}
	ms := (within + time.Millisecond - 1).Milliseconds()
	seq, decided, err := d.appendNote(ctx, d.uncertainSubject(part, key), uncertainNote{Op: "begin", WithinMS: &ms})
	switch {
	case err != nil:
		return 0, fmt.Errorf("noting uncertain work on %s %q: %w", part, key, err)
	case decided != nil:
		return 0, &DecidedError{Reason: decided.Reason}
	}
	return seq, nil
}

// appendNote writes n on subject, unless the last note is a decision: it
// returns that decision then and writes nothing. The note is written only
// if the last one, read just before, is still the last, so no note ever
// follows a decision.
func (d *DeadLetters) appendNote(ctx context.Context, subject string, n uncertainNote) (uint64, *uncertainNote, error) {
	ctx, cancel := d.withTimeout(ctx)
	defer cancel()
	for range maxNoteRaces {
		var last uncertainNote
		_, lastSeq, err := d.lastRecord(ctx, subject, &last)
		if err != nil {
			return 0, nil, err
		}
		if last.Op == "decided" {
			return lastSeq, &last, nil
		}
		if testHookBeforeNote != nil {
			testHookBeforeNote(subject)
		}
		ack, err := d.putRecord(ctx, subject, n, uncertainTTL, jetstream.WithExpectLastSequencePerSubject(lastSeq))
		if kvcas.Conflict(err) {
			continue // another note came first: read it
		}
		if err != nil {
			return 0, nil, err
		}
		return ack.Sequence, nil, nil
	}
	return 0, nil, fmt.Errorf("%w: %d times", ErrNoteContention, maxNoteRaces)
}

// Decide notes, for reason, that no more work is done on key, if no note
// came after u was read (else ErrNotedSince: read again and decide anew).
// Should another instance have decided first, its reason stands: Decide
// returns the reason decided.
func (d *DeadLetters) Decide(ctx context.Context, part, key string, u Uncertainty, reason string) (string, error) {
	if u.Decided {
		return u.Reason, nil
	}
	if u.look == 0 {
		return "", fmt.Errorf("deciding the uncertain work on %s %q: not read", part, key)
	}
	ctx, cancel := d.withTimeout(ctx)
	defer cancel()
	subject := d.uncertainSubject(part, key)
	_, err := d.putRecord(ctx, subject, uncertainNote{Op: "decided", Reason: reason}, uncertainTTL, jetstream.WithExpectLastSequencePerSubject(u.look))
	if !kvcas.Conflict(err) {
		if err != nil {
			return "", fmt.Errorf("deciding the uncertain work on %s %q: %w", part, key, err)
		}
		return reason, nil
	}
	var last uncertainNote
	if _, _, err := d.lastRecord(ctx, subject, &last); err != nil {
		return "", fmt.Errorf("deciding the uncertain work on %s %q: %w", part, key, err)
	}
	if last.Op == "decided" {
		return last.Reason, nil
	}
	return "", ErrNotedSince
}

// EndUncertain notes that the work BeginUncertain marked began took no
// effect. After a decision it notes nothing: the decision stands, and no
// wait is counted any more.
func (d *DeadLetters) EndUncertain(ctx context.Context, part, key string, began uint64) error {
	if _, _, err := d.appendNote(ctx, d.uncertainSubject(part, key), uncertainNote{Op: "end", Began: began}); err != nil {
		return fmt.Errorf("noting uncertain work on %s %q: %w", part, key, err)
	}
	return nil
}

// Uncertainty reads the notes on part's key. It writes a note of its own
// first, whose time is the server's now, unless the notes were decided.
func (d *DeadLetters) Uncertainty(ctx context.Context, part, key string) (Uncertainty, error) {
	subject := d.uncertainSubject(part, key)
	look, decided, err := d.appendNote(ctx, subject, uncertainNote{Op: "look"})
	if err != nil {
		return Uncertainty{}, fmt.Errorf("noting a reading of the uncertain work on %s %q: %w", part, key, err)
	}
	ctx, cancel := d.withTimeout(ctx)
	defer cancel()
	u := Uncertainty{}
	if decided == nil {
		u.look = look // what Decide compares with
	}
	open := map[uint64]time.Time{} // begun, not ended: by when it may take effect
	for seq := uint64(1); seq <= look; {
		raw, err := d.leases.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break // not even the look: reported below
		}
		if err != nil {
			return Uncertainty{}, fmt.Errorf("reading the uncertain work on %s %q: %w", part, key, err)
		}
		if raw.Sequence > look {
			break
		}
		var n uncertainNote
		if err := json.Unmarshal(raw.Data, &n); err != nil {
			return Uncertainty{}, fmt.Errorf("uncertain work on %s %q: note %d: %w", part, key, raw.Sequence, err)
		}
		if u.First.IsZero() && n.Op != "look" && n.Op != "decided" {
			u.First = raw.Time
		}
		switch n.Op {
		case "":
			open[raw.Sequence] = raw.Time // written after the work
		case "begin":
			open[raw.Sequence] = raw.Time.Add(n.within())
		case "end":
			delete(open, n.Began)
		case "look":
			if raw.Sequence == u.look {
				u.Now = raw.Time
			}
		case "decided":
			u.Decided, u.Reason, u.DecidedAt = true, n.Reason, raw.Time
		}
		seq = raw.Sequence + 1
	}
	if u.Now.IsZero() && !u.Decided {
		return Uncertainty{}, fmt.Errorf("uncertain work on %s %q: the note just written (%d) is not there", part, key, look)
	}
	for _, at := range open {
		if at.After(u.LastOpen) {
			u.LastOpen = at
		}
	}
	return u, nil
}
