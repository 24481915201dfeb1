package main

import (
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bankbook/bankbook/engine"
)

// TestServeOrderExpirySettings: --payment-deadline and --max-unpaid-orders
// default to 24h and 20, and are read from the config file, the
// environment and the command line like every setting; nonsense is refused.
func TestServeOrderExpirySettings(t *testing.T) {
	none := func(string) string { return "" }
	cfg, err := loadServeConfig(nil, none, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PaymentDeadline != engine.Duration(24*time.Hour) || cfg.MaxUnpaidOrders != 20 {
		t.Fatalf("defaults: payment deadline %v, max unpaid orders %d", time.Duration(cfg.PaymentDeadline), cfg.MaxUnpaidOrders)
	}

	file := filepath.Join(t.TempDir(), "bankbook.json")
	if err := os.WriteFile(file, []byte(`{"payment_deadline":"72h","max_unpaid_orders":7}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if cfg, err = loadServeConfig([]string{"--config", file}, none, io.Discard); err != nil || cfg.PaymentDeadline != engine.Duration(72*time.Hour) || cfg.MaxUnpaidOrders != 7 {
		t.Fatalf("from the file: %v %d, %v", time.Duration(cfg.PaymentDeadline), cfg.MaxUnpaidOrders, err)
	}
	env := map[string]string{"BANKBOOK_PAYMENT_DEADLINE": "2h", "BANKBOOK_MAX_UNPAID_ORDERS": "5"}
	if cfg, err = loadServeConfig(nil, func(k string) string { return env[k] }, io.Discard); err != nil || cfg.PaymentDeadline != engine.Duration(2*time.Hour) || cfg.MaxUnpaidOrders != 5 {
		t.Fatalf("from the environment: %v %d, %v", time.Duration(cfg.PaymentDeadline), cfg.MaxUnpaidOrders, err)
	}
	if cfg, err = loadServeConfig([]string{"--payment-deadline", "30m", "--max-unpaid-orders", "3"}, func(k string) string { return env[k] }, io.Discard); err != nil || cfg.PaymentDeadline != engine.Duration(30*time.Minute) || cfg.MaxUnpaidOrders != 3 {
		t.Fatalf("from flags: %v %d, %v", time.Duration(cfg.PaymentDeadline), cfg.MaxUnpaidOrders, err)
	}

	for _, args := range [][]string{
		{"--payment-deadline", "0s"},
		{"--payment-deadline", "500ms"},
		// Orders keep both in whole seconds.
		{"--payment-deadline", "2500ms"},
		{"--cancel-window", "90.5s"},
		{"--payment-deadline", "-1h"},
		{"--payment-deadline", "721h"},
		// A timer further out than the timers stream keeps its schedules
		// would never fire.
		{"--cancel-window", "721h"},
		{"--name-grace", "721h"},
		{"--cancel-window", "360h", "--name-grace", "361h"},
		{"--finalise-retry", "61m"},
		{"--notify-rate", "0.0005"},
		{"--notify-rate", "NaN"},
		{"--max-unpaid-orders", "0"},
		{"--max-unpaid-orders", "-3"},
	} {
		if _, err := loadServeConfig(args, none, io.Discard); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
	if _, err := loadServeConfig([]string{"--cancel-window", "360h", "--name-grace", "360h"}, none, io.Discard); err != nil {
		t.Errorf("a cancel window and name grace of 30 days together: %v", err)
	}
}
