package notify_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/chat"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/notify"
	"github.com/bankbook/bankbook/worker"
)

// gatedDown is a provider whose in-doubt check always fails (the list API
// down for this dispatcher), held until release while gated.
type gatedDown struct {
	chat.Provider
	gate    chan struct{} // nil: not gated
	entered chan struct{}
}

func (g *gatedDown) Delivered(ctx context.Context, m chat.Message, since time.Time) (chat.Receipt, bool, error) {
	if g.gate != nil {
		close(g.entered)
		<-g.gate
	}
	return chat.Receipt{}, false, fmt.Errorf("%w: %w: http 502", chat.ErrUnavailable, chat.ErrServerError)
}

// TestADoubtSettledElsewhereKeepsItsCommit: dispatcher A holds the commit
// of a notification in doubt whose checks have failed for the allowance;
// while A asks the provider once more, dispatcher B (the same commit
// redelivered) settles the doubt, attempts and fails again. A's
// DoubtUnsettled then records nothing (the version moved on), and A must
// not acknowledge the commit that keeps the notification pending: it
// waits, and the commit comes back.
func TestADoubtSettledElsewhereKeepsItsCommit(t *testing.T) {
	w := newDispatchWorld(t)
	cfg := func(p chat.Provider) notify.Config {
		return notify.Config{
			Codec: domain.Events(), Notifications: w.notes, Provider: p, Limiter: w.limiter(t), Log: zerolog.New(io.Discard),
			MaxAttempts: 3, MinBackoff: 100 * time.Millisecond, MaxBackoff: 400 * time.Millisecond,
			MaxSlotWait: 50 * time.Millisecond, AttemptLease: 100 * time.Millisecond, SendTimeout: time.Second, ClockSkew: time.Millisecond,
		}
	}
	down := &gatedDown{Provider: w.provider}
	a, err := notify.New(cfg(down))
	if err != nil {
		t.Fatal(err)
	}
	b, err := notify.New(cfg(w.provider))
	if err != nil {
		t.Fatal(err)
	}
	const rcpt = "store:s-race"
	id, c := w.pending(t, rcpt)
	ctx := context.Background()
	// First send answered 502: in doubt.
	w.sim.FailNext(1, http.StatusBadGateway)
	if err := b.Dispatch(ctx, c); !isWait(err) {
		t.Fatalf("first dispatch: %v", err)
	}
	time.Sleep(1200 * time.Millisecond) // past the doubt's wait (1.101 s)
	// A's first failed check starts its count.
	if err := a.Dispatch(ctx, c); !isWait(err) {
		t.Fatalf("A's first check: %v", err)
	}
	time.Sleep(300 * time.Millisecond) // past the allowance (150 ms)
	down.gate, down.entered = make(chan struct{}), make(chan struct{})
	aDone := make(chan error, 1)
	go func() { aDone <- a.Dispatch(ctx, c) }()
	<-down.entered // A has read the notification and is asking the provider
	// B (the same commit, redelivered) checks: not there; attempts; 502 again.
	w.sim.FailNext(1, http.StatusBadGateway)
	errB := b.Dispatch(ctx, c)
	close(down.gate)
	errA := <-aDone
	note, err := w.notes.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("A: %v; B: %v; notification status %s attempts %d in_doubt %v", errA, errB, note.Status, note.Attempts, note.InDoubt)
	if note.Status != domain.NotificationStatusPending || !isWait(errA) {
		t.Errorf("dispatcher A: %v with the notification %s; want a wait while it is pending (an acknowledged commit never comes back)", errA, note.Status)
	}
}

func isWait(err error) bool {
	ra, ok := errors.AsType[*worker.RetryAfterError](err)
	return ok && ra.Err == nil
}
