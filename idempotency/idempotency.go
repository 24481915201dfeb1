package idempotency

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/internal/kvcas"
	"github.com/bankbook/bankbook/internal/transient"
)

var (
	// ErrInProgress means another request with the same key is executing,
	// or was executing when its instance died and its lease has not run out.
	// Begin returns it as an *InProgressError, which says when to retry.
	ErrInProgress = errors.New("idempotency: a request with this key is in progress")
	// ErrKeyReused means the key was used before with a different request body.
	ErrKeyReused = errors.New("idempotency: key reused with a different request")
	// ErrInvalidKey means the key is empty, longer than 255 bytes or not
	// printable ASCII.
	ErrInvalidKey = errors.New("idempotency: key must be 1-255 printable ASCII characters")
	// ErrClaimLost is returned by Complete and Abandon when the claim's lease
	// ran out and a repeat took the key over: that repeat executes with the
	// same plan and stores the reply.
	ErrClaimLost = errors.New("idempotency: the claim was taken over by a repeat")
)

// InProgressError is ErrInProgress with a retry hint.
type InProgressError struct {
	// RetryAfter is how long until the executing claim's lease runs out (at
	// least a second): by then the request has stored its reply, or a repeat
	// takes the claim over. A repeat before then is harmless, and is
	// answered the stored reply as soon as there is one.
	RetryAfter time.Duration
}

func (e *InProgressError) Error() string {
	return fmt.Sprintf("%v (retry after %v)", ErrInProgress, e.RetryAfter)
}

// Is reports whether target is ErrInProgress.
func (e *InProgressError) Is(target error) bool { return target == ErrInProgress }

// inProgress returns an *InProgressError for a lease that runs out in d,
// rounded up to whole seconds.
func inProgress(d time.Duration) *InProgressError {
	secs := max(1, (d+time.Second-1)/time.Second)
	return &InProgressError{RetryAfter: secs * time.Second}
}

// DefaultLease is Config.Lease's default. It must exceed the longest
// command (the server's CommandTimeout, 10s by default); it bounds how long
// a key answers ErrInProgress after the instance executing it died.
const DefaultLease = 15 * time.Second

// ValidKey reports whether key is an acceptable Idempotency-Key.
func ValidKey(key string) bool {
	if len(key) == 0 || len(key) > 255 {
		return false
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x20 || key[i] > 0x7e {
			return false
		}
	}
	return true
}

