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
