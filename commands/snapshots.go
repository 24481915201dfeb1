package commands

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/bankbook/bankbook/eventstore"
)

// Snapshots keeps serialised aggregate states by key (snapshots.Store).
// Get returns false when there is none; any error makes the repository read
// the aggregate's commits instead.
type Snapshots interface {
	Get(ctx context.Context, key string) ([]byte, bool, error)
	Put(ctx context.Context, key string, data []byte) error
}

// snapshotFormat is the version of storedSnapshot and of what the
// aggregates' Apply functions mean. Raise it when an Apply changes the
// state it builds from the same events without changing the state's Go
// type (a change of type is caught by storedSnapshot.Shape): stored
// snapshots of another format are ignored.
const snapshotFormat = 1

// snapshotSaveTimeout bounds storing a snapshot, which happens on the path
// of a command.
const snapshotSaveTimeout = 2 * time.Second

// storedSnapshot is an aggregate's state as of one of its commits, as
// stored in Snapshots: JSON, with what a load needs to check it against the
// event stream.
type storedSnapshot struct {
	Format int    `json:"format"`
	Type   string `json:"type"`
	ID     string `json:"id"`
	// Shape identifies the state's Go type (typeShape).
	Shape string `json:"shape"`
	// Seq, CommitID and Version are those of the aggregate's commit the
	// state is at: its stream sequence, its ID and the aggregate version
	// of its last event.
	Seq      eventstore.Seq  `json:"seq"`
	CommitID string          `json:"commit_id"`
	Version  int             `json:"version"`
	State    json.RawMessage `json:"state"`
}

func snapshotKey(aggType, id string) string { return aggType + "/" + id }

// fromSnapshot loads aggregate id from its stored snapshot and the commits
// after it. ok is false when there is no usable snapshot: none, unreadable,
// of another format or shape, or not matching the stream (its commit is not
// the aggregate's commit at its sequence: the stream was restored from an
// older backup, say). The caller then reads every commit. It never fails:
// a snapshot is an optimisation.
func (r *Repository[S]) fromSnapshot(ctx context.Context, id string) (_ snapshot[S], after []eventstore.Commit, ok bool) {
	store := r.core.cfg.Snapshots
	key := snapshotKey(r.agg.Type, id)
	log := r.core.log.With().Str("aggregate", key).Logger()
	raw, found, err := store.Get(ctx, key)
	if err != nil {
		log.Warn().Err(err).Msg("snapshot unreadable; reading every commit")
		return snapshot[S]{}, nil, false
	}
	if !found {
		return snapshot[S]{}, nil, false
	}
	var rec storedSnapshot
	if err := json.Unmarshal(raw, &rec); err != nil {
		log.Warn().Err(err).Msg("snapshot undecodable; reading every commit")
		return snapshot[S]{}, nil, false
	}
	if rec.Format != snapshotFormat || rec.Shape != r.shape || rec.Type != r.agg.Type || rec.ID != id || rec.Seq == 0 {
		log.Info().Int("format", rec.Format).Str("shape", rec.Shape).Msg("snapshot of another format or state type ignored")
		return snapshot[S]{}, nil, false
	}
	commits, err := r.core.events.Load(ctx, eventstore.Ref{Type: r.agg.Type, ID: id}, rec.Seq-1)
	if err != nil {
		return snapshot[S]{}, nil, false // the full load reports it
	}
	if len(commits) == 0 || commits[0].Seq != rec.Seq || commits[0].CommitID != rec.CommitID || lastVersion(commits[0]) != rec.Version {
		log.Warn().Uint64("seq", uint64(rec.Seq)).Str("commit_id", rec.CommitID).
			Msg("snapshot does not match the event stream (ahead of it, or from another stream); reading every commit")
		return snapshot[S]{}, nil, false
	}
	var state S
	if err := json.Unmarshal(rec.State, &state); err != nil {
		log.Warn().Err(err).Msg("snapshot state undecodable; reading every commit")
		return snapshot[S]{}, nil, false
	}
	return snapshot[S]{state: state, seq: rec.Seq, version: rec.Version, commitID: rec.CommitID}, commits[1:], true
}

func lastVersion(c eventstore.Commit) int {
	if len(c.Events) == 0 {
		return 0
	}
	return c.Events[len(c.Events)-1].Version
}

// maybeSave stores snap as the aggregate's snapshot once it is
// Config.SnapshotEvery commits past the last one. snap is a state as of a
// commit read from or appended to the stream, never ahead of it. A failure
// is logged and tried again SnapshotEvery commits later.
func (r *Repository[S]) maybeSave(ctx context.Context, id string, snap *snapshot[S]) {
	store := r.core.cfg.Snapshots
	if store == nil || snap.seq == 0 || snap.unsaved < r.core.cfg.SnapshotEvery {
		return
	}
	snap.unsaved = 0
	key := snapshotKey(r.agg.Type, id)
	state, err := json.Marshal(snap.state)
	if err != nil {
		r.core.log.Error().Err(err).Str("aggregate", key).Msg("aggregate state cannot be snapshotted")
		return
	}
	raw, err := json.Marshal(storedSnapshot{
		Format: snapshotFormat, Type: r.agg.Type, ID: id, Shape: r.shape,
		Seq: snap.seq, CommitID: snap.commitID, Version: snap.version, State: state,
	})
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, snapshotSaveTimeout)
	defer cancel()
	if err := store.Put(ctx, key, raw); err != nil {
		r.core.log.Warn().Err(err).Str("aggregate", key).Msg("snapshot not stored")
		return
	}
	r.core.log.Debug().Str("aggregate", key).Uint64("seq", uint64(snap.seq)).Int("bytes", len(raw)).Msg("snapshot stored")
}

// typeShape identifies a Go type by its structure: field names, JSON tags
// and types, recursively (unexported fields included), hashed. Two builds
// whose state types differ in any of these do not read each other's
// snapshots.
func typeShape(t reflect.Type) string {
	var b strings.Builder
	writeShape(&b, t, map[reflect.Type]bool{})
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:8])
}

func writeShape(b *strings.Builder, t reflect.Type, seen map[reflect.Type]bool) {
	if t.Name() != "" {
		fmt.Fprintf(b, "%s.%s:", t.PkgPath(), t.Name())
		if seen[t] {
			return
		}
		seen[t] = true
	}
	switch t.Kind() {
	case reflect.Struct:
		b.WriteString("struct{")
		for i := range t.NumField() {
			f := t.Field(i)
			fmt.Fprintf(b, "%s %q ", f.Name, f.Tag.Get("json"))
			writeShape(b, f.Type, seen)
			b.WriteString(";")
		}
		b.WriteString("}")
	case reflect.Pointer, reflect.Slice:
		fmt.Fprintf(b, "%s(", t.Kind())
		writeShape(b, t.Elem(), seen)
		b.WriteString(")")
	case reflect.Array:
		fmt.Fprintf(b, "[%d](", t.Len())
		writeShape(b, t.Elem(), seen)
		b.WriteString(")")
	case reflect.Map:
		b.WriteString("map(")
		writeShape(b, t.Key(), seen)
		b.WriteString(",")
		writeShape(b, t.Elem(), seen)
		b.WriteString(")")
	default:
		b.WriteString(t.Kind().String())
	}
}
