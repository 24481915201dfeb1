package accounts

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/internal/groupcommit"
	"github.com/bankbook/bankbook/internal/kvcas"
	"github.com/bankbook/bankbook/internal/transient"
)

// The default number range: 5001000000–5001999999 (ten digits).
const (
	DefaultFrom uint64 = 5001000000
	DefaultTo   uint64 = 5001999999
)

// MaxTo is the bound To must stay below: numbers have at most 18 digits.
const MaxTo uint64 = 1e18

// DefaultBucket is Config.Bucket's default.
const DefaultBucket = "bankbook_accounts"

// Keys of the bucket. A number's key and a link's key can never be the
// same, nor the counter's.
const (
	keyNext    = "next"
	prefixNum  = "num."
	prefixLink = "link."
)

// counterMaxAttempts bounds the counter writes that lose to another
// instance. A lost write means another instance took a number, so a busy
// counter only delays an allocation; the caller's deadline (or
// Config.Timeout) is the real bound, and running out of it is
// transient.ErrUnavailable.
const counterMaxAttempts = 1 << 16

// maxLinkID is the longest link ID accepted.
const maxLinkID = 128

// Config configures a Directory. Zero values mean defaults.
type Config struct {
	// Bucket is the KV bucket. Default "bankbook_accounts".
	Bucket string
	// Replicas of the bucket. Default 1.
	Replicas int
	// From and To are the numbers to allocate, both included; From ≤ To <
	// 10^18. Numbers are written in decimal, zero-padded to the width of To
	// (From 1, To 999 gives "001" … "999"). Both zero means the default
	// range, DefaultFrom–DefaultTo.
	//
	// Numbers once allocated never change, whatever the range later
	// becomes: widen a range (raise To), do not move it. A smaller width
	// of To gives shorter numbers, and InRange no longer knows the old ones.
	From, To uint64
	// AttemptTimeout bounds one KV read or write. A read that gets no
	// answer in time, or a transient refusal (no leader), is made again; a
	// write, whose outcome is then unknown, is checked by reading the entry
	// (see internal/kvcas). Default 1s (or Timeout, if that is shorter).
	AttemptTimeout time.Duration
	// Timeout bounds a call, all attempts together, when its context has
	// no deadline. Default 5s.
	Timeout time.Duration
}

func (c *Config) setDefaults() {
	if c.Bucket == "" {
		c.Bucket = DefaultBucket
	}
	c.Replicas = max(c.Replicas, 1)
	if c.From == 0 && c.To == 0 {
		c.From, c.To = DefaultFrom, DefaultTo
	}
	if c.Timeout <= 0 {
		c.Timeout = transient.DefaultBudget
	}
	if c.AttemptTimeout <= 0 {
		c.AttemptTimeout = min(transient.DefaultAttemptTimeout, c.Timeout)
	}
}

