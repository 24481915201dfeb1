package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"
)

// RawMessage is one message of the event stream as a direct get returns it.
type RawMessage struct {
	Seq     Seq
	Subject string
	Data    []byte
}

// directBatch is how many messages one direct batch get asks for, and
// directBatchBytes how many bytes at most (a batch of large commits is
// shorter), so that a batch arrives within a request's timeout.
const (
	directBatch      = 500
	directBatchBytes = 4 << 20
)

// ReadDirect reads the stream's messages in order, from sequence 1 up to
// the last sequence when it starts, with direct batch gets only: no stream
// info, no consumer. That is all the auditor identity may do with the event
// stream (ADR 0006), so `bankbook replay` and audit tooling read this way.
// It returns the last sequence it read up to (0 for an empty stream). Each
// request gets its answer within timeout (see readDirect). Knowing no
// subjects, it takes a stream whose last message is missing for an empty
// one: a Reader, which knows them, reports it (*TailMissingError).
func ReadDirect(ctx context.Context, js jetstream.JetStream, stream string, timeout time.Duration, fn func(RawMessage) error) (Seq, error) {
	if timeout <= 0 {
		return 0, fmt.Errorf("eventstore: ReadDirect needs a timeout above 0, got %v", timeout)
	}
	until, err := directLastSeq(ctx, js.Conn(), stream, ">", timeout)
	if err != nil || until == 0 {
		return 0, err
	}
	if err := readDirect(ctx, js, stream, until, timeout, fn); err != nil {
		return 0, err
	}
	return until, nil
}

// readDirect hands fn the stream's messages 1..until (until ≥ 1, at most
// the last sequence) in order, with direct batch gets. Each batch must
// arrive within timeout: NATS drops a request the identity may not publish
// without answering it, so a reader without the right would otherwise wait
// for ever. fn runs once a batch has arrived, outside that time.
func readDirect(ctx context.Context, js jetstream.JetStream, stream string, until Seq, timeout time.Duration, fn func(RawMessage) error) error {
	next := uint64(1)
	batch := make([]RawMessage, 0, directBatch)
	for next <= uint64(until) {
		var err error
		if batch, err = getDirectBatch(ctx, js, stream, next, until, timeout, batch[:0]); err != nil {
			return err
		}
		if len(batch) == 0 {
			// Nothing from next to until, though the stream goes on
			// (callers read up to a sequence it has reached).
			return &MissingError{From: Seq(next), To: until}
		}
		for _, m := range batch {
			if err := fn(m); err != nil {
				return err
			}
		}
		next = uint64(batch[len(batch)-1].Seq) + 1
	}
	return nil
}

// getDirectBatch appends to batch the messages of one direct batch get
// from sequence next, up to until, within timeout.
func getDirectBatch(ctx context.Context, js jetstream.JetStream, stream string, next uint64, until Seq, timeout time.Duration, batch []RawMessage) ([]RawMessage, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	msgs, err := jetstreamext.GetBatch(ctx, js, stream, directBatch, jetstreamext.GetBatchSeq(next), jetstreamext.GetBatchMaxBytes(directBatchBytes))
	if err != nil {
		return nil, fmt.Errorf("eventstore: direct get from %d: %w", next, err)
	}
	for m, err := range msgs {
		if err != nil {
			return nil, fmt.Errorf("eventstore: direct get from %d: %w", next, err)
		}
		if m.Sequence > uint64(until) {
			break
		}
		batch = append(batch, RawMessage{Seq: Seq(m.Sequence), Subject: m.Subject, Data: m.Data})
	}
	if len(batch) == 0 && ctx.Err() != nil {
		// The answer ends silently when the request's time runs out: no
		// answer (the server went away, or was too slow) is no sign of
		// messages missing from the stream.
		return nil, fmt.Errorf("eventstore: direct get from %d: no answer within %v: %w", next, timeout, ctx.Err())
	}
	return batch, nil
}

