package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/internal/streams"
	"github.com/bankbook/bankbook/internal/subject"
)

// DeadConfig configures the dead-letter stream. Zero values mean defaults.
type DeadConfig struct {
	// Stream is the dead-letter stream. Default "BANKBOOK_DEAD".
	Stream string
	// Prefix of its subjects: a dead letter of part P is stored on
	// <Prefix>.P, and the record of its resolution (redriven or discarded)
	// on <Prefix>.P.<resolution>. Default "bankbook.dead".
	Prefix string
	// LeaseStream holds the leases on dead letters (DeadLetters.Lease),
	// the records of their redrives and the marks of dead-lettered messages
	// (deadmark.go), on
	// <LeasePrefix>.P.lease.N, <LeasePrefix>.P.redrive.N and
	// <LeasePrefix>.P.dead.S.Q: messages with per-message TTLs, apart from
	// the dead letters, which never expire. Default "BANKBOOK_DEAD_LEASES"
	// on "bankbook.deadlease".
	LeaseStream string
	LeasePrefix string
	// Replicas of the streams. Default 1.
	Replicas int
	// Timeout bounds each call when the context has no deadline. Default 5s.
	Timeout time.Duration
	// Now is the clock of recorded times. Default time.Now.
	Now func() time.Time
}

func (c *DeadConfig) setDefaults() {
	if c.Stream == "" {
		c.Stream = "BANKBOOK_DEAD"
	}
	if c.Prefix == "" {
		c.Prefix = "bankbook.dead"
	}
	if c.LeaseStream == "" {
		c.LeaseStream = c.Stream + "_LEASES"
	}
	if c.LeasePrefix == "" {
		c.LeasePrefix = "bankbook.deadlease"
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate reports every problem with c (after defaults are filled in).
func (c DeadConfig) Validate() error {
	var errs []error
	if strings.ContainsAny(c.Stream, ". *>") {
		errs = append(errs, errors.New("stream name must not contain '.', '*', '>' or spaces"))
	}
	if strings.ContainsAny(c.Prefix, " *>") || strings.HasSuffix(c.Prefix, ".") || c.Prefix == "" {
		errs = append(errs, errors.New("subject prefix must be a literal subject"))
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		errs = append(errs, errors.New("replicas must be between 1 and 5"))
	}
	return errors.Join(errs...)
}

// DeadLetter is the recorded fact that a part gave up on a message.
type DeadLetter struct {
	// ID is the dead letter's sequence in the dead-letter stream.
	ID uint64 `json:"-"`
	// Part is the part that gave up.
	Part string `json:"part"`
	// Stream, Seq and Subject locate the original message.
	Stream  string `json:"stream"`
	Seq     uint64 `json:"seq"`
	Subject string `json:"subject"`
	// Attempts counts the failed handlings; Delivered the deliveries.
	Attempts  int    `json:"attempts"`
	Delivered uint64 `json:"delivered"`
	// Error is the last error; Permanent says the handler called it permanent.
	Error     string `json:"error"`
	Permanent bool   `json:"permanent,omitempty"`
	// At is when the message was dead-lettered.
	At time.Time `json:"at"`
}

// Resolution is the record left when a dead letter is redriven or discarded.
type Resolution struct {
	DeadLetter
	// DeadLetterID is the resolved dead letter's ID.
	DeadLetterID uint64 `json:"dead_letter_id"`
	Action       string `json:"action"` // "redriven" or "discarded"
	Reason       string `json:"reason,omitempty"`
	// Actor is who redrove or discarded it (WithActor): the identity the
	// NATS server vouched for; empty when no one was named.
	Actor      string    `json:"actor,omitempty"`
	ResolvedAt time.Time `json:"resolved_at"`
}

type actorKey struct{}

// WithActor returns ctx naming actor as who redrives or discards dead
// letters with it: the Resolution records it.
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

// actorOf is the actor WithActor put in ctx ("": none).
func actorOf(ctx context.Context) string {
	a, _ := ctx.Value(actorKey{}).(string)
	return a
}

// DeadLetters stores dead letters in a JetStream stream. A dead letter stays
// until it is redriven successfully (Loop.Redrive) or discarded with a
// reason (Discard); either removes it and records a Resolution. It is safe
// for concurrent use.
type DeadLetters struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	leases jetstream.Stream
	cfg    DeadConfig
}

// OpenDeadLetters creates or updates the dead-letter stream.
func OpenDeadLetters(ctx context.Context, js jetstream.JetStream, cfg DeadConfig) (*DeadLetters, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("dead letters config: %w", err)
	}
	d := &DeadLetters{js: js, cfg: cfg}
	ctx, cancel := d.withTimeout(ctx)
	defer cancel()
	stream, err := streams.Ensure(ctx, js, jetstream.StreamConfig{
		Name:        cfg.Stream,
		Description: "bankbook dead letters: work a background part gave up on, until redriven or discarded",
		Subjects:    []string{cfg.Prefix + ".>"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		Duplicates:  2 * time.Minute,
		AllowDirect: cfg.Replicas == 1,
	})
	if err != nil {
		return nil, fmt.Errorf("dead-letter stream %s: %w", cfg.Stream, err)
	}
	d.stream = stream
	leases, err := streams.Ensure(ctx, js, jetstream.StreamConfig{
		Name:        cfg.LeaseStream,
		Description: "bankbook leases on dead letters (a redrive running, an operator deciding), the last redrive of each, and the marks of dead-lettered messages; they expire",
		Subjects:    []string{cfg.LeasePrefix + ".>"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		// Per-message TTLs: a lease ends by the server's clock.
		AllowMsgTTL: true,
		MaxAge:      redriveRecordTTL, // the longest per-message TTL it holds
		// Every message a part gets again is looked up here (deadmark.go).
		AllowDirect: cfg.Replicas == 1,
	})
	if err != nil {
		return nil, fmt.Errorf("dead-letter lease stream %s: %w", cfg.LeaseStream, err)
	}
	d.leases = leases
	return d, nil
}

func (d *DeadLetters) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d.cfg.Timeout)
}

