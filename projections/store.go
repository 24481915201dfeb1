package projections

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/bankbook/bankbook/datadir"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
)

// bucketMeta holds the projections' versions and checkpoints and the instance
// ID. It is the one bucket that is not a read model: Hash leaves it out.
var bucketMeta = []byte("meta")

var (
	keyInstanceID = []byte("instance_id") // 16 lower-case hex digits
	// prefixProjection starts the key of each projection's record:
	// "projection:" name → version (uint64) checkpoint (uint64), big-endian.
	prefixProjection = []byte("projection:")
	// keyLegacyCheckpoint is the one shared checkpoint of files written
	// before projections had their own; Open removes it.
	keyLegacyCheckpoint = []byte("checkpoint")
)

// lockTimeout is how long opening waits for the file lock of a read-model
// file another process holds.
const lockTimeout = time.Second

// Store holds bankbook's read models in one bbolt file. It is safe for
// concurrent use: Apply writes in one bbolt transaction per batch, and readers
// see either all of a batch or none of it.
type Store struct {
	db          *bbolt.DB
	codec       *domain.Codec
	projections []Projection
	readOnly    bool
	instanceID  string
	reset       map[string]string // projection name → why Open recreated it
	unsynced    bool              // commits are not fsynced (unsynced.go)

	closeOnce sync.Once
	closeErr  error

	// Hash's reads (Hash): one at a time, shared by the callers that
	// came while the one before ran.
	hashMu   sync.Mutex
	hashNext *hashCall  // the read not yet started that callers join
	hashRun  sync.Mutex // held while a read runs
	hashRuns atomic.Uint64
	hashHook func() // tests: run at the start of each read
}

// hashCall is one read of the read models for Hash, and its result.
type hashCall struct {
	done chan struct{}
	sum  string
	cp   eventstore.Seq
	err  error
}

// Open opens the read-model file at path for reading and writing, creating
// it (mode 0600) if needed, with the projections of opts (nil: the defaults).
// On first open it stores a new random instance ID.
//
// Open brings the file in line with the registry, in one transaction: a
// projection that is new to the file, or stored at another version, has its
// buckets dropped and recreated and its checkpoint set to 0, so the Runner
// rebuilds it from sequence 1; the others keep their data and checkpoints.
// Buckets and records of projections that are no longer registered are
// dropped, so the file holds exactly what a replay with the same registry
// writes.
//
// Only one Store may have a file open for writing: a second Open of the same
// file fails with ErrLocked after one second.
//
// Before using an existing file, Open (and OpenReadOnly) checks that it is a
// whole bbolt file, reading it once; a truncated or overwritten file fails
// with a *DamagedError (ErrDamaged) that names it, instead of crashing the
// process. MoveAside it, and Open starts a new file to rebuild.
func Open(path string, opts *Options) (*Store, error) {
	s, err := open(path, opts, false)
	if err != nil {
		return nil, err
	}
	if err := s.db.Update(s.init); err != nil {
		_ = s.db.Close()
		return nil, fmt.Errorf("init read models %s: %w", path, err)
	}
	return s, nil
}

// OpenReadOnly opens an existing read-model file for queries only (replays,
// audits), with bbolt's read-only mode and a shared file lock: it writes
// nothing, not on open either, and several read-only Stores may share a
// file. It waits up to one second for a file that a writable Store holds,
// then fails with ErrLocked. Apply returns ErrReadOnly.
//
// Every projection of opts (nil: the defaults) must be in the file at its
// version, or OpenReadOnly fails with ErrStale: only a writable Open starts
// a rebuild. A file an unsynced Store (Options.Unsynced) was writing when
// the machine restarted fails with ErrDamaged, as a torn file does.
func OpenReadOnly(path string, opts *Options) (*Store, error) {
	s, err := open(path, opts, true)
	if err != nil {
		return nil, err
	}
	if err := s.db.View(s.check); err != nil {
		_ = s.db.Close()
		return nil, fmt.Errorf("read models %s: %w", path, err)
	}
	return s, nil
}

