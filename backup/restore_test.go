package backup_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/backup"
	"github.com/bankbook/bankbook/client"
	"github.com/bankbook/bankbook/datadir"
	"github.com/bankbook/bankbook/internal/testenv"
)

// withEventStream starts a server whose engine account holds an event
// stream with one message (a backup needs one), and connects to it.
func withEventStream(t *testing.T, ctx context.Context) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, js := testenv.Start(t, "").Connect(t)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "BANKBOOK_EVENTS", Subjects: []string{"bankbook.evt.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "bankbook.evt.order.o1", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// Messages whose per-message TTL runs out between the backup and the
// restore (a deposit's claim, a released name's purge marker) are gone
// from the restored stream, as they would be from the live one: the
// restore is not refused for it.
func TestRestoreAfterMessagesExpired(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nc, js := withEventStream(t, ctx)
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "bankbook_depositor_names", LimitMarkerTTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "held", []byte("o1")); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Create(ctx, "released", []byte("o2")); err != nil {
		t.Fatal(err)
	}
	if err := kv.Purge(ctx, "released", jetstream.PurgeTTL(time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Create(ctx, "claim", []byte("c"), jetstream.KeyTTL(time.Second)); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "backup")
	m, err := backup.Take(ctx, client.New(nc), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names backup.Stream
	for _, s := range m.Streams {
		if s.Name == "KV_bankbook_depositor_names" {
			names = s
		}
	}
	if names.Messages != 3 {
		t.Fatalf("the backup holds %d messages of the names bucket, want 3 (held, the purge marker, the claim)", names.Messages)
	}
	time.Sleep(2 * time.Second) // the marker's and the claim's TTLs run out

	dst := testenv.Start(t, "")
	nc2, js2 := dst.Connect(t)
	if _, err := backup.Restore(ctx, client.New(nc2), dir, 0, nil); err != nil {
		t.Fatalf("restore: %v", err)
	}
	kv2, err := js2.KeyValue(ctx, "bankbook_depositor_names")
	if err != nil {
		t.Fatal(err)
	}
	if e, err := kv2.Get(ctx, "held"); err != nil || string(e.Value()) != "o1" {
		t.Fatalf("held: %v", err)
	}
	testenv.CheckFor(t, 5*time.Second, func() error {
		if _, err := kv2.Get(ctx, "claim"); !errors.Is(err, jetstream.ErrKeyNotFound) {
			return fmt.Errorf("the expired claim: %v, want not found", err)
		}
		return nil
	})
}

// A backup of a cluster's R3 streams restores into one server when the
// restore asks for one replica; as backed up, the server refuses it.
func TestRestoreOfAClusterBackupIntoOneServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nc, _ := withEventStream(t, ctx)
	dir := filepath.Join(t.TempDir(), "backup")
	if _, err := backup.Take(ctx, client.New(nc), dir, nil); err != nil {
		t.Fatal(err)
	}
	// As a cluster's backup says it.
	path := filepath.Join(dir, backup.ManifestFile)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r3 := regexp.MustCompile(`"num_replicas":\s*1`).ReplaceAll(b, []byte(`"num_replicas": 3`))
	if bytes.Equal(r3, b) {
		t.Fatal("the manifest names no replica count")
	}
	if err := os.WriteFile(path, r3, 0o600); err != nil {
		t.Fatal(err)
	}
	dst := testenv.Start(t, "")
	c2, js2 := dst.Connect(t)
	if _, err := backup.Restore(ctx, client.New(c2), dir, 0, nil); err == nil || !strings.Contains(err.Error(), "replicas") {
		t.Fatalf("an R3 stream into one server as backed up: %v, want the server's refusal", err)
	}
	if _, err := backup.Restore(ctx, client.New(c2), dir, 1, nil); err != nil {
		t.Fatalf("an R3 stream into one server as R1: %v", err)
	}
	s, err := js2.Stream(ctx, "BANKBOOK_EVENTS")
	if err != nil || s.CachedInfo().Config.Replicas != 1 || s.CachedInfo().State.Msgs != 1 {
		t.Fatalf("restored stream: %v %+v", err, s)
	}
}

// TestTakeLocksItsPartial: a backup writes DIR.partial under a lock. A
// second backup into DIR while the first writes is refused and touches
// nothing; a DIR.partial that is not a backup's is left alone; one an
// interrupted backup left (its LOCK held by nobody) is taken over, and
// none of its leftovers end up in the backup.
func TestTakeLocksItsPartial(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nc, _ := withEventStream(t, ctx)
	c := client.New(nc)
	root := t.TempDir()

	busy := filepath.Join(root, "busy")
	release, err := datadir.Lock(busy + ".partial") // another backup, writing
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(busy+".partial", "KV_x.tar.s2"), []byte("theirs"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := backup.Take(ctx, c, busy, nil); !errors.Is(err, backup.ErrInProgress) {
		t.Fatalf("a backup into a directory another backup writes: %v, want ErrInProgress", err)
	}
	if b, err := os.ReadFile(filepath.Join(busy+".partial", "KV_x.tar.s2")); err != nil || string(b) != "theirs" {
		t.Fatalf("the other backup's file: %q, %v", b, err)
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}

	mine := filepath.Join(root, "mine")
	if err := os.MkdirAll(mine+".partial", 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mine+".partial", "important.txt"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := backup.Take(ctx, c, mine, nil); !errors.Is(err, backup.ErrExists) {
		t.Fatalf("a backup beside a DIR.partial that is no backup's: %v, want ErrExists", err)
	}
	if _, err := os.Stat(filepath.Join(mine+".partial", "important.txt")); err != nil {
		t.Fatalf("the operator's file: %v", err)
	}

	// busy.partial is now an interrupted backup's: its LOCK held by nobody.
	if _, err := backup.Take(ctx, c, busy, nil); err != nil {
		t.Fatalf("a backup over an interrupted one's partial: %v", err)
	}
	entries, err := os.ReadDir(busy)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() == "KV_x.tar.s2" || e.Name() == datadir.LockFile {
			t.Errorf("the backup holds %s", e.Name())
		}
	}
	if _, err := os.Lstat(busy + ".partial"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("busy.partial after the backup: %v", err)
	}
	dst := testenv.Start(t, "")
	nc2, _ := dst.Connect(t)
	if _, err := backup.Restore(ctx, client.New(nc2), busy, 0, nil); err != nil {
		t.Fatalf("restore: %v", err)
	}
}
