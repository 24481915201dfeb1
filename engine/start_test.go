package engine_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/client"
	"github.com/bankbook/bankbook/datadir"
	"github.com/bankbook/bankbook/engine"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/projections"
)

func testConfig(t *testing.T) engine.Config {
	cfg := engine.Defaults()
	cfg.DataDir, cfg.Listen, cfg.HTTPListen, cfg.Durability = filepath.Join(t.TempDir(), "data"), "127.0.0.1:0", "127.0.0.1:0", "fast"
	return cfg
}

// startAndStop starts an engine with cfg, stops it, and returns what it
// logged.
func startAndStop(t *testing.T, cfg engine.Config) string {
	t.Helper()
	logs := &testenv.SyncBuffer{}
	e, err := engine.Start(context.Background(), cfg, zerolog.New(logs))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	return logs.String()
}

// A second engine on a data directory another holds is refused at once,
// before it opens anything in it.
func TestSecondEngineOnOneDataDirIsRefused(t *testing.T) {
	cfg := testConfig(t)
	e, err := engine.Start(context.Background(), cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = e.Stop(context.Background()) }()
	_, err = engine.Start(context.Background(), cfg, zerolog.Nop())
	if !errors.Is(err, datadir.ErrLocked) || !strings.Contains(err.Error(), cfg.DataDir) {
		t.Fatalf("second engine: want %v naming %s, got %v", datadir.ErrLocked, cfg.DataDir, err)
	}
	// The first is unharmed.
	nc, err := nats.Connect(e.ClientURL(), testenv.NKey(t, e.SeedFile(auth.Operator)))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Request("$SRV.PING.bankbook", nil, 5*time.Second); err != nil {
		t.Fatalf("the first engine stopped answering: %v", err)
	}
}

// A taken port fails the start at once, naming the port.
func TestTakenPortFailsAtOnce(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cfg := testConfig(t)
	cfg.Listen = l.Addr().String()
	start := time.Now()
	_, err = engine.Start(context.Background(), cfg, zerolog.Nop())
	if err == nil || !strings.Contains(err.Error(), cfg.Listen) {
		t.Fatalf("want an error naming %s, got %v", cfg.Listen, err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("took %v: it waited for the server instead of failing", d)
	}
}

// The embedded server accepts no connection without credentials, on
// loopback and in-process alike, and seeds stay the same across restarts.
func TestEmbeddedServerRequiresAuthentication(t *testing.T) {
	cfg := testConfig(t)
	e, err := engine.Start(context.Background(), cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if nc, err := nats.Connect(e.ClientURL()); err == nil {
		nc.Close()
		t.Fatal("an anonymous client connected")
	} else if !errors.Is(err, nats.ErrAuthorization) {
		t.Errorf("anonymous: want an authorization violation, got %v", err)
	}
	seed := e.SeedFile(auth.App)
	st, err := os.Stat(seed)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("seed %s: %v %v", seed, st.Mode(), err)
	}
	before, _ := os.ReadFile(seed)
	if err := e.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	e, err = engine.Start(context.Background(), cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = e.Stop(context.Background()) }()
	after, _ := os.ReadFile(seed)
	if string(before) != string(after) {
		t.Error("the app seed changed across a restart")
	}
	nc, err := nats.Connect(e.ClientURL(), testenv.NKey(t, seed))
	if err != nil {
		t.Fatalf("the app seed no longer connects: %v", err)
	}
	nc.Close()
}

// The end of the event log lost while the engine was down (the last block
// file truncated, as a damaged disk or a bad copy leaves it): the engine
// refuses to start and says so, instead of serving read models that hold
// acknowledged commits the log no longer has.
func TestLostEndOfTheLogRefusesTheStart(t *testing.T) {
	cfg := testConfig(t)
	e, err := engine.Start(context.Background(), cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(e.ClientURL(), testenv.NKey(t, e.SeedFile(auth.App)))
	if err != nil {
		t.Fatal(err)
	}
	var last api.Seq
	for i := range 5 {
		rep, _, err := client.Do(context.Background(), client.New(nc), api.OrderSubmit,
			api.SubmitOrderRequest{BuyerID: fmt.Sprintf("b-%d", i), BuyerName: "Lost", Amount: 10_000}, nil)
		if err != nil {
			t.Fatal(err)
		}
		last = rep.Seq
	}
	testenv.CheckFor(t, 10*time.Second, func() error {
		if cp := e.Runner.Checkpoint(); cp < eventstore.Seq(last) {
			return fmt.Errorf("read models at %d, want %d", cp, last)
		}
		return nil
	})
	nc.Close()
	if err := e.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	blocks, err := filepath.Glob(filepath.Join(cfg.DataDir, "jetstream", "jetstream", "*", "streams", "BANKBOOK_EVENTS", "msgs", "*.blk"))
	if err != nil || len(blocks) == 0 {
		t.Fatalf("the event stream's block files: %v %v", blocks, err)
	}
	slices.Sort(blocks)
	blk := blocks[len(blocks)-1]
	st, err := os.Stat(blk)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(blk, st.Size()-500); err != nil { // most of the last commit
		t.Fatal(err)
	}
	e, err = engine.Start(context.Background(), cfg, zerolog.Nop())
	if err == nil {
		_ = e.Stop(context.Background())
		t.Fatal("the engine started on a log that lost its end")
	}
	if !errors.Is(err, projections.ErrStreamLostCommits) && !errors.Is(err, projections.ErrCheckpointAhead) {
		t.Fatalf("start: %v, want the lost commits named", err)
	}
	t.Logf("refused: %v", err)
}

// The simulated firm banking listens where --firmbank-sim-listen says, so
// that other instances can send payouts through it (--firmbank-url, token
// "sim").
func TestSimulatedFirmBankingListensWhereAsked(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	cfg := testConfig(t)
	cfg.BankSim, cfg.FirmbankSimListen = true, addr
	e, err := engine.Start(context.Background(), cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = e.Stop(context.Background()) }()
	for token, want := range map[string]int{"sim": http.StatusNotFound, "wrong": http.StatusUnauthorized} {
		req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/transfers/po_unknown", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("the simulated firm banking is not at %s: %v", addr, err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("token %q: status %d, want %d", token, resp.StatusCode, want)
		}
	}
}

// Stopping the engine closes its NATS connections on purpose: it logs that
// they closed, not that they are reconnecting.
func TestStopLogsNoReconnect(t *testing.T) {
	var logs testenv.SyncBuffer
	e, err := engine.Start(context.Background(), testConfig(t), zerolog.New(&logs))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, "the connections' closing logged", func() bool {
		return strings.Count(logs.String(), `"NATS connection closed"`) >= 2
	})
	if strings.Contains(logs.String(), "reconnecting") || strings.Contains(logs.String(), "closed for good") {
		t.Fatalf("a stop logged a reconnect, or a close it did not make:\n%s", logs.String())
	}
}