func open(path string, opts *Options, readOnly bool) (*Store, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	o := opts.withDefaults()
	marked, err := checkMarker(path)
	if err != nil {
		return nil, err
	}
	db, err := openWhole(path, readOnly)
	if err != nil {
		return nil, err
	}
	s := &Store{db: db, codec: o.Codec, projections: o.Projections, readOnly: readOnly, reset: map[string]string{}}
	if !readOnly {
		if err := s.startSyncMode(o.Unsynced, marked); err != nil {
			_ = db.Close()
			return nil, err
		}
	}
	return s, nil
}

// minFileSize is the size below which a non-empty file cannot be a bbolt
// file: bbolt writes four pages (two meta pages, a freelist and a leaf) of
// at least 4 KiB when it creates one. An empty file is a new one.
const minFileSize = 4 * 4096

// openWhole opens the bbolt file at path, after checking that it is whole,
// and returns a *DamagedError if it is not:
//
//   - it is shorter than any bbolt file, or bbolt refuses it (no valid meta
//     page: not a bbolt file, overwritten);
//   - it is shorter than its own high-water mark says (truncated: reading
//     the missing pages through the memory map would kill the process
//     with SIGBUS);
//   - reading every bucket, key and value faults or panics, or bbolt's
//     consistency check (Tx.Check) finds a fault.
//
// The check opens the file read-only first, where bbolt reads nothing but
// the meta pages before the size is checked (a writable open reads the
// freelist, which a truncated file may have lost), and runs with
// debug.SetPanicOnFault, so that a fault on a damaged page is an error here
// rather than a crash. It reads the whole file once.
func openWhole(path string, readOnly bool) (*bbolt.DB, error) {
	if info, err := os.Stat(path); err == nil && (info.Size() > 0 || readOnly) { // an empty file is a new one, unless only read
		if info.Size() == 0 {
			return nil, &DamagedError{Path: path, Reason: "it is empty: no read models were ever written to it"}
		}
		if info.Size() < minFileSize {
			return nil, &DamagedError{Path: path, Reason: fmt.Sprintf("it has %d bytes, fewer than any bbolt file", info.Size())}
		}
		if err := checkFile(path); err != nil {
			return nil, err
		}
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: lockTimeout, ReadOnly: readOnly})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s: another process has it open", ErrLocked, path)
	}
	if err != nil {
		return nil, fmt.Errorf("open read models %s: %w", path, err)
	}
	return db, nil
}

// checkFile opens the existing file at path read-only and checks it (see
// openWhole).
func checkFile(path string) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	var db *bbolt.DB
	defer func() {
		if r := recover(); r != nil {
			if db != nil {
				_ = db.Close()
			}
			err = &DamagedError{Path: path, Reason: fmt.Sprintf("reading it failed: %v", r)}
		}
	}()
	db, err = bbolt.Open(path, 0o600, &bbolt.Options{Timeout: lockTimeout, ReadOnly: true})
	switch {
	case errors.Is(err, bolterrors.ErrTimeout):
		return fmt.Errorf("%w: %s: another process has it open", ErrLocked, path)
	case errors.Is(err, bolterrors.ErrInvalid), errors.Is(err, bolterrors.ErrChecksum), errors.Is(err, bolterrors.ErrVersionMismatch):
		return &DamagedError{Path: path, Reason: err.Error()}
	case err != nil:
		return fmt.Errorf("open read models %s: %w", path, err)
	}
	err = checkWhole(db, path)
	if cerr := db.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("open read models %s: %w", path, cerr)
	}
	db = nil
	return err
}

// checkWhole checks an open file (see openWhole).
func checkWhole(db *bbolt.DB, path string) error {
	info, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("open read models %s: %w", path, err)
	}
	return db.View(func(tx *bbolt.Tx) error {
		if need := tx.Size(); info.Size() < need {
			return &DamagedError{Path: path, Reason: fmt.Sprintf("it has %d bytes but its pages need %d (truncated)", info.Size(), need)}
		}
		if err := readAll(tx.Cursor()); err != nil {
			return &DamagedError{Path: path, Reason: err.Error()}
		}
		// Check sends every fault it finds and then closes the channel: read
		// to the end, so that it is done with tx when View ends.
		var faults []string
		for err := range tx.Check() {
			if len(faults) < 3 {
				faults = append(faults, err.Error())
			}
		}
		if len(faults) > 0 {
			return &DamagedError{Path: path, Reason: "consistency check: " + strings.Join(faults, "; ")}
		}
		return nil
	})
}

