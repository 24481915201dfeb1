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
		{Profile: "safe", Key: true, Clients: 1, Ratio: 0.3},
		{Profile: "fast", Key: true, Clients: 64, Ratio: 0.31, CPURatio: 4.9},
	}, Visibility: []Visibility{{Profile: "safe", P99us: 9_000}}, Memory: &Memory{Orders: 10, Engine: 3 << 20, Bare: 2 << 20, Ratio: 1.5,
		Replay: &Replay{Commits: 10, PerSec: 40, RawPerSec: 100, Ratio: 0.4}},
		Scan: &Scan{Transfers: 6, Workers: 8, Ratio: 0.5, Rounds: []Round{{}}}}
	got := map[string]string{}
	for _, tg := range r.Targets() {
		got[tg.Name] = tg.Met
	}
	want := map[string]string{
		"safe, submit with key, 64 clients":                                                                    "yes",
		"safe, submit with key, 1 client":                                                                      "no",
		"fast, submit with key, 64 clients":                                                                    "yes",
		"engine CPU per submit with key, safe, 64 clients":                                                     "no",
		"engine CPU per submit with key, fast, 64 clients":                                                     "yes",
		"replay ('bankbook replay' over TCP) of 10 commits; projection rebuild: make bench-replay":             "no",
		"bank scan: 6 transfers recorded (deposit.record over TCP, 8 feed connections), each paying its order": "yes",
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
