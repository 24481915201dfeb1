package eventstore

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/bankbook/bankbook/internal/subject"
)

// Seq is a JetStream stream sequence.
type Seq uint64

// Ref names one aggregate.
type Ref struct {
	Type string
	ID   string
}

func (r Ref) String() string { return r.Type + "/" + r.ID }

// Validate reports an error matching ErrInvalid unless the type and the ID
// are each one subject token (no '.', '*', '>' or whitespace): the aggregate's
// subject is built from them, and a wildcard there would read or write other
// aggregates. Append and Load of every store check it.
func (r Ref) Validate() error {
	if !subject.Token(r.Type) || !subject.Token(r.ID) {
		return fmt.Errorf("%w: aggregate %q/%q: type and id must be subject tokens", ErrInvalid, r.Type, r.ID)
	}
	return nil
}

// Envelope is one stored event with its metadata.
type Envelope struct {
	EventID        string    `json:"event_id"`
	AggregateType  string    `json:"aggregate_type"`
	AggregateID    string    `json:"aggregate_id"`
	Version        int       `json:"aggregate_version"` // 1 for the aggregate's first event
	EventType      string    `json:"event_type"`
	SchemaVersion  int       `json:"schema_version"`
	OccurredAt     time.Time `json:"occurred_at"`
	RecordedAt     time.Time `json:"recorded_at"`
	Command        string    `json:"command,omitempty"` // the command that produced the event
	CorrelationID  string    `json:"correlation_id,omitempty"`
	CausationID    string    `json:"causation_id,omitempty"`
	IdempotencyKey string    `json:"idempotency_key,omitempty"`
	Actor          string    `json:"actor,omitempty"`
	// Data is the event payload, upcast to the current schema version when
	// the store has an Upcaster.
	Data json.RawMessage `json:"data"`
}

// commitFormat is the version of the commit message layout that Append
// writes. Format 2 (ADR 0009) added PrevHash; format 1 commits are still
// read, without it (unchained).
const commitFormat = 2

// Commit is the unit of append: the events of one command on one aggregate,
// stored as a single message.
type Commit struct {
	Format        int    `json:"format"`
	CommitID      string `json:"commit_id"`
	AggregateType string `json:"aggregate_type"`
	AggregateID   string `json:"aggregate_id"`
	PrevSeq       Seq    `json:"prev_seq"` // sequence of the aggregate's previous commit; 0 for its first
	// PrevHash is the hash (lowercase hex, see Hash) of the stored bytes of
	// the aggregate's previous message, the one at PrevSeq, whatever its
	// format; empty for an aggregate's first commit, and in every format 1
	// commit (those are unchained). See VerifyChain and ADR 0009.
	PrevHash string     `json:"prev_hash,omitempty"`
	Events   []Envelope `json:"events"`
	// Seq is the stream sequence of this commit (not stored in the body).
	Seq Seq `json:"-"`
	// Hash is the hash of this commit's stored bytes (not stored in the
	// body): set by ParseCommit (and so by every read) and by Append (the
	// bytes it published). Zero when unknown.
	Hash Hash `json:"-"`
	// Damaged is set, and Events empty, when the message at Seq is not a
	// commit this engine can read: a placeholder that Load returns for a
	// message an operator set aside, and Follow (FollowOptions.DeliverDamaged)
	// for any damaged message. Never stored.
	Damaged *DamagedError `json:"-"`
}

// Ref returns the aggregate this commit belongs to.
func (c Commit) Ref() Ref { return Ref{Type: c.AggregateType, ID: c.AggregateID} }

// Chained reports whether the commit records its predecessor's hash: every
// format 2 commit does (its PrevHash is empty only when PrevSeq is 0);
// format 1 commits are unchained.
func (c Commit) Chained() bool { return c.Format >= 2 }

// Upcaster brings a stored event payload up to the current schema version.
// domain.Codec implements it.
type Upcaster interface {
	Upcast(eventType string, version int, data json.RawMessage) (json.RawMessage, int, error)
}

// ParseCommit parses a stored commit message, the message at seq, without
// upcasting its events: what was stored, with Seq and Hash (the hash of
// data) set. Formats 1 and 2 are read. A message that is not a commit of a
// known format, or a format 2 commit whose PrevHash does not fit its
// PrevSeq (missing after a predecessor, present without one, not 64
// lowercase hex digits), returns an error matching ErrCorrupt.
func ParseCommit(data []byte, seq Seq) (Commit, error) {
	var c Commit
	if err := json.Unmarshal(data, &c); err != nil {
		return Commit{}, fmt.Errorf("%w: seq %d: %v", ErrCorrupt, seq, err)
	}
	if (c.Format != 1 && c.Format != 2) || c.CommitID == "" || len(c.Events) == 0 {
		return Commit{}, fmt.Errorf("%w: seq %d: format %d, %d events", ErrCorrupt, seq, c.Format, len(c.Events))
	}
	switch {
	case c.Format == 1 && c.PrevHash != "":
		return Commit{}, fmt.Errorf("%w: seq %d: a format 1 commit with a prev_hash", ErrCorrupt, seq)
	case c.Format == 2 && c.PrevSeq == 0 && c.PrevHash != "":
		return Commit{}, fmt.Errorf("%w: seq %d: a first commit with a prev_hash", ErrCorrupt, seq)
	case c.Format == 2 && c.PrevSeq != 0 && !isHashHex(c.PrevHash):
		return Commit{}, fmt.Errorf("%w: seq %d: prev_hash %q is not a hash", ErrCorrupt, seq, c.PrevHash)
	}
	c.Seq = seq
	c.Hash = HashOf(data)
	return c, nil
}