// Validate reports every problem with c (after defaults). A bad range
// matches ErrInvalidRange.
func (c Config) Validate() error {
	c.setDefaults()
	var errs []error
	if c.From > c.To {
		errs = append(errs, fmt.Errorf("%w: from %d is above to %d", ErrInvalidRange, c.From, c.To))
	}
	if c.To >= MaxTo {
		errs = append(errs, fmt.Errorf("%w: to %d has more than 18 digits", ErrInvalidRange, c.To))
	}
	if err := c.retry().Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (c Config) retry() transient.Policy {
	return transient.Policy{AttemptTimeout: c.AttemptTimeout, Budget: c.Timeout}
}

// ParseRange parses "FROM-TO" (decimal digits, e.g. "5001000000-5001999999",
// the --store-account-range flag) into a range Config accepts. Hyphens and
// spaces inside a number are not allowed: the one hyphen separates the two.
func ParseRange(s string) (from, to uint64, err error) {
	a, b, ok := strings.Cut(strings.TrimSpace(s), "-")
	if !ok {
		return 0, 0, fmt.Errorf("%w: %q: want FROM-TO", ErrInvalidRange, s)
	}
	if from, err = parseDigits(a); err != nil {
		return 0, 0, fmt.Errorf("%w: %q: from: %w", ErrInvalidRange, s, err)
	}
	if to, err = parseDigits(b); err != nil {
		return 0, 0, fmt.Errorf("%w: %q: to: %w", ErrInvalidRange, s, err)
	}
	if err := (Config{From: from, To: to}).Validate(); err != nil {
		return 0, 0, err
	}
	if from == 0 && to == 0 {
		// Config would read 0-0 as "the default"; as text it is a range
		// of one number, which nobody means.
		return 0, 0, fmt.Errorf("%w: %q: a range of the one number 0", ErrInvalidRange, s)
	}
	return from, to, nil
}

// parseDigits parses 1 to 18 decimal digits.
func parseDigits(s string) (uint64, error) {
	if !allDigits(s) || len(s) > 18 {
		return 0, errors.New("want 1 to 18 decimal digits")
	}
	return strconv.ParseUint(s, 10, 64)
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Directory is the account directory: which dedicated account number
// belongs to which store link. It is safe for concurrent use, and any
// number of Directories, in any number of processes, may share a bucket.
type Directory struct {
	kv       jetstream.KeyValue
	from, to uint64
	width    int
	retry    transient.Policy

	// counter serialises this Directory's counter writes, so that its own
	// allocations do not race each other for the counter; next is the
	// counter entry as this Directory last wrote it (nil: read it).
	counter chan struct{}
	next    *kvcas.Entry

	links keyedLock // one allocation per link at a time in this process

	// afterClaim, when set (tests), runs after a number is claimed and
	// before the link's entry is written.
	afterClaim func(ctx context.Context, number string)
}

// Open creates or binds the bucket.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config) (*Directory, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("accounts config: %w", err)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      cfg.Bucket,
		Description: "bankbook dedicated account numbers of store links",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("accounts bucket %s: %w", cfg.Bucket, transient.Mark(err))
	}
	return &Directory{
		kv:      kv,
		from:    cfg.From,
		to:      cfg.To,
		width:   len(strconv.FormatUint(cfg.To, 10)),
		retry:   cfg.retry(),
		counter: make(chan struct{}, 1),
		links:   keyedLock{m: map[string]*keyedLockEntry{}},
	}, nil
}

// format writes n with the width of To.
func (d *Directory) format(n uint64) string {
	s := strconv.FormatUint(n, 10)
	if len(s) < d.width {
		s = strings.Repeat("0", d.width-len(s)) + s
	}
	return s
}

// InRange reports whether number, normalised (domain.NormalizeAccountNumber),
// is a number of the configured range: exactly the width of To in decimal
// digits, From ≤ it ≤ To. It reads nothing; a number in range need not be
// allocated.
func (d *Directory) InRange(number string) bool {
	return RangeHolds(d.from, d.to, number)
}

// RangeHolds reports whether the range from-to (ParseRange) holds number,
// normalised (domain.NormalizeAccountNumber): exactly the width of to in
// decimal digits, from ≤ it ≤ to, as Directory.InRange.
func RangeHolds(from, to uint64, number string) bool {
	n := domain.NormalizeAccountNumber(number)
	if len(n) != len(strconv.FormatUint(to, 10)) || !allDigits(n) {
		return false
	}
	v, err := strconv.ParseUint(n, 10, 64)
	return err == nil && v >= from && v <= to
}

