package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/backup"
	"github.com/bankbook/bankbook/engine"
	"github.com/bankbook/bankbook/internal/testenv"
)

// TestBackupAndRestore backs up a running engine, restores the backup into
// a new data directory and runs a second engine there: it answers what the
// first one did (the same read-model hash at the same sequence), replays a
// keyed request the first one executed, and hands out a dedicated account
// the first one had not.
func TestBackupAndRestore(t *testing.T) {
	e, _ := startEngine(t)
	url := "--nats-url=" + e.ClientURL()
	engineKey := "--nkey=" + e.SeedFile(auth.Engine)

	out, err := cli(t, "order", "submit", url, "--buyer-id", "u1", "--buyer-name", "김민수", "--amount", "39000", "--json", "--idempotency-key", "backup-1")
	if err != nil {
		t.Fatal(err)
	}
	var sub api.SubmitOrderReply
	if err := json.Unmarshal([]byte(out), &sub); err != nil {
		t.Fatal(err)
	}
	out, err = cli(t, "store", "link", url, "--distributor-id", "d1", "--store-id", "s1", "--store-name", "First", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var first api.LinkStoreReply
	if err := json.Unmarshal([]byte(out), &first); err != nil {
		t.Fatal(err)
	}
	// Nothing more is written (the link's notification included) and the
	// read models have it all.
	hash := settledHash(t, e, url)

	dir := filepath.Join(t.TempDir(), "backup")
	if _, err := cli(t, "backup", url, "--out", dir); exitCode(err) != exitRefused {
		t.Fatalf("backup as the operator: exit %d (%v), want 4: the JetStream API is the engine's", exitCode(err), err)
	}
	out, err = cli(t, "backup", url, engineKey, "--out", dir, "--json")
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	var m backup.Manifest
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("backup --json: %q: %v", out, err)
	}
	var names []string
	for _, s := range m.Streams {
		names = append(names, s.Name)
	}
	head, err := e.Events.LastSeq(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(names) < 3 || names[2] != auth.DefaultStream || m.Streams[2].LastSeq != uint64(head) {
		t.Fatalf("backup of %v (the event stream up to %d), want the watermarks and set-asides first, then the event stream up to %d", names, m.Streams[min(2, len(m.Streams)-1)].LastSeq, head)
	}
	for _, want := range []string{"KV_bankbook_idempotency", "KV_bankbook_accounts", "KV_bankbook_depositor_names", "BANKBOOK_TIMERS"} {
		if !strings.Contains(strings.Join(names, " "), want) {
			t.Errorf("the backup lacks %s: %v", want, names)
		}
	}
	if strings.Contains(strings.Join(names, " "), "KV_bankbook_snapshots") {
		t.Errorf("the backup holds the aggregate snapshots: %v", names)
	}
	if _, err := cli(t, "backup", url, engineKey, "--out", dir); exitCode(err) != exitUsage {
		t.Fatalf("backup into an existing directory: exit %d (%v), want 2", exitCode(err), err)
	}
	slash := filepath.Join(t.TempDir(), "slash")
	if _, err := cli(t, "backup", url, engineKey, "--out", slash+"/"); err != nil {
		t.Fatalf("backup --out DIR/: %v", err)
	}
	if _, err := backup.ReadManifest(slash); err != nil {
		t.Fatalf("backup --out DIR/: %v", err)
	}

	// A damaged copy is refused before anything is restored.
	damaged := filepath.Join(t.TempDir(), "damaged")
	copyDir(t, dir, damaged)
	events := filepath.Join(damaged, auth.DefaultStream+".tar.s2")
	b, err := os.ReadFile(events)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(events, b, 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "bad")
	if _, err := cli(t, "restore", "--from", damaged, "--data-dir", bad); err == nil || !strings.Contains(err.Error(), "stream "+auth.DefaultStream) || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("restore of a damaged backup: %v", err)
	}
	if _, err := os.Stat(filepath.Join(bad, "jetstream")); !os.IsNotExist(err) {
		t.Fatalf("a refused restore left a store behind: %v", err)
	}

	// A restore that fails half-way (here: the last stream comes back with
	// fewer messages than the manifest says) leaves no store behind, and
	// the next restore into the same directory runs.
	short := filepath.Join(t.TempDir(), "short")
	copyDir(t, dir, short)
	mb, err := os.ReadFile(filepath.Join(short, backup.ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	var edited backup.Manifest
	if err := json.Unmarshal(mb, &edited); err != nil {
		t.Fatal(err)
	}
	edited.Streams[len(edited.Streams)-1].Messages++
	if mb, err = json.Marshal(edited); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(short, backup.ManifestFile), mb, 0o600); err != nil {
		t.Fatal(err)
	}
	restored := filepath.Join(t.TempDir(), "restored")
	if _, err := cli(t, "restore", "--from", short, "--data-dir", restored); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("restore of a stream that comes back short: %v", err)
	}
	for _, left := range []string{"jetstream", "jetstream.restoring"} {
		if _, err := os.Stat(filepath.Join(restored, left)); !os.IsNotExist(err) {
			t.Fatalf("a failed restore left %s behind: %v", left, err)
		}
	}
	// ... and an engine refuses the directory until a restore finishes,
	// rather than start empty beside the client keys the restore made.
	rcfg := engine.Defaults()
	rcfg.DataDir, rcfg.Listen, rcfg.HTTPListen = restored, "127.0.0.1:0", "off"
	if e3, err := engine.Start(context.Background(), rcfg, zerolog.Nop()); !errors.Is(err, engine.ErrRestoreIncomplete) {
		if e3 != nil {
			_ = e3.Stop(context.Background())
		}
		t.Fatalf("an engine on a directory whose restore failed: %v, want ErrRestoreIncomplete", err)
	}
	if out, err := cli(t, "restore", "--from", dir, "--data-dir", restored); err != nil || !strings.Contains(out, fmt.Sprintf("the event stream up to seq %d", head)) {
		t.Fatalf("restore: %q %v", out, err)
	}
	if _, err := cli(t, "restore", "--from", dir, "--data-dir", restored); exitCode(err) != exitUsage {
		t.Fatalf("restore into a data directory that has a store: exit %d (%v), want 2", exitCode(err), err)
	}
	// A restore whose store got into place but whose mark stayed (it died
	// right after the move) is started over by the next restore.
	died := filepath.Join(t.TempDir(), "died")
	if _, err := cli(t, "restore", "--from", dir, "--data-dir", died); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(died, engine.RestoreMarker), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := cli(t, "restore", "--from", dir, "--data-dir", died); err != nil {
		t.Fatalf("restore over an unfinished restore's store: %v", err)
	}
	if _, err := os.Stat(filepath.Join(died, engine.RestoreMarker)); !os.IsNotExist(err) {
		t.Fatalf("the mark after a restore that finished: %v", err)
	}
	withModels := t.TempDir()
	if err := os.WriteFile(filepath.Join(withModels, readModelsFile), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := cli(t, "restore", "--from", dir, "--data-dir", withModels); exitCode(err) != exitUsage {
		t.Fatalf("restore beside another log's read models: exit %d (%v), want 2", exitCode(err), err)
	}

	e2, _ := startEngine(t, func(c *engine.Config) { c.DataDir = restored })
	url2 := "--nats-url=" + e2.ClientURL()
	if got := settledHash(t, e2, url2); got != hash {
		t.Fatalf("the restored engine's read models: %s, want the first engine's %s", got, hash)
	}
	out, err = cli(t, "order", "submit", url2, "--buyer-id", "u1", "--buyer-name", "김민수", "--amount", "39000", "--idempotency-key", "backup-1")
	if err != nil || !strings.Contains(out, sub.OrderID) || !strings.Contains(out, "replayed") {
		t.Fatalf("the keyed submit again on the restored engine: %q %v, want the replay of order %s", out, err, sub.OrderID)
	}
	out, err = cli(t, "store", "link", url2, "--distributor-id", "d1", "--store-id", "s2", "--store-name", "Second", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var second api.LinkStoreReply
	if err := json.Unmarshal([]byte(out), &second); err != nil {
		t.Fatal(err)
	}
	if second.DedicatedAccount.Number == first.DedicatedAccount.Number {
		t.Fatalf("the restored engine gave store s2 the dedicated account %s of store s1", second.DedicatedAccount.Number)
	}
}

// settledHash waits until e's event stream has stopped growing and its read
// models have applied all of it, and returns their content hash.
func settledHash(t *testing.T, e *engine.Engine, url string) string {
	t.Helper()
	var hash string
	last := uint64(0)
	testenv.CheckFor(t, 20*time.Second, func() error {
		head, err := e.Events.LastSeq(context.Background())
		if err != nil {
			return err
		}
		out, err := cli(t, "projections", "status", url, "--hash", "--json")
		if err != nil {
			return err
		}
		var st api.ProjectionStatusReply
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			return err
		}
		if uint64(head) != last || uint64(st.HashAtSeq) != uint64(head) {
			last = uint64(head)
			return fmt.Errorf("stream at %d, read models hashed at %d", head, st.HashAtSeq)
		}
		hash = st.Hash
		return nil
	})
	return hash
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.CopyFS(to, os.DirFS(from)); err != nil {
		t.Fatal(err)
	}
}
