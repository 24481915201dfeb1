package loadgen

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Report is what a run measured.
type Report struct {
	Started    time.Time `json:"started"`
	Elapsed    string    `json:"elapsed"`
	Machine    string    `json:"machine"`
	LoadBefore string    `json:"loadavg_before"`
	LoadAfter  string    `json:"loadavg_after"`
	Config     string    `json:"config"`
	// TopClients is the largest concurrency of the run: the targets'
	// "64 clients".
	TopClients int          `json:"top_clients"`
	Cells      []Cell       `json:"cells"`
	Visibility []Visibility `json:"visibility"`
	Memory     *Memory      `json:"memory,omitempty"`
	Release    *Release     `json:"release,omitempty"`
	Scan       *Scan        `json:"scan,omitempty"`
	Profiles   []string     `json:"profiles,omitempty"`
}

// Target is one line of the targets table: an issue 13 target next to its
// baseline.
type Target struct {
	Name     string `json:"name"`
	Engine   string `json:"engine"`
	Baseline string `json:"baseline"`
	Ratio    string `json:"ratio"`
	Goal     string `json:"goal"`
	Met      string `json:"met"` // yes, no, or - (not measured here)
}

func (r *Report) cell(profile string, key bool, clients int) (Cell, bool) {
	i := slices.IndexFunc(r.Cells, func(c Cell) bool { return c.Profile == profile && c.Key == key && c.Clients == clients })
	if i < 0 {
		return Cell{}, false
	}
	return r.Cells[i], true
}

func (r *Report) maxClients() int {
	n := r.TopClients
	for _, c := range r.Cells {
		n = max(n, c.Clients)
	}
	return n
}

func met(ok bool) string {
	if ok {
		return "yes"
	}
	return "no"
}

func clientsLabel(n int) string {
	if n == 1 {
		return "1 client"
	}
	return fmt.Sprintf("%d clients", n)
}

