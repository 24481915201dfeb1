package loadgen

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/bankbook/bankbook/internal/benchkit"
)

// Run measures what cfg says and returns the report. The error is nil when
// every figure was measured; it matches ErrEngine when an engine could not
// be started and ErrRequest when a measured request failed, and is ctx's
// error when ctx ended first. The Report is never nil and holds what was
// measured before an error.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg.setDefaults()
	rep := &Report{Started: time.Now().UTC(), Machine: machine(), LoadBefore: loadavg(), Config: summary(cfg)}
	defer func() {
		rep.LoadAfter = loadavg()
		rep.Elapsed = time.Since(rep.Started).Round(time.Second).String()
	}()
	if err := cfg.Validate(); err != nil {
		return rep, fmt.Errorf("loadgen config: %w", err)
	}
	rep.TopClients = cfg.maxClients()
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return rep, err
	}
	for _, profile := range cfg.Profiles {
		if err := runProfile(ctx, cfg, profile, rep); err != nil {
			return rep, err
		}
	}
	if cfg.RSSOrders > 0 {
		m, err := memory(ctx, cfg)
		if err != nil {
			return rep, fmt.Errorf("memory: %w", err)
		}
		rep.Memory = m
		if m.Profile != "" {
			rep.Profiles = append(rep.Profiles, m.Profile)
		}
	}
	if cfg.ReleaseOrders > 0 {
		r, err := release(ctx, cfg)
		if err != nil {
			return rep, fmt.Errorf("release: %w", err)
		}
		rep.Release = r
		if r.Profile != "" {
			rep.Profiles = append(rep.Profiles, r.Profile)
		}
	}
	if cfg.ScanTransfers > 0 {
		s, err := scan(ctx, cfg)
		if err != nil {
			return rep, fmt.Errorf("bank scan: %w", err)
		}
		rep.Scan = s
	}
	return rep, nil
}

// runProfile measures every cell of one profile on one engine, then the
// profiles (pprof) and the visibility figure.
func runProfile(ctx context.Context, cfg Config, profile string, rep *Report) error {
	var extra []string
	pprof := cfg.ProfileDir != ""
	if pprof {
		extra = append(extra, "--pprof")
	}
	clients := cfg.maxClients()
	h, err := startHarness(ctx, cfg, profile, profile, clients, extra...)
	if err != nil {
		return err
	}
	defer h.close()
	for _, n := range cfg.Clients {
		for _, key := range []bool{false, true} {
			c, err := h.cell(ctx, key, n)
			if err != nil {
				return err
			}
			rep.Cells = append(rep.Cells, c)
		}
	}
	if pprof {
		files, err := captureProfiles(ctx, h, cfg.ProfileDir, cfg.ProfileSeconds, func(lctx context.Context) error {
			_, err := benchkit.Drive(clients, func() bool { return lctx.Err() == nil }, func(w, _ int) error {
				_, err := h.submit(lctx, w, true)
				return err
			})
			return err
		})
		if err != nil {
			return fmt.Errorf("profiles: %w", err)
		}
		rep.Profiles = append(rep.Profiles, files...)
	}
	if cfg.Visibility > 0 {
		sustained := 0.0
		for _, c := range rep.Cells {
			if c.Profile == profile && c.Key && c.Clients == clients {
				sustained = c.Submit.PerSec
			}
		}
		if sustained > 0 {
			v, err := h.visibility(ctx, sustained/2, clients, cfg.Visibility)
			if err != nil {
				return fmt.Errorf("visibility: %w", err)
			}
			rep.Visibility = append(rep.Visibility, v)
		}
	}
	return nil
}

// machine describes the CPU this runs on.
func machine() string {
	model, virt := "unknown CPU", ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			switch strings.TrimSpace(k) {
			case "model name":
				model = strings.TrimSpace(v)
			case "flags":
				if slices.Contains(strings.Fields(v), "hypervisor") {
					virt = " (virtualised)"
				}
			}
		}
	}
	return fmt.Sprintf("%d vCPU %s%s, %s/%s", runtime.NumCPU(), model, virt, runtime.GOOS, runtime.GOARCH)
}

// loadavg is the 1, 5 and 15 minute load averages: the machine may be
// shared.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

func summary(cfg Config) string {
	per := cfg.Duration.String()
	if cfg.Ops > 0 {
		per = fmt.Sprintf("%d ops", cfg.Ops)
	}
	return fmt.Sprintf("profiles %s, clients %v, %d rounds of %s per side, %d-byte baseline messages, visibility %s, %d orders for memory, %d orders per release round, %d transfers for the bank scan",
		strings.Join(cfg.Profiles, ","), cfg.Clients, cfg.Rounds, per, cfg.MsgSize, cfg.Visibility, cfg.RSSOrders, max(cfg.ReleaseOrders, 0), cfg.ScanTransfers)
}
