package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/internal/benchkit"
	"github.com/bankbook/bankbook/internal/engineproc"
	"github.com/bankbook/bankbook/internal/memtrim"
)

// Memory compares the engine's RSS after Orders keyed orders with a bare
// nats-server's holding the same data directory. The engine is read twice:
// right after the orders (AfterLoad), and once it has been idle long enough
// to return what the burst left behind (Engine, the figure compared: the
// memory-trim part, docs/operations.md). The bare server, which trims its
// idle memory the same way, is read a second after it is ready and again
// once it has trimmed and at least as long after as the engine was; Bare
// is the lower.
type Memory struct {
	Orders     int64 `json:"orders"`
	EngineIdle int64 `json:"engine_rss_start_bytes"` // after its warm-up and the trim that follows it
	AfterLoad  int64 `json:"engine_rss_after_load_bytes"`
	Engine     int64 `json:"engine_rss_bytes"`
	Bare       int64 `json:"bare_server_rss_bytes"`
	// IdleWait is how long after the orders (and the engine's settling)
	// Engine was read; Trimmed says whether the engine had trimmed its
	// memory by then (false: an engine without the memory-trim part, read
	// at once, or one that did not trim within Config.trimWait).
	IdleWait float64 `json:"idle_wait_seconds"`
	Trimmed  bool    `json:"trimmed"`
	// The same figures split: anonymous memory (heap, stacks) and mapped
	// files (the engine's bbolt read models are memory-mapped).
	AfterLoadMem engineproc.Memory `json:"engine_memory_after_load"`
	EngineMem    engineproc.Memory `json:"engine_memory"`
	BareMem      engineproc.Memory `json:"bare_server_memory"`
	Ratio        float64           `json:"ratio"`
	StreamBytes  uint64            `json:"stream_bytes"` // all streams
	StreamMsgs   uint64            `json:"stream_msgs"`  // all streams
	Subjects     uint64            `json:"subjects"`     // all streams
	Streams      []StreamSize      `json:"streams"`
	// Replay is 'bankbook replay' of the event stream these orders wrote
	// against a raw read of it.
	Replay *Replay `json:"replay,omitempty"`
	// Profile is the heap profile of the idle engine, taken when its RSS
	// was read (only with Config.ProfileDir; the report lists it with the
	// other profiles).
	Profile string `json:"-"`
}

// StreamSize is one stream's size.
type StreamSize struct {
	Name     string `json:"name"`
	Msgs     uint64 `json:"msgs"`
	Bytes    uint64 `json:"bytes"`
	Subjects uint64 `json:"subjects"`
}

// BareServerCommand is the bankbook subcommand that runs the embedded
// nats-server alone on a data directory, with the engine's accounts: it
// takes --data-dir, --listen, --http-listen and --idle-trim like serve,
// answers 200 on /readyz once the server accepts connections, and returns
// its idle memory to the operating system once, after --idle-trim.
var BareServerCommand = []string{"bench", "bare-server"}

// trimWait bounds the wait for the engine's trim after it has settled: its
// reactors may still work through the orders' commits for a while (after
// 500,000 fast orders the engine trimmed 53 s after they settled,
// docs/performance.md "Reactors that keep up").
func (c Config) trimWait() time.Duration {
	return max(3*time.Minute, 2*memtrim.Latest(c.IdleTrim))
}