// readAll reads every key and value under c, recursively, touching the
// first and last byte of each so that every page is read.
func readAll(c *bbolt.Cursor) error {
	var sink byte
	for k, v := c.First(); k != nil; k, v = c.Next() {
		sink ^= k[0] ^ k[len(k)-1]
		if v == nil { // a nested bucket
			b := c.Bucket().Bucket(k)
			if b == nil {
				return fmt.Errorf("bucket %q cannot be read", k)
			}
			if err := readAll(b.Cursor()); err != nil {
				return err
			}
			continue
		}
		if len(v) > 0 {
			sink ^= v[0] ^ v[len(v)-1]
		}
	}
	_ = sink
	return nil
}

// MoveAside renames the damaged read-model file at path to
// <path>.damaged-<UTC time, 20060102T150405Z>, so that a writable Open
// creates a new one, and returns the new name. The damaged file is kept for
// inspection; nothing reads it again.
func MoveAside(path string, now time.Time) (string, error) {
	aside := path + ".damaged-" + now.UTC().Format("20060102T150405Z")
	if _, err := os.Stat(aside); err == nil {
		aside += "-" + strconv.FormatInt(now.UnixNano(), 10)
	}
	if err := os.Rename(path, aside); err != nil {
		return "", fmt.Errorf("move damaged read models aside: %w", err)
	}
	// The new file starts without the old one's marker (unsynced.go). The
	// file's move is made durable first: a marker gone from a path that
	// still held the old file would make a torn file trusted.
	if err := datadir.SyncDir(filepath.Dir(path)); err != nil {
		return "", fmt.Errorf("move damaged read models aside: %w", err)
	}
	switch err := os.Rename(path+markerSuffix, aside+markerSuffix); {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return "", fmt.Errorf("move damaged read models aside: %w", err)
	default:
		if err := datadir.SyncDir(filepath.Dir(path)); err != nil {
			return "", fmt.Errorf("move damaged read models aside: %w", err)
		}
	}
	return aside, nil
}

