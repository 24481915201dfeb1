package embedded_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/embedded"
)

func startServer(t *testing.T, dir string) *embedded.Server {
	t.Helper()
	authDir := filepath.Join(dir, "auth")
	ids, err := auth.Identities(authDir, "")
	if err != nil {
		t.Fatal(err)
	}
	conf, err := auth.Render(auth.Tenant{Users: ids})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := embedded.Start(embedded.Config{StoreDir: filepath.Join(dir, "js"), Durability: embedded.Fast,
		Accounts: conf, EngineSeed: auth.SeedFile(authDir, auth.Engine)})
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

// The directory of a stream being deleted (renamed to ".NAME" until the
// server has removed it), or one a crash left behind between the two steps
// of a deletion (no meta.inf; the server skips it at start), is not a
// store that refuses writes: StoreHealth says nothing of them, while a
// stream's write error it names (engine's TestAStoreThatFailedAWrite...).
func TestStoreHealthIgnoresWhatADeletionLeaves(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, dir)
	srv.Shutdown()
	streams := filepath.Join(dir, "js", "jetstream", auth.EngineAccount, "streams")
	for _, d := range []string{"KV_gone", ".SCRATCH"} {
		if err := os.MkdirAll(filepath.Join(streams, d, "msgs"), 0o750); err != nil {
			t.Fatal(err)
		}
	}
	srv = startServer(t, dir)
	defer srv.Shutdown()
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "OK", Subjects: []string{"bankbook.ok"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "bankbook.ok", []byte("x")); err != nil {
		t.Fatalf("writes fail: %v", err)
	}
	if err := srv.StoreHealth(); err != nil {
		t.Fatalf("writes work, yet StoreHealth: %v", err)
	}
}

// A stream whose configuration the server could not read at start is not
// there to write to: StoreHealth names it.
func TestStoreHealthNamesAStreamNotRecovered(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, dir)
	srv.Shutdown()
	broken := filepath.Join(dir, "js", "jetstream", auth.EngineAccount, "streams", "BROKEN")
	if err := os.MkdirAll(filepath.Join(broken, "msgs"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(broken, "meta.inf"), []byte("not a configuration"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv = startServer(t, dir)
	defer srv.Shutdown()
	if err := srv.StoreHealth(); err == nil || !strings.Contains(err.Error(), "BROKEN") {
		t.Fatalf("StoreHealth = %v, want it to name BROKEN", err)
	}
}

// The default connection limit keeps a quarter of the open files, at least
// 1,024 (half of a smaller limit), for everything else, and stays within
// nats-server's own default.
func TestDefaultMaxConnections(t *testing.T) {
	for _, tc := range []struct {
		nofile uint64
		want   int
	}{
		{0, 65536},        // unknown: nats-server's default
		{100, 64},         // too few files for the reserve: the least
		{1024, 512},       // half kept
		{2048, 1024},      // 1,024 kept
		{20000, 15000},    // a quarter kept
		{1 << 20, 65536},  // nats-server's default at most
		{100000, 65536},   // 75,000 left, capped
		{4096 + 64, 3120}, // a quarter of 4,160 is 1,040 kept
	} {
		if got := embedded.DefaultMaxConnections(tc.nofile); got != tc.want {
			t.Errorf("DefaultMaxConnections(%d) = %d, want %d", tc.nofile, got, tc.want)
		}
	}
	srv := startServer(t, t.TempDir())
	defer srv.Shutdown()
	got, err := srv.Connections(context.Background())
	if err != nil || got["max"] == 0 || got["max"] > 65536 {
		t.Fatalf("the server's connections %v %v, want a limit of 1 to 65,536", got, err)
	}
}