// Reader reads the event stream's commits with direct gets only: what the
// auditor identity may do (ADR 0006). It makes no request until Read.
type Reader struct {
	js  jetstream.JetStream
	dec *Store // decodes commits: only its cfg is used, safe for concurrent use
}

// NewReader returns a Reader of the stream cfg names (defaults filled in).
func NewReader(js jetstream.JetStream, cfg Config) *Reader {
	cfg.setDefaults()
	return &Reader{js: js, dec: &Store{cfg: cfg}}
}

// Reader returns a Reader of the store's stream.
func (s *Store) Reader() *Reader { return &Reader{js: s.js, dec: s} }

// Read hands fn the stream's commits in order, in batches, from sequence 1
// to the last sequence when it starts, and returns that sequence. A message
// that is not a readable commit is delivered as a Commit with Damaged set,
// as Follow with DeliverDamaged does, but without its set-aside record
// (the set-aside bucket is the engine's): projections skip a damaged commit
// either way.
//
// fn runs on the goroutine that called Read, one batch at a time. Read
// fetches the next messages and decodes them (in parallel, see ReadPrepared)
// while fn handles a batch.
func (r *Reader) Read(ctx context.Context, fn Handler) (Seq, error) {
	return ReadPrepared(ctx, r, nil, func(ctx context.Context, batch []Commit, _ []struct{}) error {
		return fn(ctx, batch)
	})
}

// PreparedHandler handles commits in stream order, with what ReadPrepared's
// prepare step returned for each: prepared[i] belongs to batch[i].
type PreparedHandler[T any] func(ctx context.Context, batch []Commit, prepared []T) error

// readBatch is how many commits ReadPrepared decodes as one unit of work
// and hands fn at once.
const readBatch = 256

// ReadPrepared is Read with a step of the caller's run on every commit
// before its batch reaches fn: decoding what the caller needs from the
// events, say, so that each commit is decoded once. The commits and prepare
// (nil: none) run on up to GOMAXPROCS goroutines at once, in no particular
// order, while the next messages are fetched and fn handles earlier
// batches; so prepare must be safe for concurrent use and must not depend
// on other commits. fn gets the batches in stream order, without gaps, on
// the goroutine that called ReadPrepared, one at a time.
//
// When fn returns an error, ReadPrepared stops reading and returns it
// (after every goroutine it started has ended); the commits already
// fetched or prepared after that batch are dropped. Memory stays bounded:
// at most a few batches per goroutine are held ahead of fn.
//
// A stream whose last message is missing is read up to the last message
// there is; then ReadPrepared returns that sequence with a
// *TailMissingError.
func ReadPrepared[T any](ctx context.Context, r *Reader, prepare func(Commit) T, fn PreparedHandler[T]) (Seq, error) {
	until, tail := r.lastSeq(ctx)
	var tm *TailMissingError
	if tail != nil && !errors.As(tail, &tm) || until == 0 {
		return 0, tail
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	workers := max(1, runtime.GOMAXPROCS(0))
	type job struct {
		msgs     []RawMessage
		commits  []Commit
		prepared []T
		err      error // a panic of decode or prepare
		done     chan struct{}
	}
	// A job goes to work (a worker decodes it) before it goes to order
	// (fn waits for it there), so every job fn waits for is decoded.
	work := make(chan *job, 2*workers)
	order := make(chan *job, 2*workers+2)
	fetched := make(chan error, 1)
	go func() {
		defer close(order)
		defer close(work)
		msgs := make([]RawMessage, 0, readBatch)
		send := func() error {
			j := &job{msgs: msgs, done: make(chan struct{})}
			msgs = make([]RawMessage, 0, readBatch)
			for _, ch := range []chan *job{work, order} {
				select {
				case ch <- j:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			return nil
		}
		err := readDirect(ctx, r.js, r.dec.cfg.Stream, until, r.dec.cfg.Timeout, func(m RawMessage) error {
			msgs = append(msgs, m)
			if len(msgs) == readBatch {
				return send()
			}
			return nil
		})
		if err == nil && len(msgs) > 0 {
			err = send()
		}
		fetched <- err
	}()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for j := range work {
				func() {
					defer close(j.done)
					defer func() {
						if v := recover(); v != nil {
							j.err = fmt.Errorf("eventstore: decoding seq %d..: panic: %v\n%s", j.msgs[0].Seq, v, debug.Stack())
						}
					}()
					j.commits = make([]Commit, len(j.msgs))
					if prepare != nil {
						j.prepared = make([]T, len(j.msgs))
					}
					for i, m := range j.msgs {
						j.commits[i] = r.decode(m)
						if prepare != nil {
							j.prepared[i] = prepare(j.commits[i])
						}
					}
				}()
				j.msgs = nil
			}
		})
	}
	var fnErr error
	for j := range order {
		<-j.done
		if fnErr != nil {
			continue // drain, so that the fetcher ends
		}
		if j.err != nil {
			fnErr = j.err
			cancel()
			continue
		}
		prepared := j.prepared
		if prepared == nil {
			prepared = make([]T, len(j.commits))
		}
		if err := fn(ctx, j.commits, prepared); err != nil {
			fnErr = err
			cancel()
		}
	}
	wg.Wait()
	fetchErr := <-fetched
	switch {
	case fnErr != nil:
		return 0, fnErr
	case fetchErr != nil:
		return 0, fetchErr
	}
	return until, tail
}

