package soak

import (
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"
)

// Config configures a run. Zero fields take the defaults of 'make soak';
// Smoke returns the short variant the tests run.
type Config struct {
	// Binary is the bankbook binary to run as the engine. Required (Build
	// makes one).
	Binary string
	// Dir is the run's directory: the engine's data directory (data/), the
	// ack log (acks.jsonl), the engine's output (engine.log) and replay
	// output (replay-N/). Required; created if missing.
	Dir string
	// Clients is how many clients send traffic at once. Default 24.
	Clients int
	// Instances is how many engine instances serve them (1-3), the first
	// embedding the NATS server, the others joining it (newEngines).
	// Each kill picks one. Default 1.
	Instances int
	// Cycles is how many times the engine is killed with SIGKILL and
	// restarted. Default 20.
	Cycles int
	// MinUp and MaxUp bound how long the engine serves traffic between
	// becoming ready and being killed (uniformly random in between).
	// Defaults 2s and 6s.
	MinUp, MaxUp time.Duration
	// MaxDuration bounds the traffic phase: kill cycles stop when it is
	// spent, and a run that could not do Cycles kills fails its "kills"
	// check. Default 10m.
	MaxDuration time.Duration
	// AttemptTimeout bounds one request attempt. Default 5s.
	AttemptTimeout time.Duration
	// RequestBudget bounds how long one request is retried with its key
	// before it is counted as unresolved. It must outlast an idempotency
	// lease left by a killed engine (30s). Default 2m.
	RequestBudget time.Duration
	// ReadyTimeout bounds how long a (re)started engine may take to answer
	// 200 on /readyz. Default 90s.
	ReadyTimeout time.Duration
	// DrainTimeout bounds how long, after the traffic, the engine may take
	// to finish its background work (payouts, reserved cancellations) and
	// go idle. Default 5m.
	DrainTimeout time.Duration
	// WithdrawPercent is the share of client iterations that withdraw from
	// a wallet (1-100); payouts are what the engine takes longest to finish
	// after the traffic. Default 10.
	WithdrawPercent int
	// Seed seeds the clients' choices; 0 picks one (the Report prints it).
	Seed uint64
	// ServeArgs are appended to the engine's 'bankbook serve' flags.
	ServeArgs []string
	// Log receives the run's progress.
	Log zerolog.Logger
}

// Timings of the engine the run starts; the checks derive their margins
// from them.
const (
	scanInterval = 200 * time.Millisecond
	cancelWindow = 2 * time.Second
	// simLag is the simulated bank's refresh lag (serve's default).
	simLag = 2 * time.Second
	// recordMargin is how long before a kill a simulated transfer must
	// have been acknowledged to count as one the scanner had time to record.
	recordMargin = simLag + scanInterval + 8*time.Second
)

// Smoke returns the configuration of the short run the tests do: a few
// clients, three kill cycles, about half a minute.
func Smoke(binary, dir string) Config {
	return Config{
		Binary: binary, Dir: dir,
		Clients: 4, Cycles: 3,
		MinUp: 2 * time.Second, MaxUp: 3 * time.Second,
		MaxDuration: 2 * time.Minute, RequestBudget: 90 * time.Second, DrainTimeout: 2 * time.Minute,
	}
}

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if c.Clients == 0 {
		c.Clients = 24
	}
	if c.Cycles == 0 {
		c.Cycles = 20
	}
	if c.Instances == 0 {
		c.Instances = 1
	}
	if c.WithdrawPercent == 0 {
		c.WithdrawPercent = 10
	}
	def(&c.MinUp, 2*time.Second)
	def(&c.MaxUp, 6*time.Second)
	def(&c.MaxDuration, 10*time.Minute)
	def(&c.AttemptTimeout, 5*time.Second)
	def(&c.RequestBudget, 2*time.Minute)
	def(&c.ReadyTimeout, 90*time.Second)
	def(&c.DrainTimeout, 5*time.Minute)
}

// Validate reports every problem with c (after defaults).
func (c Config) Validate() error {
	var errs []error
	if c.Binary == "" {
		errs = append(errs, errors.New("binary is required"))
	}
	if c.Dir == "" {
		errs = append(errs, errors.New("dir is required"))
	}
	if c.Clients < 1 || c.Clients > 256 {
		errs = append(errs, fmt.Errorf("clients must be 1-256, got %d", c.Clients))
	}
	if c.Instances < 1 || c.Instances > 3 {
		errs = append(errs, fmt.Errorf("instances must be 1-3, got %d", c.Instances))
	}
	if c.Cycles < 0 || c.Cycles > 1000 {
		errs = append(errs, fmt.Errorf("cycles must be 0-1000, got %d", c.Cycles))
	}
	if c.WithdrawPercent < 1 || c.WithdrawPercent > 100 {
		errs = append(errs, fmt.Errorf("withdraw percent must be 1-100, got %d", c.WithdrawPercent))
	}
	if c.MinUp <= 0 || c.MaxUp < c.MinUp {
		errs = append(errs, fmt.Errorf("want 0 < min-up <= max-up, got %v and %v", c.MinUp, c.MaxUp))
	}
	for name, d := range map[string]time.Duration{"max duration": c.MaxDuration, "attempt timeout": c.AttemptTimeout,
		"request budget": c.RequestBudget, "ready timeout": c.ReadyTimeout, "drain timeout": c.DrainTimeout} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative", name))
		}
	}
	if c.RequestBudget < c.AttemptTimeout {
		errs = append(errs, errors.New("the request budget must be at least one attempt timeout"))
	}
	return errors.Join(errs...)
}
