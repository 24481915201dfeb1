package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/ops"
)

// partStreams is the readiness condition that every stream the engine opened
// at start (the event stream, the timers, the dead letters, each KV bucket)
// still exists.
const partStreams = "streams"

// kvStreamPrefix is the prefix of a KV bucket's stream name (as nats.go
// names it).
const kvStreamPrefix = "KV_"

// streamNotes is the engine's JetStream handle with a note of each stream
// it opens (created, updated or looked up) while the engine starts: the
// streams readiness checks for. An operator who deletes one while the
// engine runs (a KV bucket with `nats kv del`, say) makes the commands that
// use it fail with 503 until a restart opens it again (and, for the
// depositor names, restores it from the event stream); /readyz says which.
type streamNotes struct {
	jetstream.JetStream
	mu     sync.Mutex
	names  map[string]bool
	frozen atomic.Bool
	// spare are the streams whose loss fails nothing (the engine creates
	// them again by itself, or only runs slower without them): not a
	// readiness failure.
	spare map[string]bool
	// advice says, by stream, what an operator must do besides a restart
	// when it is gone.
	advice map[string]string

	// replicas is how many copies of each message the account stores.
	replicas int
	// log says which shared settings this engine's start changed.
	log zerolog.Logger

	// The last check that got an answer: when it started, and what was
	// gone then.
	checked time.Time
	gone    []string
	// unlisted is when the listings began to fail, since the last one
	// answered (zero while the last one did).
	unlisted time.Time
}

func noteStreams(js jetstream.JetStream, replicas int, log zerolog.Logger) *streamNotes {
	return &streamNotes{JetStream: js, replicas: replicas, log: log, names: map[string]bool{}, spare: map[string]bool{}, advice: map[string]string{}}
}

func (n *streamNotes) note(name string, err error) {
	if err != nil || n.frozen.Load() {
		return
	}
	n.mu.Lock()
	n.names[name] = true
	n.mu.Unlock()
}

// spareBucket says that losing the KV bucket fails nothing.
func (n *streamNotes) spareBucket(bucket string) {
	n.mu.Lock()
	n.spare[kvStreamPrefix+bucket] = true
	n.mu.Unlock()
}

// advise records what an operator must do, besides restarting the engine,
// when stream is gone: the readiness reason says it.
func (n *streamNotes) advise(stream, text string) {
	n.mu.Lock()
	n.advice[stream] = text
	n.mu.Unlock()
}

// freeze ends the notes: what the engine opens later (a lookup by a query)
// is not something it needs to run.
func (n *streamNotes) freeze() { n.frozen.Store(true) }

// want is the sorted list of streams the engine needs.
func (n *streamNotes) want() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for _, name := range slices.Sorted(maps.Keys(n.names)) {
		if !n.spare[name] {
			out = append(out, name)
		}
	}
	return out
}

func (n *streamNotes) KeyValue(ctx context.Context, bucket string) (jetstream.KeyValue, error) {
	kv, err := n.JetStream.KeyValue(ctx, bucket)
	n.note(kvStreamPrefix+bucket, err)
	return kv, err
}

func (n *streamNotes) CreateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := n.JetStream.CreateKeyValue(ctx, cfg)
	return n.made(ctx, cfg.Bucket, kv, err)
}

func (n *streamNotes) UpdateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	before := n.config(ctx, kvStreamPrefix+cfg.Bucket)
	kv, err := n.JetStream.UpdateKeyValue(ctx, cfg)
	n.changed(ctx, kvStreamPrefix+cfg.Bucket, before, nil, err)
	return n.made(ctx, cfg.Bucket, kv, err)
}

func (n *streamNotes) CreateOrUpdateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	before := n.config(ctx, kvStreamPrefix+cfg.Bucket)
	kv, err := n.JetStream.CreateOrUpdateKeyValue(ctx, cfg)
	n.changed(ctx, kvStreamPrefix+cfg.Bucket, before, nil, err)
	return n.made(ctx, cfg.Bucket, kv, err)
}

