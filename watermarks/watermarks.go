// Package watermarks keeps, per bank account, how far the bank's data is
// known to be complete: every transfer deposited before an account's
// watermark has been recorded. The bank scanner advances it after ingesting
// a scan; delayed cancellations wait for it. Watermarks live in a JetStream KV
// bucket shared by every engine instance and only ever move forward.
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
)

// Store keeps watermarks.
type Store struct {
	kv jetstream.KeyValue
}

// Open creates or binds the bucket (default "bankbook_scan_watermarks").
func Open(ctx context.Context, js jetstream.JetStream, bucket string, replicas int) (*Store, error) {
	if bucket == "" {
		bucket = "bankbook_scan_watermarks"
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      bucket,
		Description: "bankbook: bank data known complete up to, per account",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("watermarks bucket %s: %w", bucket, err)
	}
	return &Store{kv: kv}, nil
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
	t, _, err := s.get(ctx, account)
	return t, err
}

func (s *Store) get(ctx context.Context, account string) (time.Time, uint64, error) {
	e, err := s.kv.Get(ctx, key(account))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return time.Time{}, 0, nil
	}
	if err != nil {
		return time.Time{}, 0, fmt.Errorf("watermark %s: %w", account, err)
	}
	var r record
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		return time.Time{}, 0, fmt.Errorf("watermark %s: %w", account, err)
	}
	return r.CompleteUpTo, e.Revision(), nil
}

// Advance moves the account's watermark to upTo if that is later; it never
// moves a watermark backwards, also when instances advance it concurrently.
func (s *Store) Advance(ctx context.Context, account string, upTo time.Time) error {
	val, _ := json.Marshal(record{CompleteUpTo: upTo.UTC()})
	for range 10 {
		cur, rev, err := s.get(ctx, account)
		if err != nil {
			return err
		}
		if !upTo.After(cur) {
			return nil
		}
		if rev == 0 {
			_, err = s.kv.Create(ctx, key(account), val)
		} else {
			_, err = s.kv.Update(ctx, key(account), val, rev)
		}
		if err == nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return fmt.Errorf("advance watermark %s: %w", account, err)
		}
	}
	return fmt.Errorf("advance watermark %s: too many concurrent updates", account)
}