// memory submits cfg.RSSOrders keyed orders to a fresh fast-profile engine
// at the largest concurrency, reads its RSS once idle, measures replays of
// its event stream, stops it, and reads the RSS of a bare nats-server
// started on its data directory.
func memory(ctx context.Context, cfg Config) (*Memory, error) {
	clients := cfg.maxClients()
	trimFlag := []string{"--idle-trim", cfg.IdleTrim.String()}
	engineFlags := trimFlag
	if cfg.ProfileDir != "" {
		engineFlags = append(slices.Clone(trimFlag), "--pprof")
	}
	h, err := startHarness(ctx, cfg, "fast", "memory", clients, engineFlags...)
	if err != nil {
		return nil, err
	}
	defer h.close()
	// The scratch stream is not the engine's data: gone before anything
	// is measured.
	if err := h.js.DeleteStream(ctx, scratchStream.Stream); err != nil {
		return nil, fmt.Errorf("delete scratch stream: %w", err)
	}
	m := &Memory{}
	h.settle(ctx)
	// The warm-up's trim: the count after it is exact however long the
	// settling after the orders takes, since an idle engine trims again
	// only after new work.
	trims, _, err := h.awaitTrim(ctx, 0, cfg.trimWait())
	if err != nil {
		return nil, err
	}
	warm, err := h.eng.RSS()
	if err != nil {
		return nil, err
	}
	m.EngineIdle = warm.RSS
	todo := max(0, cfg.RSSOrders-int(h.accepted.Load()))
	h.log.Info().Int("orders", todo).Msg("bench: orders for the memory figure")
	if _, err := benchkit.Drive(clients, benchkit.Count(todo), func(w, _ int) error { _, err := h.submit(ctx, w, true); return err }); err != nil {
		return nil, fmt.Errorf("memory orders: %w", err)
	}
	h.settle(ctx)
	m.Orders = h.accepted.Load()
	if m.AfterLoadMem, err = h.eng.RSS(); err != nil {
		return nil, err
	}
	m.AfterLoad = m.AfterLoadMem.RSS
	start := time.Now()
	if _, m.Trimmed, err = h.awaitTrim(ctx, trims, cfg.trimWait()); err != nil {
		return nil, err
	}
	idle := time.Since(start)
	m.IdleWait = idle.Seconds()
	if m.EngineMem, err = h.eng.RSS(); err != nil {
		return nil, err
	}
	m.Engine = m.EngineMem.RSS
	if cfg.ProfileDir != "" {
		// The heap the idle, trimmed engine holds, as its RSS was read.
		path := filepath.Join(cfg.ProfileDir, fmt.Sprintf("heap-memory-%dorders-idle.pprof", m.Orders))
		if err := os.MkdirAll(cfg.ProfileDir, 0o755); err != nil {
			return nil, err
		}
		if err := fetch(ctx, fmt.Sprintf("http://%s/debug/pprof/heap", h.eng.HTTPAddr()), path, 30*time.Second); err != nil {
			return nil, err
		}
		m.Profile = path
	}
	if err := streamSizes(ctx, h.js, m); err != nil {
		return nil, err
	}
	// Replay the stream the orders wrote while the engine serves it idle
	// (after its RSS is read: the replays are separate processes anyway).
	if m.Replay, err = replayRounds(ctx, cfg, h.eng, h.js, filepath.Join(cfg.Dir, "memory", "replays")); err != nil {
		return nil, err
	}
	h.close()

	if m.BareMem, err = bareServer(ctx, cfg, h.eng.DataDir(), filepath.Join(cfg.Dir, "memory", "bare-server.log"), idle, m.StreamMsgs); err != nil {
		return nil, err
	}
	m.Bare = m.BareMem.RSS
	m.Ratio = safeDiv(float64(m.Engine), float64(m.Bare))
	return m, nil
}