// Record stores dl (its At defaults to now) and returns it with its ID.
// Recording the same delivery twice (same part, stream, seq and delivered)
// within two minutes stores it once.
func (d *DeadLetters) Record(ctx context.Context, dl DeadLetter) (DeadLetter, error) {
	if !subject.Token(dl.Part) {
		return DeadLetter{}, fmt.Errorf("dead letter: part %q must be a subject token", dl.Part)
	}
	if dl.At.IsZero() {
		dl.At = d.cfg.Now().UTC()
	}
	body, err := json.Marshal(dl)
	if err != nil {
		return DeadLetter{}, fmt.Errorf("encode dead letter: %w", err)
	}
	msg := nats.NewMsg(d.cfg.Prefix + "." + dl.Part)
	msg.Data = body
	msg.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("%s.%s.%d.%d", dl.Part, dl.Stream, dl.Seq, dl.Delivered))
	ctx, cancel := d.withTimeout(ctx)
	defer cancel()
	ack, err := d.js.PublishMsg(ctx, msg)
	if err != nil {
		return DeadLetter{}, fmt.Errorf("record dead letter of %s seq %d: %w", dl.Stream, dl.Seq, err)
	}
	dl.ID = ack.Sequence
	return dl, nil
}

// part returns the part of a dead letter's subject, or "" for any other subject.
func (d *DeadLetters) part(subj string) string {
	p, ok := strings.CutPrefix(subj, d.cfg.Prefix+".")
	if !ok || !subject.Token(p) {
		return ""
	}
	return p
}

func (d *DeadLetters) decode(raw *jetstream.RawStreamMsg) (DeadLetter, error) {
	var dl DeadLetter
	if err := json.Unmarshal(raw.Data, &dl); err != nil {
		return DeadLetter{}, fmt.Errorf("dead letter %d: %w", raw.Sequence, err)
	}
	dl.ID = raw.Sequence
	return dl, nil
}

// Get returns the dead letter with that ID, or ErrNotFound.
func (d *DeadLetters) Get(ctx context.Context, id uint64) (DeadLetter, error) {
	ctx, cancel := d.withTimeout(ctx)
	defer cancel()
	raw, err := d.stream.GetMsg(ctx, id)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return DeadLetter{}, fmt.Errorf("%w: %d", ErrNotFound, id)
	}
	if err != nil {
		return DeadLetter{}, fmt.Errorf("dead letter %d: %w", id, err)
	}
	if d.part(raw.Subject) == "" {
		return DeadLetter{}, fmt.Errorf("%w: %d", ErrNotFound, id)
	}
	return d.decode(raw)
}

// ListOptions selects a page of dead letters.
type ListOptions struct {
	// Part selects one part's dead letters; "" lists every part's.
	Part string
	// After is the ID the previous page ended with (0: from the start).
	After uint64
	// Limit caps the page. Default 100, at most 1000.
	Limit int
}

