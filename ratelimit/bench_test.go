package ratelimit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/internal/benchkit"
	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/ratelimit"
)

// BenchmarkReserve measures the compare-and-set contention curve: 1, 8 and
// 32 acquirers, each on a connection and Store of its own (as separate
// processes would be), reserving on one key whose rate is so high that no
// reservation waits. It reports acquisitions per second, latency
// percentiles and the CAS writes lost per acquisition. The "one-store"
// case runs 32 goroutines on one Store (one process), whose goroutines
// take turns at the key. The baseline is raw KV puts on one key at the same
// concurrency on the same server (raw_put/s; x_raw_put is the ratio).
func BenchmarkReserve(b *testing.B) {
	srv := testenv.Start(b, "")
	for _, tc := range []struct {
		name               string
		contenders, stores int
	}{
		{"contenders=1", 1, 1},
		{"contenders=8", 8, 8},
		{"contenders=32", 32, 32},
		{"contenders=32,one-store", 32, 1},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var (
				stores []*ratelimit.Store
				ls     []*ratelimit.Limiter
			)
			scope := fmt.Sprintf("bench-%d-%d", tc.contenders, tc.stores)
			for range tc.stores {
				_, js := srv.Connect(b)
				s, err := ratelimit.Open(b.Context(), js, ratelimit.Config{})
				if err != nil {
					b.Fatal(err)
				}
				l, err := s.Limiter(scope, ratelimit.Limit{Rate: 1e9})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := l.Reserve(b.Context(), time.Second); err != nil { // calibrates the clock
					b.Fatal(err)
				}
				stores, ls = append(stores, s), append(ls, l)
			}
			// The baseline, on the same server at the same concurrency: raw
			// KV puts on one key (no read, no compare-and-set).
			var kvs []jetstream.KeyValue
			for range tc.stores {
				_, js := srv.Connect(b)
				kv, err := js.KeyValue(b.Context(), ratelimit.DefaultBucket)
				if err != nil {
					b.Fatal(err)
				}
				kvs = append(kvs, kv)
			}
			raw, err := benchkit.Drive(tc.contenders, benchkit.Count(2000), func(w, _ int) error {
				_, err := kvs[w%len(kvs)].Put(b.Context(), "raw-"+scope, []byte("x"))
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
			before := sumStats(stores)
			got, err := benchkit.Drive(tc.contenders, b.Loop, func(w, _ int) error {
				_, err := ls[w%len(ls)].Reserve(b.Context(), time.Second)
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
			after := sumStats(stores)
			b.ReportMetric(got.NsPerOp(), "ns/op")
			b.ReportMetric(got.PerSec(), "acq/s")
			b.ReportMetric(raw.PerSec(), "raw_put/s")
			b.ReportMetric(got.PerSec()/raw.PerSec(), "x_raw_put")
			b.ReportMetric(got.Pct(0.50), "p50_us")
			b.ReportMetric(got.Pct(0.99), "p99_us")
			b.ReportMetric(float64(after.Conflicts-before.Conflicts)/float64(got.N), "conflicts/acq")
			b.ReportMetric(float64(after.Calibrations-before.Calibrations), "calibrations")
		})
	}
}

func sumStats(stores []*ratelimit.Store) ratelimit.Stats {
	var t ratelimit.Stats
	for _, s := range stores {
		st := s.Stats()
		t.Reserved += st.Reserved
		t.NotYet += st.NotYet
		t.Conflicts += st.Conflicts
		t.Failures += st.Failures
		t.Calibrations += st.Calibrations
		t.ClockResets += st.ClockResets
	}
	return t
}

// The utilisation run's knobs (environment variables, for make
// bench-limiter) and the helper processes' settings.
const (
	envSeconds = "BANKBOOK_LIMITER_SECONDS" // run length, default 3
	envRate    = "BANKBOOK_LIMITER_RATE"    // slots per second, default 50
	envHelper  = "BANKBOOK_LIMITER_HELPER"  // set in helper processes: a JSON helperConfig
	processes  = 3
	perProcess = 4 // acquirers per process
)

type helperConfig struct {
	URL, Seed, Out string
	Rate           float64
	Duration       time.Duration
	Workers        int
}

// helperReport is what a helper process writes.
type helperReport struct {
	At, Acted     []int64 // Unix ns: each use's slot and when it acted
	Stale, Errors int
	Stats         ratelimit.Stats
	FirstErr      string
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkLimiterUtilisation is the saturated utilisation run across
// three processes (this test binary, run again as helpers), each with four
// acquirers reserving up to a second ahead on one key. It runs 3s by
// default and BANKBOOK_LIMITER_SECONDS otherwise (make bench-limiter: 60),
// at BANKBOOK_LIMITER_RATE per second (default 50). It fails if a rolling
// second holds more slots than the rate; it reports the rate achieved
// against the emission rate and the nominal rate, the most slots and uses
// seen in a rolling second, and how late acquirers acted after their slot.
func BenchmarkLimiterUtilisation(b *testing.B) {
	seconds, rate := envInt(envSeconds, 3), envInt(envRate, 50)
	lim := ratelimit.Limit{Rate: float64(rate)}
	srv := testenv.Start(b, "")
	_, js := srv.Connect(b)
	if _, err := ratelimit.Open(b.Context(), js, ratelimit.Config{}); err != nil { // creates the bucket
		b.Fatal(err)
	}
	for range b.N {
		dir := b.TempDir()
		var (
			cmds []*exec.Cmd
			outs []*bytes.Buffer
		)
		for i := range processes {
			cfg, _ := json.Marshal(helperConfig{
				URL: srv.ClientURL(), Seed: auth.SeedFile(srv.AuthDir, auth.Engine), Out: filepath.Join(dir, fmt.Sprintf("p%d.json", i)),
				Rate: lim.Rate, Duration: time.Duration(seconds) * time.Second, Workers: perProcess,
			})
			cmd := exec.CommandContext(b.Context(), os.Args[0], "-test.run=^TestLimiterHelperProcess$", "-test.count=1")
			cmd.Env = append(os.Environ(), envHelper+"="+string(cfg))
			out := &bytes.Buffer{}
			cmd.Stdout, cmd.Stderr = out, out
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			cmds, outs = append(cmds, cmd), append(outs, out)
		}
		var (
			slots, acts []time.Time
			lateness    []time.Duration
			per         []int
			stale, errs int
			stats       []ratelimit.Stats
		)
		for i, cmd := range cmds {
			if err := cmd.Wait(); err != nil {
				b.Fatalf("helper %d: %v\n%s", i, err, outs[i])
			}
			raw, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("p%d.json", i)))
			if err != nil {
				b.Fatalf("helper %d: %v\n%s", i, err, outs[i])
			}
			var rep helperReport
			if err := json.Unmarshal(raw, &rep); err != nil {
				b.Fatal(err)
			}
			if rep.FirstErr != "" {
				b.Logf("helper %d: %d errors, first: %s", i, rep.Errors, rep.FirstErr)
			}
			for j := range rep.At {
				at, acted := time.Unix(0, rep.At[j]), time.Unix(0, rep.Acted[j])
				slots, acts, lateness = append(slots, at), append(acts, acted), append(lateness, acted.Sub(at))
			}
			per = append(per, len(rep.At))
			stale, errs = stale+rep.Stale, errs+rep.Errors
			stats = append(stats, rep.Stats)
		}
		slices.SortFunc(slots, func(a, b time.Time) int { return a.Compare(b) })
		slices.Sort(lateness)
		if len(slots) < 2 {
			b.Fatalf("%d slots used", len(slots))
		}
		if n := maxInWindow(slots, time.Second); n > rate {
			b.Fatalf("%d slots in a rolling second, limit %d", n, rate)
		}
		span := slots[len(slots)-1].Sub(slots[0])
		perSec := float64(len(slots)-1) / span.Seconds()
		var conflicts, calibrations uint64
		for _, st := range stats {
			conflicts += st.Conflicts
			calibrations += st.Calibrations
		}
		pct := func(p float64) float64 {
			return float64(lateness[min(int(float64(len(lateness))*p), len(lateness)-1)]) / float64(time.Millisecond)
		}
		b.ReportMetric(perSec, "acq/s")
		b.ReportMetric(100*perSec*lim.Interval().Seconds(), "util_emission_%")
		b.ReportMetric(100*perSec/lim.Rate, "util_nominal_%")
		b.ReportMetric(float64(maxInWindow(slots, time.Second)), "max_slots/1s")
		b.ReportMetric(float64(maxInWindow(acts, time.Second)), "max_uses/1s")
		b.ReportMetric(pct(0.50), "late_p50_ms")
		b.ReportMetric(pct(0.99), "late_p99_ms")
		b.ReportMetric(pct(1), "late_max_ms")
		b.ReportMetric(float64(slices.Min(per))*processes/float64(len(slots))*100, "min_share_%")
		b.ReportMetric(float64(stale), "stale")
		b.ReportMetric(float64(errs), "errors")
		b.ReportMetric(float64(conflicts)/float64(len(slots)+stale), "conflicts/acq")
		b.ReportMetric(float64(calibrations), "calibrations")
		b.ReportMetric(0, "ns/op")
	}
}

// TestLimiterHelperProcess is one process of BenchmarkLimiterUtilisation;
// it does nothing in a normal test run.
func TestLimiterHelperProcess(t *testing.T) {
	raw := os.Getenv(envHelper)
	if raw == "" {
		t.Skip("a helper process of BenchmarkLimiterUtilisation")
	}
	var cfg helperConfig
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(cfg.URL, testenv.NKey(t, cfg.Seed))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ratelimit.Open(t.Context(), js, ratelimit.Config{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.Limiter("utilisation", ratelimit.Limit{Rate: cfg.Rate})
	if err != nil {
		t.Fatal(err)
	}
	var rep helperReport
	ctx, cancel := context.WithTimeout(t.Context(), cfg.Duration)
	defer cancel()
	uses, stale := acquirers(t, ctx, []*ratelimit.Limiter{l}, acquire{per: cfg.Workers, maxWait: time.Second, onErr: func(err error) {
		if rep.Errors++; rep.FirstErr == "" {
			rep.FirstErr = err.Error()
		}
	}})
	for _, u := range uses {
		rep.At, rep.Acted = append(rep.At, u.at.UnixNano()), append(rep.Acted, u.acted.UnixNano())
	}
	rep.Stale, rep.Stats = stale, s.Stats()
	out, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.Out, out, 0o600); err != nil {
		t.Fatal(err)
	}
}
