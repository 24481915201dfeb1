package loadgen

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/client"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/internal/engineproc"
)

// scratchStream is the baseline's stream: the event stream's settings,
// another name and subject prefix.
var scratchStream = eventstore.Config{Stream: "BENCH_SCRATCH", SubjectPrefix: "scratch"}

// harness is one engine process and the connections that drive it.
type harness struct {
	cfg     Config
	profile string
	eng     *engineproc.Proc
	log     zerolog.Logger
	runID   string

	conns   []*nats.Conn
	clients []*client.Client      // app identity, one connection each
	pubs    []jetstream.JetStream // engine identity, one connection each
	js      jetstream.JetStream   // engine identity, for setup
	body    []byte                // the baseline message

	next     atomic.Int64 // numbers orders and raw messages, unique per engine
	lastSeq  atomic.Uint64
	lastMu   sync.Mutex
	lastID   string // an order the engine acknowledged, for settle
	accepted atomic.Int64
}

// profileArgs are the serve flags of a profile: "safe" and "fast" are the
// durability profiles as serve runs them by default, "safe-grouped" is
// safe with group commit (--group-commit).
func profileArgs(profile string) []string {
	if profile == ProfileSafeGrouped {
		return []string{"--durability", "safe", "--group-commit"}
	}
	return []string{"--durability", profile}
}

// ProfileSafeGrouped is the safe profile with group commit.
const ProfileSafeGrouped = "safe-grouped"

// startHarness starts an engine of profile with extra serve flags and
// connects clients connections of each kind.
func startHarness(ctx context.Context, cfg Config, profile, name string, clients int, extra ...string) (*harness, error) {
	dir := filepath.Join(cfg.Dir, name)
	eng, err := engineproc.New(engineproc.Config{
		Binary: cfg.Binary, DataDir: filepath.Join(dir, "data"), LogPath: filepath.Join(dir, "engine.log"), Label: "bench",
		Args: append(append(profileArgs(profile), "--log-format", "json", "--log-level", "warn"), extra...),
	})
	if err != nil {
		return nil, err
	}
	h := &harness{cfg: cfg, profile: profile, eng: eng, runID: strconv.FormatInt(time.Now().UnixNano()%1e9, 36),
		log: cfg.Log.With().Str("engine", name).Logger()}
	h.log.Info().Str("nats", eng.URL()).Str("durability", profile).Msg("bench: starting the engine")
	if err := eng.Start(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEngine, err)
	}
	if err := eng.WaitReady(ctx, cfg.ReadyTimeout); err != nil {
		_ = eng.Kill()
		return nil, fmt.Errorf("%w: %w", ErrEngine, err)
	}
	if err := h.connect(ctx, clients); err != nil {
		h.close()
		return nil, err
	}
	return h, nil
}

func (h *harness) dial(role auth.Role, name string) (*nats.Conn, error) {
	nkey, err := nats.NkeyOptionFromSeed(h.eng.Seed(role))
	if err != nil {
		return nil, fmt.Errorf("%s identity: %w", role, err)
	}
	nc, err := nats.Connect(h.eng.URL(), nats.Name(name), nkey, nats.NoCallbacksAfterClientClose())
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", name, err)
	}
	h.conns = append(h.conns, nc)
	return nc, nil
}