// init brings a writable file in line with the registry (see Open).
func (s *Store) init(tx *bbolt.Tx) error {
	meta, err := tx.CreateBucketIfNotExists(bucketMeta)
	if err != nil {
		return err
	}
	if err := meta.Delete(keyLegacyCheckpoint); err != nil {
		return err
	}
	registered, owned := map[string]bool{}, map[string]bool{}
	for _, p := range s.projections {
		registered[p.Name] = true
		for _, b := range p.Buckets {
			owned[b] = true
		}
	}
	// Drop what no registered projection owns. Keys are collected first:
	// bbolt forbids changing a bucket while iterating it.
	var stray, gone [][]byte
	err = tx.ForEach(func(name []byte, _ *bbolt.Bucket) error {
		if !bytes.Equal(name, bucketMeta) && !owned[string(name)] {
			stray = append(stray, bytes.Clone(name))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, name := range stray {
		if err := tx.DeleteBucket(name); err != nil {
			return fmt.Errorf("drop bucket %s: %w", name, err)
		}
	}
	err = meta.ForEach(func(k, _ []byte) error {
		if name, ok := bytes.CutPrefix(k, prefixProjection); ok && !registered[string(name)] {
			gone = append(gone, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range gone {
		if err := meta.Delete(k); err != nil {
			return err
		}
	}

	for _, p := range s.projections {
		version, _, ok := readRecord(meta, p.Name)
		var reason string
		switch {
		case !ok:
			reason = "new to the file"
		case version != p.Version:
			reason = fmt.Sprintf("version %d → %d", version, p.Version)
		default:
			for _, b := range p.Buckets {
				if tx.Bucket([]byte(b)) == nil {
					reason = "bucket " + b + " missing"
					break
				}
			}
		}
		if reason == "" {
			continue
		}
		for _, b := range p.Buckets {
			if tx.Bucket([]byte(b)) != nil {
				if err := tx.DeleteBucket([]byte(b)); err != nil {
					return fmt.Errorf("projection %s: drop bucket %s: %w", p.Name, b, err)
				}
			}
			if _, err := tx.CreateBucket([]byte(b)); err != nil {
				return fmt.Errorf("projection %s: bucket %s: %w", p.Name, b, err)
			}
		}
		if err := writeRecord(meta, p.Name, p.Version, 0); err != nil {
			return err
		}
		s.reset[p.Name] = reason
	}

	if id := meta.Get(keyInstanceID); id != nil {
		s.instanceID = string(id)
		return nil
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Errorf("instance id: %w", err)
	}
	s.instanceID = hex.EncodeToString(b[:])
	return meta.Put(keyInstanceID, []byte(s.instanceID))
}

// check makes sure a read-only file holds every registered projection at its
// version (see OpenReadOnly).
func (s *Store) check(tx *bbolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return fmt.Errorf("%w: no meta bucket (not a read-model file)", ErrStale)
	}
	s.instanceID = string(meta.Get(keyInstanceID))
	var problems []string
	for _, p := range s.projections {
		version, _, ok := readRecord(meta, p.Name)
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("projection %s is not in the file", p.Name))
			continue
		case version != p.Version:
			problems = append(problems, fmt.Sprintf("projection %s is at version %d, want %d", p.Name, version, p.Version))
			continue
		}
		for _, b := range p.Buckets {
			if tx.Bucket([]byte(b)) == nil {
				problems = append(problems, fmt.Sprintf("projection %s lacks bucket %s", p.Name, b))
			}
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrStale, strings.Join(problems, "; "))
	}
	return nil
}

func recordKey(name string) []byte { return append(slices.Clone(prefixProjection), name...) }

func readRecord(meta *bbolt.Bucket, name string) (version int, cp eventstore.Seq, ok bool) {
	v := meta.Get(recordKey(name))
	if len(v) != 16 {
		return 0, 0, false
	}
	return int(binary.BigEndian.Uint64(v[:8])), eventstore.Seq(binary.BigEndian.Uint64(v[8:])), true
}

func writeRecord(meta *bbolt.Bucket, name string, version int, cp eventstore.Seq) error {
	var v [16]byte
	binary.BigEndian.PutUint64(v[:8], uint64(version))
	binary.BigEndian.PutUint64(v[8:], uint64(cp))
	return meta.Put(recordKey(name), v[:])
}

// Close closes the file. It waits for running transactions and may be called
// more than once; later calls return the first call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		// bbolt's Close waits for a running write and refuses later ones,
		// so nothing is written after the sync below.
		path := s.db.Path()
		if s.closeErr = s.db.Close(); s.closeErr != nil || !s.unsynced {
			return
		}
		// Synced and unmarked, the file is trusted by any later boot.
		if s.closeErr = syncFile(path); s.closeErr == nil {
			s.closeErr = removeMarker(path)
		}
	})
	return s.closeErr
}

// ReadOnly reports whether the Store was opened with OpenReadOnly.
func (s *Store) ReadOnly() bool { return s.readOnly }

// InstanceID identifies this read-model file. It is made on the file's first
// (writable) open and never changes, so a wiped data directory gets a new
// one. The Runner names its durable consumer after it.
func (s *Store) InstanceID() string { return s.instanceID }

// Checkpoint returns the stream sequence up to which every registered
// projection has applied the stream: the lowest of their checkpoints. 0 for
// a new file, and while a projection is rebuilt from the start.
func (s *Store) Checkpoint() (eventstore.Seq, error) {
	var cp eventstore.Seq
	err := s.view(func(tx *bbolt.Tx) error {
		cp, _ = s.checkpoints(tx)
		return nil
	})
	return cp, err
}

// checkpoints returns the lowest and the highest checkpoint of the
// registered projections.
func (s *Store) checkpoints(tx *bbolt.Tx) (low, high eventstore.Seq) {
	for i, p := range s.projections {
		cp := s.projectionCheckpoint(tx, p.Name)
		if i == 0 || cp < low {
			low = cp
		}
		high = max(high, cp)
	}
	return low, high
}

func (s *Store) projectionCheckpoint(tx *bbolt.Tx, name string) eventstore.Seq {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return 0
	}
	_, cp, _ := readRecord(meta, name)
	return cp
}

