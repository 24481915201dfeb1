package engine

import (
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
