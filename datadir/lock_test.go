package datadir_test

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/bankbook/bankbook/datadir"
)

func lock(t *testing.T, dir string) func() error {
	t.Helper()
	release, err := datadir.Lock(dir)
	if err != nil {
		t.Fatalf("lock %s: %v", dir, err)
	}
	return release
}

// lockedBy asserts that err is a *LockedError for dir held by pid.
func lockedBy(t *testing.T, err error, dir string, pid int) {
	t.Helper()
	var le *datadir.LockedError
	if !errors.Is(err, datadir.ErrLocked) || !errors.As(err, &le) {
		t.Fatalf("second lock: %v, want ErrLocked", err)
	}
	if le.Dir != dir || le.PID != pid {
		t.Fatalf("locked error names dir %q pid %d, want %q pid %d", le.Dir, le.PID, dir, pid)
	}
	if msg := err.Error(); !strings.Contains(msg, dir) || !strings.Contains(msg, strconv.Itoa(pid)) {
		t.Fatalf("message %q does not name the directory and the holder's pid", msg)
	}
}

// TestSecondLockInTheSameProcessFails: given a locked directory, a second
// Lock fails at once naming the directory and this process; after release
// (twice: the second is a no-op) the directory locks again, and the lock
// file no longer names a holder.
func TestSecondLockInTheSameProcessFails(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data") // Lock creates it
	release := lock(t, dir)
	_, err := datadir.Lock(dir)
	lockedBy(t, err, dir, os.Getpid())

	if err := release(); err != nil {
		t.Fatalf("release: %v", err)
	}
	if err := release(); err != nil {
		t.Fatalf("second release: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, datadir.LockFile)); err != nil || len(b) != 0 {
		t.Fatalf("lock file after release: %q %v, want it empty", b, err)
	}
	again := lock(t, dir)
	if err := again(); err != nil {
		t.Fatal(err)
	}
}

// TestDirectoriesLockIndependently: a lock on one directory does not hold
// another.
func TestDirectoriesLockIndependently(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	ra := lock(t, a)
	defer ra()
	rb := lock(t, b)
	defer rb()
}

// holdEnv names the directory the helper process locks.
const holdEnv = "BANKBOOK_DATADIR_TEST_HOLD"

// TestHelperHoldsLock is not a test: run by TestLockHeldByAnotherProcess in
// a child process, it locks the directory, says so, and holds the lock until
// it is killed.
func TestHelperHoldsLock(t *testing.T) {
	dir := os.Getenv(holdEnv)
	if dir == "" {
		t.Skip("helper process only")
	}
	if _, err := datadir.Lock(dir); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("locked")
	select {} // until killed
}

// TestLockHeldByAnotherProcess: given a directory locked by another
// process, Lock fails naming that process's PID; once that process is
// killed (no release: the kernel drops its lock), the directory locks.
func TestLockHeldByAnotherProcess(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHoldsLock$", "-test.count=1")
	cmd.Env = append(os.Environ(), holdEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	kill := func() {
		if !killed {
			killed = true
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}
	t.Cleanup(kill)
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("helper said %q (%v), want locked", line, err)
	}

	_, err = datadir.Lock(dir)
	lockedBy(t, err, dir, cmd.Process.Pid)

	kill()
	release := lock(t, dir)
	if err := release(); err != nil {
		t.Fatal(err)
	}
}

func ExampleLock() {
	dir, _ := os.MkdirTemp("", "bankbook-data")
	defer os.RemoveAll(dir)

	release, err := datadir.Lock(dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer release()

	_, err = datadir.Lock(dir) // a second engine on the same directory
	fmt.Println(errors.Is(err, datadir.ErrLocked))
	// Output: true
}

func TestLockDirIsExclusiveAndAddsNoFile(t *testing.T) {
	dir := t.TempDir()
	release, err := datadir.LockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := datadir.LockDir(dir); !errors.Is(err, datadir.ErrDirBusy) {
		t.Fatalf("a second LockDir: %v, want datadir.ErrDirBusy", err)
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	if err := release(); err != nil {
		t.Fatalf("a second release: %v", err)
	}
	again, err := datadir.LockDir(dir)
	if err != nil {
		t.Fatalf("LockDir after release: %v", err)
	}
	_ = again()
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
		t.Fatalf("the directory holds %v (%v), want nothing", entries, err)
	}
}
