package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/engine"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/internal/testenv"
)

// Read models that held the whole stream of the engine's start, and then
// stopped (here on an event that does not fit them), stay caught up for
// queries: each query's own wait tells its client what they lack. That no
// query happened to come while they were ready must not change it.
func TestReadModelsThatStoppedAfterCatchingUpServeQueries(t *testing.T) {
	e, err := engine.Start(context.Background(), testConfig(t), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = e.Stop(context.Background()) }()
	data, err := json.Marshal(domain.DepositReopened{DepositID: "dep_never_recorded", Amount: 1000, PayoutID: "po_x", Reason: "test", ReopenedAt: time.Now().UTC()})
	if err != nil {
		t.Fatal(err)
	}
	env := eventstore.Envelope{EventID: "ev-misfit", EventType: domain.DepositReopened{}.EventType(), SchemaVersion: 1,
		OccurredAt: time.Now().UTC(), Actor: "test", CorrelationID: "c", Data: data}
	if _, err := e.Events.Append(context.Background(), eventstore.Ref{Type: domain.AggregateDeposit, ID: "dep_never_recorded"}, 0, 0, "misfit", []eventstore.Envelope{env}); err != nil {
		t.Fatal(err)
	}
	testenv.CheckFor(t, 20*time.Second, func() error {
		if ready, why := e.Runner.Ready(); ready || !strings.Contains(why, "never recorded") {
			return fmt.Errorf("read models ready %v (%s), want stopped on the misfit", ready, why)
		}
		return nil
	})
	if err := engine.ReadModelsCaughtUpForQueries(e); err != nil {
		t.Fatalf("read models that caught up and then stopped, for queries: %v, want caught up", err)
	}
}
