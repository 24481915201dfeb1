package eventstore_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/eventstore/storetest"
	"github.com/bankbook/bankbook/internal/testcluster"
	"github.com/bankbook/bankbook/internal/testenv"
)

// storedHash is the SHA-256, in hex, of the message at seq as JetStream
// holds it, read with a plain message get (not through the store; on a
// replicated stream a follower may answer, so it asks until one has it).
func storedHash(t *testing.T, js jetstream.JetStream, stream string, seq eventstore.Seq) string {
	t.Helper()
	s, err := js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	var data []byte
	testenv.CheckFor(t, 5*time.Second, func() error {
		msg, err := s.GetMsg(context.Background(), uint64(seq))
		if err != nil {
			return fmt.Errorf("get seq %d: %w", seq, err)
		}
		data = msg.Data
		return nil
	})
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// appendEvents appends n commits of per events each to ref, on top of
// what it holds, and returns them.
func appendEvents(t *testing.T, s *eventstore.Store, ref eventstore.Ref, n, per int) []eventstore.Commit {
	t.Helper()
	ctx := context.Background()
	commits, err := s.Load(ctx, ref, 0)
	if err != nil {
		t.Fatal(err)
	}
	var last eventstore.Seq
	version := 0
	for _, c := range commits {
		last, version = c.Seq, version+len(c.Events)
	}
	var out []eventstore.Commit
	for i := range n {
		events := make([]eventstore.Envelope, per)
		for j := range events {
			events[j] = storetest.Event("t", version+j+1)
		}
		c, err := s.Append(ctx, ref, last, version, fmt.Sprintf("%s-%d", ref.ID, len(commits)+i), events)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
		last, version = c.Seq, version+per
	}
	return out
}

// History reads one aggregate's messages in stream order, a page at a
// time from any sequence, leaving other aggregates' messages out, each
// with the hash of its stored bytes.
func TestHistoryPagesOneAggregateWithHashes(t *testing.T) {
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	s := open(t, js, eventstore.Config{})
	ctx := context.Background()
	a := eventstore.Ref{Type: "order", ID: "A"}
	b := eventstore.Ref{Type: "order", ID: "A-b"} // a prefix of neither subject matches the other
	var want []eventstore.Commit
	for range 5 {
		want = append(want, appendEvents(t, s, a, 2, 3)...)
		appendEvents(t, s, b, 1, 1)
	}

	got, err := s.History(ctx, a, 0, 100)
	if err != nil || len(got) != len(want) {
		t.Fatalf("whole history: %d commits, %v; want %d", len(got), err, len(want))
	}
	for i, r := range got {
		w := want[i]
		if r.Commit.Seq != w.Seq || r.Commit.CommitID != w.CommitID || r.Commit.Damaged != nil || len(r.Commit.Events) != 3 {
			t.Fatalf("commit %d: %+v, want seq %d %s", i, r.Commit, w.Seq, w.CommitID)
		}
		for j, e := range r.Commit.Events {
			if e.Version != 3*i+j+1 || e.EventType != "t" {
				t.Fatalf("commit %d event %d: version %d type %s", i, j, e.Version, e.EventType)
			}
		}
		if h := storedHash(t, js, s.Config().Stream, r.Commit.Seq); r.Hash.String() != h {
			t.Fatalf("seq %d: hash %s, stored bytes hash to %s", r.Commit.Seq, r.Hash, h)
		}
		if r.StoredAt.IsZero() || r.StoredAt.Location() != time.UTC {
			t.Fatalf("seq %d stored at %v", r.Commit.Seq, r.StoredAt)
		}
	}

	// Pages of 3, each from the sequence after the last one's end.
	var paged []eventstore.Seq
	for from := eventstore.Seq(0); ; {
		page, err := s.History(ctx, a, from, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > 3 {
			t.Fatalf("a page of %d, limit 3", len(page))
		}
		for _, r := range page {
			paged = append(paged, r.Commit.Seq)
		}
		if len(page) < 3 {
			break
		}
		from = page[len(page)-1].Commit.Seq + 1
	}
	if len(paged) != len(want) {
		t.Fatalf("paged %v, want %d commits", paged, len(want))
	}
	// From a sequence in the middle of another aggregate's commits: A's next.
	mid, err := s.History(ctx, a, want[1].Seq+1, 1)
	if err != nil || len(mid) != 1 || mid[0].Commit.Seq != want[2].Seq {
		t.Fatalf("from seq %d: %+v, %v; want seq %d", want[1].Seq+1, mid, err, want[2].Seq)
	}

	if none, err := s.History(ctx, eventstore.Ref{Type: "order", ID: "nobody"}, 0, 10); err != nil || none == nil || len(none) != 0 {
		t.Fatalf("unknown aggregate: %+v, %v; want an empty slice", none, err)
	}
	last := want[len(want)-1].Seq
	if beyond, err := s.History(ctx, a, last+1, 10); err != nil || len(beyond) != 0 {
		t.Fatalf("from beyond the end: %+v, %v", beyond, err)
	}
	for name, tc := range map[string]struct {
		ref   eventstore.Ref
		limit int
	}{
		"wildcard id":    {eventstore.Ref{Type: "order", ID: "*"}, 1},
		"full wildcard":  {eventstore.Ref{Type: ">", ID: "A"}, 1},
		"dotted id":      {eventstore.Ref{Type: "order", ID: "A.b"}, 1},
		"limit 0":        {a, 0},
		"negative limit": {a, -1},
	} {
		if _, err := s.History(ctx, tc.ref, 0, tc.limit); !errors.Is(err, eventstore.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}

// A damaged message on the subject is in the history in its place, with
// its hash and what is wrong with it, set aside or not: the history does
// not stop there as Load does.
func TestHistoryShowsDamagedMessagesInTheirPlace(t *testing.T) {
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	s := open(t, js, eventstore.Config{Check: knownTypes})
	ctx := context.Background()
	a := eventstore.Ref{Type: "order", ID: "A"}
	first := appendEvents(t, s, a, 1, 1)[0]
	ack, err := js.Publish(ctx, "bankbook.evt.order.A", []byte("junk!"))
	if err != nil {
		t.Fatal(err)
	}
	garbage := eventstore.Seq(ack.Sequence)
	unknown, err := s.Append(ctx, a, garbage, 1, "from-the-future", []eventstore.Envelope{storetest.Event("from-the-future", 1)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(ctx, a, 0); !errors.Is(err, eventstore.ErrDamaged) {
		t.Fatalf("load: %v, want damaged", err)
	}

	check := func(setAside bool) {
		t.Helper()
		got, err := s.History(ctx, a, 0, 10)
		if err != nil || len(got) != 3 {
			t.Fatalf("history: %+v, %v", got, err)
		}
		if got[0].Commit.Seq != first.Seq || got[0].Commit.Damaged != nil {
			t.Fatalf("first: %+v", got[0].Commit)
		}
		for _, r := range got[1:] {
			d := r.Commit.Damaged
			if d == nil || len(r.Commit.Events) != 0 || r.Commit.Ref() != a || d.Seq != r.Commit.Seq || (d.SetAside != nil) != setAside {
				t.Fatalf("seq %d: %+v (damaged %+v), want a placeholder, set aside %v", r.Commit.Seq, r.Commit, d, setAside)
			}
			if h := storedHash(t, js, s.Config().Stream, r.Commit.Seq); r.Hash.String() != h {
				t.Fatalf("seq %d: hash %s, want %s", r.Commit.Seq, r.Hash, h)
			}
		}
		if got[1].Commit.Seq != garbage || !errors.Is(got[1].Commit.Damaged, eventstore.ErrCorrupt) {
			t.Fatalf("garbage: %+v", got[1].Commit.Damaged)
		}
		if got[2].Commit.Seq != unknown.Seq || !strings.Contains(got[2].Commit.Damaged.Error(), "from-the-future") {
			t.Fatalf("unknown event type: %+v", got[2].Commit.Damaged)
		}
	}
	check(false)
	for _, seq := range []eventstore.Seq{garbage, unknown.Seq} {
		if _, _, err := s.SetAside(ctx, seq, "forged in a test", "operator"); err != nil {
			t.Fatal(err)
		}
	}
	check(true)
}

// The events are upcast as Load upcasts them; the hash is of the bytes as
// stored, before upcasting.
func TestHistoryUpcastsAndHashesTheStoredBytes(t *testing.T) {
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	ctx := context.Background()
	ref := eventstore.Ref{Type: "person", ID: "p1"}
	c, codec := renamedAtV1(t, js, ref)
	s := open(t, js, eventstore.Config{Upcaster: codec})
	got, err := s.History(ctx, ref, 0, 10)
	if err != nil || len(got) != 1 {
		t.Fatalf("history: %+v, %v", got, err)
	}
	e := got[0].Commit.Events[0]
	if e.SchemaVersion != 2 || !strings.Contains(string(e.Data), `"full_name":"김민수"`) {
		t.Fatalf("event at schema %d: %s; want upcast to 2", e.SchemaVersion, e.Data)
	}
	if h := storedHash(t, js, s.Config().Stream, c.Seq); got[0].Hash.String() != h {
		t.Fatalf("hash %s, stored bytes hash to %s", got[0].Hash, h)
	}
}

// On a replicated stream History reads from the stream leader: a page
// asked for right after an append, on any node, holds that append.
func TestHistoryOnAReplicatedStream(t *testing.T) {
	c := testcluster.Start(t, 3, "")
	nc, err := nats.Connect(c.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s := open(t, js, eventstore.Config{Replicas: 3})
	ctx := context.Background()
	ref := eventstore.Ref{Type: "wallet", ID: "w1"}
	var last eventstore.Seq
	for i := range 20 {
		cm, err := s.Append(ctx, ref, last, i, fmt.Sprint("c", i), []eventstore.Envelope{storetest.Event("t", i)})
		if err != nil {
			t.Fatal(err)
		}
		last = cm.Seq
		got, err := s.History(ctx, ref, last, 5)
		if err != nil || len(got) != 1 || got[0].Commit.CommitID != cm.CommitID {
			t.Fatalf("history right after append %d: %+v, %v", i, got, err)
		}
		if h := storedHash(t, js, s.Config().Stream, last); got[0].Hash.String() != h {
			t.Fatalf("seq %d: hash %s, want %s", last, got[0].Hash, h)
		}
	}
	got, err := s.History(ctx, ref, 0, 50)
	if err != nil || len(got) != 20 {
		t.Fatalf("whole history: %d, %v", len(got), err)
	}
}

func TestHashIsSHA256OfTheBytes(t *testing.T) {
	h := eventstore.HashOf([]byte("abc"))
	if h.String() != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Fatalf("sha256(abc) = %s", h)
	}
}
