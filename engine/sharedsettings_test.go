package engine_test

import (
	"strings"
	"testing"
	"time"

	"github.com/bankbook/bankbook/engine"
)

// Every instance on one NATS brings the shared streams and buckets to its
// own settings as it starts: one started with another duplicate window or
// idempotency TTL changes them for every instance, and says so.
func TestAnEngineThatChangesSharedSettingsSaysSo(t *testing.T) {
	cfg := testConfig(t)
	const warning = "this engine changed settings of a stream every instance shares"
	if logs := startAndStop(t, cfg); strings.Contains(logs, warning) {
		t.Fatalf("a warning on the first start:\n%s", logs)
	}
	if logs := startAndStop(t, cfg); strings.Contains(logs, warning) {
		t.Fatalf("a warning on a start with the same settings:\n%s", logs)
	}
	other := cfg
	other.DuplicateWindow = engine.Duration(3 * time.Minute)
	other.IdempotencyTTL = engine.Duration(200 * time.Hour)
	logs := startAndStop(t, other)
	for _, want := range []string{`"stream":"BANKBOOK_EVENTS"`, "Duplicates: 2m0s → 3m0s", `"stream":"KV_bankbook_idempotency"`, "MaxAge: 168h0m0s → 200h0m0s"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the warning does not say %s:\n%s", want, logs)
		}
	}
}
