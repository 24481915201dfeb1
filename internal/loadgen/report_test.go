package loadgen

import (
	"strings"
	"testing"
)

func TestMedian(t *testing.T) {
	for name, c := range map[string]struct {
		in   []float64
		want float64
	}{
		"empty": {nil, 0},
		"odd":   {[]float64{3, 1, 2}, 2},
		"even":  {[]float64{4, 1, 3, 2}, 2.5},
	} {
		t.Run(name, func(t *testing.T) {
			if got := median(c.in); got != c.want {
				t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
			}
		})
	}
}

// TestTargets: each target reads its cell, and "met" follows the goal.
func TestTargets(t *testing.T) {
	r := &Report{TopClients: 64, Cells: []Cell{
		{Profile: "safe", Key: true, Clients: 64, Ratio: 0.55, CPURatio: 6, Submit: Phase{PerSec: 550, CPUus: 60}, Raw: Phase{PerSec: 1000, CPUus: 10}},
		{Profile: "safe", Key: true, Clients: 1, Ratio: 0.3, Raw: Phase{PerSec: 1000}},
		{Profile: "fast", Key: true, Clients: 64, Ratio: 0.31, CPURatio: 4.9},
		// Group commit: its own raw publishes (not synced per message) are
		// not the baseline; the safe profile's are.
		{Profile: ProfileSafeGrouped, Key: true, Clients: 64, Ratio: 0.05, Submit: Phase{PerSec: 1100}, Raw: Phase{PerSec: 20000}},
		{Profile: ProfileSafeGrouped, Key: true, Clients: 1, Ratio: 0.05, Submit: Phase{PerSec: 300}, Raw: Phase{PerSec: 6000}},
		{Profile: "safe", Key: false, Clients: 64, Ratio: 0.6, Submit: Phase{PerSec: 600}, Raw: Phase{PerSec: 900}},
		{Profile: ProfileSafeGrouped, Key: false, Clients: 64, Ratio: 0.08, Submit: Phase{PerSec: 1800}, Raw: Phase{PerSec: 22000}},
	}, Visibility: []Visibility{{Profile: "safe", P99us: 9_000}}, Memory: &Memory{Orders: 10, Engine: 3 << 20, Bare: 2 << 20, Ratio: 1.5,
		Replay: &Replay{Commits: 10, PerSec: 40, RawPerSec: 100, Ratio: 0.4}},
		Scan: &Scan{Profile: "fast", Transfers: 6, Workers: 8, Ratio: 0.5, Rounds: []Round{{}}}}
	got, ratios := map[string]string{}, map[string]string{}
	for _, tg := range r.Targets() {
		got[tg.Name], ratios[tg.Name] = tg.Met, tg.Ratio
	}
	want := map[string]string{
		"safe, submit with key, 64 clients":                                                                    "yes",
		"safe, submit with key, 1 client":                                                                      "no",
		"fast, submit with key, 64 clients":                                                                    "yes",
		"engine CPU per submit with key, safe, 64 clients":                                                     "no",
		"engine CPU per submit with key, fast, 64 clients":                                                     "yes",
		"replay ('bankbook replay' over TCP) of 10 commits; projection rebuild: make bench-replay":             "no",
		"bank scan: 6 transfers recorded (deposit.record over TCP, 8 feed connections), each paying its order": "yes",
		"safe with group commit, submit with key, 64 clients":                                                  "yes",
		"safe with group commit, submit with key, 1 client":                                                    "no",
		"safe group commit: submit with key vs raw per-message-fsync publish, 64 clients":                      "yes",
		"safe group commit: submit without key vs raw per-message-fsync publish, 64 clients":                   "yes",
	}
	for name, ratio := range map[string]string{
		"safe with group commit, submit with key, 64 clients":                                "1.10×", // 1100 ÷ safe's 1000
		"safe with group commit, submit with key, 1 client":                                  "0.30×", // 300 ÷ safe's 1000
		"safe group commit: submit without key vs raw per-message-fsync publish, 64 clients": "2.00×", // 1800 ÷ 900
	} {
		if ratios[name] != ratio {
			t.Errorf("%s: ratio %q, want %q", name, ratios[name], ratio)
		}
	}
	for name, met := range want {
		if got[name] != met {
			t.Errorf("%s: met %q, want %q (all: %v)", name, got[name], met, got)
		}
	}
	var b strings.Builder
	if _, err := r.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"| safe, submit with key | 0.30 | 0.55 |", "| fast, submit with key | - | 0.31 |", "| engine RSS after 10 orders", "p99 ≤ 10 ms | yes |"} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("report lacks %q:\n%s", s, b.String())
		}
	}
}