// isHashHex reports whether s is a Hash as String writes it.
func isHashHex(s string) bool {
	if len(s) != 2*len(Hash{}) {
		return false
	}
	for _, r := range s {
		if (r < '0' || r > '9') && (r < 'a' || r > 'f') {
			return false
		}
	}
	return true
}

// Upcast returns c with its events brought to the current schema versions
// by up (nil: c as it is). The events are copied: c is not changed.
func (c Commit) Upcast(up Upcaster) (Commit, error) {
	if up == nil {
		return c, nil
	}
	events := make([]Envelope, len(c.Events))
	copy(events, c.Events)
	if err := upcastEvents(events, c.Seq, up); err != nil {
		return Commit{}, err
	}
	c.Events = events
	return c, nil
}

// upcastEvents upcasts events, of the commit at seq, in place.
func upcastEvents(events []Envelope, seq Seq, up Upcaster) error {
	if up == nil {
		return nil
	}
	for i := range events {
		e := &events[i]
		data, v, err := up.Upcast(e.EventType, e.SchemaVersion, e.Data)
		if err != nil {
			return fmt.Errorf("seq %d event %s: %w", seq, e.EventID, err)
		}
		e.Data, e.SchemaVersion = data, v
	}
	return nil
}

// DecodeCommit parses a stored commit message and upcasts its events:
// ParseCommit, then Commit.Upcast.
func DecodeCommit(data []byte, seq Seq, up Upcaster) (Commit, error) {
	c, err := ParseCommit(data, seq)
	if err != nil {
		return Commit{}, err
	}
	// c's events are its own: upcast them in place.
	if err := upcastEvents(c.Events, seq, up); err != nil {
		return Commit{}, err
	}
	return c, nil
}

// NewCommit builds the commit that appending events to ref stores: the
// events of one command, after the aggregate's commit at sequence expected
// (0: none) whose stored bytes hash to prev (ignored when expected is 0),
// and at aggregate version prevVersion. The events' aggregate fields,
// versions and RecordedAt are filled in. A malformed request (no events, no
// commit ID, a type or ID that is not a subject token) returns an error
// matching ErrInvalid. Every store implementation builds its commits here,
// so they store the same commit for the same request.
func NewCommit(ref Ref, expected Seq, prev Hash, prevVersion int, commitID string, events []Envelope, recordedAt time.Time) (Commit, error) {
	if err := ref.Validate(); err != nil {
		return Commit{}, err
	}
	if len(events) == 0 || commitID == "" {
		return Commit{}, fmt.Errorf("%w: %s: %d events, commit id %q", ErrInvalid, ref, len(events), commitID)
	}
	now := recordedAt.UTC()
	c := Commit{
		Format:        commitFormat,
		CommitID:      commitID,
		AggregateType: ref.Type,
		AggregateID:   ref.ID,
		PrevSeq:       expected,
		Events:        make([]Envelope, len(events)),
	}
	if expected != 0 {
		c.PrevHash = prev.String()
	}
	for i, e := range events {
		e.AggregateType, e.AggregateID = ref.Type, ref.ID
		e.Version = prevVersion + i + 1
		e.RecordedAt = now
		c.Events[i] = e
	}
	return c, nil
}

// SettleConflict decides what a failed expectation means for commit c,
// given after, the aggregate's commits with sequence greater than c.PrevSeq
// (oldest first). If the first of them is c itself (an earlier attempt of
// the same append was stored and its answer lost), that is success: c with
// its stored sequence, whatever was appended on top since. Otherwise it is a
// *ConflictError whose Actual is the aggregate's last commit (0 if none
// follows c.PrevSeq).
func SettleConflict(c Commit, after []Commit) (Commit, error) {
	if len(after) > 0 && after[0].PrevSeq == c.PrevSeq && after[0].CommitID == c.CommitID {
		c.Seq, c.Hash = after[0].Seq, after[0].Hash
		return c, nil
	}
	var actual Seq
	if len(after) > 0 {
		actual = after[len(after)-1].Seq
	}
	return Commit{}, &ConflictError{Ref: c.Ref(), Expected: c.PrevSeq, Actual: actual}
}