// bucketCheckpoint returns the checkpoint of the projection that owns the
// named bucket; 0 if none does.
func (s *Store) bucketCheckpoint(tx *bbolt.Tx, bucket []byte) eventstore.Seq {
	for _, p := range s.projections {
		if slices.Contains(p.Buckets, string(bucket)) {
			return s.projectionCheckpoint(tx, p.Name)
		}
	}
	return 0
}

// Projections returns the state of every registered projection, in
// registration order.
func (s *Store) Projections() ([]ProjectionState, error) {
	var out []ProjectionState
	err := s.view(func(tx *bbolt.Tx) error {
		out = make([]ProjectionState, 0, len(s.projections))
		for _, p := range s.projections {
			out = append(out, ProjectionState{
				Name: p.Name, Version: p.Version,
				Checkpoint: s.projectionCheckpoint(tx, p.Name), Reset: s.reset[p.Name],
			})
		}
		return nil
	})
	return out, err
}

// Versions returns the version of every registered projection, by name.
func (s *Store) Versions() map[string]int {
	return Versions(s.projections)
}

// Versions returns the version of each of ps, by name.
func Versions(ps []Projection) map[string]int {
	out := make(map[string]int, len(ps))
	for _, p := range ps {
		out[p.Name] = p.Version
	}
	return out
}

// Apply folds a batch of commits, in stream order, into every registered
// projection and moves each projection's checkpoint to the last commit it
// applied, all in one bbolt transaction: after a crash either the whole
// batch and the checkpoints are on disk, or none of it.
//
// Each projection skips the commits at or below its own checkpoint, so a
// batch delivered again is harmless and a rebuild can pass commits that the
// projections that are current already hold. For each projection the first
// commit after its checkpoint must be checkpoint+1 and the rest must follow
// without gaps, or Apply returns ErrGap and writes nothing.
//
// A damaged commit (Commit.Damaged, from eventstore.Follow with
// DeliverDamaged) or one holding an event the codec cannot decode (an
// unknown type, a newer schema version, a payload that does not fit) is
// skipped: no projection applies any of its events, every due projection's
// checkpoint moves past it, and a SkippedCommit record stays in the file
// (see Skipped), so the later commits apply and the Runner reports it. An
// event that does not fit a read model (ErrInconsistent) still fails the
// batch, as a *CommitError that names the commit. On a Store opened
// read-only, Apply returns ErrReadOnly.
func (s *Store) Apply(batch []eventstore.Commit) error {
	_, err := s.applyBatch(batch)
	return err
}

// applyBatch is Apply; it also returns the skipped commits it recorded for
// the first time.
func (s *Store) applyBatch(batch []eventstore.Commit) ([]SkippedCommit, error) {
	if s.readOnly {
		return nil, ErrReadOnly
	}
	if len(batch) == 0 {
		return nil, nil
	}
	dec := s.decodeAll(batch) // before the transaction: it holds the write lock
	var skipped []SkippedCommit
	err := s.update(func(tx *bbolt.Tx) error {
		skipped = skipped[:0]
		runs, err := s.runs(tx)
		if err != nil {
			return err
		}
		return s.applyRuns(tx.Bucket(bucketMeta), runs, batch, dec, &skipped)
	})
	if err != nil {
		return nil, err
	}
	return skipped, nil
}

// run is one projection's part in a batch.
type run struct {
	p       *Projection
	buckets []*bbolt.Bucket
	cp      eventstore.Seq // the projection's checkpoint, moved as commits apply
	moved   bool
}

// decoded is what applying a commit needs besides the commit: its events,
// decoded by the codec, or why the projections skip it (see skipped).
// Replays decode commits in parallel ahead of the transaction.
type decoded struct {
	events []domain.Event
	skip   *SkippedCommit
}

// decode decodes c's events for apply; it is safe for concurrent use.
func (s *Store) decode(c eventstore.Commit) decoded {
	events, sc := s.skipped(c)
	return decoded{events: events, skip: sc}
}

// parallelDecode is the batch size from which Apply decodes a batch's
// events on every core before its transaction: a rebuild's batches, or the
// live Runner's under load.
const parallelDecode = 64

