package groupcommit

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// UnknownWindow bounds how late the server may store a write that got no
// answer (a timeout, a lost connection): until a sync that started this
// long after such a write has finished, WaitDirty takes nothing for clean.
// It is far longer than one write's attempt (1 s).
const UnknownWindow = 30 * time.Second

// ErrUnsupported: this operating system has no way to sync one file system
// (syncfs(2) is Linux's).
var ErrUnsupported = errors.New("groupcommit: syncing a file system needs Linux (syncfs)")

// ErrSyncFailed wraps the error of a failed sync. Once a sync failed, every
// later Wait returns it too.
var ErrSyncFailed = errors.New("groupcommit: sync failed")

// Syncer runs the syncs that concurrent writers share. Its zero value is
// not usable; a nil *Syncer's waits return at once (no group commit).
// It is safe for concurrent use and holds no goroutine: the first writer to
// wait while no sync runs runs the next one itself.
type Syncer struct {
	sync  func() error
	close func() error
	fs    string // the file system's type, by name (Open)

	mu      sync.Mutex
	started uint64        // syncs started
	done    uint64        // syncs finished (the highest; they run one at a time)
	running bool          // a sync is running
	wake    chan struct{} // closed when the running sync finishes
	// covered is how many writes had been answered when the last finished
	// sync started: while no more have begun (writes), every write made is
	// durable.
	covered uint64
	err     error // the first failure, for good
	// unknown is when the last write that got no answer (it may be stored
	// later) did; lastStart when the last finished sync started.
	unknown, lastStart time.Time
	// acked is, per stream, the highest sequence a publish through Wrap was
	// acknowledged at; runningAcked is acked as the running sync started,
	// and synced as the last finished one did: those are durable.
	acked, runningAcked, synced map[string]uint64

	writes   atomic.Uint64 // writes begun through Wrap
	answered atomic.Uint64 // writes the server answered (stored or refused), or that got no answer
	now      func() time.Time
	syncs    atomic.Uint64
	waits    atomic.Uint64
}

// New returns a Syncer whose syncs call sync. Open is the file-system one.
func New(sync func() error) *Syncer {
	return &Syncer{sync: sync, close: func() error { return nil }, wake: make(chan struct{}), now: time.Now,
		acked: map[string]uint64{}, synced: map[string]uint64{}}
}

// FileSystem names the type of the file system Open syncs ("ext2/3/4", "xfs",
// ..., or its magic number in hex); "" for New's.
func (s *Syncer) FileSystem() string { return s.fs }

// Stats counts what a Syncer did since it was made.
type Stats struct {
	// Writes is how many writes were made through Wrap (publishes, KV
	// writes, stream deletions and purges), refused ones included.
	Writes uint64
	// Waits is how many waits needed a sync (writes and readers).
	Waits uint64
	// Syncs is how many syncs ran: Waits ÷ Syncs is how many waits one
	// sync served.
	Syncs uint64
}

// Stats returns the counts so far; a nil Syncer has none.
func (s *Syncer) Stats() Stats {
	if s == nil {
		return Stats{}
	}
	return Stats{Writes: s.writes.Load(), Waits: s.waits.Load(), Syncs: s.syncs.Load()}
}

// Counts returns Stats by name, for bankbook_group_commit_total.
func (st Stats) Counts() map[string]uint64 {
	return map[string]uint64{"writes": st.Writes, "waits": st.Waits, "syncs": st.Syncs}
}

// Close releases the Syncer's file descriptor. Waits after Close fail.
func (s *Syncer) Close() error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = errors.New("groupcommit: syncer closed")
	}
	closeFn := s.close
	s.close = func() error { return nil }
	return closeFn()
}

// Wait returns once a sync that started after Wait was called has finished:
// everything written to the file system before the call is then durable.
// Concurrent callers share syncs. It returns ctx's error if ctx ends first
// (the sync it waited for goes on), and the first sync failure for good.
func (s *Syncer) Wait(ctx context.Context) error {
	if s == nil {
		return nil
	}
	s.waits.Add(1)
	s.mu.Lock()
	want := s.started + 1 // a sync running now may have started before the caller's writes
	for {
		if s.err != nil {
			err := s.err
			s.mu.Unlock()
			return err
		}
		if s.done >= want {
			s.mu.Unlock()
			return nil
		}
		if !s.running {
			s.runLocked()
			continue
		}
		if err := s.awaitRunningLocked(ctx); err != nil {
			return err
		}
	}
}

