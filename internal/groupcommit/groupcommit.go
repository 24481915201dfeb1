// Package groupcommit lets many concurrent writers share the fsyncs of one
// JetStream stream.
//
// On a server that syncs every write (the safe durability profile), each
// publish to a stream waits for an fsync of its own, and the disk's fsync
// rate bounds the writes per second of the whole engine: a command that
// writes five times costs five fsyncs. A Publisher groups the messages that
// arrive for one stream while an earlier write is in flight into one atomic
// batch (ADR-50, the stream needs AllowAtomicPublish), which the server
// stores with a single fsync and acknowledges only after it. Every message
// is as durable when its ack comes as it is without grouping.
//
// A lone message is published as it is. If the server refuses a batch (one
// message's expectation failed, a duplicate message ID, batch limits), the
// batch wrote nothing, and each of its messages is published again on its
// own, so that each writer gets exactly the answer, and the effect, that a
// plain publish would have given. If no answer comes for a batch (a
// timeout, a lost connection), each writer gets that error, as a plain
// publish whose ack was lost: the batch may or may not be stored, all of it
// or none, and a writer's usual retry rules (message IDs, expectations)
// apply.
package groupcommit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bankbook/bankbook/internal/transient"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"
)

// Defaults of Options.
const (
	DefaultMaxMsgs  = 256
	DefaultMaxBytes = 4 << 20
	DefaultTimeout  = 5 * time.Second
)

// Options tune a Publisher. The zero value means the defaults.
type Options struct {
	// MaxMsgs is the most messages in one batch (the server allows 1000).
	MaxMsgs int
	// MaxBytes bounds the payload and header bytes of one batch; a message
	// larger than it goes alone.
	MaxBytes int
	// Timeout is how long a batch waits for its commit's answer.
	Timeout time.Duration
}

// Publisher publishes messages to one stream, grouping concurrent ones into
// atomic batches. It is safe for concurrent use and holds no goroutine of
// its own while idle: the first writer starts a batch, and each batch,
// once answered, starts the next with what arrived meanwhile.
type Publisher struct {
	js   jetstream.JetStream
	opts Options

	mu       sync.Mutex
	queue    []*pending
	batching bool // a batch is in flight

	messages, batches, grouped, refused atomic.Uint64
}

// Stats count what a Publisher did.
type Stats struct {
	// Messages is how many messages it stored (acked, not duplicates).
	Messages uint64
	// Batches is how many batches of two messages or more were stored, and
	// Grouped how many messages they held.
	Batches, Grouped uint64
	// Refused is how many batches the server refused, whose messages were
	// then published one by one.
	Refused uint64
}

// Stats returns the counts so far.
func (p *Publisher) Stats() Stats {
	return Stats{Messages: p.messages.Load(), Batches: p.batches.Load(), Grouped: p.grouped.Load(), Refused: p.refused.Load()}
}

// answer gives pd its result, and counts a stored message.
func (p *Publisher) answer(pd *pending, r result) {
	if r.err == nil && !r.ack.Duplicate {
		p.messages.Add(1)
	}
	pd.done <- r
}

type pending struct {
	ctx  context.Context
	msg  *nats.Msg
	size int
	done chan result // buffered: a writer that gave up never blocks the sender
}

type result struct {
	ack *jetstream.PubAck
	err error
}

