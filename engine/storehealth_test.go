package engine_test

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/engine"
	"github.com/bankbook/bankbook/internal/testenv"
)

// A stream whose file store fails a write refuses every later write until
// the server restarts, and the server answers none of the publishes it
// refuses. The engine's jetstream part is not ready from then on, naming
// the stream, so /readyz stops sending traffic to an engine whose commands
// would all time out. Once the cause is gone, a restart is ready again.
func TestAStoreThatFailedAWriteMakesTheEngineNotReady(t *testing.T) {
	cfg := testConfig(t)
	e, err := engine.Start(context.Background(), cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = e.Stop(context.Background()) }()
	part := func(e *engine.Engine) (bool, string) { return partReady(t, e, "jetstream") }
	readyz := func(e *engine.Engine) (int, string) {
		resp, err := http.Get("http://" + e.HTTPAddr().String() + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	healthy := func(e *engine.Engine) func() error {
		return func() error {
			if ok, why := part(e); !ok {
				return fmt.Errorf("jetstream not ready: %s", why)
			}
			if code, body := readyz(e); code != http.StatusOK {
				return fmt.Errorf("/readyz %d: %s", code, body)
			}
			return nil
		}
	}
	testenv.CheckFor(t, 20*time.Second, healthy(e))

	nc, js := engineJS(t, e)
	ctx := context.Background()
	// A small stream (32 kB blocks), so that a few publishes need a new
	// block file.
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "WERR_PROBE", Subjects: []string{"bankbook.probe.werr"}, MaxBytes: 100_000})
	if err != nil {
		t.Fatal(err)
	}
	var msgs string
	err = filepath.WalkDir(cfg.DataDir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && d.Name() == "msgs" && filepath.Base(filepath.Dir(path)) == "WERR_PROBE" {
			msgs = path
		}
		return err
	})
	if err != nil || msgs == "" {
		t.Fatalf("no block directory of the stream under %s (%v)", cfg.DataDir, err)
	}
	// The directory the next block goes into is gone: a file is there.
	if err := os.RemoveAll(msgs); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(msgs, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	body := []byte(strings.Repeat("x", 1000))
	failed := false
	for i := 0; i < 200 && !failed; i++ { // 200 kB: several blocks
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := js.Publish(pctx, "bankbook.probe.werr", body)
		cancel()
		failed = err != nil
	}
	if !failed {
		t.Fatal("every publish was stored, though the stream has no block directory")
	}
	testenv.CheckFor(t, 20*time.Second, func() error {
		if ok, why := part(e); ok {
			return fmt.Errorf("jetstream still ready")
		} else if !strings.Contains(why, "WERR_PROBE") || !strings.Contains(why, "write error") {
			return fmt.Errorf("not ready, but for %q", why)
		}
		if code, body := readyz(e); code != http.StatusServiceUnavailable || !strings.Contains(body, "WERR_PROBE") {
			return fmt.Errorf("/readyz %d: %s", code, body)
		}
		return nil
	})
	// /metrics says it too: the part runs, and is not ready.
	resp, err := http.Get("http://" + e.HTTPAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`bankbook_part_up{part="jetstream"} 1`, `bankbook_part_ready{part="jetstream"} 0`} {
		if !strings.Contains(string(metrics), want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// The cause gone, the store still refuses until a restart.
	if err := os.Remove(msgs); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(msgs, 0o750); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Info(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(6 * time.Second) // longer than the part's interval
	if ok, _ := part(e); ok {
		t.Fatal("ready again without a restart, though the store still refuses writes")
	}
	nc.Close()
	if err := e.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	e, err = engine.Start(ctx, cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	testenv.CheckFor(t, 20*time.Second, healthy(e))
}
