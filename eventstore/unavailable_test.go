package eventstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/eventstore/storetest"
	"github.com/bankbook/bankbook/internal/testcluster"
	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/internal/transient"
)

// TestUnavailableWhenTheServerIsGone: with the server shut down, Append,
// Load and LastSeq retry until their deadline and then fail with
// ErrUnavailable (which the API answers 503), never another error.
func TestUnavailableWhenTheServerIsGone(t *testing.T) {
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	s := open(t, js, eventstore.Config{AttemptTimeout: 100 * time.Millisecond})
	ref := eventstore.Ref{Type: "order", ID: "o1"}
	if _, err := storetest.AppendOne(t.Context(), s, ref, "c1", storetest.Event("t", 1)); err != nil {
		t.Fatal(err)
	}
	srv.Shutdown()

	deadline := func() context.Context {
		ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
		t.Cleanup(cancel)
		return ctx
	}
	_, appendErr := storetest.AppendOne(deadline(), s, ref, "c2", storetest.Event("t", 2))
	_, loadErr := s.Load(deadline(), ref, 0)
	_, lastErr := s.LastSeq(deadline())
	for name, err := range map[string]error{"append": appendErr, "load": loadErr, "last seq": lastErr} {
		if !errors.Is(err, eventstore.ErrUnavailable) || !errors.Is(err, transient.ErrUnavailable) || !transient.Is(err) {
			t.Errorf("%s with the server gone: %v, want ErrUnavailable", name, err)
		}
	}
}

// TestAppendOutlastsALostQuorum: an append to a replicated stream whose
// quorum is lost is published again, attempt after attempt, until a node
// comes back; it then succeeds, and the commit is stored once, although
// earlier attempts may have reached the stream's leader.
func TestAppendOutlastsALostQuorum(t *testing.T) {
	c := testcluster.Start(t, 3, "")
	nc, err := nats.Connect(c.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s := open(t, js, eventstore.Config{Replicas: 3, AttemptTimeout: 300 * time.Millisecond})
	ref := eventstore.Ref{Type: "order", ID: "o1"}
	first, err := storetest.AppendOne(t.Context(), s, ref, "c1", storetest.Event("t", 1))
	if err != nil {
		t.Fatal(err)
	}
	// Keep the stream's leader and stop the others: no quorum, no acks.
	leader := c.WaitStreamLeader(testcluster.GlobalAccount, s.Config().Stream, 5*time.Second)
	var down []string
	for _, name := range c.Names() {
		if name != leader {
			down = append(down, name)
			c.Shutdown(name) // the client reconnects to the leader
		}
	}

	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Second)
	defer cancel()
	type result struct {
		c   eventstore.Commit
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := s.Append(ctx, ref, first.Seq, 1, "c2", []eventstore.Envelope{storetest.Event("t", 2)})
		done <- result{c, err}
	}()
	select {
	case r := <-done:
		t.Fatalf("append without quorum returned %+v, %v; want it to wait for a quorum", r.c, r.err)
	case <-time.After(2 * time.Second): // several attempts of 300ms each went unanswered
	}
	// Bring the stopped nodes back.
	c.Restart(down...)
	r := <-done
	if r.err != nil {
		t.Fatalf("append after the quorum came back: %v", r.err)
	}
	commits, err := s.Load(t.Context(), ref, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(commits) != 2 || commits[1].CommitID != "c2" || commits[1].Seq != r.c.Seq {
		t.Fatalf("loaded %d commits (%+v), want c1 then c2 once at seq %d", len(commits), commits, r.c.Seq)
	}
}