// awaitRunningLocked waits, with s.mu released, until the running sync
// finishes, or returns ctx's error (s.mu then released). s.mu is held on
// entry and, without an error, on return.
func (s *Syncer) awaitRunningLocked(ctx context.Context) error {
	wake := s.wake
	s.mu.Unlock()
	select {
	case <-wake:
	case <-ctx.Done():
		return ctx.Err()
	}
	s.mu.Lock()
	return nil
}

// WaitDirty is Wait, except that it returns at once when every write
// started so far through Wrap was covered by a sync that finished: a
// reader that saw only such writes needs no sync of its own. Writes the server
// makes by itself (a timer firing) are not counted; a reader that must not
// act before those are durable calls Wait.
func (s *Syncer) WaitDirty(ctx context.Context) error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	clean := s.err == nil && s.writes.Load() <= s.covered && // covered first: writes only grow
		// A write without an answer may be stored after any sync that
		// started less than UnknownWindow after it.
		(s.unknown.IsZero() || s.lastStart.Sub(s.unknown) >= UnknownWindow)
	s.mu.Unlock()
	if clean {
		return nil
	}
	return s.Wait(ctx)
}

// WaitSeq returns once the message at seq of stream is durable: at once if
// a finished sync covered its publish's ack, after the running sync if that
// one started after the ack; otherwise it is Wait (the caller has seen the
// message, so it reached the operating system before a sync that starts
// now). Only publishes through Wrap are known by sequence.
func (s *Syncer) WaitSeq(ctx context.Context, stream string, seq uint64) error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	for {
		switch {
		case s.err != nil:
			err := s.err
			s.mu.Unlock()
			return err
		case s.synced[stream] >= seq:
			s.mu.Unlock()
			return nil
		case s.running && s.runningAcked[stream] >= seq:
			s.waits.Add(1)
			if err := s.awaitRunningLocked(ctx); err != nil {
				return err
			}
		default:
			s.mu.Unlock()
			return s.Wait(ctx)
		}
	}
}

// acknowledged records that a publish through Wrap was acked at seq.
func (s *Syncer) acknowledged(stream string, seq uint64) {
	s.mu.Lock()
	if seq > s.acked[stream] {
		s.acked[stream] = seq
	}
	s.mu.Unlock()
}

// WaitDirtyFunc returns s.WaitDirty, or nil for a nil Syncer: for the
// hooks that a nil function turns off.
func (s *Syncer) WaitDirtyFunc() func(context.Context) error {
	if s == nil {
		return nil
	}
	return s.WaitDirty
}

// SyncPointFunc returns the wait of a sync point in a chain of writes, or
// nil for a nil Syncer: WaitDirty for a Deferred context, whose writes
// waited for nothing; nothing for any other, each of whose writes waited
// before and after itself.
func (s *Syncer) SyncPointFunc() func(context.Context) error {
	if s == nil {
		return nil
	}
	return func(ctx context.Context) error {
		if ctx.Value(deferKey{}) == nil {
			return nil
		}
		return s.WaitDirty(ctx)
	}
}

// noAnswer records a write that got no answer.
func (s *Syncer) noAnswer() {
	s.mu.Lock()
	s.unknown = s.now()
	s.mu.Unlock()
}

// runLocked runs one sync with s.mu released around it, and wakes its
// waiters. s.mu is held on entry and on return.
func (s *Syncer) runLocked() {
	s.running = true
	s.started++
	gen, answered, start := s.started, s.answered.Load(), s.now()
	s.runningAcked = maps.Clone(s.acked)
	s.mu.Unlock()
	err := s.sync()
	s.syncs.Add(1)
	s.mu.Lock()
	covers := s.runningAcked
	s.running, s.runningAcked, s.done = false, nil, gen
	if err != nil && s.err == nil {
		s.err = fmt.Errorf("%w: %w", ErrSyncFailed, err)
	}
	if err == nil {
		s.covered, s.lastStart, s.synced = answered, start, covers
	}
	close(s.wake)
	s.wake = make(chan struct{})
}

// atLeast reports whether a kernel release ("6.18.44-fc") is major.minor
// or later.
func atLeast(release string, major, minor int) bool {
	parts := strings.SplitN(release, ".", 3)
	if len(parts) < 2 {
		return false
	}
	gotMajor, err1 := strconv.Atoi(parts[0])
	digits := parts[1]
	if i := strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		digits = digits[:i]
	}
	gotMinor, err2 := strconv.Atoi(digits)
	if err1 != nil || err2 != nil {
		return false
	}
	return gotMajor > major || gotMajor == major && gotMinor >= minor
}
