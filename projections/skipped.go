package projections

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
)

// SkippedCommit is a damaged commit the read models skipped: a message of
// the event stream that is not a commit this engine can read
// (eventstore.ErrDamaged), or a commit holding an event the codec cannot
// decode (an unknown event type, a newer schema version, a payload that
// does not fit its type). The projections move their checkpoints past it
// without applying any of it, so folding goes on with the later commits;
// the Runner reports it until an operator sets it aside
// (eventstore.Store.SetAside).
type SkippedCommit struct {
	Seq     eventstore.Seq `json:"seq"`
	Subject string         `json:"subject,omitempty"`
	// AggregateType and AggregateID name the aggregate the commit (or its
	// subject) belongs to; empty when it names none.
	AggregateType string `json:"aggregate_type,omitempty"`
	AggregateID   string `json:"aggregate_id,omitempty"`
	// Problem says what is wrong with it.
	Problem string `json:"problem"`
	// SetAside is true once the Runner has seen that an operator set the
	// commit aside; Reason is the operator's.
	SetAside bool   `json:"set_aside,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

// prefixSkipped starts the "meta" key of each skipped commit:
// "skipped:" seq (uint64, big-endian) → JSON of SkippedCommit.
var prefixSkipped = []byte("skipped:")

func skippedKey(seq eventstore.Seq) []byte {
	k := make([]byte, len(prefixSkipped)+8)
	copy(k, prefixSkipped)
	binary.BigEndian.PutUint64(k[len(prefixSkipped):], uint64(seq))
	return k
}

// skipped returns the SkippedCommit of c if the projections must skip it:
// Follow delivered it damaged, or an event does not decode. events are
// c's decoded events otherwise.
func (s *Store) skipped(c eventstore.Commit) (events []domain.Event, sc *SkippedCommit) {
	if d := c.Damaged; d != nil {
		sc = &SkippedCommit{Seq: c.Seq, Subject: d.Subject, AggregateType: c.AggregateType, AggregateID: c.AggregateID, Problem: d.Err.Error()}
		if d.SetAside != nil {
			sc.SetAside, sc.Reason = true, d.SetAside.Reason
		}
		return nil, sc
	}
	events = make([]domain.Event, len(c.Events))
	for i, e := range c.Events {
		ev, err := s.codec.Decode(e.EventType, e.SchemaVersion, e.Data)
		if err != nil {
			return nil, &SkippedCommit{Seq: c.Seq, AggregateType: c.AggregateType, AggregateID: c.AggregateID,
				Problem: fmt.Sprintf("event %s (%s): %v", e.EventID, e.EventType, err)}
		}
		events[i] = ev
	}
	return events, nil
}

// recordSkipped stores sc in meta unless a record of its sequence is there
// already (a projection rebuilt past it again); it reports whether sc is new.
func recordSkipped(meta *bbolt.Bucket, sc *SkippedCommit) (bool, error) {
	key := skippedKey(sc.Seq)
	if meta.Get(key) != nil {
		return false, nil
	}
	v, err := json.Marshal(sc)
	if err != nil {
		return false, err
	}
	return true, meta.Put(key, v)
}

// Skipped returns every damaged commit the read models skipped, by
// sequence, set aside or not.
func (s *Store) Skipped() ([]SkippedCommit, error) {
	var out []SkippedCommit
	err := s.view(func(tx *bbolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			return nil
		}
		c := meta.Cursor()
		for k, v := c.Seek(prefixSkipped); k != nil && bytes.HasPrefix(k, prefixSkipped); k, v = c.Next() {
			var sc SkippedCommit
			if err := json.Unmarshal(v, &sc); err != nil {
				return fmt.Errorf("skipped commit record %x: %w", k, err)
			}
			out = append(out, sc)
		}
		return nil
	})
	return out, err
}

// MarkSetAside records that an operator set the skipped commit at seq
// aside, with their reason. A sequence without a record is recorded too
// (the read models skipped it before they recorded skips).
func (s *Store) MarkSetAside(seq eventstore.Seq, reason string) error {
	if s.readOnly {
		return ErrReadOnly
	}
	return s.update(func(tx *bbolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		sc := SkippedCommit{Seq: seq}
		if v := meta.Get(skippedKey(seq)); v != nil {
			if err := json.Unmarshal(v, &sc); err != nil {
				return fmt.Errorf("skipped commit record of seq %d: %w", seq, err)
			}
		}
		sc.SetAside, sc.Reason = true, reason
		v, err := json.Marshal(sc)
		if err != nil {
			return err
		}
		return meta.Put(skippedKey(seq), v)
	})
}

// decodable reports why the codec cannot decode c's events; nil if it can.
func (s *Store) decodable(c eventstore.Commit) error {
	if _, sc := s.skipped(c); sc != nil {
		return fmt.Errorf("%s", sc.Problem)
	}
	return nil
}

// Rebuild drops every projection's buckets and records, in one
// transaction, so that the Runner rebuilds them all from sequence 1 (the
// Runner does so by itself when a commit it skipped has become readable,
// after an upgrade). The skipped-commit records go too: the rebuild meets
// the commits again.
func (s *Store) Rebuild() error {
	if s.readOnly {
		return ErrReadOnly
	}
	return s.update(func(tx *bbolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		for _, p := range s.projections {
			for _, b := range p.Buckets {
				if tx.Bucket([]byte(b)) != nil {
					if err := tx.DeleteBucket([]byte(b)); err != nil {
						return fmt.Errorf("projection %s: drop bucket %s: %w", p.Name, b, err)
					}
				}
				if _, err := tx.CreateBucket([]byte(b)); err != nil {
					return fmt.Errorf("projection %s: bucket %s: %w", p.Name, b, err)
				}
			}
			if err := writeRecord(meta, p.Name, p.Version, 0); err != nil {
				return err
			}
		}
		var keys [][]byte
		c := meta.Cursor()
		for k, _ := c.Seek(prefixSkipped); k != nil && bytes.HasPrefix(k, prefixSkipped); k, _ = c.Next() {
			keys = append(keys, bytes.Clone(k))
		}
		for _, k := range keys {
			if err := meta.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}
