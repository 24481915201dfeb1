package loadgen

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/client"
	"github.com/bankbook/bankbook/internal/benchkit"
	"github.com/bankbook/bankbook/reservations"
)

// namesStream is the stream of the depositor-name bucket
// (reservations.Config.Bucket's default).
const namesStream = "KV_bankbook_depositor_names"

// Release is the "flat once released reservations expire" figure: a fresh
// fast-profile engine whose orders expire a second after submission and
// keep their names a second more (--payment-deadline 1s --name-grace 1s;
// --finalise-retry 1s: they look at the scan again every second)
// takes Orders keyed orders per round; the bench advances the bank scan's
// watermark (deposit.scan_complete, as the feed identity) until every
// order has expired and its name and buyer have left the names bucket, and
// the purge markers with them; then the engine's idle RSS is read. Each
// round's figures beside the warm engine's show whether what the names
// bucket holds, and the engine's memory, stay flat as orders come and go.
type Release struct {
	Orders int            `json:"orders_per_round"`
	Start  ReleaseSample  `json:"start"`
	Rounds []ReleaseRound `json:"rounds"`
	// Bare is a bare nats-server's RSS on the data the rounds left (read
	// as for Memory), and Ratio the last round's idle engine RSS over it.
	Bare  int64   `json:"bare_server_rss_bytes"`
	Ratio float64 `json:"ratio"`
	// Profile is the idle engine's heap profile after the last round (only
	// with Config.ProfileDir).
	Profile string `json:"-"`
}

// ReleaseSample is what the names bucket and the engine held at one point.
type ReleaseSample struct {
	NameSubjects uint64 `json:"name_subjects"` // subjects of the names bucket's stream
	NameMsgs     uint64 `json:"name_msgs"`
	EventSubj    uint64 `json:"event_subjects"` // subjects of the event stream: grows with every order
	RSS          int64  `json:"engine_rss_bytes"`
}

// ReleaseRound is one round: the names bucket right after its orders, and
// everything once their names have left it and the engine has trimmed.
type ReleaseRound struct {
	Held     ReleaseSample `json:"held"`
	Released ReleaseSample `json:"released"`
	Wait     float64       `json:"wait_seconds"` // from the last order to the names leaving
	Trimmed  bool          `json:"trimmed"`
}

// releaseRounds is how many rounds the release figure runs.
const releaseRounds = 3