// config is stream name's configuration, nil when it cannot be read (it
// does not exist yet), or once the engine has started (changed).
func (n *streamNotes) config(ctx context.Context, name string) *jetstream.StreamConfig {
	if n.frozen.Load() {
		return nil
	}
	st, err := n.JetStream.Stream(ctx, name)
	if err != nil {
		return nil
	}
	cfg := st.CachedInfo().Config
	return &cfg
}

// changed logs, at warn, the settings of stream name that this engine's
// start changed from before (nil: it did not exist) to after (nil: read
// again), when err, the update's, is nil. Every instance on one NATS
// brings the shared streams to its own settings as it starts, so one
// started with other settings changes them for all, and the next start of
// another changes them back: the operator is told which and to what.
// Only while the engine starts: later updates (the event-stream guard
// putting back a setting someone weakened) log their own reason.
func (n *streamNotes) changed(ctx context.Context, name string, before, after *jetstream.StreamConfig, err error) {
	if err != nil || before == nil || n.frozen.Load() {
		return
	}
	if after == nil {
		if after = n.config(ctx, name); after == nil {
			return
		}
	}
	if diff := settingsDiff(*before, *after); len(diff) > 0 {
		n.log.Warn().Str("stream", name).Strs("changed", diff).
			Msg("this engine changed settings of a stream every instance shares; start every instance with the same settings, or each start changes them again")
	}
}

// settingsDiff lists the settings that differ between before and after as
// "Name: before → after". AllowDirect and MirrorDirect (which a replicated
// deployment turns off on the buckets after nats.go turns them on:
// leaderReads) and Metadata (which the server fills in) are left out.
func settingsDiff(before, after jetstream.StreamConfig) []string {
	var out []string
	b, a := reflect.ValueOf(before), reflect.ValueOf(after)
	for i := range b.NumField() {
		name := b.Type().Field(i).Name
		switch name {
		case "AllowDirect", "MirrorDirect", "Metadata":
			continue
		}
		if x, y := b.Field(i).Interface(), a.Field(i).Interface(); !reflect.DeepEqual(x, y) {
			out = append(out, fmt.Sprintf("%s: %v → %v", name, x, y))
		}
	}
	return out
}

// made notes a bucket just created or updated (kv, err) and, when the
// deployment keeps replicas, makes it read from its stream's leader:
// nats.go creates every bucket with direct gets, which any replica
// answers, and a follower that has not applied a write yet answers without
// it (a depositor name just reserved, a watermark just advanced). So direct
// gets are turned off on the bucket's stream, and the bucket bound again:
// its reads then go to the leader, as the event store's do.
func (n *streamNotes) made(ctx context.Context, bucket string, kv jetstream.KeyValue, err error) (jetstream.KeyValue, error) {
	if err == nil && n.replicas > 1 {
		kv, err = n.leaderReads(ctx, bucket)
	}
	n.note(kvStreamPrefix+bucket, err)
	return kv, err
}

func (n *streamNotes) leaderReads(ctx context.Context, bucket string) (jetstream.KeyValue, error) {
	st, err := n.JetStream.Stream(ctx, kvStreamPrefix+bucket)
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", bucket, err)
	}
	if cfg := st.CachedInfo().Config; cfg.AllowDirect {
		cfg.AllowDirect = false
		if _, err := n.JetStream.UpdateStream(ctx, cfg); err != nil {
			return nil, fmt.Errorf("bucket %s: reads from the leader: %w", bucket, err)
		}
	}
	return n.JetStream.KeyValue(ctx, bucket)
}

func (n *streamNotes) Stream(ctx context.Context, name string) (jetstream.Stream, error) {
	st, err := n.JetStream.Stream(ctx, name)
	n.note(name, err)
	return st, err
}

func (n *streamNotes) CreateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	st, err := n.JetStream.CreateStream(ctx, cfg)
	n.note(cfg.Name, err)
	return st, err
}

