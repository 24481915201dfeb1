package loadgen

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/rs/zerolog"
)

// Config configures a run. Zero fields take the defaults of 'make
// bench-engine' (about 9 minutes on 2 vCPUs).
type Config struct {
	// Binary is the bankbook binary run as the engine. Required.
	Binary string
	// Dir holds the engines' data directories and logs. Required; created
	// if missing.
	Dir string
	// Profiles are the durability profiles measured, each on its own
	// engine: "safe" (every write synced before its ack), "safe-grouped"
	// (safe with group commit) and "fast". Default all three.
	Profiles []string
	// Clients are the concurrencies measured, each client on its own
	// connection. Default 1, 16, 64.
	Clients []int
	// Rounds is how many interleaved baseline/engine rounds each cell
	// runs. Default 3.
	Rounds int
	// Duration is how long one phase (one round of one side of a cell)
	// runs. Default 3s. Ignored when Ops is set.
	Duration time.Duration
	// Ops, when set, is the number of operations of one phase instead of
	// a Duration.
	Ops int
	// MsgSize is the baseline message's size in bytes. Default 900 (a
	// submit's commit).
	MsgSize int
	// Visibility is how long the command-to-query visibility phase runs per
	// profile, at half the sustained rate of keyed submits at the largest
	// concurrency. Default 10s; negative skips it.
	Visibility time.Duration
	// ScanTransfers is how many orders a fresh engine of ScanProfile takes,
	// each then paid by a transfer the bench records as a bank scan does.
	// Default 20000; negative skips it.
	ScanTransfers int
	// ScanProfile is the durability profile of the bank scan's engine.
	// Default "fast".
	ScanProfile string
	// RSSOrders is how many keyed orders a fresh fast-profile engine takes
	// before its RSS is compared with a bare nats-server's on the same
	// data. Default 20000; negative skips it.
	RSSOrders int
	// ReleaseOrders is how many keyed orders each of the release figure's
	// rounds submits (Release); 0 or negative skips it (the default: each
	// round waits about a minute and a half for the names' purge markers
	// to expire).
	ReleaseOrders int
	// IdleTrim is the memory engine's and the bare server's --idle-trim,
	// 1s or more (serve's default is 15s). Both are read once they have
	// trimmed.
	IdleTrim time.Duration
	// ProfileDir, when set, receives CPU and heap profiles of the engine
	// (serve --pprof) taken during keyed submits at the largest
	// concurrency, one pair per durability profile measured, and a heap
	// profile of the memory figure's engine once it is idle.
	ProfileDir string
	// ProfileSeconds is how long the CPU profile runs. Default 10.
	ProfileSeconds int
	// ReadyTimeout bounds an engine's start. Default 90s.
	ReadyTimeout time.Duration
	// RequestTimeout bounds one request. Default 30s.
	RequestTimeout time.Duration
	// Log receives progress.
	Log zerolog.Logger
}

func (c *Config) setDefaults() {
	if len(c.Profiles) == 0 {
		c.Profiles = []string{"safe", ProfileSafeGrouped, "fast"}
	}
	if len(c.Clients) == 0 {
		c.Clients = []int{1, 16, 64}
	}
	if c.Rounds == 0 {
		c.Rounds = 3
	}
	if c.Duration == 0 {
		c.Duration = 3 * time.Second
	}
	if c.MsgSize == 0 {
		c.MsgSize = 900
	}
	if c.Visibility == 0 {
		c.Visibility = 10 * time.Second
	}
	if c.RSSOrders == 0 {
		c.RSSOrders = 20000
	}
	if c.ScanProfile == "" {
		c.ScanProfile = "fast"
	}
	if c.ScanTransfers == 0 {
		c.ScanTransfers = 20000
	}
	if c.ProfileSeconds == 0 {
		c.ProfileSeconds = 10
	}
	if c.ReadyTimeout == 0 {
		c.ReadyTimeout = 90 * time.Second
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 30 * time.Second
	}
}

// Validate reports every problem.
func (c Config) Validate() error {
	var errs []error
	if c.Binary == "" {
		errs = append(errs, errors.New("binary is required"))
	}
	if c.Dir == "" {
		errs = append(errs, errors.New("dir is required"))
	}
	for _, p := range append(slices.Clone(c.Profiles), c.ScanProfile) {
		if p != "safe" && p != ProfileSafeGrouped && p != "fast" {
			errs = append(errs, fmt.Errorf("profile %q: want safe, %s or fast", p, ProfileSafeGrouped))
		}
	}
	for _, n := range c.Clients {
		if n < 1 || n > 1024 {
			errs = append(errs, fmt.Errorf("clients %d: want 1 to 1024", n))
		}
	}
	if c.Rounds < 1 {
		errs = append(errs, errors.New("rounds: want 1 or more"))
	}
	if c.Ops < 0 || c.Duration < 0 {
		errs = append(errs, errors.New("ops and duration must not be negative"))
	}
	if c.MsgSize < 1 || c.MsgSize > 1<<20 {
		errs = append(errs, errors.New("msg size: want 1 byte to 1 MiB"))
	}
	if c.ScanTransfers > 0 && c.ScanTransfers < c.Rounds {
		errs = append(errs, errors.New("scan transfers: want at least one per round"))
	}
	if c.ProfileSeconds < 1 {
		errs = append(errs, errors.New("profile seconds: want 1 or more"))
	}
	if c.IdleTrim < time.Second {
		errs = append(errs, errors.New("idle trim: want 1s or more"))
	}
	return errors.Join(errs...)
}

// maxClients is the largest concurrency measured.
func (c Config) maxClients() int { return slices.Max(c.Clients) }
