// Package backup copies the engine's JetStream assets (the event stream,
// the timers, the KV buckets, with their consumers) out of a running NATS
// server into a directory, and restores such a directory into a server that
// holds none of them yet. It uses JetStream's own stream snapshots: each
// stream is read consistently by the server while writes go on, so a
// backup is taken online.
//
// A backup holds several streams, and each is snapshotted at its own
// moment; nothing makes them one point in time. Take orders them so that
// every gap between two of them is one the engine already survives (see
// Order): the scan watermarks and the set-aside records before the event
// stream, so that they never claim more than the log holds; the
// idempotency records, depositor-name reservations, timers, dead letters
// and notification start after it, so that they never miss what the log
// holds. The aggregate snapshots are left out: they are an optimisation
// the engine rebuilds, and one newer than the log could describe commits
// the restored log lacks.
package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/bankbook/bankbook/client"
	"github.com/bankbook/bankbook/datadir"
)

// ManifestFile is the name of a backup's manifest in its directory.
const ManifestFile = "manifest.json"

// Format is the manifest format this package writes and reads.
const Format = 1

// Manifest describes a backup: what it holds, in the order it was taken.
type Manifest struct {
	Format     int       `json:"format"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	Streams    []Stream  `json:"streams"`
	// Skipped are the streams of the account left out (Order).
	Skipped []string `json:"skipped,omitempty"`
}

// Stream is one stream of a backup.
type Stream struct {
	Name string `json:"name"`
	// File is the snapshot's file in the backup directory (the server's
	// tar.s2 format), Bytes its size and SHA256 its hash.
	File   string `json:"file"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
	// Messages, FirstSeq and LastSeq are the stream's state in the
	// snapshot; Consumers how many consumers it holds.
	Messages  uint64    `json:"messages"`
	FirstSeq  uint64    `json:"first_seq"`
	LastSeq   uint64    `json:"last_seq"`
	Consumers int       `json:"consumers"`
	TakenAt   time.Time `json:"taken_at"`
	// Restore is the stream's configuration and state as the server gave
	// them with the snapshot, sent back as they are to restore it.
	Restore json.RawMessage `json:"restore"`
}

// The engine's assets whose place in a backup matters (docs/operations.md,
// "JetStream assets").
const (
	eventStream = "BANKBOOK_EVENTS"
	// before the event stream: never ahead of it.
	watermarks = "KV_bankbook_scan_watermarks"
	setAside   = "KV_bankbook_set_aside"
	// left out: rebuilt by the engine, and unsafe when ahead of the log.
	aggregateSnapshots = "KV_bankbook_snapshots"
)

// Order returns the streams of names to back up, in the order to take
// them, and the ones to leave out: the scan watermarks and the set-aside
// records, then the event stream, then every other stream by name. A
// watermark newer than the log would stop the scanner from fetching again
// deposits the restored log lacks (a rescan records nothing twice), and a
// set-aside record newer than it could name a sequence that a later commit
// takes. The idempotency records after the log: a record missing for a
// commit the log holds would let a retry execute the command again under
// new IDs; one for a commit the log lacks answers with the first reply,
// which a restore to an earlier moment cannot avoid. The dedicated
// accounts after it: a number taken by a link the log lacks stays unused;
// a link whose number is missing would see it handed to another store.
// Reservations after it:
// one for an order the log lacks is stale and taken over; a missing one
// would let two orders share a depositor name. Timers after it: a timer of
// an order the log lacks does nothing; a missing one would leave an order
// that never expires. The notification start after it: the
// react-notify consumer (in the event stream's snapshot) refuses a start
// stored anew.
func Order(names []string) (take, skip []string) {
	var rest []string
	for _, n := range names {
		switch n {
		case watermarks, setAside, eventStream:
		case aggregateSnapshots:
			skip = append(skip, n)
		default:
			rest = append(rest, n)
		}
	}
	for _, n := range []string{watermarks, setAside, eventStream} {
		if slices.Contains(names, n) {
			take = append(take, n)
		}
	}
	slices.Sort(rest)
	return append(take, rest...), skip
}

// Progress, if not nil, is told of each stream once it is done.
type Progress func(s Stream)

// Take backs up every stream of the account c is connected to (ordered by
// Order) into dir, which must not exist: it writes dir.partial, locked
// against another backup into dir, and renames it once everything, the
// manifest last, is synced. c needs the JetStream
// API of the account (the engine's identity); a client from
// client.Connect is refused at once without it.
func Take(ctx context.Context, c *client.Client, dir string, progress Progress) (Manifest, error) {
	dir = filepath.Clean(dir) // "DIR/" too: its partial is DIR.partial, beside it
	if _, err := os.Lstat(dir); err == nil {
		return Manifest{}, fmt.Errorf("%w: %s", ErrExists, dir)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return Manifest{}, err
	}
	partial := dir + ".partial"
	release, err := lockPartial(partial)
	if err != nil {
		return Manifest{}, err
	}
	defer func() { _ = release() }()
	m, err := take(ctx, c, partial, progress)
	if err == nil {
		err = writeManifest(partial, m)
	}
	if err == nil {
		err = datadir.SyncDir(partial)
	}
	if err == nil {
		// The lock goes along, still held: no other backup into dir can
		// take dir.partial over before the rename.
		err = os.Rename(partial, dir)
	}
	if err == nil {
		err = os.Remove(filepath.Join(dir, datadir.LockFile))
	}
	if err == nil {
		err = datadir.SyncDir(dir)
	}
	if err == nil {
		err = datadir.SyncDir(filepath.Dir(dir))
	}
	if err != nil {
		_ = os.RemoveAll(partial)
		return Manifest{}, err
	}
	return m, nil
}

