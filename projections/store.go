package projections

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"sync"
	"time"

	"go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
)

// bucketMeta holds the checkpoint and the instance ID. It is the one bucket
// that is not a read model: Hash covers only the checkpoint from it.
var bucketMeta = []byte("meta")

var (
	keyCheckpoint = []byte("checkpoint")  // uint64, big-endian
	keyInstanceID = []byte("instance_id") // 16 lower-case hex digits
)

// lockTimeout is how long Open waits for the file lock of a read-model file
// another process holds.
const lockTimeout = time.Second

// projection is one read model: it owns one top-level bucket and folds events
// into it inside the transaction that Apply gives it. apply must depend only
// on the bucket's content and on the commit, envelope and event (never on the
// clock or on randomness), so that a replay writes the same bytes. An error
// aborts the whole batch.
type projection interface {
	bucket() []byte
	apply(tx *bbolt.Tx, c eventstore.Commit, e eventstore.Envelope, ev domain.Event) error
}

// Store holds bankbook's read models in one bbolt file. It is safe for
// concurrent use: Apply writes in one bbolt transaction per batch, and readers
// see either all of a batch or none of it.
type Store struct {
	db          *bbolt.DB
	codec       *domain.Codec
	projections []projection
	instanceID  string

	closeOnce sync.Once
	closeErr  error
}

// Open opens the read-model file at path, creating it (mode 0600) and its
// buckets if needed. On first open it stores a new random instance ID. The
// codec decodes event payloads; nil means domain.Events().
//
// Only one Store may have a file open at a time: a second Open of the same
// file fails with ErrLocked after one second.
func Open(path string, codec *domain.Codec) (*Store, error) {
	if codec == nil {
		codec = domain.Events()
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: lockTimeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s: another process has it open", ErrLocked, path)
	}
	if err != nil {
		return nil, fmt.Errorf("open read models %s: %w", path, err)
	}
	s := &Store{db: db, codec: codec, projections: []projection{orders{}, openIndex{}, wallets{}, ledgerBalances{}, ledgerEntries{}, deposits{}, orphanIndex{}}}
	err = db.Update(func(tx *bbolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		for _, p := range s.projections {
			if _, err := tx.CreateBucketIfNotExists(p.bucket()); err != nil {
				return fmt.Errorf("bucket %s: %w", p.bucket(), err)
			}
		}
		if id := meta.Get(keyInstanceID); id != nil {
			s.instanceID = string(id)
			return nil
		}
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return fmt.Errorf("instance id: %w", err)
		}
		s.instanceID = hex.EncodeToString(b[:])
		return meta.Put(keyInstanceID, []byte(s.instanceID))
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("init read models %s: %w", path, err)
	}
	return s, nil
}

// Close closes the file. It waits for running transactions and may be called
// more than once; later calls return the first call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.db.Close() })
	return s.closeErr
}

// InstanceID identifies this read-model file. It is made on the file's first
// open and never changes, so a wiped data directory gets a new one. The
// Runner names its durable consumer after it.
func (s *Store) InstanceID() string { return s.instanceID }

// Checkpoint returns the stream sequence of the last commit applied; 0 for a
// new file.
func (s *Store) Checkpoint() (eventstore.Seq, error) {
	var cp eventstore.Seq
	err := s.view(func(tx *bbolt.Tx) error {
		cp = checkpoint(tx)
		return nil
	})
	return cp, err
}

func checkpoint(tx *bbolt.Tx) eventstore.Seq {
	v := tx.Bucket(bucketMeta).Get(keyCheckpoint)
	if len(v) != 8 {
		return 0
	}
	return eventstore.Seq(binary.BigEndian.Uint64(v))
}

