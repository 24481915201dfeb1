package projections

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/bbolt"

	"github.com/bankbook/bankbook/datadir"
	"github.com/bankbook/bankbook/eventstore"
)

// Replay rebuilds the read models of opts (nil: the defaults) from sequence 1
// into a new file at path, up to the stream's last sequence when Replay
// starts, and returns the checkpoint reached and the file's Hash. Compare the
// hash with the live Store's Hash at the same checkpoint to check that the
// live read models are exactly what the events say; OpenReadOnly queries the
// result. It is ReplayWith without ReplayOptions.
func Replay(ctx context.Context, r *eventstore.Reader, path string, opts *Options) (checkpoint eventstore.Seq, hash string, err error) {
	res, err := ReplayWith(ctx, r, path, opts, nil)
	return res.Checkpoint, res.Hash, err
}

// ReplayOptions say where a replay ends and who watches it. A nil
// *ReplayOptions, or the zero value, replays up to the stream's last
// sequence when the replay starts.
type ReplayOptions struct {
	// UntilSeq, if not 0, ends the replay with the commit at that stream
	// sequence: the result holds the read models as they were once the
	// live engine had applied it. If the stream's last sequence (when the
	// replay starts) is lower, the replay fails with ErrBeyondEnd.
	UntilSeq eventstore.Seq
	// UntilTime, if not zero, ends the replay right before the first commit
	// recorded after it (the envelopes' RecordedAt, the engine's clock when
	// it appended the commit, which is part of the stored commit): every
	// commit of the result was recorded at or before UntilTime, and the
	// result is a prefix of the stream. Commits are recorded in stream order
	// except when two are appended at the same moment, so a commit recorded
	// at or before UntilTime that was stored after one recorded later is
	// left out with everything after it. A damaged commit (no envelopes, so
	// no time) goes with the commits around it. A time before the first
	// commit gives the empty read models at checkpoint 0.
	UntilTime time.Time
	// Progress, if not nil, is called after each batch is applied, on the
	// goroutine that called ReplayWith.
	Progress func(ReplayProgress)
}

// Validate reports an error matching ErrInvalidOptions when both UntilSeq
// and UntilTime are set.
func (o *ReplayOptions) Validate() error {
	if o != nil && o.UntilSeq != 0 && !o.UntilTime.IsZero() {
		return fmt.Errorf("%w: a replay ends at a sequence or at a time, not both", ErrInvalidOptions)
	}
	return nil
}

// ReplayProgress is how far a replay got: the checkpoint it reached and how
// many commits (damaged ones included) and events it applied.
type ReplayProgress struct {
	Seq     eventstore.Seq
	Commits int
	Events  int
}

// ReplayResult is what a replay built.
type ReplayResult struct {
	// Checkpoint is the stream sequence the read models are at, and Hash
	// their Store.Hash there.
	Checkpoint eventstore.Seq
	Hash       string
	// Commits and Events count what the replay applied.
	Commits int
	Events  int
	// LastRecordedAt is the RecordedAt of the last readable commit applied
	// (zero if none was).
	LastRecordedAt time.Time
}

