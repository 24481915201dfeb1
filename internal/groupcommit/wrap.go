package groupcommit

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrAsync: an asynchronous publish returns before its ack, so it cannot
// wait for the sync; under group commit every publish is synchronous.
var ErrAsync = errors.New("groupcommit: asynchronous publishes are not durable under group commit")

// Wrap returns js whose writes return only once they are durable: every
// synchronous publish, every write (Put, Create, Update, Delete, Purge,
// PurgeDeletes) of a KV bucket it opens, and every deletion or purge
// through a stream handle it returns. Unless its context is Deferred, a
// write first waits until what was answered before it is durable, then
// waits for s after the server's answer (the write reached the operating
// system); neither wait is cut short by the context. A write that gets no
// answer keeps WaitDirty syncing until a sync that started UnknownWindow
// after it. A write whose wait
// ends with a failed sync returns that error, like a publish whose ack was
// lost: it may be stored, and the writer's rules for a lost ack apply
// (message IDs, expectations, reading back). With a nil s, Wrap returns
// js.
func Wrap(js jetstream.JetStream, s *Syncer) jetstream.JetStream {
	if s == nil {
		return js
	}
	return &syncedJS{JetStream: js, s: s}
}

type syncedJS struct {
	jetstream.JetStream
	s *Syncer
}

func (j *syncedJS) Publish(ctx context.Context, subject string, payload []byte, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	return durable(ctx, j.s, func() (*jetstream.PubAck, error) { return j.acked(j.JetStream.Publish(ctx, subject, payload, opts...)) })
}

func (j *syncedJS) PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	return durable(ctx, j.s, func() (*jetstream.PubAck, error) { return j.acked(j.JetStream.PublishMsg(ctx, msg, opts...)) })
}

// acked records a publish's ack for WaitSeq.
func (j *syncedJS) acked(ack *jetstream.PubAck, err error) (*jetstream.PubAck, error) {
	if err == nil && ack != nil {
		j.s.acknowledged(ack.Stream, ack.Sequence)
	}
	return ack, err
}

func (j *syncedJS) PublishAsync(string, []byte, ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	return nil, ErrAsync
}

func (j *syncedJS) PublishMsgAsync(*nats.Msg, ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	return nil, ErrAsync
}

func (j *syncedJS) KeyValue(ctx context.Context, bucket string) (jetstream.KeyValue, error) {
	return j.kv(j.JetStream.KeyValue(ctx, bucket))
}

func (j *syncedJS) CreateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	return j.kv(j.JetStream.CreateKeyValue(ctx, cfg))
}

func (j *syncedJS) UpdateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	return j.kv(j.JetStream.UpdateKeyValue(ctx, cfg))
}

func (j *syncedJS) CreateOrUpdateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	return j.kv(j.JetStream.CreateOrUpdateKeyValue(ctx, cfg))
}

func (j *syncedJS) Stream(ctx context.Context, name string) (jetstream.Stream, error) {
	return j.stream(j.JetStream.Stream(ctx, name))
}

func (j *syncedJS) CreateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	return j.stream(j.JetStream.CreateStream(ctx, cfg))
}

func (j *syncedJS) UpdateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	return j.stream(j.JetStream.UpdateStream(ctx, cfg))
}

func (j *syncedJS) CreateOrUpdateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	return j.stream(j.JetStream.CreateOrUpdateStream(ctx, cfg))
}

func (j *syncedJS) stream(st jetstream.Stream, err error) (jetstream.Stream, error) {
	if err != nil {
		return nil, err
	}
	return &syncedStream{Stream: st, s: j.s}, nil
}

// syncedStream is a stream handle whose message deletions and purges are
// writes like any other.
type syncedStream struct {
	jetstream.Stream
	s *Syncer
}

func (st *syncedStream) DeleteMsg(ctx context.Context, seq uint64) error {
	return durableErr(ctx, st.s, func() error { return st.Stream.DeleteMsg(ctx, seq) })
}

func (st *syncedStream) SecureDeleteMsg(ctx context.Context, seq uint64) error {
	return durableErr(ctx, st.s, func() error { return st.Stream.SecureDeleteMsg(ctx, seq) })
}

func (st *syncedStream) Purge(ctx context.Context, opts ...jetstream.StreamPurgeOpt) error {
	return durableErr(ctx, st.s, func() error { return st.Stream.Purge(ctx, opts...) })
}

func (j *syncedJS) kv(kv jetstream.KeyValue, err error) (jetstream.KeyValue, error) {
	if err != nil {
		return nil, err
	}
	return &syncedKV{KeyValue: kv, s: j.s}, nil
}

// Settler is what Wrap's JetStream, buckets and streams are: Settle waits
// until everything read so far is durable. A type that wraps one of them
// forwards it.
type Settler interface {
	Settle(ctx context.Context) error
}

// Settle waits until everything read so far is durable, when v (a
// JetStream, a bucket or a stream) is a Settler, as Wrap's are; otherwise
// it returns nil at once. It is for a writer that learned from a read, not
// from an ack, that a write was stored (its own, whose ack was lost, found
// by a retry; or another writer's, found already as wanted), and relies
// on it: the read may show the write before it is synced. Deferred
// contexts wait too: the writes counted cannot tell that one apart.
func Settle(ctx context.Context, v any) error {
	if st, ok := v.(Settler); ok {
		return st.Settle(ctx)
	}
	return nil
}