// Apply folds a batch of commits into every read model and moves the
// checkpoint to the batch's last commit, all in one bbolt transaction: after a
// crash either the whole batch and its checkpoint are on disk, or none of it.
//
// Commits at or below the checkpoint are skipped, so a batch delivered again
// is harmless. The first commit after the checkpoint must be checkpoint+1 and
// the rest must follow without gaps, or Apply returns ErrGap and writes
// nothing. Events of a type the codec does not know are skipped (a newer
// engine may have written them); any other decoding or projection error
// aborts the batch.
func (s *Store) Apply(batch []eventstore.Commit) error {
	if len(batch) == 0 {
		return nil
	}
	return s.update(func(tx *bbolt.Tx) error {
		cp := checkpoint(tx)
		next := cp + 1
		for _, c := range batch {
			if c.Seq <= cp {
				continue
			}
			if c.Seq != next {
				return fmt.Errorf("%w: checkpoint %d, next commit expected at %d, got %d", ErrGap, cp, next, c.Seq)
			}
			if err := s.applyCommit(tx, c); err != nil {
				return err
			}
			next++
		}
		if next == cp+1 {
			return nil // everything was already applied
		}
		var v [8]byte
		binary.BigEndian.PutUint64(v[:], uint64(next-1))
		return tx.Bucket(bucketMeta).Put(keyCheckpoint, v[:])
	})
}

func (s *Store) applyCommit(tx *bbolt.Tx, c eventstore.Commit) error {
	for _, e := range c.Events {
		ev, err := s.codec.Decode(e.EventType, e.SchemaVersion, e.Data)
		if errors.Is(err, domain.ErrUnknownEventType) {
			continue
		}
		if err != nil {
			return fmt.Errorf("seq %d event %s: %w", c.Seq, e.EventID, err)
		}
		for _, p := range s.projections {
			if err := p.apply(tx, c, e, ev); err != nil {
				return fmt.Errorf("seq %d event %s (%s): %w", c.Seq, e.EventID, e.EventType, err)
			}
		}
	}
	return nil
}

// hashDomain starts every hash, so that a change of the scheme changes every
// hash.
const hashDomain = "bankbook.readmodels.v1"

// Hash returns a SHA-256 over the read models' content and the checkpoint they
// are at, in lower-case hex, as doc.go describes. Two files with the same
// hash hold the same read models at the same checkpoint, whatever their
// instance IDs.
func (s *Store) Hash() (string, eventstore.Seq, error) {
	var (
		sum string
		cp  eventstore.Seq
	)
	err := s.view(func(tx *bbolt.Tx) error {
		h := sha256.New()
		cp = checkpoint(tx)
		writeBytes(h, []byte(hashDomain))
		var v [8]byte
		binary.BigEndian.PutUint64(v[:], uint64(cp))
		h.Write(v[:])
		err := tx.ForEach(func(name []byte, b *bbolt.Bucket) error {
			if string(name) == string(bucketMeta) {
				return nil
			}
			writeBytes(h, name)
			return hashBucket(h, b)
		})
		sum = hex.EncodeToString(h.Sum(nil))
		return err
	})
	return sum, cp, err
}

// Entry tags of the hash scheme.
const (
	tagEnd    = 0x00
	tagValue  = 0x01
	tagBucket = 0x02
)

func hashBucket(h hash.Hash, b *bbolt.Bucket) error {
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if v == nil { // a nested bucket
			h.Write([]byte{tagBucket})
			writeBytes(h, k)
			if err := hashBucket(h, b.Bucket(k)); err != nil {
				return err
			}
			continue
		}
		h.Write([]byte{tagValue})
		writeBytes(h, k)
		writeBytes(h, v)
	}
	h.Write([]byte{tagEnd})
	return nil
}

// writeBytes writes p prefixed with its length as a big-endian uint32.
func writeBytes(h hash.Hash, p []byte) {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(p)))
	h.Write(n[:])
	h.Write(p)
}

func (s *Store) view(fn func(*bbolt.Tx) error) error {
	return closedErr(s.db.View(fn))
}

func (s *Store) update(fn func(*bbolt.Tx) error) error {
	return closedErr(s.db.Update(fn))
}

func closedErr(err error) error {
	if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}
