package kvcas

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// DefaultMaxAttempts is Options.MaxAttempts when it is 0.
const DefaultMaxAttempts = 10

// KV is the part of jetstream.KeyValue that Update uses.
type KV interface {
	Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error)
	Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error)
	Update(ctx context.Context, key string, value []byte, revision uint64) (uint64, error)
}

var _ KV = jetstream.KeyValue(nil)

// Entry is what decide is shown: the entry's value and revision, or the zero
// Entry when the key is absent (never written, deleted or purged).
type Entry struct {
	Value    []byte
	Revision uint64 // 0 when absent; KV revisions start at 1
}

// Absent reports whether the key had no value.
func (e Entry) Absent() bool { return e.Revision == 0 }

// Options tunes Update. A nil *Options means the defaults.
type Options struct {
	// MaxAttempts bounds how many writes Update tries. 0 means
	// DefaultMaxAttempts.
	MaxAttempts int
	// CreateFirst skips the first read: decide is first shown an absent
	// entry and its answer created; only if the key exists is it read. It
	// saves a round trip for keys that are usually absent (a claim, a
	// reservation).
	CreateFirst bool
}

// Update reads key, asks decide what it should become and writes that:
// a create if the key was absent, an update at the revision read otherwise.
// On a conflict it reads and decides again. It returns the revision written,
// or the revision read when decide answered ErrUnchanged. See the package
// documentation for what is guaranteed.
func Update(ctx context.Context, kv KV, key string, opts *Options, decide func(Entry) ([]byte, error)) (uint64, error) {
	attempts, createFirst := DefaultMaxAttempts, false
	if opts != nil {
		if opts.MaxAttempts > 0 {
			attempts = opts.MaxAttempts
		}
		createFirst = opts.CreateFirst
	}
	read := !createFirst
	for range attempts {
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("kv %s: %w", key, err)
		}
		var cur Entry
		if read {
			e, err := kv.Get(ctx, key)
			switch {
			case errors.Is(err, jetstream.ErrKeyNotFound):
			case err != nil:
				return 0, fmt.Errorf("kv get %s: %w", key, err)
			default:
				cur = Entry{Value: e.Value(), Revision: e.Revision()}
			}
		}
		read = true
		next, err := decide(cur)
		if errors.Is(err, ErrUnchanged) {
			return cur.Revision, nil
		}
		if err != nil {
			return 0, err
		}
		var rev uint64
		if cur.Absent() {
			rev, err = kv.Create(ctx, key, next)
		} else {
			rev, err = kv.Update(ctx, key, next, cur.Revision)
		}
		switch {
		case err == nil:
			return rev, nil
		case conflict(err):
			continue // someone else wrote first: look again
		case cur.Absent():
			return 0, fmt.Errorf("kv create %s: %w", key, err)
		default:
			return 0, fmt.Errorf("kv update %s at revision %d: %w", key, cur.Revision, err)
		}
	}
	return 0, fmt.Errorf("kv %s: %w after %d attempts", key, ErrTooManyConflicts, attempts)
}

// conflict reports whether a create or update lost to another writer.
// Create reports ErrKeyExists; Update reports ErrKeyRevisionMismatch (and,
// on some servers, the wrong-last-sequence code that ErrKeyExists matches).
func conflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
}