// ReplayWith rebuilds the read models of opts (nil: the defaults) from
// sequence 1 into a new file at path, up to where ro says (nil: the stream's
// last sequence when it starts), and returns the checkpoint reached and the
// file's Hash. The result equals the live read models at the same checkpoint
// (same Hash, same query answers); OpenReadOnly queries it.
//
// path must not exist (ErrExists otherwise). The replay reads with direct
// gets only (eventstore.Reader: what the auditor identity may do), so it
// leaves nothing behind on the server, and it stops reading once it has
// passed the end ro asks for. It applies exactly as the Runner does: a
// damaged commit (not a commit, or an event the codec cannot decode) is
// skipped and recorded (Store.Skipped of the result), so the replay has the
// live read models' content. If it fails, the partial file is removed.
//
// A replay reads ahead and decodes every commit (its events too) on all
// cores while it applies the earlier ones, and it applies several thousand
// commits per bbolt transaction without syncing the file; it syncs once, at
// the end, before it returns the Hash. It writes PATH.partial and links it
// to path only once it is synced, so a replay cut short by a crash leaves
// no file at path (the next replay replaces the partial one). It holds a
// lock on path's directory meanwhile: a second replay into the same
// directory fails at once with ErrLocked.
func ReplayWith(ctx context.Context, r *eventstore.Reader, path string, opts *Options, ro *ReplayOptions) (ReplayResult, error) {
	if err := opts.Validate(); err != nil {
		return ReplayResult{}, err
	}
	if err := ro.Validate(); err != nil {
		return ReplayResult{}, err
	}
	// One replay at a time writes beside path: another one started meanwhile
	// (two auditors, a script run twice) would replace this one's partial
	// file with its own, and this one would link that, still being written
	// and of another end, to path and report its own hash for it. The lock
	// is on path's directory itself, so nothing is added to it.
	dir := filepath.Dir(path)
	unlockDir, err := datadir.LockDir(dir)
	switch {
	case errors.Is(err, datadir.ErrDirBusy):
		return ReplayResult{}, fmt.Errorf("%w: %s: another replay is writing into %s", ErrLocked, path, dir)
	case errors.Is(err, errors.ErrUnsupported):
		unlockDir = func() error { return nil }
	case err != nil:
		return ReplayResult{}, fmt.Errorf("replay: %w", err)
	}
	defer func() { _ = unlockDir() }()
	// Checked under the lock: another replay may have finished just before.
	if _, err := os.Lstat(path); err == nil {
		return ReplayResult{}, fmt.Errorf("%w: %s", ErrExists, path)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return ReplayResult{}, fmt.Errorf("replay: %w", err)
	}
	// The replay writes a file beside path, without syncing until its end,
	// and links it to path only once it is synced: path never holds a
	// file a crash cut short. A partial file is a crashed replay's (a
	// running one holds the directory's lock): it is nobody's, and is
	// replaced.
	partial := path + ".partial"
	if err := os.Remove(partial); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return ReplayResult{}, fmt.Errorf("replay: %w", err)
	}
	var o ReplayOptions
	if ro != nil {
		o = *ro
	}
	res, err := replay(ctx, r, partial, opts, o)
	if err == nil {
		// Link refuses an existing path: a file made there meanwhile is
		// kept, and this replay fails with ErrExists.
		if err = os.Link(partial, path); errors.Is(err, fs.ErrExist) {
			err = fmt.Errorf("%w: %s", ErrExists, path)
		} else if err == nil {
			if err = datadir.SyncDir(filepath.Dir(path)); err != nil {
				err = fmt.Errorf("replay: %w", err)
			}
		}
	}
	_ = os.Remove(partial)
	if err != nil {
		return ReplayResult{}, err
	}
	return res, nil
}

// errEnd stops the Reader once the replay has applied what it asked for.
var errEnd = errors.New("projections: replay reached its end")

func replay(ctx context.Context, r *eventstore.Reader, path string, opts *Options, o ReplayOptions) (ReplayResult, error) {
	st, err := openFresh(path, opts)
	if err != nil {
		return ReplayResult{}, fmt.Errorf("replay: %w", err)
	}
	defer st.Close()
	w := &bulk{s: st}
	defer w.rollback()
	var (
		res     ReplayResult
		applied eventstore.Seq
	)
	// The commits are fetched and decoded, events too, ahead of the
	// transaction, on every core; only applying them is serial.
	until, err := eventstore.ReadPrepared(ctx, r, st.decode, func(_ context.Context, batch []eventstore.Commit, dec []decoded) error {
		n, stop := cut(batch, o)
		if err := w.apply(batch[:n], dec[:n]); err != nil {
			return err
		}
		for _, c := range batch[:n] {
			res.Commits++
			res.Events += len(c.Events)
			if len(c.Events) > 0 {
				res.LastRecordedAt = c.Events[len(c.Events)-1].RecordedAt
			}
			applied = c.Seq
		}
		if o.Progress != nil && n > 0 {
			o.Progress(ReplayProgress{Seq: applied, Commits: res.Commits, Events: res.Events})
		}
		if stop {
			return errEnd
		}
		return nil
	})
	switch {
	case errors.Is(err, errEnd):
		until = applied
	case err != nil:
		return ReplayResult{}, fmt.Errorf("replay: %w", err)
	case o.UntilSeq > until:
		return ReplayResult{}, fmt.Errorf("%w: until seq %d, but the stream's last sequence is %d", ErrBeyondEnd, o.UntilSeq, until)
	}
	if err := w.commit(); err != nil {
		return ReplayResult{}, fmt.Errorf("replay: %w", err)
	}
	// The transactions were written without fsync: one for the whole file.
	if err := st.db.Sync(); err != nil {
		return ReplayResult{}, fmt.Errorf("replay: sync %s: %w", path, err)
	}
	hash, cp, err := st.Hash()
	if err != nil {
		return ReplayResult{}, fmt.Errorf("replay: %w", err)
	}
	if cp != until {
		return ReplayResult{}, fmt.Errorf("replay: reached seq %d, want %d", cp, until)
	}
	if err := st.Close(); err != nil {
		return ReplayResult{}, fmt.Errorf("replay: %w", err)
	}
	res.Checkpoint, res.Hash = cp, hash
	return res, nil
}