func (n *streamNotes) UpdateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	before := n.config(ctx, cfg.Name)
	st, err := n.JetStream.UpdateStream(ctx, cfg)
	n.changedTo(ctx, cfg.Name, before, st, err)
	n.note(cfg.Name, err)
	return st, err
}

func (n *streamNotes) CreateOrUpdateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	before := n.config(ctx, cfg.Name)
	st, err := n.JetStream.CreateOrUpdateStream(ctx, cfg)
	n.changedTo(ctx, cfg.Name, before, st, err)
	n.note(cfg.Name, err)
	return st, err
}

// changedTo is changed with the configuration the update answered.
func (n *streamNotes) changedTo(ctx context.Context, name string, before *jetstream.StreamConfig, st jetstream.Stream, err error) {
	if err != nil {
		return
	}
	after := st.CachedInfo().Config
	n.changed(ctx, name, before, &after, nil)
}

// streamsCheckTimeout bounds the listing of the streams inside a readiness
// probe (itself bounded by ops.Config.ReadyTimeout, 2 s), so that a slow
// answer fails this condition alone.
const streamsCheckTimeout = time.Second

// streamsUnknownAfter is how long the listings of the streams may fail (no
// answer, an error), from the first that did, before the condition fails
// for that alone. A cluster electing its metadata leader answers no
// listing for seconds, while commands go on through the streams' own
// leaders: until then the last answer stands.
const streamsUnknownAfter = 30 * time.Second

// status is the readiness of the streams: failing, naming them, while any
// the engine opened at start is gone. One request lists the account's
// streams (a stream the listing lacks is then looked up by name, so that
// one created or deleted between two of its pages is not taken for gone);
// none is made while the connection is down (down is why, "" when it is
// up), which the "nats" condition reports. A check that gets no answer
// reports the last one that did, until the listings have failed for
// streamsUnknownAfter.
func (n *streamNotes) status(ctx context.Context, down string) ops.PartStatus {
	if down != "" {
		return ops.PartStatus{Name: partStreams, State: ops.StateFailing, Reason: "not known: the connection is " + down}
	}
	ctx, cancel := context.WithTimeout(ctx, streamsCheckTimeout)
	defer cancel()
	started := time.Now()
	gone, err := n.missing(ctx)
	now := time.Now()
	n.mu.Lock()
	switch {
	case err == nil && started.After(n.checked):
		// The answer of the listing that started last stands: of two
		// probes at once, the older listing may have seen a stream the
		// newer saw gone.
		n.checked, n.gone, n.unlisted = started, gone, time.Time{}
	case err != nil && n.unlisted.IsZero():
		n.unlisted = started
	}
	checked, unlisted, advice := n.checked, n.unlisted, maps.Clone(n.advice)
	gone = slices.Clone(n.gone)
	n.mu.Unlock()
	var unknown string
	if err != nil {
		// The allowance counts from the first listing that failed, not
		// from the last that answered: /readyz probed seldom finds the
		// last answer old, and one failed listing is no outage.
		if checked.IsZero() || now.Sub(unlisted) >= streamsUnknownAfter {
			since := "since the engine started"
			if !checked.IsZero() {
				since = "for " + now.Sub(unlisted).Round(time.Second).String()
			}
			return ops.PartStatus{Name: partStreams, State: ops.StateFailing, Reason: fmt.Sprintf("could not list the streams %s: %v", since, err)}
		}
		unknown = fmt.Sprintf("could not list the streams just now (%v); as listed %s ago: ", err, now.Sub(checked).Round(time.Millisecond))
	}
	if len(gone) > 0 {
		reason := fmt.Sprintf("%sdeleted while the engine runs: %s; what uses them fails until the engine restarts and creates them again (what each holds, what uses it and what a restart restores: docs/operations.md, JetStream assets)",
			unknown, strings.Join(gone, ", "))
		for _, name := range gone {
			if a := advice[name]; a != "" {
				reason += "; " + name + ": " + a
			}
		}
		return ops.PartStatus{Name: partStreams, State: ops.StateFailing, Reason: reason}
	}
	st := ops.PartStatus{Name: partStreams, State: ops.StateRunning, Ready: true}
	if unknown != "" {
		st.Reason = unknown + "none gone"
	}
	return st
}