// bareServer starts a bare nats-server on the stopped engine's dataDir,
// checks that it holds msgs messages, and returns its memory: read a second
// after it is ready and again once it has trimmed its own idle memory as
// the engine did (it trims after its --idle-trim; it has no trim counter
// to wait for) and at least idle after it was ready; the lower reading.
func bareServer(ctx context.Context, cfg Config, dataDir, logPath string, idle time.Duration, msgs uint64) (engineproc.Memory, error) {
	var low engineproc.Memory
	bare, err := engineproc.New(engineproc.Config{
		Binary: cfg.Binary, DataDir: dataDir, LogPath: logPath,
		Command: BareServerCommand, Label: "bench", Args: []string{"--idle-trim", cfg.IdleTrim.String()},
	})
	if err != nil {
		return low, err
	}
	if err := bare.Start(); err != nil {
		return low, fmt.Errorf("%w: bare server: %w", ErrEngine, err)
	}
	defer bare.Kill()
	if err := bare.WaitReady(ctx, cfg.ReadyTimeout); err != nil {
		return low, fmt.Errorf("%w: bare server: %w", ErrEngine, err)
	}
	// Ask for every stream's state, as a client of the data would, and
	// check it holds what the engine had.
	nkey, err := nats.NkeyOptionFromSeed(bare.Seed(auth.Engine))
	if err != nil {
		return low, err
	}
	nc, err := nats.Connect(bare.URL(), nkey, nats.Name("bench-bare"))
	if err != nil {
		return low, fmt.Errorf("connect to the bare server: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return low, err
	}
	var check Memory
	if err := streamSizes(ctx, js, &check); err != nil {
		return low, fmt.Errorf("bare server: %w", err)
	}
	if check.StreamMsgs != msgs {
		return low, fmt.Errorf("the bare server holds %d messages, the engine held %d", check.StreamMsgs, msgs)
	}
	ready := time.Now()
	for _, at := range []time.Duration{time.Second, max(idle, memtrim.Latest(cfg.IdleTrim)+time.Second)} {
		select {
		case <-ctx.Done():
			return low, ctx.Err()
		case <-time.After(time.Until(ready.Add(at))):
		}
		mem, err := bare.RSS()
		if err != nil {
			return low, err
		}
		if low.RSS == 0 || mem.RSS < low.RSS {
			low = mem
		}
	}
	_ = bare.Stop(10 * time.Second)
	return low, nil
}

func streamSizes(ctx context.Context, js jetstream.JetStream, m *Memory) error {
	names := js.StreamNames(ctx)
	var all []string
	for n := range names.Name() {
		all = append(all, n)
	}
	if err := names.Err(); err != nil {
		return fmt.Errorf("stream names: %w", err)
	}
	for _, n := range all {
		s, err := js.Stream(ctx, n)
		if err != nil {
			return fmt.Errorf("stream %s: %w", n, err)
		}
		st := s.CachedInfo().State
		m.Streams = append(m.Streams, StreamSize{Name: n, Msgs: st.Msgs, Bytes: st.Bytes, Subjects: uint64(st.NumSubjects)})
		m.StreamMsgs += st.Msgs
		m.StreamBytes += st.Bytes
		m.Subjects += uint64(st.NumSubjects)
	}
	return nil
}

// captureProfiles takes a CPU profile of the engine (serve --pprof) while
// load runs, then a heap profile, into dir.
func captureProfiles(ctx context.Context, h *harness, dir string, seconds int, load func(context.Context) error) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	name := fmt.Sprintf("%s-submit-key-%dclients", h.profile, len(h.clients))
	cpuPath := filepath.Join(dir, "cpu-"+name+".pprof")
	heapPath := filepath.Join(dir, "heap-"+name+".pprof")
	lctx, stop := context.WithCancel(ctx)
	defer stop()
	loadErr := make(chan error, 1)
	go func() { loadErr <- load(lctx) }()
	time.Sleep(500 * time.Millisecond) // under load before the profile starts
	url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", h.eng.HTTPAddr(), seconds)
	if err := fetch(ctx, url, cpuPath, time.Duration(seconds+30)*time.Second); err != nil {
		stop()
		<-loadErr
		return nil, err
	}
	// The heap as the load left it (no forced GC: what the process holds).
	err := fetch(ctx, fmt.Sprintf("http://%s/debug/pprof/heap", h.eng.HTTPAddr()), heapPath, 30*time.Second)
	stop()
	if lerr := <-loadErr; lerr != nil && ctx.Err() == nil && lctx.Err() == nil {
		return nil, lerr
	}
	if err != nil {
		return nil, err
	}
	return []string{cpuPath, heapPath}, nil
}

func fetch(ctx context.Context, url, path string, timeout time.Duration) error {
	var b bytes.Buffer
	if err := get(ctx, url, timeout, &b); err != nil {
		return fmt.Errorf("pprof: %w", err)
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// get copies the body of a GET of url to w.
func get(ctx context.Context, url string, timeout time.Duration, w io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("%s: %s %s", url, resp.Status, b)
	}
	_, err = io.Copy(w, resp.Body)
	return err
}

// trims reads how many times the engine has returned its idle memory
// (bankbook_part_work_total{part="memory-trim"}, engine/memtrim.go); ok is
// false for an engine without the memory-trim part (an older --bin, or
// --idle-trim 0).
func (h *harness) trims(ctx context.Context) (n uint64, ok bool, err error) {
	s, err := h.metrics(ctx)
	if err != nil {
		return 0, false, err
	}
	m := s.metric("bankbook_part_work_total", map[string]string{"part": "memory-trim", "outcome": "processed"})
	if m == nil {
		return 0, false, nil
	}
	return uint64(m.GetCounter().GetValue()), true, nil
}

// awaitTrim waits, up to wait, until the engine has trimmed its memory more
// than before times, and returns the count and whether it did. An engine
// without the memory-trim part (an older --bin) is not waited for.
func (h *harness) awaitTrim(ctx context.Context, before uint64, wait time.Duration) (uint64, bool, error) {
	deadline := time.Now().Add(wait)
	for {
		n, ok, err := h.trims(ctx)
		if err != nil || !ok {
			return n, false, err
		}
		if n > before {
			return n, true, nil
		}
		if time.Now().After(deadline) {
			return n, false, nil
		}
		select {
		case <-ctx.Done():
			return n, false, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}