// Allocate returns the dedicated account number of the link: the one it
// already has, or else the next free number of the range, claimed for it.
// Concurrent calls for the same link, on any Directories sharing the
// bucket, return the same number; calls for different links return
// different numbers. When the range has no number left, the error matches
// ErrExhausted. See the package documentation for the steps.
func (d *Directory) Allocate(ctx context.Context, linkID string) (string, error) {
	if err := checkLinkID(linkID); err != nil {
		return "", err
	}
	ctx, cancel := d.retry.Bound(ctx)
	defer cancel()
	if n, ok, err := d.NumberOf(ctx, linkID); err != nil || ok {
		return n, err
	}
	// Allocate for a link once at a time here: a concurrent call for the
	// same link waits and then finds the number, instead of claiming
	// one of its own only to give it back.
	unlock, err := d.links.lock(ctx, linkID)
	if err != nil {
		return "", fmt.Errorf("allocate for %s: %w", linkID, transient.Mark(err))
	}
	defer unlock()
	if n, ok, err := d.NumberOf(ctx, linkID); err != nil || ok {
		return n, err
	}
	for {
		cand, err := d.nextCandidate(ctx)
		if err != nil {
			return "", fmt.Errorf("allocate for %s: %w", linkID, err)
		}
		number := d.format(cand)
		rev, mine, err := d.claim(ctx, number, linkID)
		if err != nil {
			return "", fmt.Errorf("allocate for %s: %w", linkID, err)
		}
		if !mine {
			continue // claimed by another link already: skip it
		}
		if d.afterClaim != nil {
			d.afterClaim(ctx, number)
		}
		// Under group commit, the counter and the claim are durable before
		// the binding that relies on them: a binding kept by a crash
		// without its claim would let the number be handed out again.
		if err := groupcommit.Settle(ctx, d.kv); err != nil {
			return "", fmt.Errorf("allocate for %s: %w", linkID, transient.Mark(err))
		}
		won, err := d.bind(ctx, linkID, number)
		if err != nil {
			return "", fmt.Errorf("allocate for %s: %w", linkID, err)
		}
		if won != number {
			// Another call for this link bound its own number first: that
			// one is the link's. Give ours back (if this fails, the claim
			// stays, harmless: no counter ever hands the number out again).
			d.release(ctx, number, linkID, rev)
		}
		return won, nil
	}
}

// counter is the value of the "next" key. Token makes every write's bytes
// unique, so that kvcas never mistakes another instance's write for one of
// its own whose answer was lost (which would hand a number out twice).
type counter struct {
	Next  uint64 `json:"next"`
	Token string `json:"token"`
}

// nextCandidate takes the next number from the counter.
func (d *Directory) nextCandidate(ctx context.Context) (uint64, error) {
	select {
	case d.counter <- struct{}{}:
	case <-ctx.Done():
		return 0, fmt.Errorf("counter: %w", transient.Mark(ctx.Err()))
	}
	defer func() { <-d.counter }()
	var (
		cand    uint64
		written []byte
	)
	rev, err := kvcas.Update(ctx, d.kv, keyNext, &kvcas.Options{Known: d.next, MaxAttempts: counterMaxAttempts, Retry: d.retry},
		func(cur kvcas.Entry) ([]byte, error) {
			next := d.from
			if !cur.Absent() {
				var c counter
				if err := json.Unmarshal(cur.Value, &c); err != nil {
					return nil, fmt.Errorf("%w: counter: %w", ErrCorrupt, err)
				}
				next = max(c.Next, d.from)
			}
			if next > d.to {
				return nil, ErrExhausted.With("", map[string]any{"from": d.format(d.from), "to": d.format(d.to)})
			}
			cand = next
			written, _ = json.Marshal(counter{Next: next + 1, Token: token()})
			return written, nil
		})
	if err != nil {
		d.next = nil
		return 0, err
	}
	d.next = &kvcas.Entry{Value: written, Revision: rev}
	return cand, nil
}

// Remaining returns how many numbers of the configured range the counter
// has not handed out yet: what later links can still be given (holes,
// which use up the range, are not counted back). It reads the counter
// only; 0 once the range is exhausted.
func (d *Directory) Remaining(ctx context.Context) (uint64, error) {
	next, _, err := d.readNext(ctx)
	if err != nil || next > d.to {
		return 0, err
	}
	return d.to - next + 1, nil
}

// HasCounter reports whether the bucket holds the counter: false for a new
// bucket, and for one that lost its entries (deleted and created again,
// restored without them). See Restore.
func (d *Directory) HasCounter(ctx context.Context) (bool, error) {
	_, ok, err := d.readNext(ctx)
	return ok, err
}

// readNext reads the counter: the next number it hands out (From while it
// is absent) and whether it is there.
func (d *Directory) readNext(ctx context.Context) (next uint64, ok bool, err error) {
	e, err := transient.Do(ctx, d.retry, func(ctx context.Context) (jetstream.KeyValueEntry, error) {
		return d.kv.Get(ctx, keyNext)
	})
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return d.from, false, nil
	case err != nil:
		return 0, false, fmt.Errorf("counter: %w", err)
	}
	var c counter
	if err := json.Unmarshal(e.Value(), &c); err != nil {
		return 0, false, fmt.Errorf("%w: counter: %w", ErrCorrupt, err)
	}
	return max(c.Next, d.from), true, nil
}

