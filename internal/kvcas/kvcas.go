package kvcas

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/internal/groupcommit"
	"github.com/bankbook/bankbook/internal/transient"
)

// DefaultMaxAttempts is Options.MaxAttempts when it is 0.
const DefaultMaxAttempts = 10

// KV is the part of jetstream.KeyValue that Update uses.
type KV interface {
	Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error)
	Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error)
	Update(ctx context.Context, key string, value []byte, revision uint64) (uint64, error)
	Purge(ctx context.Context, key string, opts ...jetstream.KVDeleteOpt) error
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
	// MaxAttempts bounds how many writes Update tries that lose to a
	// concurrent writer. 0 means DefaultMaxAttempts. Writes that get no
	// answer are not counted: they are bounded by Retry.
	MaxAttempts int
	// CreateFirst skips the first read: decide is first shown an absent
	// entry and its answer created; only if the key exists is it read. It
	// saves a round trip for keys that are usually absent (a claim, a
	// reservation).
	CreateFirst bool
	// Known, when set, skips the first read too: decide is first shown
	// *Known, the entry as the caller last read it (its Value may be nil
	// if decide does not look at it). If the entry has changed since, the
	// write fails as a conflict and the entry is read. CreateFirst is
	// Known = &Entry{}.
	Known *Entry
	// Retry bounds each read and write (Policy.AttemptTimeout) and, when
	// ctx has no deadline, the whole Update (Policy.Budget). The zero
	// value means transient's defaults.
	Retry transient.Policy
	// RemoveTTL, when set, is the TTL of the purge marker ErrRemove leaves
	// (the bucket must allow per-message TTLs).
	RemoveTTL time.Duration
}

// Update reads key, asks decide what it should become and writes that:
// a create if the key was absent, an update at the revision read otherwise.
// On a conflict it reads and decides again. It returns the revision written,
// or the revision read when decide answered ErrUnchanged. See the package
// documentation for what is guaranteed.
func Update(ctx context.Context, kv KV, key string, opts *Options, decide func(Entry) ([]byte, error)) (uint64, error) {
	attempts, read, cur := DefaultMaxAttempts, true, Entry{}
	var (
		retry     transient.Policy
		removeTTL time.Duration
	)
	if opts != nil {
		removeTTL = opts.RemoveTTL
		if opts.MaxAttempts > 0 {
			attempts = opts.MaxAttempts
		}
		switch {
		case opts.Known != nil:
			read, cur = false, *opts.Known
		case opts.CreateFirst:
			read = false
		}
		retry = opts.Retry
	}
	ctx, cancel := retry.Bound(ctx)
	defer cancel()
	var (
		conflicts, waits int
		unknown          [][]byte // values written whose outcome is unknown
		removing         bool     // a purge's outcome is unknown
		conflicted       bool     // the last write lost: at revision triedAt
		triedAt          uint64
	)
	for {
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("kv %s: %w", key, transient.Mark(err))
		}
		if read {
			e, err := transient.Do(ctx, retry, func(ctx context.Context) (jetstream.KeyValueEntry, error) { return kv.Get(ctx, key) })
			switch {
			case errors.Is(err, jetstream.ErrKeyNotFound):
				cur = Entry{}
			case err != nil:
				return 0, fmt.Errorf("kv get %s: %w", key, err)
			default:
				cur = Entry{Value: e.Value(), Revision: e.Revision()}
			}
			for _, v := range unknown {
				if !cur.Absent() && bytes.Equal(cur.Value, v) {
					// A write whose answer was lost was stored.
					return cur.Revision, settle(ctx, kv, key)
				}
			}
			if removing && cur.Absent() {
				return 0, nil // a purge whose answer was lost was stored
			}
			if conflicted {
				conflicted = false
				if cur.Revision != triedAt {
					// Another writer made progress: decide again on top.
					if conflicts++; conflicts >= attempts {
						return 0, fmt.Errorf("kv %s: %w after %d attempts", key, ErrTooManyConflicts, attempts)
					}
				} else if waits++; !retry.Wait(ctx, waits) {
					// No visible progress: a write is being stored (ours,
					// if its answer was lost) while the stream has no
					// quorum, or this read lags. Wait for it.
					return 0, fmt.Errorf("kv %s: %w: a conflicting write at revision %d is still being stored", key, transient.ErrUnavailable, triedAt)
				}
			}
		}
		read = true
		next, err := decide(cur)
		if errors.Is(err, ErrUnchanged) {
			return cur.Revision, settle(ctx, kv, key) // what was read is relied on
		}
		remove := errors.Is(err, ErrRemove)
		switch {
		case remove && cur.Absent():
			return 0, nil
		case err != nil && !remove:
			return 0, err
		}
		actx, acancel := retry.Attempt(ctx)
		var rev uint64
		switch {
		case remove:
			popts := []jetstream.KVDeleteOpt{jetstream.LastRevision(cur.Revision)}
			if removeTTL > 0 {
				popts = append(popts, jetstream.PurgeTTL(removeTTL))
			}
			err = kv.Purge(actx, key, popts...)
		case cur.Absent():
			rev, err = kv.Create(actx, key, next)
		default:
			rev, err = kv.Update(actx, key, next, cur.Revision)
		}
		acancel()
		switch {
		case err == nil:
			return rev, nil
		case Conflict(err):
			// Someone else wrote first, or is writing: look again.
			conflicted, triedAt = true, cur.Revision
			continue
		case transient.Retryable(err) && ctx.Err() == nil:
			// The write may or may not be stored: read to find out, and
			// decide again if it was not.
			if remove {
				removing = true
			} else {
				unknown = append(unknown, next)
			}
			if waits++; retry.Wait(ctx, waits) {
				continue
			}
		}
		if remove {
			return 0, fmt.Errorf("kv purge %s at revision %d: %w", key, cur.Revision, transient.Mark(err))
		}
		if cur.Absent() {
			return 0, fmt.Errorf("kv create %s: %w", key, transient.Mark(err))
		}
		return 0, fmt.Errorf("kv update %s at revision %d: %w", key, cur.Revision, transient.Mark(err))
	}
}

// settle makes what Update read durable before it is relied on, under
// group commit (groupcommit.Settle).
func settle(ctx context.Context, kv KV, key string) error {
	if err := groupcommit.Settle(ctx, kv); err != nil {
		return fmt.Errorf("kv %s: %w", key, transient.Mark(err))
	}
	return nil
}

// Conflict reports whether a compare-and-set write (a KV create, update or
// delete at a revision, or a publish expecting a subject's last sequence)
// lost to another writer. Create reports ErrKeyExists and Update
// ErrKeyRevisionMismatch, but some paths return the server's bare
// wrong-last-sequence error: 10071, or 10164 on a replicated stream (a
// create over a deleted or purged key that another create beats, in
// nats.go v1.55.0).
func Conflict(err error) bool {
	var ae *jetstream.APIError
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) ||
		errors.As(err, &ae) && (ae.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || ae.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}