func (j *syncedJS) Settle(ctx context.Context) error      { return j.s.Wait(ctx) }
func (kv *syncedKV) Settle(ctx context.Context) error     { return kv.s.Wait(ctx) }
func (st *syncedStream) Settle(ctx context.Context) error { return st.s.Wait(ctx) }

type deferKey struct{}

// Deferred returns ctx whose writes through Wrap return as soon as the
// server has answered them, without waiting for a sync. It is for a chain
// of writes that has sync points of its own (WaitDirty), each before
// anything relies on the writes before it: a command, which syncs before
// its append (its claim, names and timers are then durable) and before it
// answers (its commit is then durable). A crash then keeps some of the
// chain's writes since its last sync point, in any combination, so each
// must be harmless without the others: a claim without its command, a
// name or a timer without its order.
func Deferred(ctx context.Context) context.Context {
	return context.WithValue(ctx, deferKey{}, struct{}{})
}

// durable makes a write and passes its answer on once it is durable.
//
// Unless ctx is Deferred, the write first waits until what the writer may
// have read is durable (WaitDirty): a write decided on another writer's
// unsynced write must not outlive it in a crash, which the sync after it
// alone would not prevent (both reach the operating system before it).
//
// The write counts as begun before it is sent, and as answered once the
// server answered it (stored or refused): a reader may see it (a
// consumer's delivery) before its ack comes back, and WaitDirty must not
// take it for synced then (see Syncer.covered). A write that got no answer
// (a timeout, a lost connection) may still be stored later: it counts as
// answered, and WaitDirty takes nothing for clean for a while
// (Syncer.unknown).
func durable[T any](ctx context.Context, s *Syncer, write func() (T, error)) (T, error) {
	var zero T
	deferred := ctx.Value(deferKey{}) != nil
	if !deferred {
		// Not cut short by ctx either (a write attempt has 1 s): under a
		// slow disk the write waits, as it would behind sync_always, rather
		// than time out unsent.
		if err := s.WaitDirty(context.WithoutCancel(ctx)); err != nil {
			return zero, err
		}
		if err := ctx.Err(); err != nil {
			return zero, err // not sent
		}
	}
	s.writes.Add(1)
	v, err := write()
	if err != nil && !answered(err) {
		s.noAnswer()
	}
	s.answered.Add(1)
	if err == nil && !deferred {
		// Not cut short by ctx: a write the server stored returns only
		// once it is durable (or the sync failed), so a writer whose
		// attempt timed out never reads it back before it is.
		err = s.Wait(context.WithoutCancel(ctx))
	}
	if err != nil {
		return zero, err
	}
	return v, nil
}

// durableErr is durable for a write that answers only an error.
func durableErr(ctx context.Context, s *Syncer, write func() error) error {
	_, err := durable(ctx, s, func() (struct{}, error) { return struct{}{}, write() })
	return err
}

// answered reports whether err is the server's answer to a write (a
// refusal: a failed expectation, a key that exists, a message to delete
// that is not there), after which the write is known not to be stored;
// any other error leaves it unknown.
func answered(err error) bool {
	var je jetstream.JetStreamError
	return errors.As(err, &je) && je.APIError() != nil || errors.Is(err, jetstream.ErrMsgDeleteUnsuccessful)
}

type syncedKV struct {
	jetstream.KeyValue
	s *Syncer
}

func (kv *syncedKV) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	return durable(ctx, kv.s, func() (uint64, error) { return kv.KeyValue.Put(ctx, key, value) })
}

func (kv *syncedKV) PutString(ctx context.Context, key string, value string) (uint64, error) {
	return durable(ctx, kv.s, func() (uint64, error) { return kv.KeyValue.PutString(ctx, key, value) })
}

func (kv *syncedKV) Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error) {
	return durable(ctx, kv.s, func() (uint64, error) { return kv.KeyValue.Create(ctx, key, value, opts...) })
}

func (kv *syncedKV) Update(ctx context.Context, key string, value []byte, revision uint64) (uint64, error) {
	return durable(ctx, kv.s, func() (uint64, error) { return kv.KeyValue.Update(ctx, key, value, revision) })
}

func (kv *syncedKV) Delete(ctx context.Context, key string, opts ...jetstream.KVDeleteOpt) error {
	return durableErr(ctx, kv.s, func() error { return kv.KeyValue.Delete(ctx, key, opts...) })
}

func (kv *syncedKV) Purge(ctx context.Context, key string, opts ...jetstream.KVDeleteOpt) error {
	return durableErr(ctx, kv.s, func() error { return kv.KeyValue.Purge(ctx, key, opts...) })
}

func (kv *syncedKV) PurgeDeletes(ctx context.Context, opts ...jetstream.KVPurgeOpt) error {
	return durableErr(ctx, kv.s, func() error { return kv.KeyValue.PurgeDeletes(ctx, opts...) })
}
