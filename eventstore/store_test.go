package eventstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/eventstore/storetest"
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

func TestLoadAfterServerRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	ref := eventstore.Ref{Type: "order", ID: "durable"}
	{
		srv := testenv.Start(t, dir)
		_, js := srv.Connect(t)
		s := open(t, js, eventstore.Config{})
		for i := range 3 {
			if _, err := storetest.AppendOne(ctx, s, ref, fmt.Sprint(i), storetest.Event("t", i)); err != nil {
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
	if _, err := storetest.AppendOne(ctx, s, ref, "3", storetest.Event("t", 3)); err != nil {
		t.Fatalf("append after restart: %v", err)
	}
}

func TestStreamDeniesDeleteAndPurge(t *testing.T) {
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	s := open(t, js, eventstore.Config{})
	ctx := context.Background()
	c, err := s.Append(ctx, eventstore.Ref{Type: "order", ID: "keep"}, 0, 0, "c", []eventstore.Envelope{storetest.Event("t", 1)})
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

// renamedAtV1 appends a test.renamed at schema version 1 ({"name": ...}),
// as an engine of that version wrote it, and returns its commit and a codec
// at version 2 with an upcaster 1 → 2.
func renamedAtV1(t *testing.T, js jetstream.JetStream, ref eventstore.Ref) (eventstore.Commit, *domain.Codec) {
	t.Helper()
	old := open(t, js, eventstore.Config{})
	c, err := old.Append(context.Background(), ref, 0, 0, "c1", []eventstore.Envelope{storetest.Event("test.renamed", map[string]string{"name": "김민수"})})
	if err != nil {
		t.Fatal(err)
	}
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
	return c, codec
}

// TestFollowAppliesTheUpcaster: Load's upcasting is in the contract suite;
// Follow (JetStream only) upcasts too, with the domain's codec.
func TestFollowAppliesTheUpcaster(t *testing.T) {
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	ctx := context.Background()
	c, codec := renamedAtV1(t, js, eventstore.Ref{Type: "person", ID: "p1"})
	s := open(t, js, eventstore.Config{Upcaster: codec})
	var followed []eventstore.Commit
	err := s.Follow(ctx, eventstore.FollowOptions{Until: c.Seq}, func(_ context.Context, b []eventstore.Commit) error {
		followed = append(followed, b...)
		return nil
	})
	if err != nil || len(followed) != 1 {
		t.Fatalf("follow: %v %+v", err, followed)
	}
	got := followed[0].Events[0]
	if got.SchemaVersion != 2 || !strings.Contains(string(got.Data), `"full_name":"김민수"`) {
		t.Fatalf("followed %d %s, want version 2 with full_name", got.SchemaVersion, got.Data)
	}
	decoded, err := codec.Decode(got.EventType, got.SchemaVersion, got.Data)
	if err != nil || decoded.(renamed).FullName != "김민수" {
		t.Fatalf("decode: %v %v", decoded, err)
	}
}

// TestRetriedAppendPastTheDedupWindow: the contract suite has retried
// appends; on JetStream a retry can come after the stream's duplicate window
// (a long lost-ack recovery), so the outcome must not depend on dedup.
func TestRetriedAppendPastTheDedupWindow(t *testing.T) {
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	s := open(t, js, eventstore.Config{DuplicateWindow: 100 * time.Millisecond})
	ctx := context.Background()
	ref := eventstore.Ref{Type: "order", ID: "retry"}
	events := []eventstore.Envelope{storetest.Event("t", 1)}
	c1, err := s.Append(ctx, ref, 0, 0, "mine", events)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // past the dedup window (a longer pause only helps)
	again, err := s.Append(ctx, ref, 0, 0, "mine", events)
	if err != nil || again.Seq != c1.Seq {
		t.Fatalf("retry past the dedup window: seq %d, %v; want seq %d", again.Seq, err, c1.Seq)
	}
	// Another writer appends on top before a later retry arrives.
	if _, err := s.Append(ctx, ref, c1.Seq, 1, "theirs", []eventstore.Envelope{storetest.Event("t", 2)}); err != nil {
		t.Fatal(err)
	}
	late, err := s.Append(ctx, ref, 0, 0, "mine", events)
	if err != nil || late.Seq != c1.Seq {
		t.Fatalf("retry of a stored commit with a later one on top: seq %d, %v; want seq %d", late.Seq, err, c1.Seq)
	}
	if commits, _ := s.Load(ctx, ref, 0); len(commits) != 2 {
		t.Fatalf("%d commits, want 2", len(commits))
	}
	if _, err := s.Append(ctx, ref, 0, 0, "someone-else", events); !errors.Is(err, eventstore.ErrConflict) {
		t.Fatalf("different commit with a stale expectation: %v", err)
	}
}

func TestStreamConfigAllowsDirectGetsAndDeniesDeletes(t *testing.T) {
	for _, tc := range []struct {
		replicas int
		direct   bool
	}{{1, true}, {3, true}} {
		cfg := eventstore.Config{Replicas: tc.replicas}.StreamConfig()
		if cfg.AllowDirect != tc.direct || !cfg.DenyDelete || !cfg.DenyPurge || cfg.MaxAge != 0 {
			t.Errorf("replicas %d: direct %v deny delete %v deny purge %v max age %v", tc.replicas, cfg.AllowDirect, cfg.DenyDelete, cfg.DenyPurge, cfg.MaxAge)
		}
	}
}

// TestKnownSeq checks what a Store knows of the stream's head without asking
// the server: its own appends, the commits it follows and LastSeq's answers,
// never more than the stream holds; another Store's appends only once it has
// seen them.
func TestKnownSeq(t *testing.T) {
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	ctx := context.Background()
	a, b := open(t, js, eventstore.Config{}), open(t, js, eventstore.Config{})
	if got := a.KnownSeq(); got != 0 {
		t.Fatalf("a new Store knows seq %d", got)
	}
	if got := b.KnownSeq(); got != 0 {
		t.Fatalf("b knows %d before it has seen anything", got)
	}
	c1, err := storetest.AppendOne(ctx, a, eventstore.Ref{Type: "order", ID: "k1"}, "c1", storetest.Event("t", 1))
	if err != nil {
		t.Fatal(err)
	}
	if got := a.KnownSeq(); got != c1.Seq {
		t.Fatalf("after its append at %d, a knows %d", c1.Seq, got)
	}
	// The same commit again, as a retry after a lost ack sends it: settled
	// as the stored one, whose sequence b now knows.
	again, err := b.Append(ctx, eventstore.Ref{Type: "order", ID: "k1"}, 0, 0, "c1", []eventstore.Envelope{storetest.Event("t", 1)})
	if err != nil || again.Seq != c1.Seq || b.KnownSeq() != c1.Seq {
		t.Fatalf("the same commit again: seq %d (%v), b knows %d; want %d", again.Seq, err, b.KnownSeq(), c1.Seq)
	}
	c2, err := storetest.AppendOne(ctx, b, eventstore.Ref{Type: "order", ID: "k2"}, "c2", storetest.Event("t", 2))
	if err != nil {
		t.Fatal(err)
	}
	if got := a.KnownSeq(); got != c1.Seq {
		t.Fatalf("a knows %d, want %d: b's append at %d is not a's to know yet", got, c1.Seq, c2.Seq)
	}
	if last, err := a.LastSeq(ctx); err != nil || last != c2.Seq || a.KnownSeq() != c2.Seq {
		t.Fatalf("LastSeq %d (%v), then a knows %d; want %d", last, err, a.KnownSeq(), c2.Seq)
	}
	// A follower learns the head from what it is delivered.
	f := open(t, js, eventstore.Config{})
	if err := f.Follow(ctx, eventstore.FollowOptions{Until: c2.Seq}, func(context.Context, []eventstore.Commit) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if got := f.KnownSeq(); got != c2.Seq {
		t.Fatalf("after following to %d, the follower knows %d", c2.Seq, got)
	}
}
