package engine

import (
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/internal/testenv"
)

// The storage condition says so when the engine account has no JetStream
// on the NATS server: the server runs without it (the JetStream API then
// has no responders), or runs it for other accounts only.
func TestStorageSaysJetStreamIsNotEnabled(t *testing.T) {
	dir := t.TempDir()
	ids, err := auth.Ensure(dir)
	if err != nil {
		t.Fatal(err)
	}
	accounts, err := auth.Render(auth.Tenant{Users: ids})
	if err != nil {
		t.Fatal(err)
	}
	withoutJetStream := string(accounts)
	// The engine account of the generated block, with JetStream taken away
	// on a server that runs it.
	accountOff := strings.Replace(withoutJetStream, "jetstream: enabled", "jetstream: disabled", 1)
	if accountOff == withoutJetStream {
		t.Fatalf("no engine account with JetStream in the generated block:\n%s", accounts)
	}
	for _, c := range []struct {
		name      string
		config    string
		jetStream bool
	}{
		{"server without JetStream", withoutJetStream, false},
		{"engine account without JetStream", accountOff, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			opts := &natsserver.Options{}
			if err := opts.ProcessConfigString(c.config); err != nil {
				t.Fatalf("nats-server refused the configuration: %v\n%s", err, c.config)
			}
			opts.Host, opts.Port, opts.NoSigs, opts.NoLog = "127.0.0.1", natsserver.RANDOM_PORT, true, true
			opts.JetStream, opts.StoreDir = c.jetStream, t.TempDir()
			ns, err := natsserver.NewServer(opts)
			if err != nil {
				t.Fatal(err)
			}
			go ns.Start()
			if !ns.ReadyForConnections(10 * time.Second) {
				t.Fatal("nats-server not ready")
			}
			t.Cleanup(ns.Shutdown)
			nc, _ := testenv.Dial(t, ns.ClientURL(), testenv.NKey(t, auth.SeedFile(dir, auth.Engine)))
			js, err := jetstream.New(nc)
			if err != nil {
				t.Fatal(err)
			}
			st := noteStreams(js, 1, zerolog.Nop()).storage(t.Context(), "")
			if st.Ready || st.Name != partStorage || !strings.Contains(st.Reason, "JetStream is not enabled for this account on the NATS server") {
				t.Fatalf("storage without JetStream: %+v, want failing, saying so", st)
			}
		})
	}
}
