package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/engine"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/internal/transient"
	"github.com/bankbook/bankbook/ops"
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

// An engine whose seed puts it in another account than its tenant's engine
// account (another tenant's seed, a --tenant misspelt or left out) does not
// start: it would join that account's engines and answer a share of its
// commands 403 forbidden (their accounts lack the tenant prefix it strips),
// or record them under the account's full name. It is refused at once,
// naming the account and the tenant; waiting does not mend it.
func TestAnEngineOutsideItsTenantsAccountDoesNotStart(t *testing.T) {
	dirA, dirB := t.TempDir(), t.TempDir()
	conf, err := cli(t, "auth", "config", "--tenant", "acme="+dirA, "--tenant", "bolt="+dirB)
	if err != nil {
		t.Fatal(err)
	}
	ns := startNATSServer(t, conf)
	for _, c := range []struct {
		name, seedDir, tenant string
		want                  []string
	}{
		{"another tenant's seed", dirB, "acme", []string{"bolt_ENGINE", `"acme"`}},
		{"a tenant the server does not have", dirA, "zeta", []string{"acme_ENGINE", `"zeta"`}},
		{"no tenant", dirA, "", []string{"acme_ENGINE", "--tenant acme"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := engine.Defaults()
			cfg.DataDir, cfg.Listen, cfg.HTTPListen = t.TempDir(), "", "off"
			cfg.NATSURL, cfg.NKey, cfg.Tenant = ns.ClientURL(), auth.SeedFile(filepath.Join(c.seedDir, "auth"), auth.Engine), c.tenant
			began := time.Now()
			e, err := engine.Start(context.Background(), cfg, zerolog.Nop())
			if err == nil {
				_ = e.Stop(context.Background())
				t.Fatal("the engine started")
			}
			if took := time.Since(began); took > 20*time.Second {
				t.Errorf("refused after %v: waited for what waiting does not mend", took)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %s", err, w)
				}
			}
		})
	}
}