// Config configures a Store.
type Config struct {
	// Bucket is the KV bucket. Default "bankbook_idempotency".
	Bucket string
	// TTL is how long a record is kept after it was last written. Default 7 days.
	TTL time.Duration
	// Lease is how long a claim may execute before a repeat may take it over.
	// It must exceed the longest command. It is also how long, at most, a
	// key answers ErrInProgress after the instance executing it died.
	// Default DefaultLease (15s).
	Lease time.Duration
	// Replicas of the bucket. Default 1.
	Replicas int
	// AttemptTimeout bounds one KV read or write. A read that gets no
	// answer in time, or a transient refusal (no leader), is made again; a
	// write, whose outcome is then unknown, is checked by reading the
	// record (see internal/kvcas). Default 1s.
	AttemptTimeout time.Duration
	// Timeout bounds Begin, Complete and Abandon, all attempts together,
	// when their context has no deadline. Default 5s.
	Timeout time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.Bucket == "" {
		c.Bucket = "bankbook_idempotency"
	}
	if c.TTL == 0 {
		c.TTL = 7 * 24 * time.Hour
	}
	if c.Lease == 0 {
		c.Lease = DefaultLease
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.Timeout == 0 {
		c.Timeout = transient.DefaultBudget
	}
	if c.AttemptTimeout == 0 {
		c.AttemptTimeout = min(transient.DefaultAttemptTimeout, c.Timeout)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate reports every problem with c.
func (c Config) Validate() error {
	var errs []error
	if c.TTL < time.Minute {
		errs = append(errs, errors.New("idempotency TTL must be at least 1m"))
	}
	if c.Lease < time.Second || c.Lease >= c.TTL {
		errs = append(errs, errors.New("idempotency lease must be at least 1s and shorter than the TTL"))
	}
	if err := c.retry().Validate(); err != nil {
		errs = append(errs, fmt.Errorf("idempotency: %w", err))
	}
	return errors.Join(errs...)
}

func (c Config) retry() transient.Policy {
	return transient.Policy{AttemptTimeout: c.AttemptTimeout, Budget: c.Timeout}
}

// Reply is a stored command outcome: Status 200 and the reply body, or an
// error status with the error body. Body is stored byte for byte.
type Reply struct {
	Status int    `json:"status"`
	Body   []byte `json:"body"`
	// asJSON stores Body as JSON rather than base64 (storedReply): set by
	// finish for a record that would not fit in a message otherwise.
	asJSON bool
}

// storedReply is how a Reply is stored: in base64, "body", as engines
// before this form read it; but a body of compact JSON (every reply the
// engine sends) as it is, "json", when its record would not fit in one
// NATS message otherwise (Store.finish). Base64 makes a body a third
// larger: a reply near a message's size (a large reconciliation run)
// could be sent but not kept for its repeats. An older engine, which
// reads "body" only, could not have stored such a reply at all.
type storedReply struct {
	Status int             `json:"status"`
	JSON   json.RawMessage `json:"json,omitempty"`
	Body   []byte          `json:"body,omitempty"`
}

// MarshalJSON stores r as storedReply.
func (r Reply) MarshalJSON() ([]byte, error) {
	out := storedReply{Status: r.Status}
	if r.asJSON && storedAsIs(r.Body) {
		out.JSON = r.Body
	} else {
		out.Body = r.Body
	}
	return json.Marshal(out)
}

// storedAsIs reports whether json.Marshal keeps body, as a
// json.RawMessage, byte for byte: compact JSON without the characters it
// escapes (<, >, &, U+2028, U+2029), as the engine's replies are.
func storedAsIs(body []byte) bool {
	var compact bytes.Buffer
	return json.Valid(body) && json.Compact(&compact, body) == nil && bytes.Equal(compact.Bytes(), body) &&
		!bytes.ContainsAny(body, "<>&\u2028\u2029")
}

// UnmarshalJSON reads a storedReply.
func (r *Reply) UnmarshalJSON(b []byte) error {
	var in storedReply
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	r.Status, r.Body = in.Status, in.Body
	if in.JSON != nil {
		r.Body = []byte(in.JSON)
	}
	return nil
}

type state string

const (
	stateInProgress state = "in_progress"
	stateDone       state = "done"
	stateAbandoned  state = "abandoned"
)

type record struct {
	State      state           `json:"state"`
	BodyHash   string          `json:"body_hash"`
	Plan       json.RawMessage `json:"plan,omitempty"`
	LeaseUntil time.Time       `json:"lease_until"`
	Since      time.Time       `json:"since,omitzero"` // when the claim was first made
	Reply      *Reply          `json:"reply,omitempty"`
}

// Store keeps idempotency records.
type Store struct {
	kv  jetstream.KeyValue
	cfg Config
	// maxRecord is the largest record a message carries: the server's
	// maximum payload, less room for the subject and headers.
	maxRecord int
}

// Open creates or binds the KV bucket.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config) (*Store, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      cfg.Bucket,
		Description: "bankbook idempotency records",
		History:     1,
		TTL:         cfg.TTL,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("idempotency bucket %s: %w", cfg.Bucket, err)
	}
	return &Store{kv: kv, cfg: cfg, maxRecord: int(js.Conn().MaxPayload()) - 1<<10}, nil
}

// Claim is the right to execute one request. Plan is what the first attempt
// planned; Resumed says this claim takes over an earlier attempt that did not
// finish.
type Claim struct {
	key      string
	bodyHash string
	revision uint64
	Plan     json.RawMessage
	Resumed  bool
	// Since is when the key's claim was first made, kept across
	// takeovers (zero for a record written before it was kept).
	Since time.Time
}

// HashBody returns the digest Begin compares to tell repeats from reuse.
func HashBody(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

func kvKey(scope, key string) string {
	sum := sha256.Sum256([]byte(key))
	return scope + "." + hex.EncodeToString(sum[:])
}

// Begin claims (scope, key) for a request whose canonical body hashes to
// bodyHash (see HashBody). It returns exactly one of:
//   - a Claim: execute, then Complete or Abandon it;
//   - a stored Reply: the request already ran; return this reply;
//   - an *InProgressError (matching ErrInProgress) or ErrKeyReused.
//
// plan is stored with a new claim; a resumed claim returns the first plan.
func (s *Store) Begin(ctx context.Context, scope, key, bodyHash string, plan json.RawMessage) (*Claim, *Reply, error) {
	if !ValidKey(key) {
		return nil, nil, ErrInvalidKey
	}
	k := kvKey(scope, key)
	var (
		claim *Claim
		reply *Reply
		done  bool
	)
	// A key is usually new: try to create the claim before reading.
	rev, err := kvcas.Update(ctx, s.kv, k, &kvcas.Options{CreateFirst: true, Retry: s.cfg.retry()}, func(cur kvcas.Entry) ([]byte, error) {
		claim, reply, done = nil, nil, false
		now := s.cfg.Now()
		if cur.Absent() {
			claim = &Claim{key: k, bodyHash: bodyHash, Plan: plan, Since: now}
			return json.Marshal(record{State: stateInProgress, BodyHash: bodyHash, Plan: plan, LeaseUntil: now.Add(s.cfg.Lease), Since: now})
		}
		var old record
		if err := json.Unmarshal(cur.Value, &old); err != nil {
			return nil, fmt.Errorf("idempotency record %s: %w", k, err)
		}
		if old.BodyHash != bodyHash {
			return nil, ErrKeyReused
		}
		switch {
		case old.State == stateDone:
			reply, done = old.Reply, true
			return nil, kvcas.ErrUnchanged
		case old.State == stateInProgress && now.Before(old.LeaseUntil):
			return nil, inProgress(old.LeaseUntil.Sub(now))
		}
		// Abandoned, or the executing instance's lease ran out: take over
		// with the first attempt's plan.
		old.State, old.LeaseUntil = stateInProgress, now.Add(s.cfg.Lease)
		claim = &Claim{key: k, bodyHash: bodyHash, Plan: old.Plan, Resumed: true, Since: old.Since}
		return json.Marshal(old)
	})
	switch {
	case errors.Is(err, kvcas.ErrTooManyConflicts):
		// Others keep taking the claim over: one of them is executing.
		return nil, nil, inProgress(time.Second)
	case errors.Is(err, ErrKeyReused), errors.Is(err, ErrInProgress):
		return nil, nil, err
	case err != nil:
		return nil, nil, fmt.Errorf("idempotency claim: %w", err)
	case done:
		return nil, reply, nil
	}
	claim.revision = rev
	return claim, nil, nil
}

// Replayed returns the reply stored for a request that ran under (scope,
// key) with a body hashing to bodyHash, or nil when there is none: no
// record, one for another body, or one still executing or abandoned. It
// claims nothing. The engine asks it for a keyed request it refuses as
// invalid before claiming: an earlier engine, whose validation was looser,
// may have executed it, and its repeat is answered what the first attempt
// was.
func (s *Store) Replayed(ctx context.Context, scope, key, bodyHash string) (*Reply, error) {
	if !ValidKey(key) {
		return nil, nil
	}
	k := kvKey(scope, key)
	e, err := transient.Do(ctx, s.cfg.retry(), func(ctx context.Context) (jetstream.KeyValueEntry, error) { return s.kv.Get(ctx, k) })
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("idempotency record %s: %w", k, err)
	}
	var rec record
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return nil, fmt.Errorf("idempotency record %s: %w", k, err)
	}
	if rec.State != stateDone || rec.BodyHash != bodyHash || rec.Reply == nil {
		return nil, nil
	}
	return rec.Reply, nil
}

