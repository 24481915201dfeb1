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
	"github.com/bankbook/bankbook/internal/kvcas"
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
	e, err := s.kv.Get(ctx, key(account))
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
	_, err := kvcas.Update(ctx, s.kv, key(account), nil, func(e kvcas.Entry) ([]byte, error) {
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
