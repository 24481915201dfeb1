package testenv

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/domain"
)

// BusinessAggregates are the aggregate types requests write to. Tests that
// check what a request wrote count only these: the notify reactor records a
// notification a moment after the event that calls for it, whenever that
// happens to be.
var BusinessAggregates = []string{domain.AggregateOrder, domain.AggregateDeposit, domain.AggregateWallet, domain.AggregatePayout, domain.AggregateLink, domain.AggregateReconciliation}

// Writes is what the aggregates of some types hold in an event stream: the
// sequence of their last commit (0: none) and how many commits.
type Writes struct {
	Last  uint64
	Count uint64
}

// StreamWrites reads Writes for types from the event stream named stream
// (aggregate subjects prefix.<type>.<id>), through js (the engine identity:
// only it reads the stream's state).
func StreamWrites(t testing.TB, js jetstream.JetStream, stream, prefix string, types ...string) Writes {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	var w Writes
	for _, typ := range types {
		filter := prefix + "." + typ + ".>"
		msg, err := s.GetLastMsgForSubject(ctx, filter)
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
		case err != nil:
			t.Fatalf("last commit of %s: %v", typ, err)
		default:
			w.Last = max(w.Last, msg.Sequence)
		}
		info, err := s.Info(ctx, jetstream.WithSubjectFilter(filter))
		if err != nil {
			t.Fatalf("commits of %s: %v", typ, err)
		}
		for _, n := range info.State.Subjects {
			w.Count += n
		}
	}
	return w
}