// Complete stores the reply of a claimed request. Repeats get it from now on.
func (s *Store) Complete(ctx context.Context, c *Claim, reply Reply) error {
	return s.finish(ctx, c, record{State: stateDone, BodyHash: c.bodyHash, Plan: c.Plan, Since: c.Since, Reply: &reply})
}

// Abandon marks a claim whose command failed for a reason that a retry might
// not meet (a timeout, an unavailable stream). The next repeat takes it over
// with the same plan.
func (s *Store) Abandon(ctx context.Context, c *Claim) error {
	return s.finish(ctx, c, record{State: stateAbandoned, BodyHash: c.bodyHash, Plan: c.Plan, Since: c.Since})
}

// finish writes rec over the claim, provided the record is still at the
// claim's revision. A write whose answer is lost is checked by reading the
// record (kvcas).
func (s *Store) finish(ctx context.Context, c *Claim, rec record) error {
	val, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if rec.Reply != nil && len(val) > s.maxRecord {
		rec.Reply.asJSON = true
		if val, err = json.Marshal(rec); err != nil {
			return err
		}
	}
	_, err = kvcas.Update(ctx, s.kv, c.key, &kvcas.Options{Known: &kvcas.Entry{Revision: c.revision}, Retry: s.cfg.retry()},
		func(cur kvcas.Entry) ([]byte, error) {
			if cur.Revision != c.revision {
				// The lease ran out and a repeat took the claim over; it
				// executes with the same plan and will store the reply.
				return nil, ErrClaimLost
			}
			return val, nil
		})
	if err != nil {
		return fmt.Errorf("idempotency finish %s: %w", c.key, err)
	}
	return nil
}
