package eventstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/internal/testenv"
)

func open(t testing.TB, js jetstream.JetStream, cfg eventstore.Config) *eventstore.Store {
	t.Helper()
	s, err := eventstore.Open(context.Background(), js, cfg)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return s
}

func ev(typ string, data any) eventstore.Envelope {
	b, _ := json.Marshal(data)
	return eventstore.Envelope{EventID: fmt.Sprintf("e-%d", time.Now().UnixNano()), EventType: typ, SchemaVersion: 1, OccurredAt: time.Now().UTC(), Data: b}
}

// appendOne loads ref and appends one event with the right expectation.
func appendOne(ctx context.Context, s *eventstore.Store, ref eventstore.Ref, commitID string, e eventstore.Envelope) (eventstore.Commit, error) {
	commits, err := s.Load(ctx, ref, 0)
	if err != nil {
		return eventstore.Commit{}, err
	}
	var last eventstore.Seq
	version := 0
	for _, c := range commits {
		last = c.Seq
		version += len(c.Events)
	}
	return s.Append(ctx, ref, last, version, commitID, []eventstore.Envelope{e})
}

func TestAppendLoadChain(t *testing.T) {
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	s := open(t, js, eventstore.Config{})
	ctx := context.Background()
	a := eventstore.Ref{Type: "order", ID: "A"}
	b := eventstore.Ref{Type: "order", ID: "B"}

	// Interleave two aggregates so each one's chain skips the other's commits.
	for i := range 5 {
		for _, ref := range []eventstore.Ref{a, b} {
			if _, err := appendOne(ctx, s, ref, fmt.Sprintf("%s-%d", ref.ID, i), ev("t", map[string]int{"i": i})); err != nil {
				t.Fatalf("append %s %d: %v", ref, i, err)
			}
		}
	}
	commits, err := s.Load(ctx, a, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(commits) != 5 {
		t.Fatalf("loaded %d commits, want 5", len(commits))
	}
	for i, c := range commits {
		if c.CommitID != fmt.Sprintf("A-%d", i) || c.Events[0].Version != i+1 || c.AggregateID != "A" {
			t.Fatalf("commit %d = %+v", i, c)
		}
		if i > 0 && c.PrevSeq != commits[i-1].Seq {
			t.Fatalf("commit %d links to %d, want %d", i, c.PrevSeq, commits[i-1].Seq)
		}
		if c.Events[0].RecordedAt.IsZero() {
			t.Fatal("recorded_at not set")
		}
	}
	// Load with a start sequence returns only what came after it.
	tail, err := s.Load(ctx, a, commits[2].Seq)
	if err != nil || len(tail) != 2 || tail[0].CommitID != "A-3" {
		t.Fatalf("load after %d = %d commits, %v", commits[2].Seq, len(tail), err)
	}
	none, err := s.Load(ctx, eventstore.Ref{Type: "order", ID: "nobody"}, 0)
	if err != nil || len(none) != 0 {
		t.Fatalf("load of unknown aggregate = %v, %v", none, err)
	}
}

func TestAppendStaleExpectationConflicts(t *testing.T) {
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	s := open(t, js, eventstore.Config{})
	ctx := context.Background()
	ref := eventstore.Ref{Type: "order", ID: "X"}
	first, err := s.Append(ctx, ref, 0, 0, "c1", []eventstore.Envelope{ev("t", 1)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Append(ctx, ref, 0, 0, "c2", []eventstore.Envelope{ev("t", 2), ev("t", 3)})
	var ce *eventstore.ConflictError
	if !errors.Is(err, eventstore.ErrConflict) || !errors.As(err, &ce) {
		t.Fatalf("stale append: got %v, want ErrConflict", err)
	}
	if ce.Actual != first.Seq || ce.Expected != 0 {
		t.Fatalf("conflict = %+v, want actual %d", ce, first.Seq)
	}
	commits, _ := s.Load(ctx, ref, 0)
	if len(commits) != 1 {
		t.Fatalf("a refused multi-event commit left %d commits, want 1", len(commits))
	}
}

func TestConcurrentAppendersLoseNoUpdate(t *testing.T) {
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	s := open(t, js, eventstore.Config{})
	ctx := context.Background()
	ref := eventstore.Ref{Type: "counter", ID: "shared"}

	const writers, perWriter = 16, 5
	var mu sync.Mutex
	conflicts := 0
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWriter; {
				_, err := appendOne(ctx, s, ref, fmt.Sprintf("w%d-%d", w, i), ev("incr", map[string]int{"writer": w, "i": i}))
				switch {
				case err == nil:
					i++
				case errors.Is(err, eventstore.ErrConflict):
					mu.Lock()
					conflicts++
					mu.Unlock()
				default:
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	commits, err := s.Load(ctx, ref, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(commits) != writers*perWriter {
		t.Fatalf("%d commits stored, want %d (lost update)", len(commits), writers*perWriter)
	}
	seen := map[string]bool{}
	for i, c := range commits {
		if c.Events[0].Version != i+1 {
			t.Fatalf("commit %d has version %d", i, c.Events[0].Version)
		}
		if seen[c.CommitID] {
			t.Fatalf("commit %s stored twice", c.CommitID)
		}
		seen[c.CommitID] = true
	}
	info, _ := js.Stream(ctx, "BANKBOOK_EVENTS")
	st, _ := info.Info(ctx)
	if st.State.Msgs != uint64(writers*perWriter) {
		t.Fatalf("stream holds %d messages, want %d", st.State.Msgs, writers*perWriter)
	}
	t.Logf("%d appends, %d conflicts surfaced and retried", writers*perWriter, conflicts)
	if conflicts == 0 {
		t.Fatal("16 concurrent writers produced no conflict: the expectation is not being checked")
	}
}

func TestRetriedAppendAfterLostAckIsNotDoubled(t *testing.T) {
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	// A dedup window far shorter than the retry delay shows that the
	// outcome does not depend on JetStream's dedup.
	s := open(t, js, eventstore.Config{DuplicateWindow: 100 * time.Millisecond})
	ctx := context.Background()
	ref := eventstore.Ref{Type: "order", ID: "retry"}
	events := []eventstore.Envelope{ev("t", 1)}
	c1, err := s.Append(ctx, ref, 0, 0, "commit-1", events)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	// The same commit published again, as a retry after a lost ack would.
	c2, err := s.Append(ctx, ref, 0, 0, "commit-1", events)
	if err != nil {
		t.Fatalf("retried append: %v", err)
	}
	if c2.Seq != c1.Seq {
		t.Fatalf("retry stored at %d, original at %d", c2.Seq, c1.Seq)
	}
	commits, _ := s.Load(ctx, ref, 0)
	if len(commits) != 1 {
		t.Fatalf("%d commits after retry, want 1", len(commits))
	}
	// A different commit with the same stale expectation is still a conflict.
	if _, err := s.Append(ctx, ref, 0, 0, "commit-2", events); !errors.Is(err, eventstore.ErrConflict) {
		t.Fatalf("different commit with stale expectation: %v", err)
	}
}

func TestLoadAfterServerRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	ref := eventstore.Ref{Type: "order", ID: "durable"}
	{
		srv := testenv.Start(t, dir)
		_, js := srv.Connect(t)
		s := open(t, js, eventstore.Config{})
		for i := range 3 {
			if _, err := appendOne(ctx, s, ref, fmt.Sprint(i), ev("t", i)); err != nil {
				t.Fatal(err)
			}
		}
		srv.Shutdown()
	}
	srv := testenv.Start(t, dir)
	_, js := srv.Connect(t)
	s := open(t, js, eventstore.Config{})
	commits, err := s.Load(ctx, ref, 0)
	if err != nil || len(commits) != 3 {
		t.Fatalf("after restart: %d commits, %v", len(commits), err)
	}
	if _, err := appendOne(ctx, s, ref, "3", ev("t", 3)); err != nil {
		t.Fatalf("append after restart: %v", err)
	}
}

func TestStreamDeniesDeleteAndPurge(t *testing.T) {
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	s := open(t, js, eventstore.Config{})
	ctx := context.Background()
	c, err := s.Append(ctx, eventstore.Ref{Type: "order", ID: "keep"}, 0, 0, "c", []eventstore.Envelope{ev("t", 1)})
	if err != nil {
		t.Fatal(err)
	}
	stream, _ := js.Stream(ctx, s.Config().Stream)
	if err := stream.DeleteMsg(ctx, uint64(c.Seq)); err == nil {
		t.Fatal("deleting an event succeeded")
	}
	if err := stream.Purge(ctx); err == nil {
		t.Fatal("purging the event stream succeeded")
	}
	if err := js.DeleteStream(ctx, "nope"); err == nil {
		t.Fatal("sanity: deleting a missing stream succeeded")
	}
}

// renamed is an event whose schema version 2 renamed a field.
type renamed struct {
	FullName string `json:"full_name"`
}

func (renamed) EventType() string { return "test.renamed" }

func TestUpcasterAppliedOnLoad(t *testing.T) {
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	ctx := context.Background()
	ref := eventstore.Ref{Type: "person", ID: "p1"}

	// Written by an engine at schema version 1: {"name": ...}.
	old := open(t, js, eventstore.Config{})
	e := ev("test.renamed", map[string]string{"name": "김민수"})
	if _, err := old.Append(ctx, ref, 0, 0, "c1", []eventstore.Envelope{e}); err != nil {
		t.Fatal(err)
	}

	// Read by an engine at schema version 2 with an upcaster 1 → 2.
	codec := domain.NewCodec()
	domain.Register[renamed](codec, 2)
	codec.AddUpcaster("test.renamed", 1, func(data json.RawMessage) (json.RawMessage, error) {
		var v1 struct {
			Name string `json:"name"`
		}
		if err := json.Unmarshal(data, &v1); err != nil {
			return nil, err
		}
		return json.Marshal(renamed{FullName: v1.Name})
	})
	s := open(t, js, eventstore.Config{Upcaster: codec})
	commits, err := s.Load(ctx, ref, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := commits[0].Events[0]
	if got.SchemaVersion != 2 || !strings.Contains(string(got.Data), `"full_name":"김민수"`) {
		t.Fatalf("loaded %d %s, want version 2 with full_name", got.SchemaVersion, got.Data)
	}
	decoded, err := codec.Decode(got.EventType, got.SchemaVersion, got.Data)
	if err != nil || decoded.(renamed).FullName != "김민수" {
		t.Fatalf("decode: %v %v", decoded, err)
	}
	// Follow applies the upcaster too.
	var followed []eventstore.Commit
	err = s.Follow(ctx, eventstore.FollowOptions{Until: commits[0].Seq}, func(_ context.Context, b []eventstore.Commit) error {
		followed = append(followed, b...)
		return nil
	})
	if err != nil || len(followed) != 1 || followed[0].Events[0].SchemaVersion != 2 {
		t.Fatalf("follow: %v %+v", err, followed)
	}
}

func TestRetriedAppendFindsItsCommitUnderLaterOnes(t *testing.T) {
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	s := open(t, js, eventstore.Config{DuplicateWindow: 100 * time.Millisecond})
	ctx := context.Background()
	ref := eventstore.Ref{Type: "order", ID: "busy"}
	events := []eventstore.Envelope{ev("t", 1)}
	c1, err := s.Append(ctx, ref, 0, 0, "mine", events)
	if err != nil {
		t.Fatal(err)
	}
	// Another writer appends on top before the lost-ack retry arrives.
	if _, err := s.Append(ctx, ref, c1.Seq, 1, "theirs", []eventstore.Envelope{ev("t", 2)}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // past the dedup window
	again, err := s.Append(ctx, ref, 0, 0, "mine", events)
	if err != nil || again.Seq != c1.Seq {
		t.Fatalf("retry of a stored commit with a later one on top: seq %d, %v; want seq %d", again.Seq, err, c1.Seq)
	}
	if commits, _ := s.Load(ctx, ref, 0); len(commits) != 2 {
		t.Fatalf("%d commits, want 2", len(commits))
	}
}

func TestStreamConfigReadsFromTheLeaderWhenReplicated(t *testing.T) {
	for _, tc := range []struct {
		replicas int
		direct   bool
	}{{1, true}, {3, false}} {
		cfg := eventstore.Config{Replicas: tc.replicas}.StreamConfig()
		if cfg.AllowDirect != tc.direct || !cfg.DenyDelete || !cfg.DenyPurge || cfg.MaxAge != 0 {
			t.Errorf("replicas %d: direct %v deny delete %v deny purge %v max age %v", tc.replicas, cfg.AllowDirect, cfg.DenyDelete, cfg.DenyPurge, cfg.MaxAge)
		}
	}
}
