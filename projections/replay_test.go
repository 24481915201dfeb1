package projections_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/projections"
)

// clock is the event store's clock in these tests: each commit is recorded
// at the time set last.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// newClockFixture is newFixture with a store that records commits at clk's
// time.
func newClockFixture(t *testing.T, clk *clock) *fixture {
	t.Helper()
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	es, err := eventstore.Open(context.Background(), js, eventstore.Config{Now: clk.Now})
	if err != nil {
		t.Fatalf("open event store: %v", err)
	}
	return &fixture{js: js, es: es, codec: domain.Events()}
}

// snapshot is what the live read models answered at one sequence.
type snapshot struct {
	seq   eventstore.Seq
	hash  string
	order projections.OrderView
}

// TestReplayUntilEqualsTheLiveModelAtEachSeq: a replay that ends at a
// sequence, or at a time, holds exactly what the live read models held
// once they had applied that sequence: the same content hash and the same
// answers, recorded from the live Runner as the stream grew.
func TestReplayUntilEqualsTheLiveModelAtEachSeq(t *testing.T) {
	clk := &clock{t: t0}
	f := newClockFixture(t, clk)
	live := openStore(t, tempPath(t, "live.db"))
	r := projections.NewRunner(f.es, live, testLogger(t))
	startRunner(t, r)

	// Seven commits on three orders, recorded one second apart; after each,
	// what the live model says.
	recorded := map[eventstore.Seq]time.Time{}
	var snaps []snapshot
	steps := []func() eventstore.Commit{
		func() eventstore.Commit { return f.submit(t, "o1", 1) },
		func() eventstore.Commit { return f.submit(t, "o2", 2) },
		func() eventstore.Commit { return f.cancel(t, "o1", "changed my mind", t0.Add(time.Hour)) },
		func() eventstore.Commit { return f.submit(t, "o3", 3) },
		func() eventstore.Commit { return f.cancel(t, "o2", "duplicate", t0.Add(2*time.Hour)) },
		func() eventstore.Commit { return f.submit(t, "o4", 4) },
		func() eventstore.Commit { return f.cancel(t, "o3", "late", t0.Add(3*time.Hour)) },
	}
	for i, step := range steps {
		at := t0.Add(time.Duration(i+1) * time.Second)
		clk.set(at)
		c := step()
		recorded[c.Seq] = at
		waitFor(t, r, c.Seq)
		h, cp := hashOf(t, live)
		if cp != c.Seq {
			t.Fatalf("live model at %d after commit %d", cp, c.Seq)
		}
		snaps = append(snaps, snapshot{seq: c.Seq, hash: h, order: order(t, live, "o1")})
	}
	last := f.lastSeq(t)

	// check replays into a new file and compares it with the snapshot at want
	// (0: the empty read models).
	check := func(t *testing.T, ro *projections.ReplayOptions, want eventstore.Seq) {
		t.Helper()
		path := tempPath(t, "replay.db")
		res, err := projections.ReplayWith(context.Background(), f.es.Reader(), path, nil, ro)
		if err != nil {
			t.Fatalf("replay: %v", err)
		}
		if res.Checkpoint != want || res.Commits != int(want) {
			t.Fatalf("replay reached seq %d after %d commits, want %d", res.Checkpoint, res.Commits, want)
		}
		if want == 0 {
			if fresh, _ := hashOf(t, openStore(t, tempPath(t, "fresh.db"))); res.Hash != fresh {
				t.Fatal("a replay of nothing differs from a fresh file")
			}
			if !res.LastRecordedAt.IsZero() {
				t.Fatalf("last recorded at %s, want none", res.LastRecordedAt)
			}
			return
		}
		s := snaps[want-1]
		if res.Hash != s.hash {
			t.Fatalf("replay hash %s, live hash at seq %d was %s", res.Hash, want, s.hash)
		}
		if !res.LastRecordedAt.Equal(recorded[want]) {
			t.Fatalf("last recorded at %s, want %s", res.LastRecordedAt, recorded[want])
		}
		st, err := projections.OpenReadOnly(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if got := order(t, st, "o1"); !reflect.DeepEqual(got, s.order) {
			t.Fatalf("order o1 at seq %d:\n got %+v\nlive %+v", want, got, s.order)
		}
		if h, cp := hashOf(t, st); h != s.hash || cp != want {
			t.Fatalf("the rebuilt file hashes %s at %d", h, cp)
		}
	}

	for _, s := range snaps {
		t.Run(fmt.Sprintf("until seq %d", s.seq), func(t *testing.T) {
			check(t, &projections.ReplayOptions{UntilSeq: s.seq}, s.seq)
		})
		t.Run(fmt.Sprintf("until the time of seq %d", s.seq), func(t *testing.T) {
			check(t, &projections.ReplayOptions{UntilTime: recorded[s.seq]}, s.seq)
		})
		t.Run(fmt.Sprintf("until just before the time of seq %d", s.seq), func(t *testing.T) {
			check(t, &projections.ReplayOptions{UntilTime: recorded[s.seq].Add(-time.Nanosecond)}, s.seq-1)
		})
	}
	t.Run("until a time in another zone", func(t *testing.T) {
		check(t, &projections.ReplayOptions{UntilTime: recorded[3].In(time.FixedZone("KST", 9*3600))}, 3)
	})
	t.Run("until a time after the last commit", func(t *testing.T) {
		check(t, &projections.ReplayOptions{UntilTime: recorded[last].Add(time.Hour)}, last)
	})
	t.Run("no end: the whole stream", func(t *testing.T) {
		check(t, nil, last)
		check(t, &projections.ReplayOptions{}, last)
	})
	t.Run("until the last seq", func(t *testing.T) {
		check(t, &projections.ReplayOptions{UntilSeq: last}, last)
	})

	t.Run("beyond the end is refused and leaves no file", func(t *testing.T) {
		path := tempPath(t, "replay.db")
		_, err := projections.ReplayWith(context.Background(), f.es.Reader(), path, nil, &projections.ReplayOptions{UntilSeq: last + 1})
		if !errors.Is(err, projections.ErrBeyondEnd) {
			t.Fatalf("replay until seq %d of a stream at %d: %v, want ErrBeyondEnd", last+1, last, err)
		}
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("a refused replay left %s behind: %v", path, err)
		}
	})
	t.Run("a crashed replay's partial file is replaced, and none is left", func(t *testing.T) {
		path := tempPath(t, "replay.db")
		if err := os.WriteFile(path+".partial", []byte("cut short by a crash"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := projections.ReplayWith(context.Background(), f.es.Reader(), path, nil, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(path + ".partial"); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("the partial file is still there: %v", err)
		}
		st, err := projections.OpenReadOnly(path, nil)
		if err != nil {
			t.Fatalf("the replayed file: %v", err)
		}
		_ = st.Close()
		if _, err := projections.ReplayWith(context.Background(), f.es.Reader(), path, nil, nil); !errors.Is(err, projections.ErrExists) {
			t.Fatalf("a replay onto an existing file: %v, want ErrExists", err)
		}
	})
	t.Run("a sequence and a time are refused before anything is read", func(t *testing.T) {
		path := tempPath(t, "replay.db")
		_, err := projections.ReplayWith(context.Background(), f.es.Reader(), path, nil, &projections.ReplayOptions{UntilSeq: 2, UntilTime: recorded[2]})
		if !errors.Is(err, projections.ErrInvalidOptions) {
			t.Fatalf("both ends: %v, want ErrInvalidOptions", err)
		}
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("a refused replay created %s: %v", path, err)
		}
	})
}

// TestReplayUntilTimeIsAPrefix: commits recorded out of order (two appends
// racing) end a time replay at the first commit recorded after the time,
// so the result is always a state the live read models went through.
func TestReplayUntilTimeIsAPrefix(t *testing.T) {
	clk := &clock{}
	f := newClockFixture(t, clk)
	for i, sec := range []int{1, 3, 2, 4} {
		clk.set(t0.Add(time.Duration(sec) * time.Second))
		f.submit(t, fmt.Sprintf("o%d", i), i)
	}
	cases := []struct {
		name  string
		until time.Time
		want  eventstore.Seq
	}{
		{"before the first", t0, 0},
		{"at the first", t0.Add(time.Second), 1},
		{"at the third's time, recorded before the second's", t0.Add(2 * time.Second), 1},
		{"at the second's", t0.Add(3 * time.Second), 3},
		{"at the last", t0.Add(4 * time.Second), 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := projections.ReplayWith(context.Background(), f.es.Reader(), tempPath(t, "replay.db"), nil, &projections.ReplayOptions{UntilTime: tc.until})
			if err != nil || res.Checkpoint != tc.want {
				t.Fatalf("replay until %s = seq %d, %v; want seq %d", tc.until, res.Checkpoint, err, tc.want)
			}
		})
	}
}

