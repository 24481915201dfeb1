package projections

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/bbolt"

	"github.com/bankbook/bankbook/eventstore"
)

// The read models are derived from one event stream. If that stream is
// deleted and created again, or emptied, the file still holds what the old
// stream said: serving it would answer from history that no longer exists,
// and the commands (which read the stream) would disagree with every query.
// CheckStream detects it at start.

var (
	// ErrStreamReplaced means the event stream is not the one the read
	// models were built from: it was deleted and created again (its
	// creation time changed) or the engine points at another stream.
	ErrStreamReplaced = errors.New("projections: the event stream is not the one the read models were built from")
	// ErrStreamTruncated means the event stream no longer starts at
	// sequence 1: it was purged, and the commits before its first sequence
	// are gone. The event stream never expires or deletes anything.
	ErrStreamTruncated = errors.New("projections: the event stream has lost its first commits")
	// ErrCheckpointAhead means a projection has applied commits beyond the
	// stream's last sequence: the stream lost commits the read models hold.
	ErrCheckpointAhead = errors.New("projections: the read models are ahead of the event stream")
	// ErrStreamLostCommits means messages inside the event stream's range
	// are gone: the stream denies deletes, so the server dropped them (a
	// damaged store, its end truncated). Commits that were acknowledged,
	// and that the read models may hold, are no longer in the log.
	ErrStreamLostCommits = errors.New("projections: the event stream has lost commits")
)

// StreamInfo is what CheckStream needs to know of the event stream, from
// JetStream's stream info: Name is Config.Name, Created is Created,
// FirstSeq and LastSeq are State.FirstSeq and State.LastSeq.
type StreamInfo struct {
	Name     string
	Created  time.Time
	FirstSeq eventstore.Seq
	LastSeq  eventstore.Seq
	// Lost is State.NumDeleted: how many sequences between FirstSeq and
	// LastSeq hold no message; LostSeqs names the first few of them
	// (State.Deleted), for the message.
	Lost     uint64
	LostSeqs []eventstore.Seq
}

// StreamError says what CheckStream found wrong. It matches its Kind
// (ErrStreamReplaced, ErrStreamTruncated or ErrCheckpointAhead) with
// errors.Is.
type StreamError struct {
	Kind error
	// File is the read-model file.
	File string
	// Stream is the stream as it is now.
	Stream StreamInfo
	// RecordedName and RecordedCreated are the stream the read models were
	// built from (zero if the file has not recorded one yet).
	RecordedName    string
	RecordedCreated time.Time
	// Checkpoint is the highest projection checkpoint in the file.
	Checkpoint eventstore.Seq
}

func (e *StreamError) Error() string {
	var what string
	switch e.Kind {
	case ErrStreamReplaced:
		what = fmt.Sprintf("read models %s were built from stream %s created %s; stream %s now was created %s (deleted and created again?)",
			e.File, e.RecordedName, e.RecordedCreated.UTC().Format(time.RFC3339Nano), e.Stream.Name, e.Stream.Created.UTC().Format(time.RFC3339Nano))
	case ErrStreamTruncated:
		what = fmt.Sprintf("stream %s starts at seq %d, not 1 (purged?): commits 1 to %d are gone", e.Stream.Name, e.Stream.FirstSeq, e.Stream.FirstSeq-1)
	case ErrStreamLostCommits:
		return fmt.Sprintf("%v: stream %s holds no message at %d of its sequences up to %d (%s): the server dropped them (a damaged or truncated store), "+
			"and the read models %s, at seq %d, may hold what they said; the event log is the truth and it is not what it was: "+
			"restore the stream from a replica or a backup (bankbook audit verify names every lost commit); no rebuild can pass a lost commit",
			e.Kind, e.Stream.Name, e.Stream.Lost, e.Stream.LastSeq, seqList(e.Stream.LostSeqs, e.Stream.Lost), e.File, e.Checkpoint)
	default:
		if !e.RecordedCreated.IsZero() {
			// The same stream, shorter than the read models: its end was
			// lost (a truncated store whose index was lost too), not
			// replaced. The read models are the last record of it.
			return fmt.Sprintf("%v: read models %s have applied up to seq %d, and stream %s, the one they were built from, now ends at seq %d: "+
				"commits %d to %d were lost (a damaged or truncated store); the event log is the truth and it is not what it was: "+
				"restore the stream from a replica or a backup (bankbook audit verify names what is missing); "+
				"do not move the read-model file aside: it is the last record of those commits, and new commits would take their sequences",
				e.Kind, e.File, e.Checkpoint, e.Stream.Name, e.Stream.LastSeq, e.Stream.LastSeq+1, e.Checkpoint)
		}
		what = fmt.Sprintf("read models %s have applied up to seq %d, stream %s ends at seq %d (emptied, or created again?)",
			e.File, e.Checkpoint, e.Stream.Name, e.Stream.LastSeq)
	}
	return fmt.Sprintf("%v: %s; the event log is the truth and it is not what it was: restore the stream from a backup; "+
		"to serve from the stream as it is now instead, move the read-model file aside and it is rebuilt from the stream", e.Kind, what)
}

