package timers_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/timers"
)

// A firing the work is done with leaves the stream: under limits retention
// it would stay for 90 days, about two per order. One that asked to wait
// stays until it is done; a schedule not yet due stays too.
func TestHandledFiringsLeaveTheStream(t *testing.T) {
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	ctx := context.Background()
	tm, err := timers.Open(ctx, js, timers.Config{Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	loop, err := tm.Worker(ctx, rec.handler(func(d timers.Due) time.Duration {
		if d.ID == "waits" && d.Delivered == 1 {
			return 300 * time.Millisecond
		}
		return 0
	}))
	if err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, loop.Run)
	for _, id := range []string{"o1", "o2", "waits"} {
		if err := tm.Arm(ctx, "order", id, time.Now(), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := tm.Arm(ctx, "order", "later", time.Now().Add(time.Hour), nil); err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, "BANKBOOK_TIMERS")
	if err != nil {
		t.Fatal(err)
	}
	count := func(filter string) uint64 {
		info, err := stream.Info(ctx, jetstream.WithSubjectFilter(filter))
		if err != nil {
			t.Fatal(err)
		}
		var n uint64
		for _, c := range info.State.Subjects {
			n += c
		}
		return n
	}
	testenv.CheckFor(t, 15*time.Second, func() error {
		if n := len(rec.all()); n < 4 {
			return fmt.Errorf("%d firings handled", n)
		}
		if n := count("bankbook.timer.due.>"); n != 0 {
			return fmt.Errorf("%d handled firings still in the stream", n)
		}
		// Removed before its ack, a firing is still acknowledged.
		if st := loop.Stats(); st.Processed != 3 || st.InFlight != 0 {
			return fmt.Errorf("loop: %+v, want the 3 firings acknowledged", st)
		}
		return nil
	})
	if n := count("bankbook.timer.sched.>"); n != 1 {
		t.Fatalf("%d schedules stored, want the one not yet due", n)
	}
}
