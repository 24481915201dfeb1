package engine

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/accounts"
	"github.com/bankbook/bankbook/ratelimit"
	"github.com/bankbook/bankbook/snapshots"
)

// startFast starts an engine with the fast profile on loopback ports and a
// data directory of the test's; it stops when the test ends.
func startFast(t *testing.T) *Engine {
	t.Helper()
	cfg := Defaults()
	cfg.DataDir, cfg.Listen, cfg.HTTPListen, cfg.Durability = filepath.Join(t.TempDir(), "data"), "127.0.0.1:0", "127.0.0.1:0", "fast"
	e, err := Start(context.Background(), cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Stop(context.Background()) })
	return e
}

// Readiness checks that every stream the engine opened at start is still
// there, except those whose loss fails nothing: the rate limiter's bucket,
// which the limiter creates again on its next use, and the snapshots.
func TestReadinessNamesAStreamDeletedWhileTheEngineRuns(t *testing.T) {
	e := startFast(t)
	want := e.streams.want()
	for _, name := range []string{"BANKBOOK_EVENTS", "BANKBOOK_TIMERS", "KV_bankbook_idempotency", "KV_bankbook_depositor_names", "KV_bankbook_accounts"} {
		if !slices.Contains(want, name) {
			t.Errorf("the streams checked are %v, without %s", want, name)
		}
	}
	for _, spare := range []string{ratelimit.DefaultBucket, snapshots.DefaultBucket} {
		if slices.Contains(want, "KV_"+spare) {
			t.Errorf("the streams checked are %v, with %s, whose loss fails nothing", want, spare)
		}
	}
	ctx := t.Context()
	if st := e.streams.status(ctx, ""); !st.Ready {
		t.Fatalf("streams with none deleted: %+v", st)
	}
	js, err := jetstream.New(e.nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteKeyValue(ctx, ratelimit.DefaultBucket); err != nil {
		t.Fatal(err)
	}
	if st := e.streams.status(ctx, ""); !st.Ready {
		t.Fatalf("streams with the limiter's bucket deleted: %+v, want ready", st)
	}
	if err := js.DeleteKeyValue(ctx, accounts.DefaultBucket); err != nil {
		t.Fatal(err)
	}
	if st := e.streams.status(ctx, ""); st.Ready || !strings.Contains(st.Reason, "KV_"+accounts.DefaultBucket) {
		t.Fatalf("streams with the accounts bucket deleted: %+v, want failing, naming it", st)
	}
	if st := e.streams.status(ctx, "reconnecting"); st.Ready || !strings.Contains(st.Reason, "reconnecting") {
		t.Fatalf("streams while the connection is down: %+v", st)
	}
	if !slices.Contains(want, "KV_"+notifyBucket) {
		t.Fatalf("the streams checked are %v, without %s", want, "KV_"+notifyBucket)
	}
	if err := js.DeleteKeyValue(ctx, notifyBucket); err != nil {
		t.Fatal(err)
	}
	st := e.streams.status(ctx, "")
	if st.Ready || !strings.Contains(st.Reason, "KV_"+notifyBucket+": put start_seq 1 back") {
		t.Fatalf("streams with the notifications' start deleted: %+v, want failing, saying what to put back", st)
	}
}

// A check that gets no answer (a cluster electing its metadata leader, say)
// reports the last one that did, for a while, and fails for itself after
// that; with no answer since the start, it fails at once.
func TestReadinessOfStreamsThatCannotBeListed(t *testing.T) {
	e := startFast(t)
	unanswered, cancel := context.WithCancel(t.Context())
	cancel()
	if st := e.streams.status(unanswered, ""); st.Ready || !strings.Contains(st.Reason, "could not list the streams since the engine started") {
		t.Fatalf("streams never listed: %+v, want failing", st)
	}
	if st := e.streams.status(t.Context(), ""); !st.Ready || st.Reason != "" {
		t.Fatalf("streams listed: %+v, want ready", st)
	}
	if st := e.streams.status(unanswered, ""); !st.Ready || !strings.Contains(st.Reason, "could not list the streams just now") {
		t.Fatalf("streams not listed just after a listing with none gone: %+v, want ready, saying so", st)
	}
	// The last answer long ago (readiness probed seldom): one failed
	// listing is not an outage.
	if st := e.streams.status(t.Context(), ""); !st.Ready {
		t.Fatalf("streams listed: %+v, want ready", st)
	}
	e.streams.mu.Lock()
	e.streams.checked = e.streams.checked.Add(-5 * time.Minute)
	e.streams.mu.Unlock()
	if st := e.streams.status(unanswered, ""); !st.Ready || !strings.Contains(st.Reason, "could not list the streams just now") {
		t.Fatalf("one failed listing, the last answer 5 minutes old: %+v, want ready, saying so", st)
	}
	// Failing for streamsUnknownAfter since the first that did: failing.
	e.streams.mu.Lock()
	e.streams.unlisted = e.streams.unlisted.Add(-streamsUnknownAfter)
	e.streams.mu.Unlock()
	if st := e.streams.status(unanswered, ""); st.Ready || !strings.Contains(st.Reason, "could not list the streams for 30s") {
		t.Fatalf("streams not listed for %s: %+v, want failing", streamsUnknownAfter, st)
	}

	js, err := jetstream.New(e.nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteKeyValue(t.Context(), accounts.DefaultBucket); err != nil {
		t.Fatal(err)
	}
	if st := e.streams.status(t.Context(), ""); st.Ready {
		t.Fatalf("streams with the accounts bucket deleted: %+v, want failing", st)
	}
	if st := e.streams.status(unanswered, ""); st.Ready || !strings.Contains(st.Reason, "just now") || !strings.Contains(st.Reason, "KV_"+accounts.DefaultBucket) {
		t.Fatalf("streams not listed just after a listing with one gone: %+v, want failing, naming it", st)
	}
	// Of two listings at once, the one that started last stands: one that
	// started before it (here, before a stored answer from the future)
	// does not replace it.
	e.streams.mu.Lock()
	e.streams.checked, e.streams.gone = time.Now().Add(time.Hour), []string{"KV_from_a_later_listing"}
	e.streams.mu.Unlock()
	if st := e.streams.status(t.Context(), ""); st.Ready || !strings.Contains(st.Reason, "KV_from_a_later_listing") {
		t.Fatalf("a listing older than the stored one: %+v, want the stored answer to stand", st)
	}
}
