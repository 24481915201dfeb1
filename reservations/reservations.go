// Package reservations holds depositor-name reservations in a JetStream KV
// bucket, so that a name is unique among open orders across every engine
// instance on the same NATS.
//
// A reservation is a create-if-absent on the normalised name
// (domain.NormalizeName): of two instances reserving the same name at once,
// exactly one succeeds. A reservation records the order that holds it; the
// command layer decides when a holder is stale (its order closed, or never
// appeared) and takes the name over with a compare-and-swap on the entry's
// revision, so a takeover races safely too.
//
// The same bucket holds, per buyer, the orders admitted against the
// buyer's limit of unpaid orders (Admit), under keys "unpaid.<buyer>" that
// no name's key can be. The limit is what keeps one buyer from using up the
// depositor names of a buyer name; the command layer says which admitted
// orders still count, and Admit drops the others as it writes.
//
// Every KV request has a timeout of its own (Config.AttemptTimeout, 1s): a
// read that gets no answer, or a transient refusal (no leader), is made
// again, and a write whose answer was lost is checked by reading the entry,
// within the caller's deadline. An error that remains matches
// transient.ErrUnavailable.
package reservations

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/internal/kvcas"
	"github.com/bankbook/bankbook/internal/transient"
)

// Holder is the order holding a name.
type Holder struct {
	OrderID    domain.OrderID `json:"order_id"`
	ReservedAt time.Time      `json:"reserved_at"`
}

// TakenError is returned by Reserve when another order holds the name.
type TakenError struct {
	Name     string
	Holder   Holder
	Revision uint64
}

func (e *TakenError) Error() string {
	return fmt.Sprintf("depositor name %q is held by order %s", e.Name, e.Holder.OrderID)
}

// ErrTaken matches every *TakenError.
var ErrTaken = errors.New("depositor name taken")

// ErrFree is returned by Holder for a name nobody holds.
var ErrFree = errors.New("depositor name not reserved")

// Is makes errors.Is(err, ErrTaken) true.
func (e *TakenError) Is(target error) bool { return target == ErrTaken }

// Config configures a Store.
type Config struct {
	// Bucket is the KV bucket. Default "bankbook_depositor_names".
	Bucket string
	// Replicas of the bucket. Default 1.
	Replicas int
	// AttemptTimeout bounds one KV read or write. A read that gets no
	// answer in time, or a transient refusal (no leader), is made again; a
	// write, whose outcome is then unknown, is checked by reading the entry
	// (see internal/kvcas). Default 1s.
	AttemptTimeout time.Duration
	// Timeout bounds a call, all attempts together, when its context has
	// no deadline. Default 5s.
	Timeout time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// ReleasedTTL is how long a released name leaves a purge marker in
	// the bucket before its subject is gone from the stream altogether, so
	// that names used once do not accumulate (each subject costs the
	// server memory for as long as it has a message). Default
	// DefaultReleasedTTL; at least 1s.
	ReleasedTTL time.Duration
}

// DefaultReleasedTTL is Config.ReleasedTTL's default.
const DefaultReleasedTTL = time.Minute

// Store holds reservations.
type Store struct {
	kv          jetstream.KeyValue
	now         func() time.Time
	retry       transient.Policy
	releasedTTL time.Duration
}

// Open creates or binds the bucket.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config) (*Store, error) {
	if cfg.Bucket == "" {
		cfg.Bucket = "bankbook_depositor_names"
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = transient.DefaultBudget
	}
	if cfg.AttemptTimeout == 0 {
		cfg.AttemptTimeout = min(transient.DefaultAttemptTimeout, cfg.Timeout)
	}
	if cfg.ReleasedTTL == 0 {
		cfg.ReleasedTTL = DefaultReleasedTTL
	}
	if cfg.ReleasedTTL < time.Second {
		return nil, fmt.Errorf("reservations config: released TTL %v is under 1s", cfg.ReleasedTTL)
	}
	retry := transient.Policy{AttemptTimeout: cfg.AttemptTimeout, Budget: cfg.Timeout}
	if err := retry.Validate(); err != nil {
		return nil, fmt.Errorf("reservations config: %w", err)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      cfg.Bucket,
		Description: "bankbook depositor names held by open orders",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		// Per-message TTLs, for the markers Release leaves.
		LimitMarkerTTL: cfg.ReleasedTTL,
	})
	if err != nil {
		return nil, fmt.Errorf("reservations bucket %s: %w", cfg.Bucket, err)
	}
	return &Store{kv: kv, now: cfg.Now, retry: retry, releasedTTL: cfg.ReleasedTTL}, nil
}

// key is the KV key of a name: its normalised form, base64url-encoded (KV
// keys allow only [-/_=.A-Za-z0-9]).
func key(name string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(domain.NormalizeName(name)))
}

// testHookBeforeWrite, when set (tests only), runs in Reserve between the
// reading of a name's reservation and the writing of its own.
var testHookBeforeWrite func(name string)