// List returns dead letters in the order they were recorded, and the
// cursor of the next page (the page's last ID when more follow, else 0).
func (d *DeadLetters) List(ctx context.Context, opts ListOptions) ([]DeadLetter, uint64, error) {
	if opts.Limit <= 0 {
		opts.Limit = 100
	}
	opts.Limit = min(opts.Limit, 1000)
	filter := d.cfg.Prefix + ".*"
	if opts.Part != "" {
		if !subject.Token(opts.Part) {
			return nil, 0, fmt.Errorf("dead letters: part %q must be a subject token", opts.Part)
		}
		filter = d.cfg.Prefix + "." + opts.Part
	}
	ctx, cancel := d.withTimeout(ctx)
	defer cancel()
	var out []DeadLetter
	for seq := opts.After + 1; len(out) < opts.Limit; {
		raw, err := d.stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(filter))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return nil, 0, fmt.Errorf("list dead letters: %w", err)
		}
		dl, err := d.decode(raw)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, dl)
		seq = raw.Sequence + 1
	}
	var next uint64
	if len(out) == opts.Limit {
		// A full page has a next one only if a dead letter follows it: a
		// cursor to an empty page would be a "next page" of nothing.
		_, err := d.stream.GetMsg(ctx, out[len(out)-1].ID+1, jetstream.WithGetMsgSubject(filter))
		switch {
		case err == nil:
			next = out[len(out)-1].ID
		case !errors.Is(err, jetstream.ErrMsgNotFound):
			return nil, 0, fmt.Errorf("list dead letters: %w", err)
		}
	}
	return out, next, nil
}

// Count returns how many dead letters each part has (parts with none are
// absent), for the bankbook_dead_letters metric.
func (d *DeadLetters) Count(ctx context.Context) (map[string]uint64, error) {
	ctx, cancel := d.withTimeout(ctx)
	defer cancel()
	info, err := d.stream.Info(ctx, jetstream.WithSubjectFilter(d.cfg.Prefix+".*"))
	if err != nil {
		return nil, fmt.Errorf("count dead letters: %w", err)
	}
	out := make(map[string]uint64, len(info.State.Subjects))
	for subj, n := range info.State.Subjects {
		if p := d.part(subj); p != "" {
			out[p] += n
		}
	}
	return out, nil
}

// Discard removes a dead letter without handling it, recording who decided
// and why (reason is required).
func (d *DeadLetters) Discard(ctx context.Context, id uint64, reason string) error {
	if strings.TrimSpace(reason) == "" {
		return errors.New("dead letters: discarding needs a reason")
	}
	dl, err := d.Get(ctx, id)
	if err != nil {
		return err
	}
	return d.resolve(ctx, dl, "discarded", reason)
}

// resolve records what became of dl and removes it.
func (d *DeadLetters) resolve(ctx context.Context, dl DeadLetter, action, reason string) error {
	r := Resolution{DeadLetter: dl, DeadLetterID: dl.ID, Action: action, Reason: reason, Actor: actorOf(ctx), ResolvedAt: d.cfg.Now().UTC()}
	body, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode resolution: %w", err)
	}
	msg := nats.NewMsg(d.cfg.Prefix + "." + dl.Part + "." + action)
	msg.Data = body
	msg.Header.Set(jetstream.MsgIDHeader, "resolved."+strconv.FormatUint(dl.ID, 10))
	ctx, cancel := d.withTimeout(ctx)
	defer cancel()
	ack, err := d.js.PublishMsg(ctx, msg)
	if err != nil {
		return fmt.Errorf("record %s dead letter %d: %w", action, dl.ID, err)
	}
	if ack.Duplicate {
		// Resolved before (within the dedup window): by this same action
		// (a retry), or otherwise by someone else, whose record stands.
		first, err := d.stream.GetMsg(ctx, ack.Sequence)
		if err != nil {
			return fmt.Errorf("dead letter %d: its earlier resolution: %w", dl.ID, err)
		}
		if !strings.HasSuffix(first.Subject, "."+action) {
			return fmt.Errorf("%w: dead letter %d (%s), not %s", ErrResolvedOtherwise, dl.ID, first.Subject[strings.LastIndexByte(first.Subject, '.')+1:], action)
		}
	}
	if err := d.stream.DeleteMsg(ctx, dl.ID); err != nil && !d.gone(ctx, dl.ID) {
		return fmt.Errorf("remove %s dead letter %d: %w", action, dl.ID, err)
	}
	return nil
}

// gone reports whether the dead letter with that ID is no longer stored:
// another resolve of it (a second operator, a redrive) removed it first.
// A refused deletion does not say why (nats.go keeps only the server's
// text), so gone asks the stream.
func (d *DeadLetters) gone(ctx context.Context, id uint64) bool {
	_, err := d.stream.GetMsg(ctx, id)
	return errors.Is(err, jetstream.ErrMsgNotFound)
}

// original fetches the message dl refers to.
func (d *DeadLetters) original(ctx context.Context, dl DeadLetter) (*jetstream.RawStreamMsg, error) {
	ctx, cancel := d.withTimeout(ctx)
	defer cancel()
	s, err := d.js.Stream(ctx, dl.Stream)
	if err != nil {
		return nil, fmt.Errorf("stream %s of dead letter %d: %w", dl.Stream, dl.ID, err)
	}
	raw, err := s.GetMsg(ctx, dl.Seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fmt.Errorf("%w: %s seq %d", ErrOriginalGone, dl.Stream, dl.Seq)
	}
	if err != nil {
		return nil, fmt.Errorf("original of dead letter %d: %w", dl.ID, err)
	}
	return raw, nil
}
