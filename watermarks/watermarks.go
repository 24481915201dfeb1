// Package watermarks keeps, per bank account, how far the bank's data is
// known to be complete: every transfer deposited before an account's
// watermark has been recorded. The bank scanner advances it after ingesting
// a scan; delayed cancellations wait for it. Watermarks live in a JetStream KV
// bucket shared by every engine instance and only ever move forward.
//
// Every KV request has a timeout of its own (Config.AttemptTimeout, 1s): a
// read that gets no answer, or a transient refusal (no leader), is made
// again, and a write whose answer was lost is checked by reading the entry,
// within the caller's deadline. An error that remains matches
// transient.ErrUnavailable.
package watermarks

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

// Store keeps watermarks.
type Store struct {
	kv    jetstream.KeyValue
	retry transient.Policy
}

// Config configures OpenWith. Zero values mean defaults.
type Config struct {
	// Bucket is the KV bucket. Default "bankbook_scan_watermarks".
	Bucket string
	// Replicas of the bucket. Default 1.
	Replicas int
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
		c.Bucket = "bankbook_scan_watermarks"
	}
	c.Replicas = max(c.Replicas, 1)
	if c.Timeout <= 0 {
		c.Timeout = transient.DefaultBudget
	}
	if c.AttemptTimeout <= 0 {
		c.AttemptTimeout = min(transient.DefaultAttemptTimeout, c.Timeout)
	}
}

// Validate reports every problem with c (after defaults).
func (c Config) Validate() error {
	c.setDefaults()
	return c.retry().Validate()
}

func (c Config) retry() transient.Policy {
	return transient.Policy{AttemptTimeout: c.AttemptTimeout, Budget: c.Timeout}
}

// Open creates or binds the bucket (default "bankbook_scan_watermarks")
// with the default timeouts. It is OpenWith(ctx, js, Config{Bucket: bucket,
// Replicas: replicas}).
func Open(ctx context.Context, js jetstream.JetStream, bucket string, replicas int) (*Store, error) {
	return OpenWith(ctx, js, Config{Bucket: bucket, Replicas: replicas})
}

// OpenWith creates or binds the bucket.
func OpenWith(ctx context.Context, js jetstream.JetStream, cfg Config) (*Store, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("watermarks config: %w", err)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      cfg.Bucket,
		Description: "bankbook: bank data known complete up to, per account",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("watermarks bucket %s: %w", cfg.Bucket, err)
	}
	return &Store{kv: kv, retry: cfg.retry()}, nil
}

type record struct {
	CompleteUpTo time.Time `json:"complete_up_to"`
}

// key is the KV key of an account: its normalised number, base64url-encoded.
func key(account string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(domain.NormalizeAccountNumber(account)))
}

// Watermark returns the account's watermark; the zero time if none.
func (s *Store) Watermark(ctx context.Context, account string) (time.Time, error) {
	e, err := transient.Do(ctx, s.retry, func(ctx context.Context) (jetstream.KeyValueEntry, error) { return s.kv.Get(ctx, key(account)) })
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("watermark %s: %w", account, err)
	}
	return decode(account, e.Value())
}

func decode(account string, val []byte) (time.Time, error) {
	var r record
	if err := json.Unmarshal(val, &r); err != nil {
		return time.Time{}, fmt.Errorf("watermark %s: %w", account, err)
	}
	return r.CompleteUpTo, nil
}

// Advance moves the account's watermark to upTo if that is later; it never
// moves a watermark backwards, also when instances advance it concurrently.
func (s *Store) Advance(ctx context.Context, account string, upTo time.Time) error {
	val, _ := json.Marshal(record{CompleteUpTo: upTo.UTC()})
	_, err := kvcas.Update(ctx, s.kv, key(account), &kvcas.Options{Retry: s.retry}, func(e kvcas.Entry) ([]byte, error) {
		var cur time.Time // the zero time when there is no watermark yet
		if !e.Absent() {
			var err error
			if cur, err = decode(account, e.Value); err != nil {
				return nil, err
			}
		}
		if !upTo.After(cur) {
			return nil, kvcas.ErrUnchanged
		}
		return val, nil
	})
	if err != nil {
		return fmt.Errorf("advance watermark %s: %w", account, err)
	}
	return nil
}