// Reserve reserves name for order. Reserving a name the order already holds
// succeeds and renews the reservation's time (a retried command finds its own
// reservation, and it must not look abandoned while the retry runs). A name
// held by another order returns a *TakenError; one that kept changing under
// other writers an error matching kvcas.ErrTooManyConflicts.
func (s *Store) Reserve(ctx context.Context, name string, order domain.OrderID) error {
	// A name is usually free: try to create the reservation before reading.
	_, err := kvcas.Update(ctx, s.kv, key(name), &kvcas.Options{CreateFirst: true, Retry: s.retry}, func(cur kvcas.Entry) ([]byte, error) {
		if !cur.Absent() {
			h, err := decodeHolder(name, cur.Value)
			if err != nil {
				return nil, err
			}
			if h.OrderID != order {
				return nil, &TakenError{Name: name, Holder: h, Revision: cur.Revision}
			}
			// Our own reservation: renew it.
		}
		if testHookBeforeWrite != nil {
			testHookBeforeWrite(name)
		}
		return json.Marshal(Holder{OrderID: order, ReservedAt: s.now().UTC()})
	})
	var taken *TakenError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &taken):
		return err
	}
	return fmt.Errorf("reserve %q: %w", name, err)
}

// TakeOver gives a name whose holder is stale to order, provided the
// reservation is still at revision rev. If it is not (another order took it
// first), the error matches ErrTaken.
func (s *Store) TakeOver(ctx context.Context, name string, order domain.OrderID, rev uint64) error {
	val, _ := json.Marshal(Holder{OrderID: order, ReservedAt: s.now().UTC()})
	_, err := kvcas.Update(ctx, s.kv, key(name), &kvcas.Options{Known: &kvcas.Entry{Revision: rev}, Retry: s.retry},
		func(cur kvcas.Entry) ([]byte, error) {
			if cur.Revision != rev {
				return nil, ErrTaken // another order took it first
			}
			return val, nil
		})
	if err != nil {
		return fmt.Errorf("take over %q: %w", name, err)
	}
	return nil
}

// Holder returns the current holder of name and the entry's revision.
// A free name returns ErrFree.
func (s *Store) Holder(ctx context.Context, name string) (Holder, uint64, error) {
	e, err := transient.Do(ctx, s.retry, func(ctx context.Context) (jetstream.KeyValueEntry, error) { return s.kv.Get(ctx, key(name)) })
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Holder{}, 0, ErrFree
	}
	if err != nil {
		return Holder{}, 0, fmt.Errorf("reservation %q: %w", name, err)
	}
	h, err := decodeHolder(name, e.Value())
	if err != nil {
		return Holder{}, 0, err
	}
	return h, e.Revision(), nil
}

func decodeHolder(name string, val []byte) (Holder, error) {
	var h Holder
	if err := json.Unmarshal(val, &h); err != nil {
		return Holder{}, fmt.Errorf("reservation %q: %w", name, err)
	}
	return h, nil
}

// Release frees name if order still holds it. Releasing a free name, or one
// another order holds, does nothing. A purge whose answer is lost is
// checked by looking at the name again. The purge marker it leaves expires
// after Config.ReleasedTTL, and the name's subject with it.
func (s *Store) Release(ctx context.Context, name string, order domain.OrderID) error {
	ctx, cancel := s.retry.Bound(ctx)
	defer cancel()
	for attempt := 1; ; attempt++ {
		h, rev, err := s.Holder(ctx, name)
		if errors.Is(err, ErrFree) {
			return nil
		}
		if err != nil {
			return err
		}
		if h.OrderID != order {
			return nil
		}
		actx, acancel := s.retry.Attempt(ctx)
		err = s.kv.Purge(actx, key(name), jetstream.LastRevision(rev), jetstream.PurgeTTL(s.releasedTTL))
		acancel()
		if err == nil || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return nil
		}
		if !transient.Retryable(err) || ctx.Err() != nil || !s.retry.Wait(ctx, attempt) {
			return fmt.Errorf("release %q: %w", name, transient.Mark(err))
		}
	}
}

// keptKey marks a bucket whose reservations are known to be all there
// (MarkKept). No name's key holds a dot.
const keptKey = "meta.kept"

// Kept reports whether the bucket was marked as holding every reservation
// (MarkKept). A bucket created anew (deleted, or restored without its
// entries) is not: its reservations must be restored from the event
// stream before names are handed out.
func (s *Store) Kept(ctx context.Context) (bool, error) {
	_, err := transient.Do(ctx, s.retry, func(ctx context.Context) (jetstream.KeyValueEntry, error) { return s.kv.Get(ctx, keptKey) })
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("reservations: reading the kept mark: %w", err)
	}
	return true, nil
}

// MarkKept marks the bucket as holding every reservation: they were
// restored from the event stream, or there was none to restore.
func (s *Store) MarkKept(ctx context.Context) error {
	_, err := transient.Do(ctx, s.retry, func(ctx context.Context) (uint64, error) {
		return s.kv.Put(ctx, keptKey, []byte(s.now().UTC().Format(time.RFC3339Nano)))
	})
	if err != nil {
		return fmt.Errorf("reservations: writing the kept mark: %w", err)
	}
	return nil
}