// ErrInProgress means another backup is writing the same directory.
var ErrInProgress = errors.New("backup: another backup is writing the directory")

// lockPartial creates and locks partial (datadir.Lock: its LOCK file) for
// this backup. A partial left by a backup that was interrupted holds a LOCK
// nobody holds: it is taken over, and what it holds removed. A partial
// another backup holds is ErrInProgress, and one without a LOCK (not a
// backup's) is ErrExists: neither is touched.
func lockPartial(partial string) (release func() error, err error) {
	if _, err := os.Lstat(partial); err == nil {
		if _, err := os.Lstat(filepath.Join(partial, datadir.LockFile)); err != nil {
			return nil, fmt.Errorf("%w: %s is there and is not an unfinished backup's: move it aside", ErrExists, partial)
		}
	}
	release, err = datadir.Lock(partial)
	var held *datadir.LockedError
	switch {
	case errors.As(err, &held):
		return nil, fmt.Errorf("%w: %s (PID %d)", ErrInProgress, partial, held.PID)
	case err != nil:
		return nil, fmt.Errorf("backup: create %s: %w", partial, err)
	}
	entries, err := os.ReadDir(partial)
	for _, e := range entries {
		if err == nil && e.Name() != datadir.LockFile {
			err = os.RemoveAll(filepath.Join(partial, e.Name())) // an interrupted backup's
		}
	}
	if err != nil {
		_ = release()
		return nil, fmt.Errorf("backup: %s: %w", partial, err)
	}
	return release, nil
}

func take(ctx context.Context, c *client.Client, dir string, progress Progress) (Manifest, error) {
	m := Manifest{Format: Format, StartedAt: time.Now().UTC()}
	names, err := streamNames(ctx, c)
	if err != nil {
		return Manifest{}, err
	}
	if !slices.Contains(names, eventStream) {
		return Manifest{}, fmt.Errorf("backup: the account has no stream %s: is this the engine's identity and account?", eventStream)
	}
	take, skip := Order(names)
	m.Skipped = skip
	for _, name := range take {
		s, err := snapshotTo(ctx, c, name, filepath.Join(dir, name+".tar.s2"))
		if err != nil {
			return Manifest{}, fmt.Errorf("backup of stream %s: %w", name, err)
		}
		m.Streams = append(m.Streams, s)
		if progress != nil {
			progress(s)
		}
	}
	m.FinishedAt = time.Now().UTC()
	return m, nil
}

// ErrExists means the directory a backup would be written to exists.
var ErrExists = errors.New("backup: the directory exists")

func writeManifest(dir string, m Manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return writeSynced(filepath.Join(dir, ManifestFile), b)
}

// ReadManifest reads the manifest of the backup in dir and checks every
// snapshot file against it (size and SHA-256).
func ReadManifest(dir string) (Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return Manifest{}, err
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return Manifest{}, fmt.Errorf("%w: %s: %v", ErrDamaged, ManifestFile, err)
	}
	if m.Format != Format {
		return Manifest{}, fmt.Errorf("%w: manifest format %d, this build reads %d", ErrDamaged, m.Format, Format)
	}
	if !slices.ContainsFunc(m.Streams, func(s Stream) bool { return s.Name == eventStream }) {
		return Manifest{}, fmt.Errorf("%w: the manifest lists no event stream (%s)", ErrDamaged, eventStream)
	}
	for _, s := range m.Streams {
		if s.File != filepath.Base(s.File) || s.File == "" {
			return Manifest{}, fmt.Errorf("%w: stream %s: file %q is not a file name", ErrDamaged, s.Name, s.File)
		}
		size, sum, err := hashFile(filepath.Join(dir, s.File))
		if err != nil {
			return Manifest{}, fmt.Errorf("%w: stream %s: %v", ErrDamaged, s.Name, err)
		}
		if size != s.Bytes || sum != s.SHA256 {
			return Manifest{}, fmt.Errorf("%w: stream %s: %s holds %d bytes with SHA-256 %s, the manifest says %d bytes, %s", ErrDamaged, s.Name, s.File, size, sum, s.Bytes, s.SHA256)
		}
	}
	return m, nil
}

// ErrDamaged means a backup directory does not hold what its manifest
// says.
var ErrDamaged = errors.New("backup: damaged")

func hashFile(path string) (int64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return 0, "", err
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

func writeSynced(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