// decodeAll decodes the events of a batch of parallelDecode commits or more
// on up to GOMAXPROCS goroutines (dec[i] is batch[i]'s); for a smaller batch
// it returns nil, and applyRuns decodes each commit as it comes.
func (s *Store) decodeAll(batch []eventstore.Commit) []decoded {
	if len(batch) < parallelDecode {
		return nil
	}
	dec := make([]decoded, len(batch))
	workers := min(runtime.GOMAXPROCS(0), len(batch)/(parallelDecode/2))
	per := (len(batch) + workers - 1) / workers
	var wg sync.WaitGroup
	for lo := 0; lo < len(batch); lo += per {
		hi := min(lo+per, len(batch))
		wg.Go(func() {
			for i := lo; i < hi; i++ {
				dec[i] = s.decode(batch[i])
			}
		})
	}
	wg.Wait()
	return dec
}

// runs returns every projection's part in the batches that tx applies:
// its bucket handles and its checkpoint.
func (s *Store) runs(tx *bbolt.Tx) ([]*run, error) {
	runs := make([]*run, len(s.projections))
	for i := range s.projections {
		p := &s.projections[i]
		r := &run{p: p, cp: s.projectionCheckpoint(tx, p.Name), buckets: make([]*bbolt.Bucket, 0, len(p.Buckets))}
		for _, name := range p.Buckets {
			b := tx.Bucket([]byte(name))
			if b == nil {
				return nil, fmt.Errorf("projection %s: bucket %s missing", p.Name, name)
			}
			r.buckets = append(r.buckets, b)
		}
		runs[i] = r
	}
	return runs, nil
}

// applyRuns applies batch to runs, of the transaction that holds meta, and
// writes the checkpoints that moved. dec, if not nil, holds the batch's
// commits decoded (dec[i] is batch[i]'s); otherwise they are decoded here.
func (s *Store) applyRuns(meta *bbolt.Bucket, runs []*run, batch []eventstore.Commit, dec []decoded, skipped *[]SkippedCommit) error {
	due := make([]*run, 0, len(runs))
	for i, c := range batch {
		due = due[:0]
		for _, r := range runs {
			if c.Seq <= r.cp {
				continue
			}
			if c.Seq != r.cp+1 {
				return &GapError{Projection: r.p.Name, Checkpoint: r.cp, Got: c.Seq}
			}
			due = append(due, r)
		}
		if len(due) == 0 {
			continue
		}
		var d decoded
		if dec != nil {
			d = dec[i]
		} else {
			d = s.decode(c)
		}
		if sc := d.skip; sc != nil {
			fresh, err := recordSkipped(meta, sc)
			if err != nil {
				return err
			}
			if fresh && skipped != nil {
				*skipped = append(*skipped, *sc)
			}
		} else if err := s.applyCommit(due, c, d.events); err != nil {
			return err
		}
		for _, r := range due {
			r.cp, r.moved = c.Seq, true
		}
	}
	for _, r := range runs {
		if r.moved {
			if err := writeRecord(meta, r.p.Name, r.p.Version, r.cp); err != nil {
				return err
			}
			r.moved = false
		}
	}
	return nil
}

// applyCommit applies c, whose events decoded to events, to the due
// projections.
func (s *Store) applyCommit(due []*run, c eventstore.Commit, events []domain.Event) error {
	for i, e := range c.Events {
		for _, r := range due {
			if err := r.p.Apply(r.buckets, c, e, events[i]); err != nil {
				return &CommitError{Seq: c.Seq, EventID: e.EventID, EventType: e.EventType, Projection: r.p.Name, Err: err}
			}
		}
	}
	return nil
}

// hashDomain starts every hash, so that a change of the scheme changes every
// hash.
const hashDomain = "bankbook.readmodels.v1"

