package eventstore

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/internal/kvcas"
)

// SetAside is an operator's recorded decision that a damaged message of the
// event stream is not part of history: Load walks past it (the aggregate it
// damaged loads again), and projections and reactors skip it without
// reporting it. It is stored once, in the KV bucket Config.SetAsideBucket
// under the message's sequence, and never changes.
type SetAside struct {
	Seq     Seq    `json:"seq"`
	Stream  string `json:"stream"`
	Subject string `json:"subject"`
	// AggregateType and AggregateID name the aggregate the subject names
	// (empty when it names none).
	AggregateType string `json:"aggregate_type,omitempty"`
	AggregateID   string `json:"aggregate_id,omitempty"`
	// PrevSeq is the aggregate's message before this one (0: none): where
	// a load continues.
	PrevSeq Seq `json:"prev_seq"`
	// Problem is what was wrong with the message when it was set aside.
	Problem string `json:"problem"`
	// Reason, Actor and At say why, by whom and when.
	Reason string    `json:"reason"`
	Actor  string    `json:"actor,omitempty"`
	At     time.Time `json:"at"`
}

// setAsides is the Store's view of the set-aside bucket. Records never
// change once written, so found ones are cached.
type setAsides struct {
	mu    sync.Mutex
	kv    jetstream.KeyValue // nil: not bound (yet)
	bind  bool               // bind kv on first use (a Store from Bind)
	found map[Seq]SetAside
}

// openSetAsides creates (create) the set-aside bucket, or arranges to bind
// it when a damaged message is first looked up: a tool that binds a stream
// (replay) rarely meets one, and may lack the bucket or the right to read
// it. Without it, set-aside messages are merely damaged to that Store, and
// every reader skips both alike.
func (s *Store) openSetAsides(ctx context.Context, create bool) error {
	s.setAsides = &setAsides{found: map[Seq]SetAside{}, bind: !create}
	if !create {
		return nil
	}
	kv, err := s.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      s.cfg.SetAsideBucket,
		Description: "bankbook: damaged messages of " + s.cfg.Stream + " an operator set aside, with the reason",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    s.cfg.Replicas,
	})
	if err != nil {
		return fmt.Errorf("set-aside bucket %s: %w", s.cfg.SetAsideBucket, err)
	}
	s.setAsides.kv = kv
	return nil
}

func setAsideKey(seq Seq) string { return strconv.FormatUint(uint64(seq), 10) }

// bucket returns the set-aside bucket, binding it on first use for a
// Store from Bind; nil if there is none.
func (s *Store) bucket(ctx context.Context) jetstream.KeyValue {
	r := s.setAsides
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.bind {
		r.bind = false // once: a Store from Bind serves one tool run
		if kv, err := s.js.KeyValue(ctx, s.cfg.SetAsideBucket); err == nil {
			r.kv = kv
		}
	}
	return r.kv
}

// SetAsideAt returns the set-aside record of the message at seq, if an
// operator set it aside.
func (s *Store) SetAsideAt(ctx context.Context, seq Seq) (SetAside, bool, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	kv := s.bucket(ctx)
	if kv == nil {
		return SetAside{}, false, nil
	}
	r := s.setAsides
	r.mu.Lock()
	sa, ok := r.found[seq]
	r.mu.Unlock()
	if ok {
		return sa, true, nil
	}
	e, err := kv.Get(ctx, setAsideKey(seq))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return SetAside{}, false, nil
	}
	if err != nil {
		return SetAside{}, false, fmt.Errorf("set-aside record of seq %d: %w", seq, unavailable(err))
	}
	if err := json.Unmarshal(e.Value(), &sa); err != nil {
		return SetAside{}, false, fmt.Errorf("set-aside record of seq %d: %w", seq, err)
	}
	r.mu.Lock()
	r.found[seq] = sa
	r.mu.Unlock()
	return sa, true, nil
}

