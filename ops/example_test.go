package ops_test

import (
	"context"
	"time"

	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/ops"
)

// An engine makes one Metrics, hands it to the API server for
// ObserveRequest, points its sources at the parts, and runs the ops server
// as one more supervised part.
func ExampleNew() {
	log := zerolog.Nop()
	metrics := ops.NewMetrics(&ops.MetricsOptions{Log: log})
	metrics.DeclareEndpoints("order.submit", "order.cancel")

	// The supervisor's view of its parts (here: fixed).
	supervised := ops.ReadinessFunc(func(context.Context) ([]ops.PartStatus, error) {
		return []ops.PartStatus{{Name: "projections", Ready: true, State: ops.StateRunning}}, nil
	})
	metrics.SetSources(ops.Sources{
		ProjectionLag: func(context.Context) (uint64, error) { return 0, nil },
		Parts:         supervised,
	})

	srv, err := ops.New(ops.Config{Metrics: metrics, Readiness: supervised, Log: log})
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	_ = srv.Run(ctx) // serves on ops.DefaultListen until ctx ends

	// In the API server, after each reply:
	metrics.ObserveRequest("order.submit", 200, 3*time.Millisecond)
}
