package groupcommit

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// KeyValue is a JetStream KV bucket whose Create and Update (without
// options) go through a Publisher, so that concurrent writes share fsyncs.
// Everything else, and every refusal, is the bucket's own: a grouped write
// the server refuses is made again through the bucket, which gives exactly
// its usual answer (ErrKeyExists, a create over a deleted key). A grouped
// write that gets no answer returns that error as it is, where the bucket's
// Create would go on to look for a deleted key: the caller checks, as after
// any lost ack.
type KeyValue struct {
	jetstream.KeyValue
	pub    *Publisher
	prefix string
}

// NewKeyValue wraps kv, whose stream must allow atomic publish (Allow).
// The bucket must be a plain one on this account: no mirror, no
// JetStream domain or API prefix.
func NewKeyValue(kv jetstream.KeyValue, pub *Publisher) *KeyValue {
	return &KeyValue{KeyValue: kv, pub: pub, prefix: "$KV." + kv.Bucket() + "."}
}

// Stats returns the counts of the bucket's Publisher.
func (kv *KeyValue) Stats() Stats { return kv.pub.Stats() }

// Create creates key, grouped with other writes.
func (kv *KeyValue) Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error) {
	if len(opts) > 0 || !keyValid(key) {
		return kv.KeyValue.Create(ctx, key, value, opts...)
	}
	rev, err := kv.put(ctx, key, value, 0)
	if refused(err) {
		return kv.KeyValue.Create(ctx, key, value)
	}
	return rev, err
}

// Update writes key if its last revision is last, grouped with other
// writes.
func (kv *KeyValue) Update(ctx context.Context, key string, value []byte, last uint64) (uint64, error) {
	if !keyValid(key) {
		return kv.KeyValue.Update(ctx, key, value, last)
	}
	rev, err := kv.put(ctx, key, value, last)
	if refused(err) {
		return kv.KeyValue.Update(ctx, key, value, last)
	}
	return rev, err
}

func (kv *KeyValue) put(ctx context.Context, key string, value []byte, last uint64) (uint64, error) {
	msg := nats.NewMsg(kv.prefix + key)
	msg.Data = value
	msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(last, 10))
	ack, err := kv.pub.PublishMsg(ctx, msg)
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}

// refused reports whether the server answered err: then nothing was
// written.
func refused(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr)
}

// validKey is nats.go's rule for KV keys.
var validKey = regexp.MustCompile(`^[-/_=\.a-zA-Z0-9]+$`)

func keyValid(key string) bool {
	if key == "" || key[0] == '.' || key[len(key)-1] == '.' || strings.Contains(key, "..") {
		return false
	}
	return validKey.MatchString(key)
}

// Allow makes the stream named stream accept atomic batches, if it does not
// yet. A KV bucket's stream is "KV_" and the bucket's name.
func Allow(ctx context.Context, js jetstream.JetStream, stream string) error {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("groupcommit: stream %s: %w", stream, err)
	}
	cfg := s.CachedInfo().Config
	if cfg.AllowAtomicPublish {
		return nil
	}
	cfg.AllowAtomicPublish = true
	s, err = js.UpdateStream(ctx, cfg)
	if err != nil {
		return fmt.Errorf("groupcommit: allow atomic publish on %s: %w", stream, err)
	}
	if !s.CachedInfo().Config.AllowAtomicPublish {
		return fmt.Errorf("%s: %w", stream, ErrNotAtomic)
	}
	return nil
}

// Bucket returns kv itself if group is false. Otherwise it lets kv's
// stream take atomic batches (Allow) and returns kv wrapped in a
// KeyValue over a new Publisher.
func Bucket(ctx context.Context, js jetstream.JetStream, kv jetstream.KeyValue, group bool) (jetstream.KeyValue, error) {
	if !group {
		return kv, nil
	}
	if err := Allow(ctx, js, "KV_"+kv.Bucket()); err != nil {
		return nil, err
	}
	return NewKeyValue(kv, New(js, Options{})), nil
}