// Is makes errors.Is(err, e.Kind) true.
func (e *StreamError) Is(target error) bool { return target == e.Kind }

// seqList writes seqs, the first of n lost sequences, as "seq 5, 9, …".
func seqList(seqs []eventstore.Seq, n uint64) string {
	if len(seqs) == 0 {
		return "which ones, the server did not say"
	}
	parts := make([]string, len(seqs))
	for i, s := range seqs {
		parts[i] = strconv.FormatUint(uint64(s), 10)
	}
	out := "seq " + strings.Join(parts, ", ")
	if uint64(len(seqs)) < n {
		out += ", …"
	}
	return out
}

// keyStream is the "meta" record of the stream the read models are built
// from: JSON of streamIdentity.
var keyStream = []byte("stream")

type streamIdentity struct {
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
}

// CheckStream makes sure the read models were built from the event stream
// described by info, and that it still holds everything they applied. Call
// it after the stream is opened and before anything applies or serves the
// read models. It returns a *StreamError if
//
//   - the file recorded another stream: another name, or the same name
//     created at another time (ErrStreamReplaced);
//   - the stream no longer starts at sequence 1 (ErrStreamTruncated);
//   - a projection's checkpoint is beyond the stream's last sequence
//     (ErrCheckpointAhead).
//
// Otherwise, on a writable Store that has not recorded a stream yet (a new
// file, or one from before this check), it records info's name and creation
// time in the "meta" bucket, so that every later start compares with it.
// A read-only Store only compares.
func (s *Store) CheckStream(info StreamInfo) error {
	if info.Name == "" || info.Created.IsZero() {
		return fmt.Errorf("projections: check stream: the stream's name and creation time are required, got %q, %v", info.Name, info.Created)
	}
	check := func(tx *bbolt.Tx) (recorded bool, err error) {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			return false, fmt.Errorf("%w: no meta bucket (not a read-model file)", ErrStale)
		}
		_, high := s.checkpoints(tx)
		serr := &StreamError{File: s.db.Path(), Stream: info, Checkpoint: high}
		if v := meta.Get(keyStream); v != nil {
			var id streamIdentity
			if err := json.Unmarshal(v, &id); err != nil {
				return false, fmt.Errorf("read models %s: stream record: %w", s.db.Path(), err)
			}
			serr.RecordedName, serr.RecordedCreated, recorded = id.Name, id.Created, true
			if id.Name != info.Name || !id.Created.Equal(info.Created) {
				serr.Kind = ErrStreamReplaced
				return recorded, serr
			}
		}
		switch {
		case info.LastSeq > 0 && info.FirstSeq > 1:
			serr.Kind = ErrStreamTruncated
			return recorded, serr
		case info.Lost > 0:
			serr.Kind = ErrStreamLostCommits
			return recorded, serr
		case high > info.LastSeq:
			serr.Kind = ErrCheckpointAhead
			return recorded, serr
		}
		return recorded, nil
	}
	if s.readOnly {
		return s.view(func(tx *bbolt.Tx) error {
			_, err := check(tx)
			return err
		})
	}
	return s.update(func(tx *bbolt.Tx) error {
		recorded, err := check(tx)
		if err != nil || recorded {
			return err
		}
		v, err := json.Marshal(streamIdentity{Name: info.Name, Created: info.Created.UTC()})
		if err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(keyStream, v)
	})
}