// With --engine-max-store and --engine-max-connections, each tenant's
// engine account is held to its own share: one tenant that fills its
// storage (here with its engine identity) gets its commands answered 503,
// while the other tenant's engine writes and takes orders as before; and
// the engine account's connections stop at their limit.
func TestEngineLimitsKeepTenantsApart(t *testing.T) {
	dirA, dirB := t.TempDir(), t.TempDir()
	conf, err := cli(t, "auth", "config", "--tenant", "acme="+dirA, "--tenant", "bolt="+dirB, "--engine-max-store", "8MiB", "--engine-max-connections", "8")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"jetstream: {max_file: 8388608}", "limits: {max_connections: 8}"} {
		if n := strings.Count(conf, want); n != 2 {
			t.Fatalf("%q appears %d times in the configuration, want once per tenant:\n%s", want, n, conf)
		}
	}
	ns := startNATSServer(t, conf)
	acme := startExternalEngine(t, ns.ClientURL(), dirA, "acme")
	startExternalEngine(t, ns.ClientURL(), dirB, "bolt")
	url := "--nats-url=" + ns.ClientURL()
	// storage is acme's /readyz condition on its JetStream storage.
	storage := func() (ready bool, reason string) {
		t.Helper()
		resp, err := http.Get("http://" + acme.HTTPAddr().String() + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var rep ops.ReadyReport
		if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
			t.Fatal(err)
		}
		for _, p := range rep.Parts {
			if p.Name == "storage" {
				return p.Ready, p.Reason
			}
		}
		t.Fatalf("/readyz has no storage condition: %+v", rep)
		return false, ""
	}
	if ready, reason := storage(); !ready {
		t.Fatalf("acme's storage before it fills: not ready, %s", reason)
	}
	seed := func(dir string, role auth.Role) string { return auth.SeedFile(filepath.Join(dir, "auth"), role) }
	submit := func(dir string) error {
		_, err := cli(t, "order", "submit", url, "--nkey", seed(dir, auth.App), "--buyer-id", "u1", "--buyer-name", "이영희", "--amount", "5000")
		return err
	}
	engineJS := func(dir string) jetstream.JetStream {
		_, js := testenv.Dial(t, ns.ClientURL(), testenv.NKey(t, seed(dir, auth.Engine)))
		return js
	}
	ctx := t.Context()
	// fill stores ever smaller messages until none fits, and returns the
	// last refusal (nil if 16 MiB, twice the limit, fitted).
	fill := func(js jetstream.JetStream) error {
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "FILL", Subjects: []string{"fill.>"}, Storage: jetstream.FileStorage}); err != nil {
			return err
		}
		var refused error
		for _, size := range []int{256 << 10, 4 << 10, 64} {
			for range (16 << 20) / size {
				if _, refused = js.Publish(ctx, "fill.x", make([]byte, size)); refused != nil {
					break
				}
			}
			if refused == nil {
				return nil
			}
		}
		return refused
	}
	err = fill(engineJS(dirA))
	if err == nil {
		t.Fatal("acme's engine account stored 16 MiB under an 8 MiB limit")
	}
	if !transient.IsOutOfStorage(err) {
		t.Fatalf("a publish over the account's storage: %v, want an out-of-storage error", err)
	}
	err = submit(dirA)
	if err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("acme's submit with its storage full: %v, want 503", err)
	}
	if ready, reason := storage(); ready || !strings.Contains(reason, "JetStream storage full") {
		t.Fatalf("acme's storage full: ready %v, %q; want not ready, saying it is full", ready, reason)
	}
	if err := submit(dirB); err != nil {
		t.Fatalf("bolt's submit while acme's storage is full: %v", err)
	}

	bolt := engineJS(dirB)
	if _, err := bolt.CreateStream(ctx, jetstream.StreamConfig{Name: "ROOM", Subjects: []string{"room.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	if _, err := bolt.Publish(ctx, "room.x", make([]byte, 1<<20)); err != nil {
		t.Fatalf("bolt's engine writing 1 MiB while acme's storage is full: %v", err)
	}
	// Space freed, acme takes orders again, with no restart.
	if err := engineJS(dirA).DeleteStream(ctx, "FILL"); err != nil {
		t.Fatal(err)
	}
	if err := submit(dirA); err != nil {
		t.Fatalf("acme's submit once its storage is freed: %v", err)
	}
	if ready, reason := storage(); !ready {
		t.Fatalf("acme's storage freed: not ready, %s", reason)
	}

	var conns int
	for conns = 0; conns < 20; conns++ {
		nc, err := nats.Connect(ns.ClientURL(), testenv.NKey(t, seed(dirA, auth.Engine)), nats.NoReconnect())
		if err != nil {
			if !strings.Contains(err.Error(), "maximum account active connections exceeded") {
				t.Fatalf("connection %d of acme's engine account: %v", conns+1, err)
			}
			break
		}
		t.Cleanup(nc.Close)
	}
	if conns == 20 {
		t.Fatal("acme's engine account opened 20 more connections under a limit of 8")
	}
}

// A tenant's own users (--tenant-auth-file) replace its generated client
// identities and reach its engine, under their own names; the other tenant
// keeps its generated ones.
func TestTenantAuthFiles(t *testing.T) {
	dirA, dirB := t.TempDir(), t.TempDir()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := kp.Seed()
	pub, _ := kp.PublicKey()
	seedFile := filepath.Join(t.TempDir(), "shop-web.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	users := filepath.Join(t.TempDir(), "users.json")
	if err := os.WriteFile(users, fmt.Appendf(nil, `{"users":[{"name":"shop-web","role":"app","nkey":%q}]}`, pub), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := cli(t, "auth", "config", "--tenant", "acme="+dirA, "--tenant-auth-file", "bolt="+users); exitCode(err) != exitUsage {
		t.Errorf("an auth file for a tenant not given: %v, want a usage error", err)
	}
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(dirA, link); err != nil {
		t.Fatal(err)
	}
	for _, other := range []string{dirA, dirA + "/.", link} {
		if _, err := cli(t, "auth", "config", "--tenant", "acme="+dirA, "--tenant", "bolt="+other); exitCode(err) != exitUsage {
			t.Errorf("two tenants with one data directory (%s): %v, want a usage error", other, err)
		}
	}
	conf, err := cli(t, "auth", "config", "--tenant", "acme="+dirA, "--tenant", "bolt="+dirB, "--tenant-auth-file", "acme="+users)
	if err != nil {
		t.Fatal(err)
	}
	for want, n := range map[string]int{`"acme_shop-web" {`: 1, pub: 1, `"acme_app" {`: 0, `"bolt_app" {`: 1} {
		if got := strings.Count(conf, want); got != n {
			t.Errorf("%s appears %d times in the configuration, want %d", want, got, n)
		}
	}
	ns := startNATSServer(t, conf)
	startExternalEngine(t, ns.ClientURL(), dirA, "acme")
	out, err := cli(t, "order", "submit", "--nats-url="+ns.ClientURL(), "--nkey", seedFile, "--buyer-id", "u1", "--buyer-name", "이영희", "--amount", "5000", "--json")
	if err != nil {
		t.Fatalf("the tenant's own app user: %v\n%s", err, out)
	}
}

// `serve --auth-file`: the file's users connect, as docs/security.md says,
// and the role seeds generated in the data directory do not; the start log
// names the file, not those seeds; and `audit verify --stopped` still
// verifies the stopped engine through a server of its own.
func TestServeWithAnAuthFile(t *testing.T) {
	dir := t.TempDir()
	user := func(name string) (seedFile, pub string) {
		kp, err := nkeys.CreateUser()
		if err != nil {
			t.Fatal(err)
		}
		seed, _ := kp.Seed()
		pub, _ = kp.PublicKey()
		seedFile = filepath.Join(dir, name+".nk")
		if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
			t.Fatal(err)
		}
		return seedFile, pub
	}
	webSeed, webPub := user("shop-web")
	opsSeed, opsPub := user("ops")
	users := filepath.Join(dir, "users.json")
	body := fmt.Sprintf(`{"users":[{"name":"shop-web","role":"app","nkey":%q},{"name":"ops","role":"operator","nkey":%q}]}`, webPub, opsPub)
	if err := os.WriteFile(users, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := engine.Defaults()
	cfg.DataDir, cfg.Listen, cfg.HTTPListen, cfg.Durability, cfg.AuthFile = filepath.Join(dir, "data"), "127.0.0.1:0", "off", "fast", users
	logFile, err := os.Create(filepath.Join(dir, "engine.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	e, err := engine.Start(context.Background(), cfg, zerolog.New(logFile))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = e.Stop(context.Background()) }()
	url := "--nats-url=" + e.ClientURL()

	out, err := cli(t, "order", "submit", url, "--nkey", webSeed, "--buyer-id", "u1", "--buyer-name", "김민수", "--amount", "39000", "--json")
	if err != nil {
		t.Fatalf("the file's app user: %v\n%s", err, out)
	}
	var order api.SubmitOrderReply
	if err := json.Unmarshal([]byte(out), &order); err != nil {
		t.Fatal(err)
	}
	if out, err := cli(t, "order", "get", url, "--nkey", opsSeed, "--order-id", order.OrderID, "--min-seq", fmt.Sprint(order.Seq)); err != nil {
		t.Fatalf("the file's operator: %v\n%s", err, out)
	}
	for _, role := range []auth.Role{auth.App, auth.Operator} {
		_, err := cli(t, "order", "get", url, "--nkey", e.SeedFile(role), "--order-id", order.OrderID)
		if exitCode(err) != exitRefused || !strings.Contains(err.Error(), "Authorization Violation") {
			t.Fatalf("the generated %s seed under --auth-file: exit %d (%v)", role, exitCode(err), err)
		}
	}
	log, err := os.ReadFile(logFile.Name())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), `"auth_file":"`+users+`"`) || !strings.Contains(string(log), "clients authenticate as the users of auth_file") ||
		strings.Contains(string(log), "clients authenticate with the seeds in auth_dir") {
		t.Fatalf("the start log does not say who may connect:\n%s", log)
	}

	if err := e.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	rep, out, err := runAuditVerify(t, "--data-dir="+cfg.DataDir, "--stopped", "--json")
	if err != nil || !rep.OK || rep.Checked.LastSeq < eventstore.Seq(order.Seq) {
		t.Fatalf("audit verify --stopped of an engine that ran with --auth-file: %v\n%s", err, out)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "512": 512, "100B": 100, "8MiB": 8 << 20, "8mb": 8 << 20, "2G": 2 << 30, "50GiB": 50 << 30, "1TiB": 1 << 40, " 3k ": 3 << 10} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "B", "-1", "1.5G", "5I", "10X", "9999999999T", "G5"} {
		if got, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", in, got)
		}
	}
}

// The commands that read the event stream say, when run with an identity
// that may not (the operator's), that the NATS server refused it and whose
// seed reads the stream, instead of only that a request timed out.
func TestStreamReadersRefusedForTheirIdentitySayWhy(t *testing.T) {
	e, cfg := startEngine(t)
	url := "--nats-url=" + e.ClientURL()
	op := "--nkey=" + e.SeedFile(auth.Operator)
	for _, args := range [][]string{
		{"audit", "verify", url, op, "--timeout", "2s", "--data-dir", cfg.DataDir},
		{"audit", "digest", url, op, "--timeout", "2s"},
		{"replay", url, op, "--timeout", "2s", "--out", filepath.Join(t.TempDir(), "out")},
	} {
		_, err := cli(t, args...)
		if exitCode(err) != exitUsage || !strings.Contains(err.Error(), "could not run") ||
			!strings.Contains(err.Error(), "refused this identity") || !strings.Contains(err.Error(), "auditor's seed") {
			t.Errorf("%s %s as the operator: exit %d, %v; want exit %d saying the server refused it and the auditor's seed reads the stream",
				args[0], args[1], exitCode(err), err, exitUsage)
		}
	}
}
