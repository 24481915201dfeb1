package eventstore

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
)

// BreakKind says which link of an aggregate's chain is broken.
type BreakKind string

const (
	// BreakPrevSeq: the commit's PrevSeq is not the sequence of the
	// aggregate's message before it (a commit removed, two reordered, or a
	// commit copied in from elsewhere); for the aggregate's first message, a
	// PrevSeq other than 0.
	BreakPrevSeq BreakKind = "prev_seq"
	// BreakPrevHash: the commit's PrevHash is not the hash of the stored
	// bytes of the message at its PrevSeq (that message was changed, or
	// this commit's PrevHash was).
	BreakPrevHash BreakKind = "prev_hash"
)

// ChainBreak is one broken link of an aggregate's chain, found by
// VerifyChain.
type ChainBreak struct {
	// Seq is the sequence of the commit whose link is broken.
	Seq  Seq
	Ref  Ref
	Kind BreakKind
	// PrevSeq and PrevHash are what the commit records; ActualSeq and
	// ActualHash are the sequence and hash of the aggregate's message
	// before it in the stream (0 and "" when it is the first).
	PrevSeq    Seq
	PrevHash   string
	ActualSeq  Seq
	ActualHash string
}

func (b ChainBreak) String() string {
	switch b.Kind {
	case BreakPrevSeq:
		if b.ActualSeq == 0 {
			return fmt.Sprintf("%s: the commit at seq %d links to seq %d, but it is the aggregate's first message", b.Ref, b.Seq, b.PrevSeq)
		}
		return fmt.Sprintf("%s: the commit at seq %d links to seq %d, but the aggregate's message before it is at seq %d", b.Ref, b.Seq, b.PrevSeq, b.ActualSeq)
	default:
		return fmt.Sprintf("%s: the commit at seq %d records hash %s for seq %d, but the message there hashes to %s (seq %d or seq %d was changed)",
			b.Ref, b.Seq, orNone(b.PrevHash), b.PrevSeq, orNone(b.ActualHash), b.PrevSeq, b.Seq)
	}
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// VerifyChain checks the links of one aggregate's whole history: commits
// are every message of the aggregate's subject, oldest first, as
// ParseCommit (or any read of the store) returns them, with Hash filled.
// The first must have PrevSeq 0; every other must have PrevSeq the
// sequence of the one before it in the slice and, if it is a format 2
// commit, PrevHash that one's Hash, whatever that one's format. It returns
// every broken link, in order; none for an intact chain.
//
// What it does not report: a format 1 commit has no PrevHash, so only its
// PrevSeq is checked (see Unchained); a damaged message (Damaged set) has
// no readable links of its own, so only the next commit's link to it is
// checked (with its Hash, when the placeholder carries one). The last
// commit of an aggregate is not covered by any link: a change to it is
// found only against a trusted stream digest (Digest). See ADR 0009.
func VerifyChain(commits []Commit) []ChainBreak {
	var breaks []ChainBreak
	var prev *Commit
	for i := range commits {
		c := &commits[i]
		if c.Damaged != nil {
			prev = c
			continue
		}
		b := ChainBreak{Seq: c.Seq, Ref: c.Ref(), PrevSeq: c.PrevSeq, PrevHash: c.PrevHash}
		if prev != nil {
			b.ActualSeq = prev.Seq
			if prev.Hash != (Hash{}) {
				b.ActualHash = prev.Hash.String()
			}
		}
		switch {
		case c.PrevSeq != b.ActualSeq:
			b.Kind = BreakPrevSeq
			breaks = append(breaks, b)
		case c.Chained() && prev != nil && prev.Hash != (Hash{}) && c.PrevHash != b.ActualHash:
			b.Kind = BreakPrevHash
			breaks = append(breaks, b)
		}
		prev = c
	}
	return breaks
}

// Unchained returns the sequences of the format 1 commits among commits:
// they record no PrevHash, so their links are checked by sequence only.
// That is information about their format, not a break (ADR 0009).
func Unchained(commits []Commit) []Seq {
	var out []Seq
	for _, c := range commits {
		if c.Damaged == nil && !c.Chained() {
			out = append(out, c.Seq)
		}
	}
	return out
}

// DigestResult is a stream digest (see Digest).
type DigestResult struct {
	// Seq is the last sequence the digest covers: it covers 1..Seq.
	Seq Seq `json:"seq"`
	// Digest is the digest in lowercase hex.
	Digest string `json:"digest"`
	// Commits is how many messages it covers (Seq, on a stream without
	// gaps).
	Commits int `json:"commits"`
}

// Digest computes the stream digest at until (0: the stream's last
// sequence when it starts): the SHA-256 of, for every message with
// sequence 1..until in order, its sequence as 8 bytes big-endian followed
// by the SHA-256 of its stored bytes (its JetStream message data exactly
// as stored, whatever it holds: damaged and set-aside messages included).
// Subjects and headers are not covered: a commit names its aggregate in
// its bytes. A verifier that trusts a digest (published or written down
// at the time) detects any change, removal, insertion or reordering of the
// messages up to its sequence, and a stream truncated before it, by
// computing the digest at the same sequence again.
//
// It reads with direct gets only, as the auditor identity may (ADR 0006).
// An until beyond the stream's last sequence returns an error matching
// ErrNoMessage; so does a stream with messages missing up to until (the
// first missing run as a *MissingError): a digest vouches for a whole log,
// never for one with commits removed. An empty stream digests at 0 to the
// SHA-256 of nothing.
func Digest(ctx context.Context, r *Reader, until Seq) (DigestResult, error) {
	last, err := r.lastSeq(ctx)
	if tm := (*TailMissingError)(nil); err != nil && !(errors.As(err, &tm) && until != 0 && until <= tm.After) {
		// The end of the log lost: only a digest up to what is left.
		return DigestResult{}, err
	}
	if until == 0 {
		until = last
	}
	if until > last {
		return DigestResult{}, fmt.Errorf("%w: digest at seq %d: the stream's last sequence is %d", ErrNoMessage, until, last)
	}
	d := NewDigester()
	if until > 0 {
		next := Seq(1)
		if err := readDirect(ctx, r.js, r.dec.cfg.Stream, until, r.dec.cfg.Timeout, func(m RawMessage) error {
			if m.Seq != next {
				return &MissingError{From: next, To: m.Seq - 1}
			}
			next++
			d.Add(m.Seq, HashOf(m.Data))
			return nil
		}); err != nil {
			return DigestResult{}, err
		}
	}
	return d.Result(until), nil
}

// Digester accumulates a stream digest message by message, for a reader
// that already has each message's hash (Commit.Hash): Digest's result
// without reading the stream a second time.
type Digester struct {
	h hash.Hash
	n int
}

// NewDigester returns a Digester of nothing yet.
func NewDigester() *Digester { return &Digester{h: sha256.New()} }

// Add adds the message at seq, whose stored bytes hash to sum (HashOf).
// Messages must be added in stream order, every one from sequence 1.
func (d *Digester) Add(seq Seq, sum Hash) {
	var buf [8 + sha256.Size]byte
	binary.BigEndian.PutUint64(buf[:8], uint64(seq))
	copy(buf[8:], sum[:])
	d.h.Write(buf[:])
	d.n++
}

// Result is the digest of what was added, covering 1..seq.
func (d *Digester) Result(seq Seq) DigestResult {
	return DigestResult{Seq: seq, Digest: hex.EncodeToString(d.h.Sum(nil)), Commits: d.n}
}