// A provider URL that carries a user and password is refused at start, as
// a NATS URL is: the password would only ever be given on the command
// line (where `ps` shows it) and would be in every error that names the
// URL. The error does not repeat the password.
func TestProviderURLWithCredentialsIsRefused(t *testing.T) {
	const secret = "s3cret-pass"
	for _, c := range []struct {
		name string
		set  func(*engine.Config, string)
	}{
		{"bank-url", func(cfg *engine.Config, u string) { cfg.BankURL, cfg.BankToken = u, "token" }},
		{"firmbank-url", func(cfg *engine.Config, u string) { cfg.FirmbankURL, cfg.FirmbankToken = u, "token" }},
		{"chat-url", func(cfg *engine.Config, u string) { cfg.ChatURL, cfg.ChatToken = u, "token" }},
		{"notify-webhook-url", func(cfg *engine.Config, u string) { cfg.NotifyWebhookURL = u }},
	} {
		cfg := testConfig(t)
		c.set(&cfg, "http://user:"+secret+"@127.0.0.1:1/x")
		e, err := engine.Start(context.Background(), cfg, zerolog.Nop())
		if err == nil {
			_ = e.Stop(context.Background())
			t.Errorf("%s with a password: the engine started", c.name)
			continue
		}
		if !strings.Contains(err.Error(), c.name) || strings.Contains(err.Error(), secret) {
			t.Errorf("%s with a password: want an error naming %s without the password, got %v", c.name, c.name, err)
		}
	}
}

// A seed file removed (to rotate its key, or lost) is generated again at
// start, and the engine says so at warn, naming the role: clients holding
// the old seed are refused from then on; every seed too, when the data
// directory has run before. The first start generates every seed and says
// so at info; a start that finds them all says nothing.
func TestARegeneratedSeedIsLogged(t *testing.T) {
	cfg := testConfig(t)
	const warning = "generated a new NKey seed for roles whose seed file was missing"
	if out := startAndStop(t, cfg); !strings.Contains(out, "generated one NKey seed per role") || strings.Contains(out, warning) {
		t.Fatalf("first start:\n%s", out)
	}
	if out := startAndStop(t, cfg); strings.Contains(out, "NKey seed") {
		t.Fatalf("a start with every seed in place spoke of seeds:\n%s", out)
	}
	if err := os.Remove(auth.SeedFile(filepath.Join(cfg.DataDir, "auth"), auth.App)); err != nil {
		t.Fatal(err)
	}
	if out := startAndStop(t, cfg); !strings.Contains(out, `"level":"warn"`) || !strings.Contains(out, warning) || !strings.Contains(out, `"roles":["app"]`) {
		t.Fatalf("no warning naming the app role's new seed:\n%s", out)
	}
	// Every seed removed from a data directory that has run: every key
	// rotated (or the auth/ folder lost), not a first start.
	if err := os.RemoveAll(filepath.Join(cfg.DataDir, "auth")); err != nil {
		t.Fatal(err)
	}
	if out := startAndStop(t, cfg); !strings.Contains(out, warning) || !strings.Contains(out, `"roles":["app","feed","operator","auditor","engine"]`) {
		t.Fatalf("no warning naming every role's new seed:\n%s", out)
	}
}