// Hash returns a SHA-256 over the read models' content and the checkpoint they
// are at, in lower-case hex, as doc.go describes. Two files with the same
// hash hold the same read models at the same checkpoint, whatever their
// instance IDs. While the projections stand at different checkpoints (one is
// being rebuilt) Hash returns ErrRebuilding.
//
// Hash reads every record, so calls made at once share reads: one runs at
// a time, and the callers that come meanwhile share the next one, which
// starts after they came (so each gets the read models as they were at
// its call or later). A flood of calls thus keeps at most one core
// hashing, instead of every core reading the whole file once per call.
func (s *Store) Hash() (string, eventstore.Seq, error) {
	s.hashMu.Lock()
	if c := s.hashNext; c != nil {
		s.hashMu.Unlock()
		<-c.done
		return c.sum, c.cp, c.err
	}
	c := &hashCall{done: make(chan struct{})}
	s.hashNext = c
	s.hashMu.Unlock()

	s.hashRun.Lock()
	s.hashMu.Lock()
	s.hashNext = nil // callers from now on wait for a later read
	s.hashMu.Unlock()
	finished := false
	defer func() {
		// A read that panicked (bbolt does on a corrupt page) panics on in
		// this caller; the callers sharing it get an error, and the next
		// call reads again.
		if !finished {
			c.err = errors.New("projections: reading the read models for their hash panicked")
		}
		s.hashRun.Unlock()
		close(c.done)
	}()
	c.sum, c.cp, c.err = s.hash()
	finished = true
	return c.sum, c.cp, c.err
}

// hash reads the read models for Hash.
func (s *Store) hash() (string, eventstore.Seq, error) {
	s.hashRuns.Add(1)
	if s.hashHook != nil {
		s.hashHook()
	}
	var (
		sum string
		cp  eventstore.Seq
	)
	err := s.view(func(tx *bbolt.Tx) error {
		low, high := s.checkpoints(tx)
		if low != high {
			return fmt.Errorf("%w: from seq %d to %d", ErrRebuilding, low, high)
		}
		cp = low
		h := sha256.New()
		writeBytes(h, []byte(hashDomain))
		var v [8]byte
		binary.BigEndian.PutUint64(v[:], uint64(cp))
		h.Write(v[:])
		var names []string
		for _, p := range s.projections {
			names = append(names, p.Buckets...)
		}
		slices.Sort(names) // string order is byte order, bbolt's order
		for _, name := range names {
			b := tx.Bucket([]byte(name))
			if b == nil {
				return fmt.Errorf("%w: bucket %s missing", ErrStale, name)
			}
			writeBytes(h, []byte(name))
			if err := hashBucket(h, b); err != nil {
				return err
			}
		}
		sum = hex.EncodeToString(h.Sum(nil))
		return nil
	})
	return sum, cp, err
}

// Entry tags of the hash scheme.
const (
	tagEnd    = 0x00
	tagValue  = 0x01
	tagBucket = 0x02
)

func hashBucket(h hash.Hash, b *bbolt.Bucket) error {
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if v == nil { // a nested bucket
			h.Write([]byte{tagBucket})
			writeBytes(h, k)
			if err := hashBucket(h, b.Bucket(k)); err != nil {
				return err
			}
			continue
		}
		h.Write([]byte{tagValue})
		writeBytes(h, k)
		writeBytes(h, v)
	}
	h.Write([]byte{tagEnd})
	return nil
}

// writeBytes writes p prefixed with its length as a big-endian uint32.
func writeBytes(h hash.Hash, p []byte) {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(p)))
	h.Write(n[:])
	h.Write(p)
}

func (s *Store) view(fn func(*bbolt.Tx) error) error {
	return closedErr(s.db.View(fn))
}

func (s *Store) update(fn func(*bbolt.Tx) error) error {
	return closedErr(s.db.Update(fn))
}

func closedErr(err error) error {
	switch {
	case errors.Is(err, bolterrors.ErrDatabaseNotOpen):
		return ErrClosed
	case errors.Is(err, bolterrors.ErrDatabaseReadOnly):
		return ErrReadOnly
	}
	return err
}

// queryBucket returns the named bucket of tx for a query, or an error
// matching ErrNotRegistered if the Store's registry lacks the projection
// that owns it.
func queryBucket(tx *bbolt.Tx, name []byte) (*bbolt.Bucket, error) {
	if b := tx.Bucket(name); b != nil {
		return b, nil
	}
	return nil, fmt.Errorf("%w: bucket %s", ErrNotRegistered, name)
}
