package streams_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/internal/streams"
	"github.com/bankbook/bankbook/internal/testenv"
)

func TestCovers(t *testing.T) {
	have := jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}, Replicas: 1, MaxAge: time.Hour, Storage: jetstream.FileStorage, MaxMsgs: -1}
	if !streams.Covers(have, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}, MaxAge: time.Hour}) {
		t.Error("a config whose set fields all match is not covered")
	}
	for name, want := range map[string]jetstream.StreamConfig{
		"max age":  {Name: "S", MaxAge: 2 * time.Hour},
		"subjects": {Name: "S", Subjects: []string{"s.>", "t.>"}},
		"replicas": {Name: "S", Replicas: 3},
		"direct":   {Name: "S", AllowDirect: true},
	} {
		if streams.Covers(have, want) {
			t.Errorf("%s: a changed field is reported covered", name)
		}
	}
}

// TestEnsureUpdatesOnlyWhatChanged: an unchanged stream gets no update
// (the server announces none), a changed one is updated, a missing one made.
func TestEnsureUpdatesOnlyWhatChanged(t *testing.T) {
	srv := testenv.Start(t, "")
	nc, js := srv.Connect(t)
	ctx := context.Background()
	updates, err := nc.SubscribeSync("$JS.EVENT.ADVISORY.STREAM.UPDATED.ENSURE")
	if err != nil {
		t.Fatal(err)
	}
	cfg := jetstream.StreamConfig{Name: "ENSURE", Subjects: []string{"ensure.>"}, Storage: jetstream.FileStorage, MaxAge: time.Hour}
	if _, err := streams.Ensure(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := streams.Ensure(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
	if msg, err := updates.NextMsg(300 * time.Millisecond); err == nil {
		t.Fatalf("an unchanged stream was updated: %s", msg.Data)
	}
	cfg.MaxAge = 2 * time.Hour
	if _, err := streams.Ensure(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := updates.NextMsg(5 * time.Second); err != nil {
		t.Fatalf("a changed stream was not updated: %v", err)
	}
	s, err := js.Stream(ctx, "ENSURE")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config.MaxAge; got != 2*time.Hour {
		t.Fatalf("max age %s, want 2h", got)
	}

	// Per-message TTLs, once allowed, the server never turns off: an
	// update that asked would fail as a whole.
	ttl := cfg
	ttl.AllowMsgTTL = true
	if _, err := js.UpdateStream(ctx, ttl); err != nil {
		t.Fatal(err)
	}
	cfg.MaxAge = 3 * time.Hour
	if s, err = streams.Ensure(ctx, js, cfg); err != nil {
		t.Fatalf("a stream that allows per-message TTLs: %v", err)
	}
	if got := s.CachedInfo().Config; got.MaxAge != 3*time.Hour || !got.AllowMsgTTL {
		t.Fatalf("max age %s, TTLs allowed %v; want 3h, and still allowed", got.MaxAge, got.AllowMsgTTL)
	}
}