// TestReplayProgress: the progress callback sees every batch, in order, and
// a replay that ends inside a batch stops reading there.
func TestReplayProgress(t *testing.T) {
	f := newFixture(t)
	// More commits than one direct batch get returns (500).
	const n = 740
	ctx := context.Background()
	for i := range n {
		id := fmt.Sprintf("p%04d", i)
		ev := submitted(id, i)
		ref := eventstore.Ref{Type: domain.AggregateOrder, ID: id}
		env := f.envelope(t, ev, ev.SubmittedAt)
		env.EventID = id + "-e1"
		if _, err := f.es.Append(ctx, ref, 0, 0, id+"-c1", []eventstore.Envelope{env}); err != nil {
			t.Fatal(err)
		}
	}
	for _, until := range []eventstore.Seq{0, 300, 500, 620} {
		t.Run(fmt.Sprintf("until seq %d", until), func(t *testing.T) {
			var seen []projections.ReplayProgress
			res, err := projections.ReplayWith(ctx, f.es.Reader(), tempPath(t, "replay.db"), nil, &projections.ReplayOptions{
				UntilSeq: until,
				Progress: func(p projections.ReplayProgress) { seen = append(seen, p) },
			})
			want := until
			if want == 0 {
				want = n
			}
			if err != nil || res.Checkpoint != want || res.Events != int(want) {
				t.Fatalf("replay = seq %d, %d events, %v; want seq %d", res.Checkpoint, res.Events, err, want)
			}
			if len(seen) == 0 || seen[len(seen)-1] != (projections.ReplayProgress{Seq: want, Commits: int(want), Events: int(want)}) {
				t.Fatalf("progress %+v, want it to end at seq %d", seen, want)
			}
			for i := 1; i < len(seen); i++ {
				if seen[i].Seq <= seen[i-1].Seq || seen[i].Commits <= seen[i-1].Commits {
					t.Fatalf("progress went backwards: %+v", seen)
				}
			}
			if want > 500 && len(seen) < 2 {
				t.Fatalf("one progress report for %d commits in batches of 500: %+v", want, seen)
			}
		})
	}
}

