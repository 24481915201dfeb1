package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/engine"
	"github.com/bankbook/bankbook/eventstore"
)

// startNATSServer runs a real nats-server from the accounts block that
// `bankbook auth config` printed, with JetStream, on a free port.
func startNATSServer(t *testing.T, accounts string) *server.Server {
	t.Helper()
	opts := &server.Options{}
	if err := opts.ProcessConfigString(accounts); err != nil {
		t.Fatalf("nats-server refused the generated configuration: %v\n%s", err, accounts)
	}
	opts.Host, opts.Port = "127.0.0.1", server.RANDOM_PORT
	opts.JetStream, opts.StoreDir, opts.NoSigs, opts.NoLog = true, t.TempDir(), true, true
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10e9) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return ns
}

// startExternalEngine joins url as the engine identity kept in dataDir/auth.
func startExternalEngine(t *testing.T, url, dataDir, tenant string) *engine.Engine {
	t.Helper()
	cfg := engine.Defaults()
	cfg.DataDir, cfg.Listen, cfg.HTTPListen = dataDir, "", "127.0.0.1:0"
	cfg.NATSURL, cfg.NKey, cfg.Tenant = url, auth.SeedFile(filepath.Join(dataDir, "auth"), auth.Engine), tenant
	e, err := engine.Start(context.Background(), cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Stop(context.Background()) })
	return e
}

// The generated configuration runs a real nats-server; an engine joins it
// with --nats-nkey, and each role can do what API.md says and no more.
func TestAuthConfigRunsAnExternalServer(t *testing.T) {
	dataDir := t.TempDir()
	conf, err := cli(t, "auth", "config", "--data-dir", dataDir)
	if err != nil {
		t.Fatal(err)
	}
	ns := startNATSServer(t, conf)
	e := startExternalEngine(t, ns.ClientURL(), dataDir, "")
	seed := func(r auth.Role) string { return auth.SeedFile(filepath.Join(dataDir, "auth"), r) }
	url := "--nats-url=" + ns.ClientURL()

	out, err := cli(t, "order", "submit", url, "--nkey", seed(auth.App), "--buyer-id", "u1", "--buyer-name", "김민수", "--amount", "1000", "--json")
	if err != nil {
		t.Fatalf("app submit: %v", err)
	}
	var sub api.SubmitOrderReply
	if err := json.Unmarshal([]byte(out), &sub); err != nil {
		t.Fatal(err)
	}
	commits, err := e.Events.Load(context.Background(), eventstore.Ref{Type: "order", ID: sub.OrderID}, 0)
	if err != nil || len(commits) != 1 {
		t.Fatalf("load: %v", err)
	}
	if actor := commits[0].Events[0].Actor; actor != "app" {
		t.Errorf("actor %q, want app", actor)
	}
	_, err = cli(t, "order", "submit", url, "--nkey", seed(auth.Feed), "--buyer-id", "u1", "--buyer-name", "김민수", "--amount", "1000")
	if exitCode(err) != exitRefused || !strings.Contains(err.Error(), "forbidden") {
		t.Errorf("feed submit: want refused (forbidden), got %v", err)
	}
	if _, err := cli(t, "order", "get", url, "--nkey", seed(auth.Auditor), "--order-id", sub.OrderID); err != nil {
		t.Errorf("auditor order get: %v", err)
	}
	_, err = cli(t, "order", "get", url, "--order-id", sub.OrderID)
	if err == nil {
		t.Error("a client without credentials was served")
	}
}

// Two tenants on one NATS server: each has its own engine, streams and
// buckets, and neither can see the other's orders or events.
func TestTenantsOnOneServerShareNothing(t *testing.T) {
	dirA, dirB := t.TempDir(), t.TempDir()
	conf, err := cli(t, "auth", "config", "--tenant", "acme="+dirA, "--tenant", "bolt="+dirB)
	if err != nil {
		t.Fatal(err)
	}
	ns := startNATSServer(t, conf)
	a := startExternalEngine(t, ns.ClientURL(), dirA, "acme")
	b := startExternalEngine(t, ns.ClientURL(), dirB, "bolt")
	url := "--nats-url=" + ns.ClientURL()
	appOf := func(dir string) string { return auth.SeedFile(filepath.Join(dir, "auth"), auth.App) }

	submit := func(dir string) api.SubmitOrderReply {
		t.Helper()
		out, err := cli(t, "order", "submit", url, "--nkey", appOf(dir), "--buyer-id", "u1", "--buyer-name", "이영희", "--amount", "5000", "--json")
		if err != nil {
			t.Fatalf("submit: %v", err)
		}
		var sub api.SubmitOrderReply
		if err := json.Unmarshal([]byte(out), &sub); err != nil {
			t.Fatal(err)
		}
		return sub
	}
	subA, subB := submit(dirA), submit(dirB)
	if _, err := cli(t, "order", "get", url, "--nkey", appOf(dirA), "--order-id", subA.OrderID, "--min-seq", "1"); err != nil {
		t.Fatalf("acme reads its own order: %v", err)
	}
	if _, err := cli(t, "order", "get", url, "--nkey", appOf(dirB), "--order-id", subA.OrderID); exitCode(err) != exitNotFound {
		t.Errorf("bolt reads acme's order: want not found, got %v", err)
	}
	if _, err := cli(t, "order", "get", url, "--nkey", appOf(dirA), "--order-id", subB.OrderID); exitCode(err) != exitNotFound {
		t.Errorf("acme reads bolt's order: want not found, got %v", err)
	}
	ctx := context.Background()
	for _, c := range []struct {
		e     *engine.Engine
		own   string
		other string
	}{{a, subA.OrderID, subB.OrderID}, {b, subB.OrderID, subA.OrderID}} {
		if commits, err := c.e.Events.Load(ctx, eventstore.Ref{Type: "order", ID: c.own}, 0); err != nil || len(commits) != 1 {
			t.Errorf("own order not in own stream: %v", err)
		} else if actor := commits[0].Events[0].Actor; actor != "app" {
			t.Errorf("actor %q, want app (the tenant prefix stripped)", actor)
		}
		if commits, _ := c.e.Events.Load(ctx, eventstore.Ref{Type: "order", ID: c.other}, 0); len(commits) != 0 {
			t.Errorf("the other tenant's order is in this tenant's stream")
		}
	}
}
