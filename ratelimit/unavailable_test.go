package ratelimit_test

import (
	"context"
	"errors"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/embedded"
	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/internal/transient"
	"github.com/bankbook/bankbook/ratelimit"
)

// restart starts srv's server again on the same store directory, port and
// identities (so that connected clients reconnect), and shuts it down when
// the test ends.
func restart(t *testing.T, srv *testenv.Server) *embedded.Server {
	t.Helper()
	u, err := url.Parse(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	ids, err := auth.Ensure(srv.AuthDir)
	if err != nil {
		t.Fatal(err)
	}
	accounts, err := auth.Render(auth.Tenant{Users: ids, Simulators: true})
	if err != nil {
		t.Fatal(err)
	}
	s, err := embedded.Start(embedded.Config{StoreDir: srv.Dir, Listen: net.JoinHostPort("127.0.0.1", u.Port()),
		Durability: embedded.Fast, Accounts: accounts, EngineSeed: auth.SeedFile(srv.AuthDir, auth.Engine)})
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// TestUnavailableFailsClosedThenRecovers: while the server is down every
// call fails with ErrUnavailable (no slot is given), and after it restarts
// on the same store the acquirers carry on; across it all, no rolling
// second holds more than Rate slots.
func TestUnavailableFailsClosedThenRecovers(t *testing.T) {
	srv := testenv.Start(t, "")
	cfg := ratelimit.Config{AttemptTimeout: 100 * time.Millisecond, Timeout: 400 * time.Millisecond}
	lim := ratelimit.Limit{Rate: 20}
	var stores []*ratelimit.Store
	for range 2 {
		nc, err := nats.Connect(srv.ClientURL(), testenv.NKey(t, auth.SeedFile(srv.AuthDir, auth.Engine)),
			nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		s, err := ratelimit.Open(t.Context(), js, cfg)
		if err != nil {
			t.Fatal(err)
		}
		stores = append(stores, s)
	}
	ls := limiters(t, stores, "chat", lim)

	var (
		mu        sync.Mutex
		errs      []error
		reserved  []time.Time
		used      atomic.Int64
		uses      []use
		ctx, stop = context.WithCancel(t.Context())
		done      = make(chan struct{})
	)
	defer stop()
	go func() {
		defer close(done)
		uses, _ = acquirers(t, ctx, ls, acquire{per: 2, maxWait: time.Second, used: &used,
			onErr: func(err error) {
				mu.Lock()
				defer mu.Unlock()
				errs = append(errs, err)
			},
			onReserve: func(at time.Time) {
				mu.Lock()
				defer mu.Unlock()
				reserved = append(reserved, at)
			},
		})
	}()
	errCount := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(errs)
	}
	testenv.Eventually(t, 10*time.Second, "slots used before the outage", func() bool { return used.Load() >= 5 })

	srv.Shutdown()
	down := time.Now()
	testenv.Eventually(t, 10*time.Second, "reservations failing", func() bool { return errCount() >= 4 })
	for name, call := range map[string]func() error{
		"Pause": func() error { return ls[0].Pause(t.Context(), time.Second) },
		"State": func() error { _, err := ls[0].State(t.Context()); return err },
	} {
		if err := call(); !errors.Is(err, ratelimit.ErrUnavailable) || !errors.Is(err, transient.ErrUnavailable) {
			t.Errorf("%s while the server is down: %v, want ErrUnavailable", name, err)
		}
	}
	up := time.Now()
	restart(t, srv)
	before := used.Load()
	testenv.Eventually(t, 20*time.Second, "slots used after the restart", func() bool { return used.Load() >= before+5 })
	stop()
	<-done

	mu.Lock()
	defer mu.Unlock()
	for _, err := range errs {
		if !errors.Is(err, ratelimit.ErrUnavailable) || !errors.Is(err, transient.ErrUnavailable) {
			t.Errorf("Reserve failed with %v, want ErrUnavailable", err)
		}
	}
	// A reservation answered just before the shutdown may return a little
	// after it; none may be given while the server is down.
	for _, at := range reserved {
		if at.After(down.Add(300*time.Millisecond)) && at.Before(up) {
			t.Errorf("a slot was reserved %v into the outage", at.Sub(down))
		}
	}
	checkBudget(t, uses, lim, 20)
	t.Logf("%d uses, %d errors, outage %v", len(uses), len(errs), up.Sub(down))
}
