package server_test

import (
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/client"
	"github.com/bankbook/bankbook/engine"
	"github.com/bankbook/bankbook/internal/testenv"
)

// TestConnectionLimits: one identity's connections (a leak, a flood) stop
// at its own limit, and the other identities still connect and are
// answered. Connections of any kind, those that never authenticate
// included, stop at the server's limit (kept below the open-file limit):
// new ones are refused, the clients already connected are still answered,
// and once the flood ends clients connect again. /metrics shows the counts.
func TestConnectionLimits(t *testing.T) {
	const most, perIdentity = 64, 3
	e := startEngine(t, func(c *engine.Config) { c.MaxConnections, c.MaxConnectionsPerIdentity = most, perIdentity })
	feed := e.SeedFile(auth.Feed)
	for range perIdentity {
		connectAs(t, e.ClientURL(), feed)
	}
	if c, err := client.Connect(e.ClientURL(), testenv.NKey(t, feed)); err == nil || !strings.Contains(err.Error(), "maximum account active connections exceeded") {
		if err == nil {
			c.Close()
		}
		t.Fatalf("connection %d of one identity allowed %d: %v, want it refused", perIdentity+1, perIdentity, err)
	}
	op := connectAs(t, e.ClientURL(), e.SeedFile(auth.Operator))
	var tb api.TrialBalanceReply
	if _, err := op.Call(ctxT(t), subjTrial, struct{}{}, &tb, nil); err != nil {
		t.Fatalf("another identity, with one identity at its limit: %v", err)
	}

	// Raw TCP connections that never authenticate, twice as many as the
	// server takes, at once: the server sends each its INFO, and those
	// past its limit an error, and closes them; the others it closes
	// after its authentication timeout.
	addr := strings.TrimPrefix(e.ClientURL(), "nats://")
	refusals := make(chan bool, 2*most)
	for range 2 * most {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		t.Cleanup(func() { _ = c.Close() })
		go func() {
			_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
			all, _ := io.ReadAll(c)
			refusals <- strings.Contains(string(all), "maximum connections exceeded")
		}()
	}
	refused := 0
	for range 2 * most {
		if <-refusals {
			refused++
		}
	}
	// The engine's own connections and the test's clients hold slots too.
	if refused < most {
		t.Fatalf("%d of %d connections refused by a server limited to %d, want at least %d", refused, 2*most, most, most)
	}
	if _, err := op.Call(ctxT(t), subjTrial, struct{}{}, &tb, nil); err != nil {
		t.Fatalf("a client connected before the server's limit was reached: %v", err)
	}
	_, metrics := e.get(t, "/metrics")
	if v, ok := metricValue(metrics, `bankbook_embedded_connections{count="max"}`); !ok || v != most {
		t.Errorf("bankbook_embedded_connections max = %v (present %v), want %d", v, ok, most)
	}
	if v, ok := metricValue(metrics, `bankbook_embedded_connections{count="open"}`); !ok || v < perIdentity+1 || v > most {
		t.Errorf("bankbook_embedded_connections open = %v (present %v), want at least the test's clients and at most %d", v, ok, most)
	}
	// Connections that never authenticate are closed by the server after
	// its authentication timeout: the flood's slots come back.
	testenv.CheckFor(t, 20*time.Second, func() error {
		c, err := client.Connect(e.ClientURL(), testenv.NKey(t, e.SeedFile(auth.Operator)))
		if err != nil {
			return fmt.Errorf("connect after the flood: %w", err)
		}
		c.Close()
		return nil
	})
}