// release measures Release on its own engine.
func release(ctx context.Context, cfg Config) (*Release, error) {
	clients := cfg.maxClients()
	flags := []string{"--payment-deadline", "1s", "--name-grace", "1s", "--finalise-retry", "1s", "--idle-trim", cfg.IdleTrim.String()}
	if cfg.ProfileDir != "" {
		flags = append(flags, "--pprof")
	}
	h, err := startHarness(ctx, cfg, "fast", "release", clients, flags...)
	if err != nil {
		return nil, err
	}
	defer h.close()
	if err := h.js.DeleteStream(ctx, scratchStream.Stream); err != nil {
		return nil, fmt.Errorf("delete scratch stream: %w", err)
	}
	nc, err := h.dial(auth.Feed, "bench-feed")
	if err != nil {
		return nil, err
	}
	feed := client.New(nc)
	first, err := h.submit(ctx, 0, true) // for the collection account's number
	if err != nil {
		return nil, err
	}
	account := first.CollectAccount.Number
	r := &Release{Orders: cfg.ReleaseOrders}
	// The warm-up's orders leave too before the start is read.
	trims, _, err := h.awaitTrim(ctx, 0, cfg.trimWait())
	if err != nil {
		return nil, err
	}
	if err := h.releaseAll(ctx, feed, account, 0); err != nil {
		return nil, err
	}
	if trims, _, err = h.awaitTrim(ctx, trims, cfg.trimWait()); err != nil {
		return nil, err
	}
	if r.Start, err = h.releaseSample(ctx); err != nil {
		return nil, err
	}
	for round := range releaseRounds {
		h.log.Info().Int("round", round+1).Int("orders", cfg.ReleaseOrders).Msg("bench: orders whose names are released")
		if _, err := benchkit.Drive(clients, benchkit.Count(cfg.ReleaseOrders), func(w, _ int) error { _, err := h.submit(ctx, w, true); return err }); err != nil {
			return nil, fmt.Errorf("release orders: %w", err)
		}
		var rr ReleaseRound
		if rr.Held, err = h.releaseSample(ctx); err != nil {
			return nil, err
		}
		start := time.Now()
		if err := h.releaseAll(ctx, feed, account, r.Start.NameSubjects); err != nil {
			return nil, err
		}
		rr.Wait = time.Since(start).Seconds()
		h.settle(ctx)
		if trims, rr.Trimmed, err = h.awaitTrim(ctx, trims, cfg.trimWait()); err != nil {
			return nil, err
		}
		if rr.Released, err = h.releaseSample(ctx); err != nil {
			return nil, err
		}
		r.Rounds = append(r.Rounds, rr)
	}
	if cfg.ProfileDir != "" {
		// The heap the idle engine holds after the last round.
		path := filepath.Join(cfg.ProfileDir, fmt.Sprintf("heap-release-%drounds-idle.pprof", releaseRounds))
		if err := os.MkdirAll(cfg.ProfileDir, 0o755); err != nil {
			return nil, err
		}
		if err := fetch(ctx, fmt.Sprintf("http://%s/debug/pprof/heap", h.eng.HTTPAddr()), path, 30*time.Second); err != nil {
			return nil, err
		}
		r.Profile = path
	}
	var m Memory
	if err := streamSizes(ctx, h.js, &m); err != nil {
		return nil, err
	}
	h.close()
	bare, err := bareServer(ctx, cfg, h.eng.DataDir(), filepath.Join(cfg.Dir, "release", "bare-server.log"), 0, m.StreamMsgs)
	if err != nil {
		return nil, err
	}
	r.Bare = bare.RSS
	r.Ratio = safeDiv(float64(r.Rounds[len(r.Rounds)-1].Released.RSS), float64(r.Bare))
	return r, nil
}

// releaseAll advances the scan watermark to now every second until the
// names bucket holds at most want subjects (every order expired, its name
// and buyer released, the markers expired), at most ten times the marker
// TTL.
func (h *harness) releaseAll(ctx context.Context, feed *client.Client, account string, want uint64) error {
	deadline := time.Now().Add(10 * reservations.DefaultReleasedTTL)
	for {
		cctx, cancel := context.WithTimeout(ctx, h.cfg.RequestTimeout)
		_, _, err := client.Do(cctx, feed, api.DepositScanComplete, api.ScanCompleteRequest{AccountNumber: account, CompleteUpTo: time.Now().UTC()}, nil)
		cancel()
		if err != nil {
			return fmt.Errorf("%w: scan complete: %w", ErrRequest, err)
		}
		s, err := h.releaseSample(ctx)
		if err != nil {
			return err
		}
		if s.NameSubjects <= want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: the names bucket still holds %d subjects after %v, want %d", ErrRequest, s.NameSubjects, 10*reservations.DefaultReleasedTTL, want)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// releaseSample reads the names bucket's and the event stream's state and
// the engine's RSS.
func (h *harness) releaseSample(ctx context.Context) (ReleaseSample, error) {
	var s ReleaseSample
	var m Memory
	if err := streamSizes(ctx, h.js, &m); err != nil {
		return s, err
	}
	for _, st := range m.Streams {
		switch st.Name {
		case namesStream:
			s.NameSubjects, s.NameMsgs = st.Subjects, st.Msgs
		case auth.DefaultStream:
			s.EventSubj = st.Subjects
		}
	}
	mem, err := h.eng.RSS()
	if err != nil {
		return s, err
	}
	s.RSS = mem.RSS
	return s, nil
}
