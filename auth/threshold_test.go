package auth_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/bankbook/bankbook/auth"
)

// TestServiceExportsForgetRepliesSoon: the server the rendered accounts
// configure keeps a request's reply mapping for 5 s on $SRV (a stream
// export, kept even once answered) and 30 s on every other export, not
// nats-server's two minutes, which let a flood of small requests hold
// gigabytes.
func TestServiceExportsForgetRepliesSoon(t *testing.T) {
	ids, err := auth.Ensure(filepath.Join(t.TempDir(), "auth"))
	if err != nil {
		t.Fatal(err)
	}
	conf, err := auth.Render(auth.Tenant{Users: ids, Simulators: true})
	if err != nil {
		t.Fatal(err)
	}
	opts := &server.Options{}
	if err := opts.ProcessConfigString(string(conf)); err != nil {
		t.Fatal(err)
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	acc, err := srv.LookupAccount(auth.EngineAccount)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]time.Duration{
		"$SRV.>":         5 * time.Second,
		"bankbook.q.>":   30 * time.Second,
		"bankbook.sim.>": 30 * time.Second,
		"$JS.API.DIRECT.GET." + auth.DefaultStream: 30 * time.Second,
	}
	for _, id := range ids {
		if id.Role == auth.App || id.Role == auth.Feed || id.Role == auth.Operator {
			want[auth.FromSubject(auth.Account("", id), "bankbook.cmd.>")] = 30 * time.Second
		}
	}
	for export, d := range want {
		got, err := acc.ServiceExportResponseThreshold(export)
		if err != nil || got != d {
			t.Errorf("export %s: response threshold %v (%v), want %v", export, got, err, d)
		}
	}
}