// SetAside records that the damaged message at seq is set aside, for
// reason (required), by actor, and returns the record. From then on Load
// walks past it, so the aggregate it damaged loads again, and projections
// and reactors skip it quietly.
//
// Only a damaged message can be set aside: one that is a commit this engine
// reads fails with ErrNotDamaged, and a sequence without a message with
// ErrNoMessage. Setting aside a message that is already set aside returns
// the first record and created false; nothing changes.
func (s *Store) SetAside(ctx context.Context, seq Seq, reason, actor string) (rec SetAside, created bool, err error) {
	if strings.TrimSpace(reason) == "" {
		return SetAside{}, false, fmt.Errorf("%w: setting seq %d aside needs a reason", ErrInvalid, seq)
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	kv := s.bucket(ctx)
	if kv == nil {
		return SetAside{}, false, fmt.Errorf("set aside seq %d: there is no set-aside bucket %s", seq, s.cfg.SetAsideBucket)
	}
	if sa, ok, err := s.SetAsideAt(ctx, seq); err != nil || ok {
		return sa, false, err
	}
	msg, err := s.getMsg(ctx, uint64(seq))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return SetAside{}, false, fmt.Errorf("%w: seq %d", ErrNoMessage, seq)
	}
	if err != nil {
		return SetAside{}, false, fmt.Errorf("set aside seq %d: %w", seq, unavailable(err))
	}
	c, derr := s.read(msg.Subject, msg.Data, seq)
	prev := c.PrevSeq // a commit with an event this engine cannot decode still links its chain
	if derr == nil {
		if derr = s.known(c, msg.Subject); derr == nil {
			return SetAside{}, false, fmt.Errorf("%w: seq %d is a commit of %s", ErrNotDamaged, seq, c.Ref())
		}
	} else if derr.Ref != (Ref{}) {
		if prev, err = s.previousOn(ctx, msg.Subject, seq); err != nil {
			return SetAside{}, false, fmt.Errorf("set aside seq %d: %w", seq, err)
		}
	}
	rec = SetAside{
		Seq: seq, Stream: s.cfg.Stream, Subject: msg.Subject, AggregateType: derr.Ref.Type, AggregateID: derr.Ref.ID,
		PrevSeq: prev, Problem: derr.Err.Error(), Reason: reason, Actor: actor, At: s.cfg.Now().UTC(),
	}
	body, err := json.Marshal(rec)
	if err != nil {
		return SetAside{}, false, fmt.Errorf("encode set-aside record: %w", err)
	}
	if _, err := kv.Create(ctx, setAsideKey(seq), body); err != nil {
		if kvcas.Conflict(err) {
			// Another operator was quicker: theirs is the record.
			sa, _, gerr := s.SetAsideAt(ctx, seq)
			return sa, false, gerr
		}
		return SetAside{}, false, fmt.Errorf("record set-aside of seq %d: %w", seq, unavailable(err))
	}
	s.setAsides.mu.Lock()
	s.setAsides.found[seq] = rec
	s.setAsides.mu.Unlock()
	return rec, true, nil
}

// SetAsides returns every set-aside record, by sequence.
func (s *Store) SetAsides(ctx context.Context) ([]SetAside, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	kv := s.bucket(ctx)
	if kv == nil {
		return nil, nil
	}
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("list set-aside records: %w", unavailable(err))
	}
	defer func() { _ = w.Stop() }()
	var out []SetAside
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("list set-aside records: %w", unavailable(ctx.Err()))
		case e := <-w.Updates():
			if e == nil { // every record delivered
				slices.SortFunc(out, func(a, b SetAside) int { return cmp.Compare(a.Seq, b.Seq) })
				return out, nil
			}
			var sa SetAside
			if err := json.Unmarshal(e.Value(), &sa); err != nil {
				return nil, fmt.Errorf("set-aside record %s: %w", e.Key(), err)
			}
			out = append(out, sa)
		}
	}
}
