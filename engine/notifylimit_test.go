package engine_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/engine"
	"github.com/bankbook/bankbook/ratelimit"
)

// Each instance spaces its reservations by its own --notify-rate, so one
// with a higher rate raises the rate every instance shares: an engine that
// starts with another limit than the shared key's last writer says so.
func TestAnEngineWithAnotherNotifyRateWarns(t *testing.T) {
	cfg := testConfig(t)
	e, err := engine.Start(context.Background(), cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	// Another instance, at 5 per second, reserves a slot.
	nc, js := engineJS(t, e)
	ctx := context.Background()
	limits, err := ratelimit.Open(ctx, js, ratelimit.Config{})
	if err != nil {
		t.Fatal(err)
	}
	other, err := limits.Limiter("chat", ratelimit.Limit{Rate: 5, Burst: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Reserve(ctx, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	if err := e.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	start := func(rate float64) string {
		t.Helper()
		c := cfg
		c.NotifyRate = rate
		return startAndStop(t, c)
	}
	const warning = "the shared notification limit was last written with another"
	if logs := start(20); !strings.Contains(logs, warning) || !strings.Contains(logs, `"shared_rate":5`) {
		t.Fatalf("no warning at rate 20 against the key's 5:\n%s", logs)
	}
	if logs := start(5); strings.Contains(logs, warning) {
		t.Fatalf("a warning at the same rate:\n%s", logs)
	}
}
