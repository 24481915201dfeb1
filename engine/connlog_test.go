package engine

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/internal/testenv"
)

// A connection that closes while the engine is not stopping (here: it gave
// up reconnecting to a server that went away) is logged as an error with
// its last error; one the engine closes itself is not.
func TestConnectionClosedForGoodIsLoggedAsAnError(t *testing.T) {
	srv := testenv.Start(t, "")
	var logs testenv.SyncBuffer
	var health connHealth
	nc, err := srv.Server.Connect(append(connOptions(zerolog.New(&logs), func() bool { return false }, &health),
		nats.MaxReconnects(1), nats.ReconnectWait(10*time.Millisecond))...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	srv.Shutdown()
	testenv.Eventually(t, 10*time.Second, "the connection closed and logged", func() bool {
		return nc.IsClosed() && strings.Contains(logs.String(), "closed for good")
	})
	if !strings.Contains(logs.String(), `"level":"error"`) {
		t.Fatalf("the close was not logged as an error:\n%s", logs.String())
	}
	if st := natsStatus(map[string]*connHealth{"event store": &health}); st.Ready || !strings.Contains(st.Reason, "the event store connection is closed") {
		t.Fatalf("readiness of a connection closed for good: %+v", st)
	}
}

// The readiness of the NATS connections: ready while every one is
// connected, failing (naming it) while one is reconnecting, ready again
// once it has.
func TestNATSStatusNamesAConnectionThatIsDown(t *testing.T) {
	srv := testenv.Start(t, "")
	var health, other connHealth
	conns := map[string]*connHealth{"event store": &health, "service": &other}
	nc, err := srv.Server.Connect(connOptions(zerolog.Nop(), func() bool { return false }, &health)...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if st := natsStatus(conns); !st.Ready || st.Name != "nats" {
		t.Fatalf("connected: %+v", st)
	}
	// The server drops the connection, as it does a slow consumer: it
	// reconnects.
	testenv.Eventually(t, 10*time.Second, "the connection reported down", func() bool {
		id, err := nc.GetClientID()
		if err == nil {
			_ = srv.DisconnectClient(id)
		}
		st := natsStatus(conns)
		return !st.Ready && st.State == "failing" && strings.Contains(st.Reason, "the event store connection is reconnecting")
	})
	testenv.Eventually(t, 10*time.Second, "the connection reported back", func() bool { return natsStatus(conns).Ready })
}
