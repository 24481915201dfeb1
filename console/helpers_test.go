package console_test

import (
	"context"
	"encoding/json"
	"errors"

	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/rs/zerolog"
	"golang.org/x/crypto/bcrypt"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/client"
	"github.com/bankbook/bankbook/console"
	"github.com/bankbook/bankbook/engine"
	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/ops"
)

// Identities of the test engine's auth file, and their secrets.
const (
	opsName     = "ops" // operator, NKey
	kimName     = "kim" // operator, password
	kimPassword = "kim-s3cret-password"
	audreyName  = "audrey" // auditor, NKey
	shopName    = "shop"   // app, password
	shopPass    = "shop-s3cret-password"
	spaceyName  = "spacey" // auditor, password with spaces at both ends
	spaceyPass  = "  two words  "
	feedName    = "feeder" // feed, NKey
)

// testEnv is a real engine (embedded NATS with an auth file, bbolt in a
// temp dir), a console in front of it with a clock the test moves, and an
// operator's API client to set the scene with.
type testEnv struct {
	e       *engine.Engine
	console *console.Console
	srv     *httptest.Server
	op      *client.Client
	seeds   map[string]string // name -> seed of the NKey identities
	clock   *clock
}

// clock is a settable time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// start starts the engine and the console; mutate changes the console's
// configuration, engineMutate the engine's.
func start(t *testing.T, mutate func(*console.Config), engineMutate ...func(*engine.Config)) *testEnv {
	t.Helper()
	dir := t.TempDir()
	seeds := map[string]string{}
	type user struct {
		Name     string `json:"name"`
		Role     string `json:"role"`
		NKey     string `json:"nkey,omitempty"`
		Password string `json:"password_bcrypt,omitempty"`
	}
	var users []user
	for _, u := range []struct{ name, role string }{{opsName, "operator"}, {audreyName, "auditor"}, {feedName, "feed"}} {
		kp, err := nkeys.CreateUser()
		if err != nil {
			t.Fatal(err)
		}
		seed, _ := kp.Seed()
		pub, _ := kp.PublicKey()
		seeds[u.name] = string(seed)
		users = append(users, user{Name: u.name, Role: u.role, NKey: pub})
	}
	for _, u := range []struct{ name, role, pass string }{{kimName, "operator", kimPassword}, {shopName, "app", shopPass}, {spaceyName, "auditor", spaceyPass}} {
		h, err := bcrypt.GenerateFromPassword([]byte(u.pass), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		users = append(users, user{Name: u.name, Role: u.role, Password: string(h)})
	}
	authFile := filepath.Join(dir, "users.json")
	b, _ := json.Marshal(map[string]any{"users": users})
	if err := os.WriteFile(authFile, b, 0o600); err != nil {
		t.Fatal(err)
	}

	cfg := engine.Defaults()
	cfg.DataDir, cfg.Listen, cfg.HTTPListen, cfg.Durability = filepath.Join(dir, "data"), "127.0.0.1:0", "off", "fast"
	cfg.AuthFile, cfg.Console = authFile, false
	for _, m := range engineMutate {
		m(&cfg)
	}
	e, err := engine.Start(context.Background(), cfg, zerolog.New(io.Discard))
	if err != nil {
		t.Fatalf("start engine: %v", err)
	}
	t.Cleanup(func() { _ = e.Stop(context.Background()) })

	ids, err := auth.Identities(filepath.Join(cfg.DataDir, "auth"), authFile)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Now()}
	ccfg := console.Config{
		URL: e.ClientURL(), Identities: ids, FirmBankingFee: 500,
		Readiness: ops.ReadinessFunc(func(context.Context) ([]ops.PartStatus, error) {
			return []ops.PartStatus{{Name: "api", Ready: true, State: ops.StateRunning}, {Name: "bank-scanner", State: ops.StateFailing, LastError: "scan refused: 401"}}, nil
		}),
		FailureDelay: time.Millisecond, Now: clk.Now, NameGrace: time.Duration(cfg.NameGrace),
	}
	if mutate != nil {
		mutate(&ccfg)
	}
	c, err := console.New(ccfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	mux := http.NewServeMux()
	mux.Handle(console.Prefix, c.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	kp, _ := nkeys.FromSeed([]byte(seeds[opsName]))
	pub, _ := kp.PublicKey()
	op, err := client.Connect(e.ClientURL(), natsNkey(pub, kp))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(op.Close)
	return &testEnv{e: e, console: c, srv: srv, op: op, seeds: seeds, clock: clk}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// browser is an HTTP client with its own cookies, as one browser tab.
type browser struct {
	t   *testing.T
	env *testEnv
	c   *http.Client
}

func (env *testEnv) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, env: env, c: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
}

// page is one answer.
type page struct {
	status int
	header http.Header
	body   string
	url    string
}

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return page{status: resp.StatusCode, header: resp.Header, body: string(body), url: resp.Request.URL.String()}
}

func (b *browser) get(path string) page {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.env.srv.URL+path, nil)
	return b.do(req)
}

