// Package testenv starts real embedded NATS servers for tests. Nothing in
// bankbook's tests mocks NATS or bbolt.
package testenv

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/embedded"
)

// Server is an embedded server for one test.
type Server struct {
	*embedded.Server
	Dir string
	// AuthDir holds the generated seeds, one per role (auth.SeedFile).
	AuthDir string
}

// Start starts an embedded JetStream server with its store in dir (a fresh
// temp dir when dir is ""), listening on a random loopback port, with the
// fast durability profile. It is shut down when the test ends.
func Start(t testing.TB, dir string) *Server {
	t.Helper()
	return StartWith(t, dir, embedded.Fast)
}

// StartWith is Start with the durability profile d (embedded.Safe syncs
// every write before its ack).
func StartWith(t testing.TB, dir string, d embedded.Durability) *Server {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	authDir := filepath.Join(t.TempDir(), "auth")
	ids, err := auth.Ensure(authDir)
	if err != nil {
		t.Fatalf("identities: %v", err)
	}
	accounts, err := auth.Render(auth.Tenant{Users: ids, Simulators: true})
	if err != nil {
		t.Fatalf("accounts: %v", err)
	}
	s, err := embedded.Start(embedded.Config{StoreDir: dir, Listen: "127.0.0.1:0", Durability: d,
		Accounts: accounts, EngineSeed: auth.SeedFile(authDir, auth.Engine)})
	if err != nil {
		t.Fatalf("start embedded nats: %v", err)
	}
	t.Cleanup(s.Shutdown)
	return &Server{Server: s, Dir: dir, AuthDir: authDir}
}

// ConnectRole opens an in-process connection with role's generated seed,
// closed when the test ends.
func (s *Server) ConnectRole(t testing.TB, role auth.Role, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := s.ConnectAs(auth.SeedFile(s.AuthDir, role), opts...)
	if err != nil {
		t.Fatalf("connect as %s: %v", role, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// Connect opens an in-process connection and a JetStream context, closed when
// the test ends.
func (s *Server) Connect(t testing.TB) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := s.Server.Connect()
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return nc, js
}

// CheckFor polls check until it returns nil, and fails the test with
// check's last error if that does not happen within timeout. check runs at
// least once; polls start 1ms apart and slow down to 10ms. Use it instead of
// sleeping for a guessed time.
func CheckFor(t testing.TB, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	pause := time.Millisecond
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v: %v", timeout, err)
		}
		time.Sleep(pause)
		pause = min(2*pause, 10*time.Millisecond)
	}
}

// Eventually is CheckFor for a condition: it polls cond until it returns
// true, and fails the test naming what it waited for after timeout.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	CheckFor(t, timeout, func() error {
		if !cond() {
			return fmt.Errorf("waiting for %s", what)
		}
		return nil
	})
}

// SyncBuffer is a bytes.Buffer that a logger and a test can share.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write implements io.Writer.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Run runs a long-lived part (a worker loop's Run, say) on its own goroutine
// until the test ends; then it cancels the part's context, waits for it, and
// fails the test if it returned an error.
func Run(t testing.TB, run func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
}

// Dial connects to url with opts and opens a JetStream context, closed when
// the test ends.
func Dial(t testing.TB, url string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("connect to %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return nc, js
}

// NKey is the option that authenticates with the seed in seedFile.
func NKey(t testing.TB, seedFile string) nats.Option {
	t.Helper()
	o, err := nats.NkeyOptionFromSeed(seedFile)
	if err != nil {
		t.Fatalf("seed %s: %v", seedFile, err)
	}
	return o
}

// RequireOnLinux fails the test on Linux unless ok, and skips it elsewhere:
// for what every Linux machine has (so CI, on Linux, always runs the test)
// and other systems may lack.
func RequireOnLinux(t testing.TB, ok bool, what string) {
	t.Helper()
	if ok {
		return
	}
	if runtime.GOOS == "linux" {
		t.Fatalf("%s: missing on this Linux machine", what)
	}
	t.Skipf("%s: missing on %s", what, runtime.GOOS)
}

// KeepStreamsDir creates an empty file stream in js's account so that the
// account's streams directory is never left empty. When an account's last
// stream is deleted, nats-server removes that directory in a goroutine; a
// stream created meanwhile can fail with "could not create storage
// directory" (error creating store for stream). A test that deletes the only
// stream of its account and creates it again calls this first; an engine's
// account always holds other streams.
func KeepStreamsDir(t testing.TB, js jetstream.JetStream) {
	t.Helper()
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{
		Name: "TESTENV_KEEP", Subjects: []string{"testenv.keep"}, Storage: jetstream.FileStorage,
	}); err != nil {
		t.Fatalf("keep the streams directory: %v", err)
	}
}
