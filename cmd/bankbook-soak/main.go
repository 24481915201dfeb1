// Command bankbook-soak is bankbook's kill -9 reliability run ('make soak'):
// it runs 'bankbook serve --bank-sim' as a child process, sends traffic from
// many clients that retry every request with the same Idempotency-Key, kills
// the engine with SIGKILL every few seconds and restarts it on the same data
// directory, and then checks that nothing acknowledged was lost or
// duplicated, that the books balance and that a replay equals the live read
// models. See package internal/soak.
//
//	bankbook-soak [-bin bin/bankbook] [-clients 24] [-cycles 20] [-max-duration 10m] [-dir DIR] [-keep]
//
// Exit status: 0 every check passed, 1 a check failed, 2 the run could not
// be done (build, flags, an engine that would not start).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/internal/soak"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// serveArgs collects repeated -serve-arg flags.
type serveArgs []string

func (s *serveArgs) String() string     { return strings.Join(*s, " ") }
func (s *serveArgs) Set(v string) error { *s = append(*s, v); return nil }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bankbook-soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg soak.Config
	bin := fs.String("bin", "", "the bankbook binary to soak (default: build ./cmd/bankbook into the run directory)")
	race := fs.Bool("race", false, "build the engine with the race detector (without -bin)")
	fs.StringVar(&cfg.Dir, "dir", "", "run directory: data, ack log, engine log (default: a new temporary directory)")
	keep := fs.Bool("keep", false, "keep the run directory after a passing run (a failing run's is always kept)")
	fs.IntVar(&cfg.Clients, "clients", 24, "clients sending traffic at once")
	fs.IntVar(&cfg.Cycles, "cycles", 20, "kill -9 and restart cycles")
	fs.IntVar(&cfg.Instances, "instances", 1, "engine instances (1-3): the first embeds the NATS server, the others join it; each kill picks one")
	fs.DurationVar(&cfg.MinUp, "min-up", 2*time.Second, "shortest time the engine serves between ready and kill")
	fs.DurationVar(&cfg.MaxUp, "max-up", 6*time.Second, "longest time the engine serves between ready and kill")
	fs.DurationVar(&cfg.MaxDuration, "max-duration", 10*time.Minute, "bound on the traffic phase")
	fs.IntVar(&cfg.WithdrawPercent, "withdraw-percent", 10, "share of client iterations that withdraw from a wallet (1-100)")
	fs.DurationVar(&cfg.DrainTimeout, "drain-timeout", 5*time.Minute, "how long the engine may take to go idle after the traffic")
	fs.Uint64Var(&cfg.Seed, "seed", 0, "seed of the clients' choices (0: random; the report prints it)")
	fs.Var((*serveArgs)(&cfg.ServeArgs), "serve-arg", "an extra flag for 'bankbook serve' (repeatable), e.g. -serve-arg=--part-concurrency=react-money=4")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	verbose := fs.Bool("v", false, "log progress to stderr")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bankbook-soak: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if cfg.Dir == "" {
		dir, err := os.MkdirTemp("", "bankbook-soak-")
		if err != nil {
			fmt.Fprintln(stderr, "bankbook-soak:", err)
			return 2
		}
		cfg.Dir = dir
	}
	cfg.Binary = *bin
	if cfg.Binary == "" {
		cfg.Binary = filepath.Join(cfg.Dir, "bankbook")
		fmt.Fprintf(stderr, "bankbook-soak: building ./cmd/bankbook into %s\n", cfg.Binary)
		if err := soak.Build(ctx, cfg.Binary, *race); err != nil {
			fmt.Fprintln(stderr, "bankbook-soak:", err)
			return 2
		}
	} else if abs, err := filepath.Abs(cfg.Binary); err == nil {
		cfg.Binary = abs
	}
	level := zerolog.WarnLevel
	if *verbose {
		level = zerolog.InfoLevel
	}
	cfg.Log = zerolog.New(zerolog.ConsoleWriter{Out: stderr, TimeFormat: "15:04:05.000"}).Level(level).With().Timestamp().Logger()
	fmt.Fprintf(stderr, "bankbook-soak: %d clients, %d kill cycles, run directory %s\n", cfg.Clients, cfg.Cycles, cfg.Dir)

	rep, err := soak.Run(ctx, cfg)
	switch {
	case len(rep.Checks) == 0: // it never ran: nothing to report but err
	case *asJSON:
		b, _ := json.MarshalIndent(rep, "", "  ")
		fmt.Fprintln(stdout, string(b))
	default:
		rep.WriteTo(stdout)
	}
	switch {
	case err == nil:
		if !*keep {
			_ = os.RemoveAll(cfg.Dir)
		}
		return 0
	case errors.Is(err, soak.ErrChecksFailed):
		fmt.Fprintf(stderr, "bankbook-soak: %v; the run directory %s holds acks.jsonl and engine.log\n", err, cfg.Dir)
		return 1
	default:
		fmt.Fprintf(stderr, "bankbook-soak: %v; the run directory %s holds acks.jsonl and engine.log\n", err, cfg.Dir)
		return 2
	}
}