// missing lists the streams the engine needs that are gone.
func (n *streamNotes) missing(ctx context.Context) ([]string, error) {
	have := map[string]bool{}
	list := n.JetStream.StreamNames(ctx)
	for name := range list.Name() {
		have[name] = true
	}
	if err := list.Err(); err != nil {
		return nil, err
	}
	var gone []string
	for _, name := range n.want() {
		if have[name] {
			continue
		}
		switch _, err := n.JetStream.Stream(ctx, name); {
		case errors.Is(err, jetstream.ErrStreamNotFound):
			gone = append(gone, name)
		case err != nil:
			return nil, err
		}
	}
	return gone, nil
}

// partStorage is the readiness condition that the engine account's
// JetStream storage is not at its limit.
const partStorage = "storage"

// storageHeadroom is how close to the account's limit its storage counts as
// full: less room than one large write (of each replica).
const storageHeadroom = 1 << 20

// conditions are the streams' and the storage's readiness, checked at once
// so that together they take no longer than either (streamsCheckTimeout).
func (n *streamNotes) conditions(ctx context.Context, down string) []ops.PartStatus {
	out := make([]ops.PartStatus, 2)
	var wg sync.WaitGroup
	wg.Go(func() { out[0] = n.status(ctx, down) })
	wg.Go(func() { out[1] = n.storage(ctx, down) })
	wg.Wait()
	return out
}

// storage is the readiness of the engine account's JetStream storage:
// failing while it is within storageHeadroom (per replica) of the
// account's limit (a tenant's share of a server, `bankbook auth config
// --engine-max-store`) or of a tier's (an account managed with JWTs), when
// it has one. JetStream refuses writes then, and commands that write
// answer 503. Failing too while the account has no JetStream on the
// server. One account-information request per probe, none while the
// connection is down (down is why); an unanswered one leaves the condition
// ready, saying so.
func (n *streamNotes) storage(ctx context.Context, down string) ops.PartStatus {
	if down != "" {
		return ops.PartStatus{Name: partStorage, State: ops.StateFailing, Reason: "not known: the connection is " + down}
	}
	ctx, cancel := context.WithTimeout(ctx, streamsCheckTimeout)
	defer cancel()
	st := ops.PartStatus{Name: partStorage, State: ops.StateRunning, Ready: true}
	info, err := n.JetStream.AccountInfo(ctx)
	if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
		// The server says so, or nothing answers the JetStream API at all
		// (nats.go maps no responders to ErrJetStreamNotEnabled): every
		// part that reads or writes a stream fails with "no responders".
		st.Ready, st.State = false, ops.StateFailing
		st.Reason = fmt.Sprintf("JetStream is not enabled for this account on the NATS server (%v): nothing is stored, and every part that consumes fails with no responders until it is enabled for the account again", err)
		return st
	}
	if err != nil {
		st.Reason = fmt.Sprintf("could not read the account's JetStream use just now: %v", err)
		return st
	}
	headroom := int64(storageHeadroom * max(n.replicas, 1))
	tiers := map[string]jetstream.Tier{"the account": info.Tier}
	for name, t := range info.Tiers {
		tiers["tier "+name] = t
	}
	for _, name := range slices.Sorted(maps.Keys(tiers)) {
		if t := tiers[name]; t.Limits.MaxStore > 0 && int64(t.Store)+headroom >= t.Limits.MaxStore {
			st.Ready, st.State = false, ops.StateFailing
			st.Reason = fmt.Sprintf("JetStream storage full: %d of %s's %d bytes in use (every replica counted); writes are refused and commands that write answer 503 until space is freed or the limit raised (docs/operations.md, a JetStream storage limit)",
				t.Store, name, t.Limits.MaxStore)
			break
		}
	}
	return st
}