func (b *browser) post(path string, form url.Values) page {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.env.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var (
	csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	keyRE  = regexp.MustCompile(`name="idempotency_key" value="([^"]+)"`)
)

// field returns the first match of re's group in the page.
func (p page) field(t *testing.T, re *regexp.Regexp) string {
	t.Helper()
	m := re.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("page %s (%d) has no %s:\n%s", p.url, p.status, re, p.body)
	}
	return m[1]
}

func (p page) has(s string) bool { return strings.Contains(p.body, s) }

// must fails the test unless the page answered status and contains every want.
func (p page) must(t *testing.T, status int, want ...string) page {
	t.Helper()
	if p.status != status {
		t.Fatalf("%s: status %d, want %d:\n%s", p.url, p.status, status, p.body)
	}
	for _, w := range want {
		if !p.has(w) {
			t.Fatalf("%s: lacks %q:\n%s", p.url, w, p.body)
		}
	}
	return p
}

// login logs in with name and secret and returns the page it lands on.
func (b *browser) login(name, secret string) page {
	b.t.Helper()
	lp := b.get("/console/login")
	return b.post("/console/login", url.Values{"csrf": {lp.field(b.t, csrfRE)}, "name": {name}, "secret": {secret}})
}

// loginOK logs in and checks the overview is shown.
func (b *browser) loginOK(name, secret string) page {
	b.t.Helper()
	return b.login(name, secret).must(b.t, http.StatusOK, `data-testid="user-name">`+name+`<`, `data-testid="counts"`)
}

// orphanScene submits an order and records a deposit with the same amount
// under a mistyped depositor name: an orphan whose candidate is the order.
func (env *testEnv) orphanScene(t *testing.T, buyer string, amount int64, txn string) (order api.SubmitOrderReply, deposit api.RecordDepositReply) {
	t.Helper()
	order, _, err := client.Do(ctxT(t), env.op, api.OrderSubmit, api.SubmitOrderRequest{BuyerID: buyer, BuyerName: "김민수", Amount: amount}, nil)
	if err != nil {
		t.Fatal(err)
	}
	deposit = env.recordDeposit(t, txn, "김민슈"+order.DepositorName[len("김민수"):], amount)
	if deposit.Outcome != "orphaned" {
		t.Fatalf("deposit %+v: want an orphan", deposit)
	}
	return order, deposit
}

func (env *testEnv) recordDeposit(t *testing.T, txn, name string, amount int64) api.RecordDepositReply {
	t.Helper()
	rep, _, err := client.Do(ctxT(t), env.op, api.DepositRecord, api.RecordDepositRequest{BankTxnID: txn, AccountNumber: "123401-04-567890",
		DepositorName: name, Amount: amount, DepositedAt: time.Now().Add(-time.Minute)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// waitOrphans waits until the orphan queue holds n deposits.
func (env *testEnv) waitOrphans(t *testing.T, n int) []api.OrphanView {
	t.Helper()
	var got []api.OrphanView
	testenv.CheckFor(t, 10*time.Second, func() error {
		rep, _, err := client.Do(ctxT(t), env.op, api.DepositOrphans, api.PageRequest{Limit: 500}, nil)
		if err != nil {
			return err
		}
		if len(rep.Deposits) != n {
			return fmt.Errorf("%d orphans, want %d", len(rep.Deposits), n)
		}
		got = rep.Deposits
		return nil
	})
	return got
}

// history is the events of an aggregate, as the audit trail holds them.
func (env *testEnv) history(t *testing.T, typ, id string) []string {
	t.Helper()
	rep, _, err := client.Do(ctxT(t), env.op, api.AuditHistory, api.AuditHistoryRequest{AggregateType: typ, AggregateID: id}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, ev := range rep.Events {
		types = append(types, ev.EventType)
	}
	return types
}

func count(types []string, typ string) int {
	n := 0
	for _, x := range types {
		if x == typ {
			n++
		}
	}
	return n
}

// natsNkey authenticates with kp.
func natsNkey(pub string, kp nkeys.KeyPair) nats.Option {
	return nats.Nkey(pub, func(nonce []byte) ([]byte, error) { return kp.Sign(nonce) })
}

var errMsgRE = regexp.MustCompile(`data-testid="error-message">([^<]*)<`)

var (
	errNotYet     = errors.New("not yet")
	errNotDrained = errors.New("the suspense account has not drained")
)