// Targets are the targets, in its order, with what this run
// measured of each.
func (r *Report) Targets() []Target {
	var ts []Target
	top := r.maxClients()
	// ratio compares profile's submits with base's raw publishes at the
	// same concurrency: the cell's own ratio (the median of its rounds')
	// when base is profile, the ratio of the two medians otherwise (group
	// commit, whose server does not sync per write, against the safe
	// profile's raw per-message-fsync publish).
	ratio := func(name, profile, base string, key bool, clients int, goal string, ok func(float64) bool) {
		t := Target{Name: name, Goal: goal, Met: "-"}
		c, found := r.cell(profile, key, clients)
		b, bfound := r.cell(base, key, clients)
		if !found || !bfound {
			t.Engine = "not measured (profile or concurrency not in this run)"
			ts = append(ts, t)
			return
		}
		x := c.Ratio
		t.Engine = fmt.Sprintf("%.0f submits/s", c.Submit.PerSec)
		t.Baseline = fmt.Sprintf("%.0f publishes/s", b.Raw.PerSec)
		if base != profile {
			x = c.Submit.PerSec / b.Raw.PerSec
			t.Engine += " (--group-commit)"
			t.Baseline += " (" + base + ": synced per message)"
		}
		t.Ratio, t.Met = fmt.Sprintf("%.2f×", x), met(ok(x))
		ts = append(ts, t)
	}
	atLeast := func(goal float64) func(float64) bool { return func(x float64) bool { return x >= goal } }
	for _, clients := range []int{top, 1} {
		goal, moonshot := 0.4, ""
		if clients == top {
			goal, moonshot = 0.5, " (moonshot 0.8×)"
		}
		g := fmt.Sprintf("≥ %.1f×%s", goal, moonshot)
		ratio(fmt.Sprintf("safe, submit with key, %s", clientsLabel(clients)), "safe", "safe", true, clients, g, atLeast(goal))
		ratio(fmt.Sprintf("safe with group commit, submit with key, %s", clientsLabel(clients)), ProfileSafeGrouped, "safe", true, clients, g, atLeast(goal))
	}
	ratio(fmt.Sprintf("fast, submit with key, %s", clientsLabel(top)), "fast", "fast", true, top, "≥ 0.3×", atLeast(0.3))
	for _, p := range []string{"safe", "fast"} {
		t := Target{Name: fmt.Sprintf("engine CPU per submit with key, %s, %s", p, clientsLabel(top)), Goal: "≤ 5× a raw publish's", Met: "-"}
		if c, ok := r.cell(p, true, top); ok {
			t.Engine = fmt.Sprintf("%.0f µs", c.Submit.CPUus)
			t.Baseline = fmt.Sprintf("%.0f µs", c.Raw.CPUus)
			t.Ratio = fmt.Sprintf("%.1f×", c.CPURatio)
			t.Met = met(c.CPURatio > 0 && c.CPURatio <= 5)
		} else {
			t.Engine = "not measured"
		}
		ts = append(ts, t)
	}
	for _, v := range r.Visibility {
		ts = append(ts, Target{
			Name:   fmt.Sprintf("command → query visibility, %s, at half load (%.0f/s of %.0f/s sustained)", v.Profile, v.Rate, 2*v.TargetRate),
			Engine: fmt.Sprintf("p50 %.2f ms, p99 %.2f ms", v.P50us/1000, v.P99us/1000), Baseline: "-", Ratio: "-",
			Goal: "p99 ≤ 10 ms", Met: met(v.P99us <= 10_000),
		})
	}
	if len(r.Visibility) == 0 {
		ts = append(ts, Target{Name: "command → query visibility at half load", Engine: "not measured", Goal: "p99 ≤ 10 ms", Met: "-"})
	}
	if m := r.Memory; m != nil && m.Replay != nil {
		rp := m.Replay
		ts = append(ts, Target{
			Name:     fmt.Sprintf("replay ('bankbook replay' over TCP) of %d commits; projection rebuild: make bench-replay", rp.Commits),
			Engine:   fmt.Sprintf("%.0f commits/s", rp.PerSec),
			Baseline: fmt.Sprintf("%.0f commits/s (raw ordered-consumer read)", rp.RawPerSec),
			Ratio:    fmt.Sprintf("%.2f×", rp.Ratio), Goal: "≥ 0.5× raw ordered-consumer read", Met: met(rp.Ratio >= 0.5),
		})
	} else {
		ts = append(ts, Target{Name: "replay and projection rebuild", Engine: "not measured (it replays the memory phase's stream): make bench-replay", Goal: "≥ 0.5× raw ordered-consumer read", Met: "-"})
	}
	if sc := r.Scan; sc != nil {
		name := fmt.Sprintf("bank scan: %d transfers recorded (deposit.record over TCP, %d feed connections), each paying its order", sc.Transfers, sc.Workers)
		if sc.Profile != "fast" {
			name += ", " + sc.Profile
		}
		ts = append(ts, Target{
			Name:     name,
			Engine:   fmt.Sprintf("%.0f deposits/s", sc.Deposits.PerSec),
			Baseline: fmt.Sprintf("%.0f publishes/s (%d connections)", sc.Raw.PerSec, sc.Workers),
			Ratio:    fmt.Sprintf("%.2f×", sc.Ratio), Goal: "≥ 0.5× raw publish", Met: met(sc.Ratio >= 0.5),
		})
	} else {
		ts = append(ts, Target{Name: "bank scan", Engine: "not measured", Goal: "≥ 0.5× raw publish", Met: "-"})
	}
	if m := r.Memory; m != nil {
		ts = append(ts, Target{
			Name:     fmt.Sprintf("engine RSS after %d orders, idle (fast; streams %d MiB, %d subjects)", m.Orders, m.StreamBytes>>20, m.Subjects),
			Engine:   fmt.Sprintf("%d MiB (%d MiB right after the orders)", m.Engine>>20, m.AfterLoad>>20),
			Baseline: fmt.Sprintf("%d MiB (bare nats-server, same data)", m.Bare>>20),
			Ratio:    fmt.Sprintf("%.2f×", m.Ratio), Goal: "≤ 1.5× (after 500k orders)", Met: met(m.Ratio <= 1.5),
		})
	} else {
		ts = append(ts, Target{Name: "engine RSS vs a bare nats-server", Engine: "not measured", Goal: "≤ 1.5×", Met: "-"})
	}
	if rl := r.Release; rl != nil {
		flat := true
		var names, rss []string
		for _, rr := range rl.Rounds {
			flat = flat && rr.Released.NameSubjects <= rl.Start.NameSubjects
			names = append(names, fmt.Sprintf("%d→%d", rr.Held.NameSubjects, rr.Released.NameSubjects))
			rss = append(rss, fmt.Sprintf("%d", rr.Released.RSS>>20))
		}
		ts = append(ts, Target{
			Name:     fmt.Sprintf("names bucket once released reservations expire (%d rounds of %d orders, fast)", len(rl.Rounds), rl.Orders),
			Engine:   fmt.Sprintf("name subjects per round, held→released: %s; engine RSS once idle %s MiB", strings.Join(names, ", "), strings.Join(rss, ", ")),
			Baseline: fmt.Sprintf("%d name subjects, %d MiB before the rounds; bare nats-server on the data the rounds left %d MiB", rl.Start.NameSubjects, rl.Start.RSS>>20, rl.Bare>>20),
			Ratio:    fmt.Sprintf("%.2f× (last round)", rl.Ratio), Goal: "flat (names)", Met: met(flat),
		})
	}
	for _, key := range []bool{true, false} {
		what := "submit with key"
		if !key {
			what = "submit without key"
		}
		ratio(fmt.Sprintf("safe group commit: %s vs raw per-message-fsync publish, %s", what, clientsLabel(top)),
			ProfileSafeGrouped, "safe", key, top, "> 1× (moonshot ≥ 2×)", func(x float64) bool { return x > 1 })
	}
	return ts
}

