package engineproc

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	err := Config{}.Validate()
	for _, want := range []string{"binary", "data dir", "log path"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v; want it to name %s", err, want)
		}
	}
}

func TestProcfsOfThisProcess(t *testing.T) {
	// Burn a little CPU so there is some to read.
	end := time.Now().Add(30 * time.Millisecond)
	for time.Now().Before(end) {
	}
	cpu, err := ProcessCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if cpu <= 0 {
		t.Errorf("CPU %v, want more than 0 after busy work", cpu)
	}
	m, err := ProcessMemory(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if m.RSS < 1<<20 || m.Anon == 0 || m.Anon > m.RSS {
		t.Errorf("memory %+v, want at least 1 MiB resident for a Go test binary, some of it anonymous", m)
	}
}

// TestStartExitsBeforeReady: a process that exits at once is reported as
// not ready, with its log, and is no longer running.
func TestStartExitsBeforeReady(t *testing.T) {
	dir := t.TempDir()
	p, err := New(Config{Binary: "/bin/sh", DataDir: dir, LogPath: filepath.Join(dir, "log", "out.log"),
		Command: []string{"-c", "echo gone-$((40+2)); exit 3", "sh"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	err = p.WaitReady(t.Context(), 10*time.Second)
	if !errors.Is(err, ErrNotReady) || !strings.Contains(err.Error(), "gone-42") {
		t.Fatalf("WaitReady = %v; want ErrNotReady with the log", err)
	}
	if p.Running() {
		t.Error("still running")
	}
	if _, err := p.CPU(); !errors.Is(err, ErrNotRunning) {
		t.Errorf("CPU of an exited process: %v, want ErrNotRunning", err)
	}
	if n, first := p.LogCount("gone-42"); n != 1 || first != 2 {
		t.Errorf("LogCount = %d, %d; want 1 at line 2 (after the marker)", n, first)
	}
}