// Restore writes back the numbers of links made before: links maps each
// link ID to its number, as the event stream records them. Each is
// claimed and bound as Allocate would have (a number claimed for another
// link, or a link bound to another number, is ErrCorrupt), and the
// counter is moved past the highest of the range's numbers, so that none
// is handed out again. It is for a bucket that lost its entries while the
// links stayed in the stream: without it the counter starts again at
// From, and a new link would get a number a store already has, and with
// it that store's payments. Restoring what the bucket holds already
// changes nothing.
func (d *Directory) Restore(ctx context.Context, links map[string]string) error {
	ids := slices.Sorted(maps.Keys(links))
	var next uint64 // past the highest number of the range restored
	for _, id := range ids {
		number := domain.NormalizeAccountNumber(links[id])
		if !allDigits(number) {
			return fmt.Errorf("%w: link %s has number %q", ErrCorrupt, id, links[id])
		}
		if _, mine, err := d.claim(ctx, number, id); err != nil {
			return fmt.Errorf("restore %s: %w", id, err)
		} else if !mine {
			return fmt.Errorf("%w: restore %s: number %s is held by another link", ErrCorrupt, id, number)
		}
		if won, err := d.bind(ctx, id, number); err != nil {
			return fmt.Errorf("restore %s: %w", id, err)
		} else if won != number {
			return fmt.Errorf("%w: restore %s: the link has number %s, the stream says %s", ErrCorrupt, id, won, number)
		}
		// By value, not by width: a number written before To gained a
		// digit (001 under 1-999, now 1-9999) is the value 1 still, and
		// must not be handed out again as 0001.
		if v, err := strconv.ParseUint(number, 10, 64); err == nil && v >= d.from && v <= d.to {
			next = max(next, v+1)
		}
	}
	if next == 0 {
		return nil
	}
	select {
	case d.counter <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("counter: %w", transient.Mark(ctx.Err()))
	}
	defer func() { <-d.counter }()
	d.next = nil
	_, err := kvcas.Update(ctx, d.kv, keyNext, &kvcas.Options{MaxAttempts: counterMaxAttempts, Retry: d.retry},
		func(cur kvcas.Entry) ([]byte, error) {
			if !cur.Absent() {
				var c counter
				if err := json.Unmarshal(cur.Value, &c); err != nil {
					return nil, fmt.Errorf("%w: counter: %w", ErrCorrupt, err)
				}
				if c.Next >= next {
					return nil, kvcas.ErrUnchanged
				}
			}
			return json.Marshal(counter{Next: next, Token: token()})
		})
	if err != nil {
		return fmt.Errorf("restore the counter: %w", err)
	}
	return nil
}

// token is 8 random bytes in hex.
func token() string {
	var b [8]byte
	for i := range b {
		b[i] = byte(rand.Uint32())
	}
	return hex.EncodeToString(b[:])
}

// claim creates "num.<number>" with linkID if it is absent. It reports
// whether the number is the link's (created now, or by an earlier call for
// the same link) and the entry's revision.
func (d *Directory) claim(ctx context.Context, number, linkID string) (rev uint64, mine bool, err error) {
	var holder string
	rev, err = kvcas.Update(ctx, d.kv, prefixNum+number, &kvcas.Options{CreateFirst: true, Retry: d.retry},
		func(cur kvcas.Entry) ([]byte, error) {
			if cur.Absent() {
				holder = linkID
				return []byte(linkID), nil
			}
			holder = string(cur.Value)
			return nil, kvcas.ErrUnchanged
		})
	if err != nil {
		return 0, false, fmt.Errorf("claim %s: %w", number, err)
	}
	if checkLinkID(holder) != nil {
		return 0, false, fmt.Errorf("%w: number %s is held by %q", ErrCorrupt, number, holder)
	}
	return rev, holder == linkID, nil
}