// decode reads m as Read delivers it: a commit, upcast, or a damaged one.
// It is safe for concurrent use.
func (r *Reader) decode(m RawMessage) Commit {
	c, derr := r.dec.read(m.Subject, m.Data, m.Seq)
	if derr != nil {
		return Commit{Seq: m.Seq, AggregateType: derr.Ref.Type, AggregateID: derr.Ref.ID, Hash: HashOf(m.Data), Damaged: derr}
	}
	return c
}

// lastSeq is the stream's last sequence, or the last one that can be read
// with a *TailMissingError (directLastSeq).
func (r *Reader) lastSeq(ctx context.Context) (Seq, error) {
	return directLastSeq(ctx, r.js.Conn(), r.dec.cfg.Stream, r.dec.cfg.SubjectPrefix+".>", r.dec.cfg.Timeout)
}

// directLastSeq is the stream's last sequence, from a direct get of the
// last message (all the auditor identity may ask; it gets no stream info):
// 0 for an empty stream. When the last sequence holds no message (the end
// of the log was lost) it is the last message of subjects, which a direct
// get finds among the messages still there, with a *TailMissingError (0
// and nil if none is left). subjects ">" asks nothing further.
func directLastSeq(ctx context.Context, nc *nats.Conn, stream, subjects string, timeout time.Duration) (Seq, error) {
	seq, found, err := directGetLast(ctx, nc, stream, ">", timeout)
	if err != nil || found || subjects == ">" {
		return seq, err
	}
	if seq, found, err = directGetLast(ctx, nc, stream, subjects, timeout); err != nil || !found {
		return 0, err
	}
	return seq, &TailMissingError{After: seq}
}

// directGetLast is the sequence of the last message of subjects, with a
// direct get; found is false when the server has none.
func directGetLast(ctx context.Context, nc *nats.Conn, stream, subjects string, timeout time.Duration) (_ Seq, found bool, _ error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, _ := json.Marshal(map[string]string{"last_by_subj": subjects})
	msg, err := nc.RequestWithContext(ctx, "$JS.API.DIRECT.GET."+stream, req)
	if err != nil {
		return 0, false, fmt.Errorf("eventstore: last sequence of %s: %w", stream, err)
	}
	switch msg.Header.Get("Status") {
	case "":
	case "404":
		return 0, false, nil
	default:
		return 0, false, fmt.Errorf("eventstore: last sequence of %s: status %s %s", stream, msg.Header.Get("Status"), msg.Header.Get("Description"))
	}
	seq, err := strconv.ParseUint(msg.Header.Get(jetstream.SequenceHeader), 10, 64)
	if err != nil {
		return 0, false, errors.New("eventstore: a direct get reply without its sequence")
	}
	return Seq(seq), true, nil
}
