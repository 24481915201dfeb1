package snapshots

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/internal/transient"
)

// DefaultBucket is Config.Bucket's default.
const DefaultBucket = "bankbook_snapshots"

// Config configures Open. Zero values mean defaults.
type Config struct {
	// Bucket is the KV bucket. Default DefaultBucket.
	Bucket string
	// Replicas is the bucket's replica count. Default 1.
	Replicas int
	// Timeout bounds each Get, Put and Delete whose context has no
	// deadline. Default 5s.
	Timeout time.Duration
	// AttemptTimeout bounds one KV request. One that gets no answer in
	// time, or a transient refusal (no leader), is made again while the
	// deadline allows: every request here may be repeated (reads, puts of
	// the same value, purges). Default 1s (or Timeout, if that is shorter).
	AttemptTimeout time.Duration
	// ChunkSize is the largest value written, in bytes. Default 512 KiB
	// (below the default 1 MiB max payload).
	ChunkSize int
}

func (c *Config) setDefaults() {
	if c.Bucket == "" {
		c.Bucket = DefaultBucket
	}
	c.Replicas = max(c.Replicas, 1)
	if c.Timeout <= 0 {
		c.Timeout = transient.DefaultBudget
	}
	if c.AttemptTimeout <= 0 {
		c.AttemptTimeout = min(transient.DefaultAttemptTimeout, c.Timeout)
	}
	if c.ChunkSize <= 0 {
		c.ChunkSize = 512 << 10
	}
}

// Store keeps snapshots. It is safe for concurrent use.
type Store struct {
	kv  jetstream.KeyValue
	cfg Config
}

// Open creates or binds the bucket.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config) (*Store, error) {
	cfg.setDefaults()
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      cfg.Bucket,
		Description: "bankbook: the latest snapshot of long-lived aggregates (an optimisation; safe to delete)",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		Compression: true,
	})
	if err != nil {
		return nil, fmt.Errorf("snapshots bucket %s: %w", cfg.Bucket, err)
	}
	return &Store{kv: kv, cfg: cfg}, nil
}

// header says where a snapshot's chunks are and what they add up to.
type header struct {
	Slot   string `json:"slot"`
	Chunks int    `json:"chunks"`
	Size   int    `json:"size"`
	SHA256 string `json:"sha256"`
}

func headerKey(key string) string { return base64.RawURLEncoding.EncodeToString([]byte(key)) }

func chunkKey(key, slot string, i int) string {
	return headerKey(key) + "." + slot + "." + strconv.Itoa(i)
}

func (s *Store) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return s.retry().Bound(ctx)
}

func (s *Store) retry() transient.Policy {
	return transient.Policy{AttemptTimeout: s.cfg.AttemptTimeout, Budget: s.cfg.Timeout}
}

// get reads one KV entry, retrying transient failures.
func (s *Store) get(ctx context.Context, k string) (jetstream.KeyValueEntry, error) {
	return transient.Do(ctx, s.retry(), func(ctx context.Context) (jetstream.KeyValueEntry, error) { return s.kv.Get(ctx, k) })
}

// put writes one KV value, retrying transient failures (a repeated put
// stores the same value again).
func (s *Store) put(ctx context.Context, k string, v []byte) error {
	return transient.Run(ctx, s.retry(), func(ctx context.Context) error { _, err := s.kv.Put(ctx, k, v); return err })
}

// purge removes one KV key, retrying transient failures.
func (s *Store) purge(ctx context.Context, k string) error {
	return transient.Run(ctx, s.retry(), func(ctx context.Context) error { return s.kv.Purge(ctx, k) })
}

func (s *Store) header(ctx context.Context, key string) (header, bool, error) {
	e, err := s.get(ctx, headerKey(key))
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return header{}, false, nil
	case err != nil:
		return header{}, false, fmt.Errorf("snapshot %s: %w", key, err)
	}
	var h header
	if err := json.Unmarshal(e.Value(), &h); err != nil || (h.Slot != "a" && h.Slot != "b") || h.Chunks < 0 {
		return header{}, false, fmt.Errorf("snapshot %s: unreadable header %q", key, e.Value())
	}
	return h, true, nil
}

// Get returns the snapshot stored under key; false if there is none. A
// snapshot replaced while it was read is ErrChanged.
func (s *Store) Get(ctx context.Context, key string) ([]byte, bool, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	h, ok, err := s.header(ctx, key)
	if err != nil || !ok {
		return nil, false, err
	}
	data := make([]byte, 0, h.Size)
	for i := range h.Chunks {
		e, err := s.get(ctx, chunkKey(key, h.Slot, i))
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			return nil, false, fmt.Errorf("snapshot %s: chunk %d missing: %w", key, i, ErrChanged)
		case err != nil:
			return nil, false, fmt.Errorf("snapshot %s: %w", key, err)
		}
		data = append(data, e.Value()...)
	}
	sum := sha256.Sum256(data)
	if len(data) != h.Size || hex.EncodeToString(sum[:]) != h.SHA256 {
		return nil, false, fmt.Errorf("snapshot %s: %w", key, ErrChanged)
	}
	return data, true, nil
}

// Put stores data under key, replacing the snapshot there.
func (s *Store) Put(ctx context.Context, key string, data []byte) error {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	cur, ok, err := s.header(ctx, key)
	if err != nil {
		cur, ok = header{}, false // an unreadable header is replaced
	}
	slot := "a"
	if ok && cur.Slot == "a" {
		slot = "b"
	}
	sum := sha256.Sum256(data)
	h := header{Slot: slot, Size: len(data), SHA256: hex.EncodeToString(sum[:])}
	for chunk := range chunks(data, s.cfg.ChunkSize) {
		if err := s.put(ctx, chunkKey(key, slot, h.Chunks), chunk); err != nil {
			return fmt.Errorf("store snapshot %s: %w", key, err)
		}
		h.Chunks++
	}
	raw, err := json.Marshal(h)
	if err != nil {
		return err
	}
	if err := s.put(ctx, headerKey(key), raw); err != nil {
		return fmt.Errorf("store snapshot %s: %w", key, err)
	}
	return nil
}

// chunks splits data into pieces of at most size bytes.
func chunks(data []byte, size int) func(func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for len(data) > 0 {
			n := min(len(data), size)
			if !yield(data[:n]) {
				return
			}
			data = data[n:]
		}
	}
}

// Delete removes the snapshot under key, if there is one.
func (s *Store) Delete(ctx context.Context, key string) error {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	h, ok, err := s.header(ctx, key)
	if err != nil || !ok {
		return err
	}
	if err := s.purge(ctx, headerKey(key)); err != nil {
		return fmt.Errorf("delete snapshot %s: %w", key, err)
	}
	for i := range h.Chunks {
		if err := s.purge(ctx, chunkKey(key, h.Slot, i)); err != nil {
			return fmt.Errorf("delete snapshot %s: %w", key, err)
		}
	}
	return nil
}
