package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/bankbook/bankbook/internal/engineproc"
)

// built is the bankbook binary the tests that run it as a separate process
// share.
var built engineproc.Built

// testBinary builds bankbook once for those tests and returns its path.
func testBinary(t *testing.T) string {
	t.Helper()
	bin, err := built.Path(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

func TestMain(m *testing.M) {
	code := m.Run()
	built.Remove()
	os.Exit(code)
}

// TestBenchSmoke runs 'bankbook bench' end to end with tiny operation
// counts: a real engine process per profile, driven over TCP, and the
// memory comparison with a bare server. It checks that every row of the
// report is printed, never how fast anything was.
func TestBenchSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and starts three engine processes")
	}
	dir := t.TempDir()
	bin := testBinary(t)
	run1 := filepath.Join(dir, "run")
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"bench", "--bin", bin, "--dir", run1,
		"--ops", "4", "--rounds", "1", "--clients", "1,2", "--visibility", "300ms", "--rss-orders", "12", "--idle-trim", "1s", "--scan-transfers", "6",
		"--pprof-dir", filepath.Join(dir, "pprof"), "--pprof-seconds", "1"}, &stdout, &stderr)
	out := stdout.String()
	t.Log("\n" + out)
	if err != nil {
		for _, log := range []string{"safe/engine.log", "safe-grouped/engine.log", "fast/engine.log", "memory/engine.log", "memory/bare-server.log"} {
			t.Logf("%s ends:\n%s", log, engineproc.LogTail(filepath.Join(run1, log), 3000))
		}
		t.Fatalf("bench: %v\nstderr: %s", err, stderr.String())
	}
	rows := []string{
		"| safe, submit with key, 2 clients | ", "| safe, submit with key, 1 client | ", "| fast, submit with key, 2 clients | ",
		"| engine CPU per submit with key, safe, 2 clients | ", "| engine CPU per submit with key, fast, 2 clients | ",
		"| command → query visibility, safe, ", "| command → query visibility, fast, ",
		"| replay ('bankbook replay' over TCP) of ", "| bank scan: 6 transfers recorded ", "Bank scan (fast profile, 6 transfers",
		"| engine RSS after ", "once idle (trimmed;", "| safe group commit: ",
		"| safe, submit | ", "| safe, submit with key | ", "| fast, submit | ", "| fast, submit with key | ",
		"| safe | no | 1 | ", "| safe | yes | 1 | ", "| safe | no | 2 | ", "| safe | yes | 2 | ",
		"| fast | no | 1 | ", "| fast | yes | 1 | ", "| fast | no | 2 | ", "| fast | yes | 2 | ",
		"| safe-grouped | yes | 2 | ", "| safe-grouped, submit with key ÷ safe's raw | ",
		"| safe with group commit, submit with key, 2 clients | ", "| safe with group commit, submit with key, 1 client | ",
		"| BANKBOOK_EVENTS | ", "Profiles: ", "heap-memory-12orders-idle.pprof",
	}
	for _, row := range rows {
		if !strings.Contains(out, row) {
			t.Errorf("no row %q in the report", row)
		}
	}
	if strings.Contains(out, "not measured (") || strings.Contains(out, "| engine RSS vs a bare") || strings.Contains(out, "2 clients | not measured |") {
		t.Errorf("a target the run should have measured is missing")
	}
	// Every visibility row carries the runner's batches of its phase.
	batches := regexp.MustCompile(`(?m)^\| (safe|safe-grouped|fast) \| 2 \| .* \| [0-9.]+, [0-9.]+, [0-9.]+, [0-9.]+ \|$`)
	if n := len(batches.FindAllString(out, -1)); n != 3 {
		t.Errorf("%d visibility rows with the runner's batches, want 3", n)
	}
	for _, p := range []string{"cpu-safe-submit-key-2clients.pprof", "heap-safe-submit-key-2clients.pprof"} {
		if st, err := os.Stat(filepath.Join(dir, "pprof", p)); err != nil || st.Size() == 0 {
			t.Errorf("profile %s: %v", p, err)
		}
	}
}

// TestBenchUsage refuses bad flags before starting anything.
func TestBenchUsage(t *testing.T) {
	for name, args := range map[string][]string{
		"clients not a number": {"bench", "--clients", "1,x"},
		"unknown profile":      {"bench", "--profiles", "turbo", "--bin", "/nonexistent"},
		"unknown scan profile": {"bench", "--scan-profile", "turbo", "--bin", "/nonexistent"},
		"zero clients":         {"bench", "--clients", "0", "--bin", "/nonexistent"},
		"bare server no dir":   {"bench", "bare-server"},
		"idle trim under 1s":   {"bench", "--idle-trim", "300ms", "--bin", "/nonexistent"},
	} {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), args, &stdout, &stderr)
			if exitCode(err) != exitUsage {
				t.Fatalf("exit %d (%v), want %d", exitCode(err), err, exitUsage)
			}
		})
	}
}

// TestBenchJSONShape checks that the --json report carries the targets.
func TestBenchJSONShape(t *testing.T) {
	var stdout, stderr bytes.Buffer
	// A binary that cannot start: the report is printed with the error.
	err := run(t.Context(), []string{"bench", "--bin", "/nonexistent/bankbook", "--dir", t.TempDir(), "--json", "--profiles", "safe"}, &stdout, &stderr)
	if err == nil {
		t.Fatal("bench with a missing binary succeeded")
	}
	var rep struct {
		Targets []struct{ Name, Goal string } `json:"targets"`
		Error   string                        `json:"error"`
	}
	if jerr := json.Unmarshal(stdout.Bytes(), &rep); jerr != nil {
		t.Fatalf("--json output: %v\n%s", jerr, stdout.String())
	}
	if len(rep.Targets) < 10 || rep.Error == "" {
		t.Errorf("targets %d, error %q; want every target and the error", len(rep.Targets), rep.Error)
	}
}
