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
// synchronous publish, and every write (Put, Create, Update, Delete,
// Purge, PurgeDeletes) of a KV bucket it opens, waits for s after the
// server's ack (the write reached the operating system). A write whose
// wait ends with its context, or with a failed sync, returns that error,
// like a publish whose ack was lost: it may be stored, and the writer's
// rules for a lost ack apply (message IDs, expectations, reading back).
// With a nil s, Wrap returns js.
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
	return durable(ctx, j.s, func() (*jetstream.PubAck, error) { return j.JetStream.Publish(ctx, subject, payload, opts...) })
}

func (j *syncedJS) PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	return durable(ctx, j.s, func() (*jetstream.PubAck, error) { return j.JetStream.PublishMsg(ctx, msg, opts...) })
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

func (j *syncedJS) kv(kv jetstream.KeyValue, err error) (jetstream.KeyValue, error) {
	if err != nil {
		return nil, err
	}
	return &syncedKV{KeyValue: kv, s: j.s}, nil
}

// Settle waits until everything read so far is durable, when v (a
// jetstream.JetStream or a KeyValue) came from Wrap and ctx is not
// Deferred; otherwise it returns nil at once. It is for a writer that
// learned from a read, not from an ack, that its write was stored (the ack
// was lost, and a retry found the write there): the read may show it
// before it is synced.
func Settle(ctx context.Context, v any) error {
	var s *Syncer
	switch w := v.(type) {
	case *syncedJS:
		s = w.s
	case *syncedKV:
		s = w.s
	default:
		return nil
	}
	if ctx.Value(deferKey{}) != nil {
		return nil
	}
	return s.Wait(ctx)
}

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

// durable makes a write and passes its answer on once it is durable. The
// write counts as begun before it is sent, and as done once answered: a
// reader may see it (a consumer's delivery) before its ack comes back, and
// WaitDirty must not take it for synced then (see Syncer.covered).
func durable[T any](ctx context.Context, s *Syncer, write func() (T, error)) (T, error) {
	s.writes.Add(1)
	v, err := write()
	s.answered.Add(1)
	if err == nil && ctx.Value(deferKey{}) == nil {
		// Not cut short by ctx: a write the server stored returns only
		// once it is durable (or the sync failed), so a writer whose
		// attempt timed out never reads it back before it is.
		err = s.Wait(context.WithoutCancel(ctx))
	}
	if err != nil {
		var zero T
		return zero, err
	}
	return v, nil
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
	_, err := durable(ctx, kv.s, func() (struct{}, error) { return struct{}{}, kv.KeyValue.Delete(ctx, key, opts...) })
	return err
}

func (kv *syncedKV) Purge(ctx context.Context, key string, opts ...jetstream.KVDeleteOpt) error {
	_, err := durable(ctx, kv.s, func() (struct{}, error) { return struct{}{}, kv.KeyValue.Purge(ctx, key, opts...) })
	return err
}

func (kv *syncedKV) PurgeDeletes(ctx context.Context, opts ...jetstream.KVPurgeOpt) error {
	_, err := durable(ctx, kv.s, func() (struct{}, error) { return struct{}{}, kv.KeyValue.PurgeDeletes(ctx, opts...) })
	return err
}