// WriteTo prints the report as Markdown tables.
func (r *Report) WriteTo(w io.Writer) (int64, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "bankbook bench — %s, %s (took %s)\n", r.Machine, r.Started.Format("2006-01-02 15:04 UTC"), r.Elapsed)
	fmt.Fprintf(&b, "load average before %s, after %s; %s\n\n", r.LoadBefore, r.LoadAfter, r.Config)

	b.WriteString("Targets (issue 13), each beside its baseline from the same run:\n\n")
	b.WriteString("| target | engine | baseline | ratio | goal | met |\n|---|---|---|---|---|---|\n")
	for _, t := range r.Targets() {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", t.Name, t.Engine, t.Baseline, t.Ratio, t.Goal, t.Met)
	}

	var clients []int
	for _, c := range r.Cells {
		if !slices.Contains(clients, c.Clients) {
			clients = append(clients, c.Clients)
		}
	}
	slices.Sort(clients)
	b.WriteString("\nSubmits/s over raw JetStream sync publishes/s (median of interleaved rounds):\n\n|  |")
	for _, n := range clients {
		fmt.Fprintf(&b, " %s |", clientsLabel(n))
	}
	b.WriteString("\n|---|" + strings.Repeat("---|", len(clients)) + "\n")
	for _, p := range []string{"safe", ProfileSafeGrouped, "fast"} {
		for _, key := range []bool{false, true} {
			label := p + ", submit"
			if key {
				label += " with key"
			}
			if p == ProfileSafeGrouped {
				// Its server does not sync per message: the baseline is
				// safe's raw publish, synced per message.
				label += " ÷ safe's raw"
			}
			var cells []string
			seen := false
			for _, n := range clients {
				c, ok := r.cell(p, key, n)
				x := c.Ratio
				if p == ProfileSafeGrouped {
					s, sok := r.cell("safe", key, n)
					ok, x = ok && sok && s.Raw.PerSec > 0, c.Submit.PerSec/s.Raw.PerSec
				}
				if ok {
					cells = append(cells, fmt.Sprintf("%.2f", x))
					seen = true
				} else {
					cells = append(cells, "-")
				}
			}
			if seen {
				fmt.Fprintf(&b, "| %s | %s |\n", label, strings.Join(cells, " | "))
			}
		}
	}

	b.WriteString("\nEvery cell (medians; latency in ms; CPU is the engine process's, per operation, until it is idle again):\n\n")
	b.WriteString("| profile | key | clients | submits/s | raw/s | ratio | submit p50 / p99 | raw p50 / p99 | CPU µs/submit | CPU µs/raw | CPU ratio |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, c := range r.Cells {
		key := "no"
		if c.Key {
			key = "yes"
		}
		note := ""
		if !c.Submit.Idle || !c.Raw.Idle {
			note = " (engine not idle between phases)"
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %.0f | %.0f | %.2f | %.2f / %.2f | %.2f / %.2f | %.0f | %.0f | %.1f×%s |\n",
			c.Profile, key, c.Clients, c.Submit.PerSec, c.Raw.PerSec, c.Ratio,
			c.Submit.P50us/1000, c.Submit.P99us/1000, c.Raw.P50us/1000, c.Raw.P99us/1000,
			c.Submit.CPUus, c.Raw.CPUus, c.CPURatio, note)
	}

	if len(r.Visibility) > 0 {
		b.WriteString("\nCommand → query visibility (submit with key, then order.get with min_seq = the reply's seq; reply → answer, ms):\n\n")
		b.WriteString("| profile | clients | offered/s | done/s | queries | p50 | p99 | max | submit p50 / p99 | runner batches: commits each, mean, p50 ≤, p99 ≤ |\n|---|---|---|---|---|---|---|---|---|---|\n")
		for _, v := range r.Visibility {
			batches := "-"
			if bt := v.Batches; bt != nil && bt.Count > 0 {
				batches = fmt.Sprintf("%.1f, %.2f, %.2f, %.2f", bt.Commits/bt.Count, bt.MeanUs/1000, bt.P50leUs/1000, bt.P99leUs/1000)
			}
			fmt.Fprintf(&b, "| %s | %d | %.0f | %.0f | %d | %.2f | %.2f | %.2f | %.2f / %.2f | %s |\n",
				v.Profile, v.Clients, v.TargetRate, v.Rate, v.Ops, v.P50us/1000, v.P99us/1000, v.MaxUs/1000, v.SubmitP50/1000, v.SubmitP99/1000, batches)
		}
	}
	if m := r.Memory; m != nil {
		trimmed := "trimmed"
		if !m.Trimmed {
			trimmed = "no trim seen"
		}
		fmt.Fprintf(&b, "\nMemory after %d keyed orders (fast profile): engine RSS %d MiB right after them, %d MiB %.0f s later once idle (%s; %d MiB after warm-up), bare nats-server on the same data %d MiB (%.2f×); ",
			m.Orders, m.AfterLoad>>20, m.Engine>>20, m.IdleWait, trimmed, m.EngineIdle>>20, m.Bare>>20, m.Ratio)
		if m.Orders > 0 {
			fmt.Fprintf(&b, "engine growth right after the orders %.0f MiB per 100k orders.\n\n", float64(m.AfterLoad-m.EngineIdle)/float64(1<<20)/float64(m.Orders)*100_000)
		}
		fmt.Fprintf(&b, "Resident memory split (MiB): engine after the orders anon %d, file %d, shmem %d; idle anon %d, file %d, shmem %d; bare server anon %d, file %d, shmem %d.\n\n",
			m.AfterLoadMem.Anon>>20, m.AfterLoadMem.File>>20, m.AfterLoadMem.Shm>>20,
			m.EngineMem.Anon>>20, m.EngineMem.File>>20, m.EngineMem.Shm>>20, m.BareMem.Anon>>20, m.BareMem.File>>20, m.BareMem.Shm>>20)
		b.WriteString("| stream | messages | MiB | subjects |\n|---|---|---|---|\n")
		for _, s := range m.Streams {
			fmt.Fprintf(&b, "| %s | %d | %.1f | %d |\n", s.Name, s.Msgs, float64(s.Bytes)/(1<<20), s.Subjects)
		}
	}
	if rl := r.Release; rl != nil {
		fmt.Fprintf(&b, "\nNames released (rounds of %d orders expiring a second after submission, names kept a second more; engine once idle):\n\n", rl.Orders)
		b.WriteString("| round | name subjects held | name subjects released (messages) | event stream subjects | engine RSS MiB | trimmed | wait s |\n|---|---|---|---|---|---|---|\n")
		fmt.Fprintf(&b, "| start | - | %d (%d) | %d | %d | - | - |\n", rl.Start.NameSubjects, rl.Start.NameMsgs, rl.Start.EventSubj, rl.Start.RSS>>20)
		for i, rr := range rl.Rounds {
			fmt.Fprintf(&b, "| %d | %d | %d (%d) | %d | %d | %v | %.0f |\n", i+1, rr.Held.NameSubjects, rr.Released.NameSubjects, rr.Released.NameMsgs, rr.Released.EventSubj, rr.Released.RSS>>20, rr.Trimmed, rr.Wait)
		}
		fmt.Fprintf(&b, "\nBare nats-server on the data the rounds left: %d MiB (the last round's engine %.2f×).\n", rl.Bare>>20, rl.Ratio)
	}
	if sc := r.Scan; sc != nil {
		fmt.Fprintf(&b, "\nBank scan (%s profile, %d transfers over %d rounds, %d feed connections; medians): %.0f deposits/s, p50 / p99 %.2f / %.2f ms, "+
			"engine CPU %.0f µs per deposit; raw publish %.0f/s, p50 / p99 %.2f / %.2f ms, %.0f µs (CPU %.1f×).\n",
			sc.Profile, sc.Transfers, len(sc.Rounds), sc.Workers, sc.Deposits.PerSec, sc.Deposits.P50us/1000, sc.Deposits.P99us/1000, sc.Deposits.CPUus,
			sc.Raw.PerSec, sc.Raw.P50us/1000, sc.Raw.P99us/1000, sc.Raw.CPUus, sc.CPURatio)
	}
	if len(r.Profiles) > 0 {
		fmt.Fprintf(&b, "\nProfiles: %s\n", strings.Join(r.Profiles, ", "))
	}
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}