// bind creates "link.<linkID>" with number if it is absent, and returns the
// link's number: number, or the one another call bound first.
func (d *Directory) bind(ctx context.Context, linkID, number string) (string, error) {
	var bound string
	_, err := kvcas.Update(ctx, d.kv, prefixLink+linkID, &kvcas.Options{CreateFirst: true, Retry: d.retry},
		func(cur kvcas.Entry) ([]byte, error) {
			if cur.Absent() {
				bound = number
				return []byte(number), nil
			}
			bound = string(cur.Value)
			return nil, kvcas.ErrUnchanged
		})
	if err != nil {
		return "", fmt.Errorf("bind %s: %w", number, err)
	}
	if !allDigits(bound) {
		return "", fmt.Errorf("%w: link %s has number %q", ErrCorrupt, linkID, bound)
	}
	return bound, nil
}

// release deletes "num.<number>" if it is still linkID's claim at rev. It
// is best effort: a claim left behind is harmless (see the package
// documentation), so errors are dropped.
func (d *Directory) release(ctx context.Context, number, linkID string, rev uint64) {
	_ = transient.Run(ctx, d.retry, func(ctx context.Context) error {
		err := d.kv.Delete(ctx, prefixNum+number, jetstream.LastRevision(rev))
		if kvcas.Conflict(err) {
			return nil // changed since (or a repeat of a delete that was done)
		}
		return err
	})
}

// NumberOf returns the link's dedicated account number, if it has one.
func (d *Directory) NumberOf(ctx context.Context, linkID string) (number string, ok bool, err error) {
	if err := checkLinkID(linkID); err != nil {
		return "", false, err
	}
	e, err := transient.Do(ctx, d.retry, func(ctx context.Context) (jetstream.KeyValueEntry, error) {
		return d.kv.Get(ctx, prefixLink+linkID)
	})
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("number of %s: %w", linkID, err)
	}
	n := string(e.Value())
	if !allDigits(n) {
		return "", false, fmt.Errorf("%w: link %s has number %q", ErrCorrupt, linkID, n)
	}
	return n, true, nil
}

// Lookup returns the link a number is claimed for. number is normalised
// first (domain.NormalizeAccountNumber), so "5001-000-123" finds
// "5001000123". A number nobody claimed, or one that is not decimal digits,
// is not found (ok false, no error). Lookup does not consult the range:
// numbers allocated under an earlier range are found too.
func (d *Directory) Lookup(ctx context.Context, number string) (linkID string, ok bool, err error) {
	n := domain.NormalizeAccountNumber(number)
	if !allDigits(n) || len(n) > 18 {
		return "", false, nil
	}
	e, err := transient.Do(ctx, d.retry, func(ctx context.Context) (jetstream.KeyValueEntry, error) {
		return d.kv.Get(ctx, prefixNum+n)
	})
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("look up %s: %w", n, err)
	}
	id := string(e.Value())
	if checkLinkID(id) != nil {
		return "", false, fmt.Errorf("%w: number %s is held by %q", ErrCorrupt, n, id)
	}
	return id, true, nil
}

// checkLinkID reports whether id can be part of a KV key: 1 to 128 bytes of
// [A-Za-z0-9_-].
func checkLinkID(id string) error {
	if id == "" || len(id) > maxLinkID {
		return fmt.Errorf("%w: %q", ErrInvalidLinkID, id)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("%w: %q", ErrInvalidLinkID, id)
		}
	}
	return nil
}

// keyedLock is a set of mutexes by key whose Lock respects a context.
type keyedLock struct {
	mu sync.Mutex
	m  map[string]*keyedLockEntry
}

type keyedLockEntry struct {
	ch   chan struct{}
	refs int
}

// lock locks key, or fails with ctx's error.
func (l *keyedLock) lock(ctx context.Context, key string) (unlock func(), err error) {
	l.mu.Lock()
	e := l.m[key]
	if e == nil {
		e = &keyedLockEntry{ch: make(chan struct{}, 1)}
		l.m[key] = e
	}
	e.refs++
	l.mu.Unlock()
	done := func() {
		l.mu.Lock()
		if e.refs--; e.refs == 0 {
			delete(l.m, key)
		}
		l.mu.Unlock()
	}
	select {
	case e.ch <- struct{}{}:
		return func() { <-e.ch; done() }, nil
	case <-ctx.Done():
		done()
		return nil, ctx.Err()
	}
}