func (h *harness) connect(ctx context.Context, clients int) error {
	for w := range clients {
		nc, err := h.dial(auth.App, fmt.Sprintf("bench-client-%d", w))
		if err != nil {
			return err
		}
		h.clients = append(h.clients, client.New(nc))
		// The baseline publishes to JetStream itself, which only the
		// engine identity may.
		bc, err := h.dial(auth.Engine, fmt.Sprintf("bench-baseline-%d", w))
		if err != nil {
			return err
		}
		js, err := jetstream.New(bc)
		if err != nil {
			return err
		}
		h.pubs = append(h.pubs, js)
	}
	h.js = h.pubs[0]
	if _, err := h.js.CreateStream(ctx, scratchStream.StreamConfig()); err != nil {
		return fmt.Errorf("scratch stream: %w", err)
	}
	h.body = make([]byte, h.cfg.MsgSize)
	for i := range h.body {
		h.body[i] = 'a' + byte(i%26)
	}
	// Warm every connection up (the first requests after /readyz may
	// find a handler still subscribing: retried for a while).
	for w := range clients {
		deadline := time.Now().Add(15 * time.Second)
		for {
			_, err := h.submit(ctx, w, true)
			if err == nil {
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return fmt.Errorf("warm-up submit: %w", err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err := h.raw(ctx, w); err != nil {
			return fmt.Errorf("warm-up publish: %w", err)
		}
	}
	return nil
}

// close stops the engine (SIGTERM, killed after a grace) and closes the
// connections.
func (h *harness) close() {
	for _, nc := range h.conns {
		nc.Close()
	}
	if err := h.eng.Stop(30 * time.Second); err != nil {
		h.log.Warn().Err(err).Msg("bench: engine stop")
	}
}

// buyerName is a buyer name whose first 7 characters (what a depositor
// name keeps before its 3-digit suffix) differ for every i, so no two
// orders of a run compete for a depositor name.
func buyerName(i int64) string {
	s := strconv.FormatInt(i, 36)
	return "b" + strings.Repeat("0", max(0, 6-len(s))) + s
}

// submit submits one order on client w's connection, with an
// Idempotency-Key when key is set.
func (h *harness) submit(ctx context.Context, w int, key bool) (api.SubmitOrderReply, error) {
	i := h.next.Add(1)
	req := api.SubmitOrderRequest{BuyerID: fmt.Sprintf("bench-u-%d", i), BuyerName: buyerName(i), Amount: 39000}
	var hdr nats.Header
	if key {
		hdr = client.WithIdempotencyKey(fmt.Sprintf("bench-%s-%d", h.runID, i))
	}
	cctx, cancel := context.WithTimeout(ctx, h.cfg.RequestTimeout)
	defer cancel()
	rep, _, err := client.Do(cctx, h.clients[w], api.OrderSubmit, req, hdr)
	if err != nil {
		return rep, fmt.Errorf("%w: %w", ErrRequest, err)
	}
	if rep.DepositorName == "" || rep.Seq == 0 {
		return rep, fmt.Errorf("%w: reply without a depositor name or seq: %+v", ErrRequest, rep)
	}
	h.accepted.Add(1)
	for {
		old := h.lastSeq.Load()
		if uint64(rep.Seq) <= old || h.lastSeq.CompareAndSwap(old, uint64(rep.Seq)) {
			break
		}
	}
	h.lastMu.Lock()
	h.lastID = rep.OrderID
	h.lastMu.Unlock()
	return rep, nil
}

// raw publishes one baseline message on connection w and waits for its ack.
func (h *harness) raw(ctx context.Context, w int) error {
	i := h.next.Add(1)
	cctx, cancel := context.WithTimeout(ctx, h.cfg.RequestTimeout)
	defer cancel()
	_, err := h.pubs[w].PublishMsg(cctx, &nats.Msg{Subject: "scratch.order." + strconv.FormatInt(i, 10), Data: h.body})
	if err != nil {
		return fmt.Errorf("%w: raw publish: %w", ErrRequest, err)
	}
	return nil
}

// getOrder asks for order id once the read models have applied seq.
func (h *harness) getOrder(ctx context.Context, w int, id string, seq api.Seq) error {
	cctx, cancel := context.WithTimeout(ctx, h.cfg.RequestTimeout)
	defer cancel()
	v, _, err := client.Do(cctx, h.clients[w], api.OrderGet, api.GetOrderRequest{OrderID: id, ReadAfter: api.ReadAfter{MinSeq: seq}}, nil)
	if err != nil {
		return fmt.Errorf("%w: order get: %w", ErrRequest, err)
	}
	if v.OrderID != id {
		return fmt.Errorf("%w: order get %s answered %q", ErrRequest, id, v.OrderID)
	}
	return nil
}

// settle waits until the read models have applied every acknowledged
// commit and the engine process is idle (under 10% of a core over 300ms),
// at most 20 seconds; it says whether the engine went idle.
func (h *harness) settle(ctx context.Context) bool {
	deadline := time.Now().Add(20 * time.Second)
	h.lastMu.Lock()
	id := h.lastID
	h.lastMu.Unlock()
	if id != "" {
		for time.Now().Before(deadline) && ctx.Err() == nil {
			if err := h.getOrder(ctx, 0, id, api.Seq(h.lastSeq.Load())); err == nil || !errors.Is(err, ErrRequest) {
				break
			}
		}
	}
	const window = 300 * time.Millisecond
	for time.Now().Before(deadline) && ctx.Err() == nil {
		c0, err := h.eng.CPU()
		if err != nil {
			return false
		}
		time.Sleep(window)
		c1, err := h.eng.CPU()
		if err != nil {
			return false
		}
		if c1-c0 <= window/10 {
			return true
		}
	}
	return false
}
