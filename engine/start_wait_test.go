package engine_test

// Start with an external NATS that is not ready yet: a cluster without
// quorum, and no server at all.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/client"
	"github.com/bankbook/bankbook/engine"
	"github.com/bankbook/bankbook/internal/testcluster"
	"github.com/bankbook/bankbook/internal/testenv"
)

// startAgainLog is what the engine logs when it starts again.
const startAgainLog = "starting again"

// An engine started while two of its cluster's three nodes are down (no
// JetStream meta leader, no placement for its R3 streams) waits, logging
// each attempt, and serves once the nodes are back.
func TestStartWaitsForTheCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("three-node cluster")
	}
	access := authenticated(t)
	cl := testcluster.Start(t, 3, access.extra)
	names := cl.Names()
	cl.Shutdown(names[1])
	cl.Shutdown(names[2])

	logs := &testenv.SyncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("engine log:\n%s", tail(logs.String(), 20000))
		}
	})
	cfg := clusterEngineConfig(t, cl, access, "e1")
	cfg.StartTimeout = engine.Duration(3 * time.Minute)
	type started struct {
		e   *engine.Engine
		err error
	}
	done := make(chan started, 1)
	go func() {
		e, err := engine.Start(context.Background(), cfg, engineLog(logs, "e1"))
		done <- started{e, err}
	}()
	testenv.Eventually(t, 2*settleTimeout, "the engine logs that it starts again", func() bool {
		return strings.Contains(logs.String(), startAgainLog)
	})
	select {
	case r := <-done:
		if r.e != nil {
			stopAtCleanup(t, r.e, "e1")
		}
		t.Fatalf("Start returned while the cluster had no quorum: %v", r.err)
	default:
	}

	cl.Restart(names[1:]...)
	var r started
	select {
	case r = <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("the engine did not start within 2m of the cluster's return")
	}
	if r.err != nil {
		t.Fatalf("start: %v", r.err)
	}
	stopAtCleanup(t, r.e, "e1")

	_, nc := dial(t, cl.URL(), access.client...)
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()
	// The service's interest may reach the client's node a moment after
	// the engine started (no responders until then); the key makes a
	// repeat safe.
	testenv.CheckFor(t, settleTimeout, func() error {
		rep, _, err := client.Do(ctx, client.New(nc), api.OrderSubmit,
			api.SubmitOrderRequest{BuyerID: "b-1", BuyerName: "waited", Amount: 10_000}, client.WithIdempotencyKey("after-the-wait"))
		if err != nil || rep.OrderID == "" {
			return fmt.Errorf("submit after the wait: %+v, %v", rep, err)
		}
		return nil
	})
}

// failedStart starts an engine with cfg, which must fail, and returns how
// many times the engine logged that it starts again, and the error.
func failedStart(t *testing.T, cfg engine.Config, what string) (int, error) {
	t.Helper()
	logs := &testenv.SyncBuffer{}
	e, err := engine.Start(context.Background(), cfg, engineLog(logs, "e"))
	if err == nil {
		stopAtCleanup(t, e, "e")
		t.Fatalf("started %s", what)
	}
	return strings.Count(logs.String(), startAgainLog), err
}

// externalConfig is an engine's configuration for the NATS at url, with
// the engine identity of a fresh auth directory, waiting up to wait.
func externalConfig(t *testing.T, url string, wait time.Duration) engine.Config {
	t.Helper()
	dir := t.TempDir()
	if _, err := auth.Ensure(dir); err != nil {
		t.Fatal(err)
	}
	cfg := engine.Defaults()
	cfg.DataDir, cfg.HTTPListen = filepath.Join(t.TempDir(), "data"), "off"
	cfg.NATSURL, cfg.NKey = url, auth.SeedFile(dir, auth.Engine)
	cfg.StartTimeout = engine.Duration(wait)
	return cfg
}

// withPassword makes cfg log in as user "engine" with password "pw".
func withPassword(t *testing.T, cfg engine.Config) engine.Config {
	t.Helper()
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("pw"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.NKey, cfg.User, cfg.PasswordFile = "", "engine", pw
	return cfg
}

// runServer runs a nats-server with opts until the test ends.
func runServer(t *testing.T, opts *natsserver.Options) *natsserver.Server {
	t.Helper()
	ns, err := natsserver.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(ns.Shutdown)
	return ns
}

// With no server at the URL, Start tries again until the start timeout and
// then names it; with a start timeout of 0 it gives up at once.
func TestStartGivesUpAfterTheStartTimeout(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "nats://" + l.Addr().String()
	l.Close() // nothing listens there now
	for _, wait := range []time.Duration{0, 2 * time.Second} {
		t.Run(fmt.Sprint(wait), func(t *testing.T) {
			began := time.Now()
			attempts, err := failedStart(t, externalConfig(t, url, wait), "with no server")
			took := time.Since(began)
			if !errors.Is(err, nats.ErrNoServers) {
				t.Errorf("want %v in the chain, got %v", nats.ErrNoServers, err)
			}
			switch {
			case wait == 0 && attempts != 0:
				t.Errorf("start-timeout 0 started again %d times", attempts)
			case wait > 0 && (attempts < 2 || took < wait || !strings.Contains(err.Error(), "start-timeout")):
				t.Errorf("start-timeout %v: gave up after %v and %d logged attempts: %v", wait, took, attempts, err)
			}
		})
	}
}

// A listener that accepts and closes at once (a proxy whose NATS is not up
// yet) is waited for like a refused port.
func TestStartWaitsForAServerThatClosesTheConnection(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	n, err := failedStart(t, externalConfig(t, "nats://"+l.Addr().String(), 2*time.Second), "against a server that closes every connection")
	if n < 2 || !strings.Contains(err.Error(), "start-timeout") {
		t.Errorf("%d attempts logged, then %v; want it waited for the server until the start timeout", n, err)
	}
}

// A request NATS refuses for the engine's permissions (it drops it, and the
// request times out) is not taken for a cluster that is not ready: the
// start fails once, naming the violation, however long the start timeout.
func TestStartDoesNotWaitForARefusedPermission(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for one request's timeout")
	}
	ns := runServer(t, &natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true,
		Users: []*natsserver.User{{Username: "engine", Password: "pw", Permissions: &natsserver.Permissions{
			Publish:   &natsserver.SubjectPermission{Allow: []string{">"}, Deny: []string{"$JS.API.STREAM.CREATE.>"}},
			Subscribe: &natsserver.SubjectPermission{Allow: []string{">"}},
		}}}})
	n, err := failedStart(t, withPassword(t, externalConfig(t, ns.ClientURL(), 10*time.Minute)), "without the right to create its streams")
	if n != 0 || !errors.Is(err, nats.ErrPermissionViolation) {
		t.Errorf("started again %d times, then %v; want one attempt failing with the permissions violation", n, err)
	}
}

// A server whose certificate the engine does not trust is refused at
// once, not waited for.
func TestStartDoesNotWaitForAnUntrustedCertificate(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "nats"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ns := runServer(t, &natsserver.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, TLS: true, TLSTimeout: 2,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}},
		Users:     []*natsserver.User{{Username: "engine", Password: "pw"}}})
	url := strings.Replace(ns.ClientURL(), "nats://", "tls://", 1)
	n, err := failedStart(t, withPassword(t, externalConfig(t, url, 10*time.Minute)), "against a server whose certificate it does not trust")
	if n != 0 {
		t.Errorf("started again %d times, then %v; want it refused at once", n, err)
	}
	t.Logf("refused: %v", err)
}
