package auth_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"golang.org/x/crypto/bcrypt"

	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/embedded"
)

// The operator's own users: an NKey user and a bcrypt-password user connect,
// each acts under its own name, and a wrong password is refused.
func TestAuthFileUsers(t *testing.T) {
	dir := t.TempDir()
	kp, _ := nkeys.CreateUser()
	pub, _ := kp.PublicKey()
	seed, _ := kp.Seed()
	seedFile := filepath.Join(dir, "shop.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte("correct horse"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "users.json")
	users := `{"users":[{"name":"shop-web","role":"app","nkey":"` + pub + `"},{"name":"kim","role":"operator","password_bcrypt":"` + string(hash) + `"}]}`
	if err := os.WriteFile(file, []byte(users), 0o600); err != nil {
		t.Fatal(err)
	}
	authDir := filepath.Join(dir, "auth")
	ids, err := auth.Identities(authDir, file)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 3 {
		t.Fatalf("identities %+v: want the two users and the engine", ids)
	}
	conf, err := auth.Render(auth.Tenant{Users: ids})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := embedded.Start(embedded.Config{StoreDir: filepath.Join(dir, "js"), Listen: "127.0.0.1:0", Durability: embedded.Fast,
		Accounts: conf, EngineSeed: auth.SeedFile(authDir, auth.Engine)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	enc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	desk := startDesk(t, enc)

	shopOpt, err := nats.NkeyOptionFromSeed(seedFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		who     string
		opt     nats.Option
		subject string
	}{
		{"shop-web", shopOpt, "bankbook.cmd.order.submit"},
		{"kim", nats.UserInfo("kim", "correct horse"), "bankbook.cmd.deposit.resolve"},
	} {
		nc, err := nats.Connect(srv.ClientURL(), c.opt)
		if err != nil {
			t.Fatalf("%s: %v", c.who, err)
		}
		if _, err := nc.Request(c.subject, []byte(`{}`), 5*time.Second); err != nil {
			t.Fatalf("%s → %s: %v", c.who, c.subject, err)
		}
		nc.Close()
		arrived := auth.FromSubject(c.who, c.subject)
		if len(desk.reached(arrived)) == 0 {
			t.Fatalf("%s did not reach the engine as %s", c.subject, arrived)
		}
		if got, err := auth.Actor(arrived, ""); err != nil || got != c.who {
			t.Errorf("actor %q (%v), want %q", got, err, c.who)
		}
	}
	if nc, err := nats.Connect(srv.ClientURL(), nats.UserInfo("kim", "wrong")); err == nil {
		nc.Close()
		t.Error("a wrong password connected")
	}
	// The generated app identity is not among the users any more.
	appOpt, err := nats.NkeyOptionFromSeed(auth.SeedFile(authDir, auth.App))
	if err != nil {
		t.Fatal(err)
	}
	if nc, err := nats.Connect(srv.ClientURL(), appOpt); err == nil {
		nc.Close()
		t.Error("the generated app seed still connects although --auth-file replaced it")
	}
}

func TestLoadFileRefusesWhatIsNotAUser(t *testing.T) {
	kp, _ := nkeys.CreateUser()
	pub, _ := kp.PublicKey()
	for name, body := range map[string]string{
		"unknown field":       `{"users":[{"name":"a","role":"app","nkey":"` + pub + `","admin":true}]}`,
		"plain password":      `{"users":[{"name":"a","role":"app","password_bcrypt":"hunter2"}]}`,
		"no credential":       `{"users":[{"name":"a","role":"app"}]}`,
		"both credentials":    `{"users":[{"name":"a","role":"app","nkey":"` + pub + `","password_bcrypt":"$2a$10$abc"}]}`,
		"seed instead of key": `{"users":[{"name":"a","role":"app","nkey":"SUAM"}]}`,
		"unknown role":        `{"users":[{"name":"a","role":"root","nkey":"` + pub + `"}]}`,
		"bad name":            `{"users":[{"name":"A B","role":"app","nkey":"` + pub + `"}]}`,
		"repeated name":       `{"users":[{"name":"a","role":"app","nkey":"` + pub + `"},{"name":"a","role":"feed","nkey":"` + pub + `"}]}`,
		"no users":            `{"users":[]}`,
		"an engine's actor":   `{"users":[{"name":"timer","role":"operator","nkey":"` + pub + `"}]}`,
		"the webhook's actor": `{"users":[{"name":"webhook","role":"operator","nkey":"` + pub + `"}]}`,
	} {
		f := filepath.Join(t.TempDir(), "u.json")
		if err := os.WriteFile(f, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := auth.LoadFile(f); !errors.Is(err, auth.ErrAuthFile) {
			t.Errorf("%s: want ErrAuthFile, got %v", name, err)
		}
	}
}

// Seeds are created once with mode 0600 and reused; a seed others can read
// is refused.
func TestSeedsAreCreatedOnceAndKeptPrivate(t *testing.T) {
	dir := t.TempDir()
	first, err := auth.Ensure(dir)
	if err != nil {
		t.Fatal(err)
	}
	again, err := auth.Ensure(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := range first {
		if first[i] != again[i] {
			t.Errorf("%s changed: %+v → %+v", first[i].Role, first[i], again[i])
		}
		st, err := os.Stat(auth.SeedFile(dir, first[i].Role))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v %v", first[i].Role, st.Mode(), err)
		}
	}
	if err := os.Chmod(auth.SeedFile(dir, auth.App), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := auth.Ensure(dir); !errors.Is(err, auth.ErrSeedFile) || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("a world-readable seed: want ErrSeedFile, got %v", err)
	}
}

// Each identity but the engine's gets the connection limit asked for; a
// negative one is refused.
func TestRenderLimitsEachIdentitysConnections(t *testing.T) {
	ids, err := auth.Identities(t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auth.Render(auth.Tenant{Users: ids, MaxConnections: -1}); err == nil {
		t.Fatal("a negative connection limit rendered")
	}
	conf, err := auth.Render(auth.Tenant{Users: ids, MaxConnections: 7})
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(string(conf), "\n  \"")[1:] // one per account
	if len(blocks) != len(ids) {                        // the engine's account and one per other identity
		t.Fatalf("%d account blocks for %d identities:\n%s", len(blocks), len(ids), conf)
	}
	for _, b := range blocks {
		limited := strings.Contains(b, "limits: {max_connections: 7}")
		if engine := strings.HasPrefix(b, auth.EngineAccount+`"`); engine == limited {
			t.Errorf("account block limited %v, engine %v:\n%s", limited, engine, b)
		}
	}
}

// TestRenderRefusesCredentialsTheServerWouldRefuse: nats-server keeps one
// table of user names and one of NKeys for all its accounts, so two tenants'
// password users named alike (each business's "kim"), or one public key
// given to two identities, make a configuration the server refuses to start
// with. Render says so, naming both, instead of printing it.
func TestRenderRefusesCredentialsTheServerWouldRefuse(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	key := func() string {
		kp, _ := nkeys.CreateUser()
		pub, _ := kp.PublicKey()
		return pub
	}
	engine := func() auth.Identity { return auth.Identity{Name: "engine", Role: auth.Engine, NKey: key()} }
	kim := auth.Identity{Name: "kim", Role: auth.Operator, Password: string(hash)}
	shared, ownEngine := key(), engine()
	cases := map[string][]auth.Tenant{
		"password user named alike in two tenants": {
			{Name: "acme", Users: []auth.Identity{engine(), kim}},
			{Name: "bolt", Users: []auth.Identity{engine(), kim}},
		},
		"one key in two tenants": {
			{Name: "acme", Users: []auth.Identity{engine(), {Name: "shop-web", Role: auth.App, NKey: shared}}},
			{Name: "bolt", Users: []auth.Identity{engine(), {Name: "shop-web", Role: auth.App, NKey: shared}}},
		},
		"one key for two users of a tenant": {
			{Name: "acme", Users: []auth.Identity{engine(), {Name: "shop-web", Role: auth.App, NKey: shared}, {Name: "kim", Role: auth.Operator, NKey: shared}}},
		},
		"a user with the engine's key": {
			{Users: []auth.Identity{ownEngine, {Name: "shop-web", Role: auth.App, NKey: ownEngine.NKey}}},
		},
	}
	for name, tenants := range cases {
		conf, err := auth.Render(tenants...)
		if !errors.Is(err, auth.ErrInvalidUser) {
			t.Errorf("%s: Render: %v, want %v", name, err, auth.ErrInvalidUser)
			if err == nil {
				if serr := (&server.Options{}).ProcessConfigString(string(conf)); serr != nil {
					t.Errorf("%s: nats-server refuses what Render printed: %v", name, serr)
				}
			}
		}
	}
	// Alike names with NKeys are fine: each is a name in its own account.
	conf, err := auth.Render(
		auth.Tenant{Name: "acme", Users: []auth.Identity{engine(), {Name: "kim", Role: auth.Operator, NKey: key()}}},
		auth.Tenant{Name: "bolt", Users: []auth.Identity{engine(), kim}},
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := (&server.Options{}).ProcessConfigString(string(conf)); err != nil {
		t.Fatalf("nats-server refuses what Render printed: %v", err)
	}
}
