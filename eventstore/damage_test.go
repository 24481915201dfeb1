package eventstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/eventstore/storetest"
	"github.com/bankbook/bankbook/internal/testenv"
)

// knownTypes is a Check that knows the event type "t" only.
func knownTypes(e eventstore.Envelope) error {
	if e.EventType != "t" {
		return fmt.Errorf("event type %q unknown to this engine", e.EventType)
	}
	return nil
}

// Messages that are not commits this engine reads — garbage, a commit of
// another aggregate copied onto a subject, a commit with an unknown event
// type — are damaged: Load refuses the aggregate naming the sequence,
// Follow fails on them or (DeliverDamaged) hands them over in their place.
// Once set aside, Load walks past them and appends chain on.
func TestDamagedMessagesAreRefusedUntilSetAside(t *testing.T) {
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	s := open(t, js, eventstore.Config{Check: knownTypes})
	ctx := context.Background()
	a := eventstore.Ref{Type: "order", ID: "A"}
	b := eventstore.Ref{Type: "order", ID: "B"}
	c := eventstore.Ref{Type: "order", ID: "C"}

	a1, err := storetest.AppendOne(ctx, s, a, "a1", storetest.Event("t", 1))
	if err != nil {
		t.Fatal(err)
	}
	ack, err := js.Publish(ctx, "bankbook.evt.order.A", []byte("junk!"))
	if err != nil {
		t.Fatal(err)
	}
	garbage := eventstore.Seq(ack.Sequence)
	// A's commit, copied onto B's subject.
	body, _ := json.Marshal(a1)
	ack, err = js.Publish(ctx, "bankbook.evt.order.B", body)
	if err != nil {
		t.Fatal(err)
	}
	copied := eventstore.Seq(ack.Sequence)
	unknown, err := storetest.AppendOne(ctx, s, c, "c1", storetest.Event("from-the-future", 1))
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		ref  eventstore.Ref
		seq  eventstore.Seq
		want error
	}{{a, garbage, eventstore.ErrCorrupt}, {b, copied, eventstore.ErrCorrupt}, {c, unknown.Seq, nil}} {
		_, err := s.Load(ctx, tc.ref, 0)
		de, ok := errors.AsType[*eventstore.DamagedError](err)
		if !ok || !errors.Is(err, eventstore.ErrDamaged) || de.Seq != tc.seq || de.Ref != tc.ref || tc.want != nil && !errors.Is(err, tc.want) {
			t.Fatalf("load %s: %v, want damaged at seq %d", tc.ref, err, tc.seq)
		}
		if _, err := storetest.AppendOne(ctx, s, tc.ref, "x-"+tc.ref.ID, storetest.Event("t", 2)); !errors.Is(err, eventstore.ErrDamaged) {
			t.Fatalf("append to %s: %v, want damaged", tc.ref, err)
		}
		if _, err := s.Get(ctx, tc.seq); !errors.Is(err, eventstore.ErrDamaged) {
			t.Fatalf("get seq %d: %v", tc.seq, err)
		}
	}
	if got, err := s.Get(ctx, a1.Seq); err != nil || got.CommitID != "a1" {
		t.Fatalf("get seq %d: %+v, %v", a1.Seq, got, err)
	}

	follow := func(opts eventstore.FollowOptions) ([]eventstore.Commit, error) {
		var got []eventstore.Commit
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		opts.Until = unknown.Seq
		err := s.Follow(ctx, opts, func(_ context.Context, batch []eventstore.Commit) error {
			got = append(got, batch...)
			return nil
		})
		return got, err
	}
	if _, err := follow(eventstore.FollowOptions{}); !errors.Is(err, eventstore.ErrDamaged) || !errors.Is(err, eventstore.ErrCorrupt) {
		t.Fatalf("follow: %v, want damaged", err)
	}
	got, err := follow(eventstore.FollowOptions{DeliverDamaged: true})
	if err != nil || len(got) != 4 {
		t.Fatalf("follow delivering damage: %d commits, %v", len(got), err)
	}
	if d := got[1].Damaged; d == nil || got[1].Seq != garbage || got[1].Ref() != a || d.SetAside != nil || len(got[1].Events) != 0 {
		t.Fatalf("delivered garbage as %+v", got[1])
	}
	if got[2].Damaged == nil || got[2].Ref() != b || got[3].Damaged != nil {
		t.Fatalf("delivered %+v, %+v", got[2], got[3])
	}

	// Set aside, every one loads again, and appends chain past them.
	for _, seq := range []eventstore.Seq{garbage, copied, unknown.Seq} {
		if _, _, err := s.SetAside(ctx, seq, "test", "operator"); err != nil {
			t.Fatalf("set aside seq %d: %v", seq, err)
		}
	}
	commits, err := s.Load(ctx, a, 0)
	if err != nil || len(commits) != 2 || commits[0].CommitID != "a1" || commits[1].Seq != garbage || commits[1].Damaged == nil ||
		commits[1].Damaged.SetAside == nil || commits[1].PrevSeq != a1.Seq {
		t.Fatalf("load A: %+v, %v", commits, err)
	}
	for _, ref := range []eventstore.Ref{a, b, c} {
		commits, err := s.Load(ctx, ref, 0)
		if err != nil {
			t.Fatalf("load %s: %v", ref, err)
		}
		last := commits[len(commits)-1]
		version := 0
		for _, c := range commits {
			version += len(c.Events)
		}
		next, err := s.Append(ctx, ref, last.Seq, version, "y-"+ref.ID, []eventstore.Envelope{storetest.Event("t", 3)})
		if err != nil {
			t.Fatalf("append to %s after the set-aside: %v", ref, err)
		}
		again, err := s.Load(ctx, ref, 0)
		if err != nil || again[len(again)-1].Seq != next.Seq || len(again) != len(commits)+1 {
			t.Fatalf("load %s after the append: %+v, %v", ref, again, err)
		}
	}
	got, err = follow(eventstore.FollowOptions{DeliverDamaged: true})
	if err != nil || got[1].Damaged == nil || got[1].Damaged.SetAside == nil || got[1].Damaged.SetAside.Reason != "test" {
		t.Fatalf("follow after the set-aside: %+v, %v", got, err)
	}
	// A tool that binds the stream sees the set-aside records too.
	bound, err := eventstore.Bind(ctx, js, eventstore.Config{Check: knownTypes})
	if err != nil {
		t.Fatal(err)
	}
	if commits, err := bound.Load(ctx, a, 0); err != nil || len(commits) != 3 || commits[1].Damaged == nil {
		t.Fatalf("load A through Bind: %+v, %v", commits, err)
	}
	if list, err := bound.SetAsides(ctx); err != nil || len(list) != 3 || list[0].Seq != garbage || list[0].Actor != "operator" {
		t.Fatalf("set-asides through Bind: %+v, %v", list, err)
	}
}