// New returns a Publisher that writes through js. Every message given to
// one Publisher must be for the same stream.
func New(js jetstream.JetStream, opts Options) *Publisher {
	if opts.MaxMsgs <= 0 || opts.MaxMsgs > 1000 {
		opts.MaxMsgs = DefaultMaxMsgs
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	return &Publisher{js: js, opts: opts}
}

// PublishMsg publishes msg, alone or in a batch with others, and returns its
// ack once it is stored. Expectations and the message ID go in msg's
// headers (publish options are refused with ErrOptions); msg itself is not
// changed, so a caller may publish it again. If ctx ends first, PublishMsg
// returns ctx's error, and the message may still be stored, as with a
// publish whose ack was lost.
func (p *Publisher) PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	if len(opts) > 0 {
		return nil, ErrOptions
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	pd := &pending{ctx: ctx, msg: msg, size: msgSize(msg), done: make(chan result, 1)}
	p.mu.Lock()
	p.queue = append(p.queue, pd)
	p.pumpLocked()
	p.mu.Unlock()
	select {
	case r := <-pd.done:
		return r.ack, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// ErrOptions: a Publisher takes expectations as headers, not options.
var ErrOptions = errors.New("groupcommit: set expectations and message IDs as headers, not publish options")

// pumpLocked sends everything waiting, as one batch, unless a batch is in
// flight, with p.mu held. One batch at a time: what arrives meanwhile is
// the next batch.
func (p *Publisher) pumpLocked() {
	if p.batching {
		return
	}
	if batch := p.takeLocked(); len(batch) > 0 {
		p.batching = true
		go p.sendBatch(batch)
	}
}

// takeLocked takes the next batch off the queue, answering the writers that
// gave up before it was sent.
func (p *Publisher) takeLocked() []*pending {
	var batch []*pending
	bytes, n := 0, 0
	for _, pd := range p.queue {
		if pd.ctx.Err() != nil {
			pd.done <- result{err: pd.ctx.Err()}
			n++
			continue
		}
		if len(batch) > 0 && (len(batch) == p.opts.MaxMsgs || bytes+pd.size > p.opts.MaxBytes) {
			break
		}
		batch = append(batch, pd)
		bytes += pd.size
		n++
	}
	p.queue = slices.Delete(p.queue, 0, n)
	return batch
}

// sendBatch publishes batch, then starts what waits meanwhile.
func (p *Publisher) sendBatch(batch []*pending) {
	p.send(batch)
	p.mu.Lock()
	p.batching = false
	p.pumpLocked()
	p.mu.Unlock()
}

// send publishes batch and answers each of its writers.
func (p *Publisher) send(batch []*pending) {
	ctx, cancel := context.WithTimeout(context.Background(), p.opts.Timeout)
	defer cancel()
	if len(batch) == 1 {
		p.each(ctx, batch)
		return
	}
	msgs := make([]*nats.Msg, len(batch))
	for i, pd := range batch {
		msgs[i] = clone(pd.msg) // the batch headers go on copies
	}
	ack, err := jetstreamext.PublishMsgBatch(ctx, p.js, msgs)
	var apiErr *jetstream.APIError
	switch {
	case err == nil && ack != nil && ack.BatchSize == uint64(len(batch)):
		p.batches.Add(1)
		p.grouped.Add(uint64(len(batch)))
		first := ack.Sequence - uint64(len(batch)) + 1
		for i, pd := range batch {
			p.answer(pd, result{ack: &jetstream.PubAck{Stream: ack.Stream, Sequence: first + uint64(i), Domain: ack.Domain}})
		}
	case err == nil:
		// A commit that does not account for the batch: nothing here can
		// say which message is where. Each writer checks, as after a lost
		// ack.
		for _, pd := range batch {
			p.answer(pd, result{err: ErrUnexpectedAck})
		}
	case errors.As(err, &apiErr):
		// Refused: nothing of the batch was stored. Each message again on
		// its own, for its own answer.
		p.refused.Add(1)
		p.each(ctx, batch)
	default:
		for _, pd := range batch {
			p.answer(pd, result{err: err})
		}
	}
}

// each publishes every message of batch on its own, all at once.
func (p *Publisher) each(ctx context.Context, batch []*pending) {
	if len(batch) == 1 {
		ack, err := p.js.PublishMsg(ctx, batch[0].msg)
		p.answer(batch[0], result{ack, err})
		return
	}
	var wg sync.WaitGroup
	for _, pd := range batch {
		wg.Go(func() {
			ack, err := p.js.PublishMsg(ctx, pd.msg)
			p.answer(pd, result{ack, err})
		})
	}
	wg.Wait()
}

// ErrUnexpectedAck: a batch's commit was acknowledged for another number of
// messages than the batch held. Whether a message is stored is unknown, as
// after a lost ack.
// It matches transient.ErrUnavailable, so writers retry as they do then.
var ErrUnexpectedAck = fmt.Errorf("%w: groupcommit: the batch ack does not match the batch", transient.ErrUnavailable)

func clone(m *nats.Msg) *nats.Msg {
	c := nats.NewMsg(m.Subject)
	c.Data = m.Data
	for k, v := range m.Header {
		c.Header[k] = slices.Clone(v)
	}
	return c
}

func msgSize(m *nats.Msg) int {
	n := len(m.Subject) + len(m.Data)
	for k, vs := range m.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// Writer publishes one message to a stream: a jetstream.JetStream, or a
// Publisher.
type Writer interface {
	PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
}

// Choose returns a new Publisher over js if group is true, and js itself
// otherwise.
func Choose(js jetstream.JetStream, group bool) Writer {
	if group {
		return New(js, Options{})
	}
	return js
}
