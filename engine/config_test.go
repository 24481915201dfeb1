package engine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestFinaliseRetryDefault: a due cancellation looks again after the
// instance's scan interval where the instance scans, and after at most
// 10 s where another instance or an outside feed scans (a helper instance
// left at the 5-minute default held cancellations for 5 minutes).
func TestFinaliseRetryDefault(t *testing.T) {
	five := Duration(5 * time.Minute)
	for _, c := range []struct {
		name string
		cfg  Config
		want time.Duration
	}{
		{"scans the simulated bank", Config{ScanInterval: five, BankSim: true}, 5 * time.Minute},
		{"scans a bank", Config{ScanInterval: five, BankURL: "https://bank.example"}, 5 * time.Minute},
		{"scans nothing", Config{ScanInterval: five}, unscannedFinaliseRetry},
		{"scans nothing, a short interval", Config{ScanInterval: Duration(2 * time.Second)}, 2 * time.Second},
		{"set", Config{ScanInterval: five, FinaliseRetry: Duration(time.Second)}, time.Second},
		// A due timer's wait must come back before the timers stream drops it.
		{"scans a bank rarely", Config{ScanInterval: Duration(2200 * time.Hour), BankSim: true}, maxFinaliseRetry},
	} {
		if got := c.cfg.finaliseRetry(); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// The cancel window and the payment deadline are kept on each order in
// whole seconds: a fraction is refused, not dropped.
func TestOrderDurationsAreWholeSeconds(t *testing.T) {
	for _, c := range []struct {
		name string
		set  func(*Config)
		want string
	}{
		{"payment deadline", func(c *Config) { c.PaymentDeadline = Duration(2500 * time.Millisecond) }, "payment-deadline must be whole seconds"},
		{"cancel window", func(c *Config) { c.CancelWindow = Duration(90*time.Second + time.Millisecond) }, "cancel-window must be whole seconds"},
	} {
		cfg := Defaults()
		cfg.DataDir = t.TempDir()
		if err := cfg.Validate(); err != nil {
			t.Fatalf("defaults: %v", err)
		}
		c.set(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want %q", c.name, err, c.want)
		}
	}
}

// --settlement-holidays is read and checked at start: a file that cannot be
// read, or a line that is not a date, is refused with the file's name and
// the line's number; without the flag there are no holidays.
func TestSettlementHolidaysFile(t *testing.T) {
	dir := t.TempDir()
	write := fileWriter(t, dir)
	cfg := Defaults()
	cfg.DataDir = dir
	if err := cfg.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if h, err := cfg.settlementHolidays(); err != nil || h.Len() != 0 {
		t.Fatalf("without a file: %d holidays, %v; want none", h.Len(), err)
	}
	cfg.SettlementHolidays = write("good.txt", "# 설날 2026\n2026-02-16\n2026-02-17 # 설날\n\n2026-02-18\n2026-02-17\n")
	if err := cfg.Validate(); err != nil {
		t.Fatalf("a good file: %v", err)
	}
	if h, err := cfg.settlementHolidays(); err != nil || strings.Join(h.Dates(), ",") != "2026-02-16,2026-02-17,2026-02-18" {
		t.Fatalf("a good file: %v, %v", h.Dates(), err)
	}
	for _, c := range []struct {
		name, path, want string
	}{
		{"an impossible date", write("feb30.txt", "2026-02-16\n# x\n2026-02-30\n"), "feb30.txt: line 3"},
		{"a malformed line", write("words.txt", "2026-02-16 설날\n"), "words.txt: line 1"},
		{"no such file", filepath.Join(dir, "missing.txt"), "missing.txt"},
		{"a directory", dir, dir},
	} {
		cfg.SettlementHolidays = c.path
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), "settlement-holidays") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want an error naming settlement-holidays and %q", c.name, err, c.want)
		}
	}
}

