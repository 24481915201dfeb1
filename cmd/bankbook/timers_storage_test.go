package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/engine"
	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/internal/transient"
)

// An order whose payment deadline falls while its engine account's
// JetStream storage is full expires once space is freed, with no restart of
// the engine or of the server. nats-server fires a timer's schedule once:
// when that write is refused, the schedule stays stored and never fires
// until the server restarts, so the engine arms it again.
func TestATimerDueWhileStorageIsFullFiresOnceSpaceIsFreed(t *testing.T) {
	dir := t.TempDir()
	conf, err := cli(t, "auth", "config", "--data-dir", dir, "--simulators", "--engine-max-store", "8MiB")
	if err != nil {
		t.Fatal(err)
	}
	ns := startNATSServer(t, conf)
	cfg := engine.Defaults()
	cfg.DataDir, cfg.Listen, cfg.HTTPListen = dir, "", "off"
	cfg.NATSURL, cfg.NKey = ns.ClientURL(), auth.SeedFile(filepath.Join(dir, "auth"), auth.Engine)
	cfg.BankSim, cfg.BankSimLag, cfg.ScanInterval = true, engine.Duration(0), engine.Duration(100*time.Millisecond)
	cfg.PaymentDeadline = engine.Duration(10 * time.Second) // long enough to fill the storage before it on a loaded machine
	cfg.TimerCheck = engine.Duration(200 * time.Millisecond)
	e, err := engine.Start(context.Background(), cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Stop(context.Background()) })

	url, app := "--nats-url="+ns.ClientURL(), auth.SeedFile(filepath.Join(dir, "auth"), auth.App)
	out, err := cli(t, "order", "submit", url, "--nkey", app, "--json", "--buyer-id", "u1", "--buyer-name", "이영희", "--amount", "5000")
	if err != nil {
		t.Fatal(err)
	}
	var order struct {
		OrderID   string `json:"order_id"`
		ExpiresAt string `json:"expires_at"`
	}
	if err := json.Unmarshal([]byte(out), &order); err != nil {
		t.Fatalf("submit reply %q: %v", out, err)
	}
	due, err := time.Parse(time.RFC3339Nano, order.ExpiresAt)
	if err != nil {
		t.Fatalf("expires_at %q: %v", order.ExpiresAt, err)
	}

	// Fill the engine account's storage before the deadline, and keep it
	// full past it.
	_, js := testenv.Dial(t, ns.ClientURL(), testenv.NKey(t, cfg.NKey))
	ctx := t.Context()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "FILL", Subjects: []string{"fill.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	var refused error
	for _, size := range []int{256 << 10, 4 << 10, 64} {
		for range (16 << 20) / size {
			if _, refused = js.Publish(ctx, "fill.x", make([]byte, size)); refused != nil {
				break
			}
		}
	}
	if !transient.IsOutOfStorage(refused) {
		t.Fatalf("filling the engine account's storage: %v, want an out-of-storage refusal", refused)
	}
	if time.Now().After(due) {
		t.Fatalf("the storage filled only after the deadline %s", due)
	}
	testenv.Eventually(t, time.Minute, "the deadline passes with the storage full", func() bool {
		return time.Now().After(due.Add(time.Second))
	})
	if err := js.DeleteStream(ctx, "FILL"); err != nil {
		t.Fatal(err)
	}

	testenv.CheckFor(t, 30*time.Second, func() error {
		out, err := cli(t, "order", "get", url, "--nkey", app, "--json", "--order-id", order.OrderID)
		if err != nil {
			return err
		}
		var got struct {
			Status string `json:"status"`
		}
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			return err
		}
		if got.Status != "expired" {
			return fmt.Errorf("order %s is %s, want expired", order.OrderID, got.Status)
		}
		return nil
	})
}
