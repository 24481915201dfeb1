package auth_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/bankbook/bankbook/auth"
)

// TestServiceExportsForgetRepliesSoon: the server the rendered accounts
// configure keeps a request's reply mapping for 5 s on $SRV and 10 s on the
// event stream's batch direct gets (stream exports, kept even once
// answered) and 30 s on every other export, not
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
		"$JS.API.DIRECT.GET." + auth.DefaultStream:        10 * time.Second,
		"$JS.API.DIRECT.GET." + auth.DefaultStream + ".>": 30 * time.Second,
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

// TestExportsAreImportedOnlyByTheTenantsAccounts: an account the rendered
// configuration does not make for the tenant (one added by hand, or another
// tenant's) cannot import the engine's queries, its monitoring verbs or its
// event stream: the server refuses such a configuration.
func TestExportsAreImportedOnlyByTheTenantsAccounts(t *testing.T) {
	ids, err := auth.Ensure(filepath.Join(t.TempDir(), "auth"))
	if err != nil {
		t.Fatal(err)
	}
	others, err := auth.Ensure(filepath.Join(t.TempDir(), "other"))
	if err != nil {
		t.Fatal(err)
	}
	rendered, err := auth.Render(auth.Tenant{Users: ids, Simulators: true}, auth.Tenant{Name: "other", Users: others, Simulators: true})
	if err != nil {
		t.Fatal(err)
	}
	conf := string(rendered)
	if err := (&server.Options{}).ProcessConfigString(conf); err != nil {
		t.Fatalf("the rendered configuration: %v", err)
	}
	// The other tenant's auditor's imports, where a line can be added.
	at := strings.Index(conf, `"other_auditor" {`)
	at += strings.Index(conf[at:], "imports: [") + len("imports: [")
	for _, subject := range []string{"bankbook.q.>", "$SRV.>", "bankbook.sim.>",
		"$JS.API.DIRECT.GET." + auth.DefaultStream, "$JS.API.DIRECT.GET." + auth.DefaultStream + ".>"} {
		imp := fmt.Sprintf("{service: {account: %q, subject: %q}}", auth.EngineAccount, subject)
		stranger := strings.TrimSuffix(conf, "}\n") + fmt.Sprintf("  stranger { users: [{user: s, password: s}], imports: [%s] }\n}\n", imp)
		if err := (&server.Options{}).ProcessConfigString(stranger); err == nil {
			t.Errorf("an account added by hand imported %s", subject)
		}
		otherTenant := conf[:at] + "\n      " + imp + conf[at:]
		if err := (&server.Options{}).ProcessConfigString(otherTenant); err == nil {
			t.Errorf("another tenant's auditor imported %s", subject)
		}
	}
}
