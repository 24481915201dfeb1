package soak

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// Report is what a run did and found.
type Report struct {
	RunID   string `json:"run_id"`
	Seed    uint64 `json:"seed"`
	Dir     string `json:"dir"`
	Clients int    `json:"clients"`
	// Instances is how many engine instances served them.
	Instances int `json:"instances"`
	// Cycles is the number of kills asked for; Kills the number done.
	Cycles int `json:"cycles"`
	Kills  int `json:"kills"`
	// UnexpectedExits counts engine processes that ended without being killed.
	UnexpectedExits int `json:"unexpected_exits"`
	// LostReadModels says whose read-model file was removed at which kill
	// (killCycles).
	LostReadModels string `json:"lost_read_models,omitempty"`
	// Recovery is the sum and the longest time from a restart to /readyz.
	Recovery    time.Duration `json:"recovery"`
	MaxRecovery time.Duration `json:"max_recovery"`

	Requests   int64            `json:"requests"`   // attempts sent, queries included
	Acks       int64            `json:"acks"`       // definitive answers, logged before counted
	Refusals   int64            `json:"refusals"`   // of which errors
	Repeats    int64            `json:"repeats"`    // acked requests sent again on purpose
	Unresolved int64            `json:"unresolved"` // requests without a definitive answer within their budget
	SimUnknown int64            `json:"sim_unknown"`
	Retries    map[string]int64 `json:"retries"` // attempts retried, by reason

	StreamLastSeq uint64        `json:"stream_last_seq"`
	Commits       int           `json:"commits"`
	Traffic       time.Duration `json:"traffic"`
	Drain         time.Duration `json:"drain"` // from the traffic's end to idle
	Elapsed       time.Duration `json:"elapsed"`

	Checks []*Check `json:"checks"`
	Notes  []string `json:"notes,omitempty"`
	kills  []time.Time
}

// Check is one property the run verified.
type Check struct {
	Name string `json:"name"`
	OK   bool   `json:"ok"`
	// Checked is how many items were looked at; Failures how many failed.
	Checked  int `json:"checked"`
	Failures int `json:"failures"`
	// Examples are the first failures.
	Examples []string `json:"examples,omitempty"`
	Note     string   `json:"note,omitempty"`
}

const maxExamples = 8

func (c *Check) fail(format string, args ...any) {
	c.Failures++
	if len(c.Examples) < maxExamples {
		c.Examples = append(c.Examples, fmt.Sprintf(format, args...))
	}
}

// expect counts one item checked and fails it unless ok.
func (c *Check) expect(ok bool, format string, args ...any) {
	c.Checked++
	if !ok {
		c.fail(format, args...)
	}
}

// check adds a check to the report; it is OK until it fails.
func (r *Report) check(name string) *Check {
	c := &Check{Name: name}
	r.Checks = append(r.Checks, c)
	return c
}

func (r *Report) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// finish settles every check's OK.
func (r *Report) finish() {
	for _, c := range r.Checks {
		c.OK = c.Failures == 0
	}
}

// OK says every check passed (and there was at least one).
func (r *Report) OK() bool {
	if len(r.Checks) == 0 {
		return false
	}
	for _, c := range r.Checks {
		if c.Failures > 0 {
			return false
		}
	}
	return true
}

// Failed lists the names of the failed checks.
func (r *Report) Failed() []string {
	var out []string
	for _, c := range r.Checks {
		if c.Failures > 0 {
			out = append(out, c.Name)
		}
	}
	return out
}

// WriteTo prints the report for people.
func (r *Report) WriteTo(w io.Writer) (int64, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "soak run %s (seed %d) in %s\n", r.RunID, r.Seed, r.Dir)
	instances := ""
	if r.Instances > 1 {
		instances = fmt.Sprintf(", %d engine instances", r.Instances)
	}
	fmt.Fprintf(&b, "  %d clients%s, %d of %d kill -9 cycles, %d unexpected exits; recovery %s total, %s at most\n",
		r.Clients, instances, r.Kills, r.Cycles, r.UnexpectedExits, r.Recovery.Round(time.Millisecond), r.MaxRecovery.Round(time.Millisecond))
	fmt.Fprintf(&b, "  traffic %s, drain %s, whole run %s\n", r.Traffic.Round(100*time.Millisecond), r.Drain.Round(100*time.Millisecond), r.Elapsed.Round(100*time.Millisecond))
	fmt.Fprintf(&b, "  %d requests, %d acks (%d refusals, %d repeats), %d unresolved, %d simulated transfers unanswered\n",
		r.Requests, r.Acks, r.Refusals, r.Repeats, r.Unresolved, r.SimUnknown)
	if len(r.Retries) > 0 {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(r.Retries)) {
			parts = append(parts, fmt.Sprintf("%s %d", k, r.Retries[k]))
		}
		fmt.Fprintf(&b, "  retried: %s\n", strings.Join(parts, ", "))
	}
	fmt.Fprintf(&b, "  event stream: %d commits, last seq %d\n", r.Commits, r.StreamLastSeq)
	for _, c := range r.Checks {
		mark := "ok  "
		if c.Failures > 0 {
			mark = "FAIL"
		}
		fmt.Fprintf(&b, "  %s %-42s %d checked", mark, c.Name, c.Checked)
		if c.Failures > 0 {
			fmt.Fprintf(&b, ", %d failed", c.Failures)
		}
		if c.Note != "" {
			fmt.Fprintf(&b, " (%s)", c.Note)
		}
		b.WriteByte('\n')
		for _, e := range c.Examples {
			fmt.Fprintf(&b, "         - %s\n", e)
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "  note: %s\n", n)
	}
	verdict := "PASS"
	if !r.OK() {
		verdict = "FAIL: " + strings.Join(r.Failed(), ", ")
	}
	fmt.Fprintf(&b, "  %s\n", verdict)
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}