// TestConcurrentReplaysIntoOnePathNeverMixTheirFiles: a second replay into
// the path a replay is writing (two auditors, or a script run twice) must
// not take the first one's file over. Whatever replay reports success
// describes the file left at path, and the other one fails.
func TestConcurrentReplaysIntoOnePathNeverMixTheirFiles(t *testing.T) {
	f := newFixture(t)
	for i := range 6 {
		f.submit(t, fmt.Sprintf("c%d", i), i)
	}
	ctx := context.Background()
	path := tempPath(t, "replay.db")

	// The second replay starts while the first is applying, and is held
	// inside its own progress callback until the first has returned.
	secondStarted := make(chan struct{})
	release := make(chan struct{})
	type result struct {
		res projections.ReplayResult
		err error
	}
	secondDone := make(chan result, 1)
	var once sync.Once
	first, firstErr := projections.ReplayWith(ctx, f.es.Reader(), path, nil, &projections.ReplayOptions{
		UntilSeq: 2,
		Progress: func(projections.ReplayProgress) {
			once.Do(func() {
				go func() {
					res, err := projections.ReplayWith(ctx, f.es.Reader(), path, nil, &projections.ReplayOptions{
						UntilSeq: 6,
						Progress: func(projections.ReplayProgress) {
							close(secondStarted)
							<-release
						},
					})
					secondDone <- result{res, err}
				}()
				select {
				case <-secondStarted:
				case r := <-secondDone:
					secondDone <- r // refused at once
				}
			})
		},
	})
	close(release)
	second := <-secondDone

	if (firstErr == nil) == (second.err == nil) {
		t.Fatalf("two replays into one path: first %v, second %v; want exactly one to succeed", firstErr, second.err)
	}
	want := first
	if firstErr != nil {
		want = second.res
	}
	st, err := projections.OpenReadOnly(path, nil)
	if err != nil {
		t.Fatalf("the replayed file: %v", err)
	}
	defer st.Close()
	hash, seq, err := st.Hash()
	if err != nil {
		t.Fatal(err)
	}
	if seq != want.Checkpoint || hash != want.Hash {
		t.Fatalf("the file at path holds seq %d (hash %s), but the replay that succeeded reported seq %d (hash %s)", seq, hash, want.Checkpoint, want.Hash)
	}
	if _, err := os.Stat(path + ".partial"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a partial file is left: %v", err)
	}
}
