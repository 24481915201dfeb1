package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/embedded"
	"github.com/bankbook/bankbook/engine"
	"github.com/bankbook/bankbook/internal/loadgen"
	"github.com/bankbook/bankbook/internal/memtrim"
)

// bench runs 'bankbook bench': the performance table of issue 13 (package
// internal/loadgen), or 'bankbook bench bare-server', the bare nats-server
// the engine's memory is compared with.
func bench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == loadgen.BareServerCommand[1] {
		return bareServer(ctx, args[1:], stderr)
	}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: bankbook bench [flags]

Starts 'bankbook serve' (this binary) as a separate process per durability
profile, drives it over TCP like clients do, and prints each target of
issue 13 beside its baseline from the same run: a raw JetStream sync publish
on the same server at the same concurrency (docs/performance.md).

`)
		fs.PrintDefaults()
	}
	var cfg loadgen.Config
	bin := fs.String("bin", "", "the bankbook binary to run as the engine (default: this one)")
	dir := fs.String("dir", "", "directory for the engines' data and logs (default: a temporary one, removed afterwards)")
	profiles := fs.String("profiles", "safe,safe-grouped,fast", "durability profiles to measure: safe, safe-grouped (safe with --group-commit), fast")
	clients := fs.String("clients", "1,16,64", "concurrent clients to measure, each on its own connection")
	fs.IntVar(&cfg.Rounds, "rounds", 3, "interleaved baseline/engine rounds per cell (the report gives medians)")
	fs.DurationVar(&cfg.Duration, "duration", 3*time.Second, "how long each side of a round runs")
	fs.IntVar(&cfg.Ops, "ops", 0, "operations per side of a round instead of --duration")
	fs.IntVar(&cfg.MsgSize, "msg-size", 900, "baseline message size in bytes")
	fs.DurationVar(&cfg.Visibility, "visibility", 10*time.Second, "how long the command → query visibility phase runs per profile (negative: skip)")
	fs.IntVar(&cfg.RSSOrders, "rss-orders", 20000, "orders before the engine's RSS is compared with a bare nats-server's (negative: skip)")
	fs.IntVar(&cfg.ReleaseOrders, "release-orders", 0, "orders per round of the names-release figure: they expire, their names are released, and the names bucket and the engine's RSS are read once the markers are gone (0: skip; about 1.5 min a round)")
	fs.DurationVar(&cfg.IdleTrim, "idle-trim", time.Duration(engine.Defaults().IdleTrim), "the memory engine's and the bare server's --idle-trim (1s or more); both are read once they have trimmed")
	fs.StringVar(&cfg.ScanProfile, "scan-profile", "fast", "durability profile of the bank scan's engine: safe, safe-grouped or fast")
	fs.IntVar(&cfg.ScanTransfers, "scan-transfers", 20000, "orders, each paid by a transfer recorded as a bank scan does, for the bank scan figure (negative: skip; the issue's figure is 100000)")
	fs.StringVar(&cfg.ProfileDir, "pprof-dir", "", "write CPU and heap profiles of the engine (each profile, submit with key, most clients; and the memory figure's idle engine) here")
	fs.IntVar(&cfg.ProfileSeconds, "pprof-seconds", 10, "length of the CPU profile")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	verbose := fs.Bool("v", false, "log progress to stderr")
	if err := parseWithArgs(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("bench: unexpected argument %q", fs.Arg(0))
	}
	var err error
	if cfg.Clients, err = parseInts(*clients); err != nil {
		return usageError("bench: --clients: %v", err)
	}
	cfg.Profiles = strings.Split(*profiles, ",")
	cfg.Binary = *bin
	if cfg.Binary == "" {
		if cfg.Binary, err = os.Executable(); err != nil {
			return fmt.Errorf("bench: this binary: %w", err)
		}
	}
	cfg.Dir = *dir
	if cfg.Dir == "" {
		if cfg.Dir, err = os.MkdirTemp("", "bankbook-bench-"); err != nil {
			return err
		}
		defer os.RemoveAll(cfg.Dir)
	}
	cfg.Log = zerolog.Nop()
	if *verbose {
		cfg.Log = zerolog.New(zerolog.ConsoleWriter{Out: stderr, TimeFormat: "15:04:05"}).With().Timestamp().Logger()
	}
	if err := cfg.Validate(); err != nil {
		return usageError("bench: %v", err)
	}
	rep, err := loadgen.Run(ctx, cfg)
	if *asJSON {
		out := struct {
			*loadgen.Report
			Targets []loadgen.Target `json:"targets"`
			Error   string           `json:"error,omitempty"`
		}{Report: rep, Targets: rep.Targets()}
		if err != nil {
			out.Error = err.Error()
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if jerr := enc.Encode(out); jerr != nil {
			return jerr
		}
	} else if _, werr := rep.WriteTo(stdout); werr != nil {
		return werr
	}
	if err != nil {
		if errors.Is(err, loadgen.ErrEngine) {
			return unavailable(fmt.Errorf("bench: %w (logs under %s; rerun with --dir to keep them)", err, cfg.Dir))
		}
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}

func parseInts(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// bareServer runs the embedded nats-server alone on a data directory, with
// the accounts and identities the engine generated there, until ctx ends:
// what the engine's memory is compared with. /readyz answers 200 once the
// server accepts connections (it has recovered its streams by then). Like
// the engine, it returns its idle memory to the operating system once, after
// --idle-trim (nothing writes to it, so it is idle from the start).
func bareServer(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench bare-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", "", "the engine's data directory")
	listen := fs.String("listen", "127.0.0.1:4222", "client address HOST:PORT")
	httpListen := fs.String("http-listen", "127.0.0.1:8080", "HOST:PORT of /readyz")
	idleTrim := engine.Defaults().IdleTrim
	fs.Var(&idleTrim, "idle-trim", "return the idle memory to the operating system after this long (0: never)")
	if err := parseWithArgs(fs, args); err != nil {
		return err
	}
	if *dataDir == "" {
		return usageError("bench bare-server: --data-dir is required")
	}
	authDir := filepath.Join(*dataDir, "auth")
	ids, err := auth.Identities(authDir, "")
	if err != nil {
		return err
	}
	accounts, err := auth.Render(auth.Tenant{Users: ids})
	if err != nil {
		return err
	}
	srv, err := embedded.Start(embedded.Config{
		StoreDir: filepath.Join(*dataDir, "jetstream"), Listen: *listen, Durability: embedded.Fast,
		Accounts: accounts, EngineSeed: auth.SeedFile(authDir, auth.Engine),
	})
	if err != nil {
		return unavailable(err)
	}
	defer srv.Shutdown()
	ln, err := net.Listen("tcp", *httpListen)
	if err != nil {
		return unavailable(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	if idleTrim > 0 {
		idle := &memtrim.Idle{After: time.Duration(idleTrim), Activity: func() (uint64, bool) { return 0, false }, Trim: func() { memtrim.Free() }}
		go func() { _ = idle.Run(ctx) }()
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return hs.Shutdown(sctx)
}