// The webhook's secrets come from the environment or a file of one secret
// per line (rotation); each must be long enough, and the webhook needs a
// provider to confirm results with and the HTTP listener to arrive on.
func TestFirmbankWebhookSecrets(t *testing.T) {
	dir := t.TempDir()
	write := fileWriter(t, dir)
	base := Defaults()
	base.DataDir = dir
	base.FirmbankURL = "https://firmbank.example"
	if s, err := base.webhookSecrets(); err != nil || len(s) != 0 {
		t.Fatalf("without a secret: %q, %v", s, err)
	}
	cfg := base
	cfg.FirmbankWebhookSecretFile = write("two.txt", "whsec-the-new-one-0001\n\n  whsec-the-old-one-0002  \r\n")
	if err := cfg.Validate(); err != nil {
		t.Fatalf("two secrets: %v", err)
	}
	if s, _ := cfg.webhookSecrets(); len(s) != 2 || string(s[0]) != "whsec-the-new-one-0001" || string(s[1]) != "whsec-the-old-one-0002" {
		t.Fatalf("two secrets read as %q", s)
	}
	cfg = base
	cfg.FirmbankWebhookSecret = "whsec-from-the-environment"
	if s, err := cfg.webhookSecrets(); err != nil || len(s) != 1 {
		t.Fatalf("from the environment: %q, %v", s, err)
	}
	for _, c := range []struct {
		name string
		set  func(*Config)
		want string
	}{
		{"a short secret", func(c *Config) { c.FirmbankWebhookSecret = "short" }, "at least 16"},
		{"a short one among good ones", func(c *Config) {
			c.FirmbankWebhookSecretFile = write("mixed.txt", "whsec-long-enough-0001\nshort\n")
		}, "at least 16"},
		{"an empty file", func(c *Config) { c.FirmbankWebhookSecretFile = write("empty.txt", "\n \n") }, "no secret"},
		{"five secrets", func(c *Config) {
			c.FirmbankWebhookSecretFile = write("five.txt", strings.Repeat("whsec-long-enough-0001\n", 5))
		}, "at most 4"},
		{"no such file", func(c *Config) { c.FirmbankWebhookSecretFile = filepath.Join(dir, "missing") }, "firmbank-webhook-secret-file"},
		{"no provider", func(c *Config) { c.FirmbankURL, c.FirmbankWebhookSecret = "", "whsec-long-enough-0001" }, "needs a firm-banking provider"},
		{"no HTTP listener", func(c *Config) { c.HTTPListen, c.FirmbankWebhookSecret = "off", "whsec-long-enough-0001" }, "needs the HTTP listener"},
		{"a long settle timeout", func(c *Config) { c.FirmbankSettleTimeout = Duration(11 * time.Minute) }, "firmbank-settle-timeout"},
		{"a negative pending retry", func(c *Config) { c.FirmbankPendingRetry = Duration(-time.Second) }, "firmbank-pending-retry"},
		{"a pending retry past the notes' half life", func(c *Config) { c.FirmbankPendingRetry = Duration(13 * time.Hour) }, "firmbank-pending-retry"},
	} {
		cfg := base
		c.set(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want %q", c.name, err, c.want)
		}
	}
}

// A firm-banking webhook secret file that holds no secret is refused, as
// one of blank lines is: an empty file (a secret not written yet) must not
// start an engine without the webhooks, whose provider then gives up on
// every result it posts (404).
func TestFirmbankWebhookSecretFileMustHoldASecret(t *testing.T) {
	dir := t.TempDir()
	cfg := Defaults()
	cfg.DataDir = dir
	cfg.FirmbankURL, cfg.FirmbankToken = "https://firmbank.example", "token"
	for name, text := range map[string]string{"an empty file": "", "blank lines": "\n  \n"} {
		path := filepath.Join(dir, "secret")
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg.FirmbankWebhookSecretFile = path
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "no secret") {
			t.Errorf("%s: %v; want no secret in it", name, err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "secret"), []byte("whsec-0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("a secret: %v", err)
	}
}

// --firmbank-settle-timeout must leave the payouts part's handler (20 s)
// time to record the result: a longer one was cut at 20 s, and a payout
// the provider settled after 25 s, with a settle timeout of a minute,
// waited the pending retry (an hour) instead.
func TestFirmbankSettleTimeoutFitsThePayoutsHandler(t *testing.T) {
	cfg := Defaults()
	cfg.DataDir = t.TempDir()
	for _, d := range []time.Duration{0, time.Second, 15 * time.Second} {
		cfg.FirmbankSettleTimeout = Duration(d)
		if err := cfg.Validate(); err != nil {
			t.Errorf("settle timeout %v: %v", d, err)
		}
	}
	for _, d := range []time.Duration{16 * time.Second, time.Minute, 10 * time.Minute} {
		cfg.FirmbankSettleTimeout = Duration(d)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "firmbank-settle-timeout") {
			t.Errorf("settle timeout %v: %v; want it refused", d, err)
		}
	}
}

// fileWriter returns a function that writes text to the file name in dir
// and returns its path.
func fileWriter(t *testing.T, dir string) func(name, text string) string {
	return func(name, text string) string {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
}