// Replays write a new file that nothing reads before they end, so they
// trade durability between transactions for speed: no fsync per
// transaction (one Sync at the end), and many batches per transaction.
const (
	// bulkCommits is how many commits a replay applies in one transaction.
	bulkCommits = 4096
	// replayMmapSize is the memory map a replay starts with, so that bbolt
	// seldom remaps (and copies the open transaction's nodes) as it grows.
	replayMmapSize = 1 << 30
)

// bulkEvery is bulkCommits, but for tests (SetBulkCommits).
var bulkEvery = bulkCommits

// openFresh opens the new, empty file at path for a replay, without fsync
// (see bulk).
func openFresh(path string, opts *Options) (*Store, error) {
	o := opts.withDefaults()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: lockTimeout, NoSync: true, NoGrowSync: true,
		FreelistType: bbolt.FreelistMapType, InitialMmapSize: replayMmapSize})
	if err != nil {
		return nil, fmt.Errorf("open read models %s: %w", path, err)
	}
	s := &Store{db: db, codec: o.Codec, projections: o.Projections, reset: map[string]string{}}
	if err := s.db.Update(s.init); err != nil {
		_ = s.db.Close()
		return nil, fmt.Errorf("init read models %s: %w", path, err)
	}
	return s, nil
}

// bulk applies batches of decoded commits to a Store in large
// transactions: one is committed every bulkCommits commits and by commit.
// It reuses the transaction's bucket handles across batches. Every
// transaction holds the checkpoints of what it applied, as Apply's do.
type bulk struct {
	s       *Store
	tx      *bbolt.Tx
	meta    *bbolt.Bucket
	runs    []*run
	pending int
}

func (b *bulk) apply(batch []eventstore.Commit, dec []decoded) error {
	if len(batch) == 0 {
		return nil
	}
	if b.tx == nil {
		tx, err := b.s.db.Begin(true)
		if err != nil {
			return closedErr(err)
		}
		runs, err := b.s.runs(tx)
		if err != nil {
			_ = tx.Rollback()
			return err
		}
		b.tx, b.meta, b.runs = tx, tx.Bucket(bucketMeta), runs
	}
	if err := b.s.applyRuns(b.meta, b.runs, batch, dec, nil); err != nil {
		b.rollback()
		return err
	}
	b.pending += len(batch)
	if b.pending >= bulkEvery {
		return b.commit()
	}
	return nil
}

// commit commits the open transaction, if any.
func (b *bulk) commit() error {
	if b.tx == nil {
		return nil
	}
	tx := b.tx
	b.tx, b.meta, b.runs, b.pending = nil, nil, nil, 0
	return closedErr(tx.Commit())
}

// rollback drops the open transaction, if any.
func (b *bulk) rollback() {
	if b.tx != nil {
		_ = b.tx.Rollback()
		b.tx, b.meta, b.runs, b.pending = nil, nil, nil, 0
	}
}

// cut returns how many commits of batch the replay applies and whether it
// ends with them.
func cut(batch []eventstore.Commit, o ReplayOptions) (n int, end bool) {
	for i, c := range batch {
		if o.UntilSeq != 0 && c.Seq > o.UntilSeq {
			return i, true
		}
		if !o.UntilTime.IsZero() && recordedAfter(c, o.UntilTime) {
			return i, true
		}
		if o.UntilSeq != 0 && c.Seq == o.UntilSeq {
			return i + 1, true
		}
	}
	return len(batch), false
}

// recordedAfter reports whether c was recorded after t. The events of a
// commit share its RecordedAt; a damaged commit has none.
func recordedAfter(c eventstore.Commit, t time.Time) bool {
	for _, e := range c.Events {
		if e.RecordedAt.After(t) {
			return true
		}
	}
	return false
}
