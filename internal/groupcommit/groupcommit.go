package groupcommit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/bankbook/bankbook/internal/transient"
)

// Defaults of Options.
const (
	DefaultTimeout = transient.DefaultAttemptTimeout
	DefaultPause   = 30 * time.Second
)

// The bounds of one batch: its messages (the server allows 1000), and its
// subjects, headers and payloads together.
const (
	maxMsgs  = 256
	maxBytes = 4 << 20
)

// Options tune a Publisher. The zero value means the defaults.
type Options struct {
	// Timeout bounds a batch, from its first message to the commit's
	// answer, and a message published on its own. Default DefaultTimeout.
	Timeout time.Duration
	// Pause is how long a Publisher publishes message by message after its
	// stream refused atomic publish (a bucket reopened by create-or-update
	// has it off until the group-commit instance sets it again) before it
	// tries a batch again. Default DefaultPause.
	Pause time.Duration
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

	offUntil atomic.Int64 // unix ns: the stream refused atomic publish; message by message until then

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
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Pause <= 0 {
		opts.Pause = DefaultPause
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
	pd := &pending{ctx: ctx, msg: msg, size: msg.Size(), done: make(chan result, 1)}
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
// gave up before it was sent. What would make the server refuse the whole
// batch waits for a later one: a message with a message ID already in the
// batch, or with an expectation on a subject the batch already writes. A
// message that can only go alone (larger than the connection's payload
// limit, or expecting the stream's last sequence or message ID) does.
func (p *Publisher) takeLocked() []*pending {
	var batch, later []*pending
	ids, written := map[string]bool{}, map[string]bool{}
	bytes, n := 0, 0
	limit := int(p.js.Conn().MaxPayload())
	for _, pd := range p.queue {
		if pd.ctx.Err() != nil {
			pd.done <- result{err: pd.ctx.Err()}
			n++
			continue
		}
		alone := alone(pd.msg, pd.size, limit)
		if len(batch) > 0 && (alone || len(batch) == maxMsgs || bytes+pd.size > maxBytes) {
			break
		}
		n++
		if alone {
			batch = append(batch, pd)
			break
		}
		id := pd.msg.Header.Get(jetstream.MsgIDHeader)
		if id != "" && ids[id] || written[pd.msg.Subject] && pd.msg.Header.Get(jetstream.ExpectedLastSubjSeqHeader) != "" {
			later = append(later, pd)
			continue
		}
		if id != "" {
			ids[id] = true
		}
		written[pd.msg.Subject] = true
		batch = append(batch, pd)
		bytes += pd.size
	}
	p.queue = append(later, p.queue[n:]...)
	return batch
}

// alone reports whether m, of size bytes, must be published on its own:
// larger than the connection's payload limit (its writer alone gets that
// error), or with an expectation a batch cannot carry past its first
// message.
func alone(m *nats.Msg, size, limit int) bool {
	return limit > 0 && size > limit-1024 || m.Header.Get(jetstream.ExpectedLastSeqHeader) != "" ||
		m.Header.Get(jetstream.ExpectedLastMsgIDHeader) != "" || m.Header.Get(jetstream.ExpectedLastSubjSeqSubjHeader) != ""
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
	if len(batch) == 1 || time.Now().UnixNano() < p.offUntil.Load() {
		p.each(batch)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.opts.Timeout)
	defer cancel()
	msgs := make([]*nats.Msg, len(batch))
	for i, pd := range batch {
		msgs[i] = clone(pd.msg) // the batch headers go on copies
	}
	ack, err := jetstreamext.PublishMsgBatch(ctx, p.js, msgs, jetstreamext.BatchFlowControl{AckFirst: true, AckTimeout: p.opts.Timeout})
	var apiErr *jetstream.APIError
	switch {
	case err == nil && ack != nil && ack.BatchSize == uint64(len(batch)):
		p.batches.Add(1)
		p.grouped.Add(uint64(len(batch)))
		first := ack.Sequence - uint64(len(batch)) + 1
		for i, pd := range batch {
			p.answer(pd, result{ack: &jetstream.PubAck{Stream: ack.Stream, Sequence: first + uint64(i), Domain: ack.Domain}})
		}
	case errors.As(err, &apiErr) && refusedWhole(apiErr.ErrorCode):
		// Refused before the commit: nothing of the batch was stored.
		// Each message again on its own, for its own answer.
		p.refused.Add(1)
		if apiErr.ErrorCode == codeAtomicDisabled {
			// An engine reopened the stream (a bucket's create-or-update
			// turns the flag off until the group-commit instance sets it
			// again): message by message for a while, rather than a
			// refused batch each time.
			p.offUntil.Store(time.Now().Add(p.opts.Pause).UnixNano())
		}
		p.each(batch)
	case err == nil, errors.Is(err, jetstreamext.ErrInvalidBatchAck), errors.Is(err, jetstream.ErrInvalidJSAck), apiErr != nil:
		// An answer that does not account for the batch, or a refusal
		// while committing (a storage limit met part way): some of it may
		// be stored. Each writer checks, as after a lost ack.
		for _, pd := range batch {
			p.answer(pd, result{err: fmt.Errorf("%w (%v)", ErrUnexpectedAck, err)})
		}
	default:
		for _, pd := range batch {
			p.answer(pd, result{err: err})
		}
	}
}

// codeAtomicDisabled is nats-server's "atomic publish is disabled".
const codeAtomicDisabled = 10174

// refusedWhole reports whether code is one of the refusals nats-server gives
// before it commits a batch (server/errors.json): the batch stored nothing.
func refusedWhole(code jetstream.ErrorCode) bool {
	switch code {
	case jetstream.JSErrCodeStreamWrongLastSequence, // 10071
		jetstream.JSErrCodeStreamWrongLastSequenceConstant, // 10164
		10060, // expected stream does not match
		10070, // wrong last msg ID
		codeAtomicDisabled,
		10175, 10176, 10177, 10179, 10199, 10200, // malformed or oversized batch
		10201, // duplicate message ID
		10210: // too many batches in flight
		return true
	}
	return false
}

// each publishes every message of batch on its own, all at once, each
// with a Timeout of its own.
func (p *Publisher) each(batch []*pending) {
	if len(batch) == 1 {
		p.publishOne(batch[0])
		return
	}
	var wg sync.WaitGroup
	for _, pd := range batch {
		wg.Go(func() { p.publishOne(pd) })
	}
	wg.Wait()
}

// publishOne publishes pd's message on its own, with a Timeout of its own.
func (p *Publisher) publishOne(pd *pending) {
	ctx, cancel := context.WithTimeout(context.Background(), p.opts.Timeout)
	defer cancel()
	ack, err := p.js.PublishMsg(ctx, pd.msg)
	p.answer(pd, result{ack, err})
}

func clone(m *nats.Msg) *nats.Msg {
	c := nats.NewMsg(m.Subject)
	c.Data = m.Data
	for k, v := range m.Header {
		c.Header[k] = slices.Clone(v)
	}
	return c
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

// StatsOf returns the counts of w if it is a Publisher or a grouped
// KeyValue, and false otherwise (group commit is off).
func StatsOf(w any) (Stats, bool) {
	switch w := w.(type) {
	case *Publisher:
		return w.Stats(), true
	case *KeyValue:
		return w.Stats(), true
	}
	return Stats{}, false
}

// Counts are s by name, as metrics show them.
func (s Stats) Counts() map[string]uint64 {
	return map[string]uint64{"messages": s.Messages, "batches": s.Batches, "grouped": s.Grouped, "refused": s.Refused}
}
