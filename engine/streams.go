package engine

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

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
}

func noteStreams(js jetstream.JetStream) *streamNotes {
	return &streamNotes{JetStream: js, names: map[string]bool{}, spare: map[string]bool{}}
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
	n.note(kvStreamPrefix+cfg.Bucket, err)
	return kv, err
}

func (n *streamNotes) UpdateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := n.JetStream.UpdateKeyValue(ctx, cfg)
	n.note(kvStreamPrefix+cfg.Bucket, err)
	return kv, err
}

func (n *streamNotes) CreateOrUpdateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := n.JetStream.CreateOrUpdateKeyValue(ctx, cfg)
	n.note(kvStreamPrefix+cfg.Bucket, err)
	return kv, err
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
	st, err := n.JetStream.UpdateStream(ctx, cfg)
	n.note(cfg.Name, err)
	return st, err
}

func (n *streamNotes) CreateOrUpdateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	st, err := n.JetStream.CreateOrUpdateStream(ctx, cfg)
	n.note(cfg.Name, err)
	return st, err
}

// streamsCheckTimeout bounds the listing of the streams inside a readiness
// probe (itself bounded by ops.Config.ReadyTimeout, 2 s), so that a slow
// answer fails this condition alone.
const streamsCheckTimeout = time.Second

// status is the readiness of the streams: failing, naming them, while any
// the engine opened at start is gone. One request lists the account's
// streams; none is made while the connection is down (down is why, "" when
// it is up), which the "nats" condition reports.
func (n *streamNotes) status(ctx context.Context, down string) ops.PartStatus {
	if down != "" {
		return ops.PartStatus{Name: partStreams, State: ops.StateFailing, Reason: "not known: the connection is " + down}
	}
	ctx, cancel := context.WithTimeout(ctx, streamsCheckTimeout)
	defer cancel()
	have := map[string]bool{}
	list := n.JetStream.StreamNames(ctx)
	for name := range list.Name() {
		have[name] = true
	}
	if err := list.Err(); err != nil {
		return ops.PartStatus{Name: partStreams, State: ops.StateFailing, Reason: fmt.Sprintf("could not list the streams: %v", err)}
	}
	var gone []string
	for _, name := range n.want() {
		if !have[name] {
			gone = append(gone, name)
		}
	}
	if len(gone) > 0 {
		return ops.PartStatus{Name: partStreams, State: ops.StateFailing, Reason: fmt.Sprintf(
			"deleted while the engine runs: %s; what uses them fails (commands answer 503) until the engine restarts and creates them again (what each holds and what a restart restores: docs/operations.md, JetStream assets)",
			strings.Join(gone, ", "))}
	}
	return ops.PartStatus{Name: partStreams, State: ops.StateRunning, Ready: true}
}
