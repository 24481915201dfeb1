package testenv_test

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/bankbook/bankbook/internal/testenv"
)

// fatalTB records a Fatalf instead of ending the test.
type fatalTB struct {
	testing.TB
	msg string
}

type fatal struct{}

func (f *fatalTB) Helper() {}
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic(fatal{})
}

// failure runs fn against a fatalTB and returns its Fatalf message, "" if
// none.
func failure(t *testing.T, fn func(tb testing.TB)) (msg string) {
	tb := &fatalTB{TB: t}
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(fatal); !ok {
				panic(r)
			}
			msg = tb.msg
		}
	}()
	fn(tb)
	return ""
}

func TestCheckForWaitsUntilTheCheckPasses(t *testing.T) {
	calls := 0
	msg := failure(t, func(tb testing.TB) {
		testenv.CheckFor(tb, 10*time.Second, func() error {
			calls++
			if calls < 3 {
				return errors.New("not yet")
			}
			return nil
		})
	})
	if msg != "" || calls != 3 {
		t.Fatalf("CheckFor failed with %q after %d calls; want success on the 3rd", msg, calls)
	}
}

func TestCheckForFailsWithTheLastError(t *testing.T) {
	calls := 0
	msg := failure(t, func(tb testing.TB) {
		testenv.CheckFor(tb, 20*time.Millisecond, func() error {
			calls++
			return fmt.Errorf("balance is %d", calls)
		})
	})
	if !strings.Contains(msg, "timed out after 20ms") || !strings.Contains(msg, fmt.Sprintf("balance is %d", calls)) || calls < 2 {
		t.Fatalf("CheckFor failed with %q after %d calls; want the last error after several", msg, calls)
	}
}

func TestEventuallyNamesWhatItWaitedFor(t *testing.T) {
	msg := failure(t, func(tb testing.TB) {
		testenv.Eventually(tb, time.Millisecond, "the watermark", func() bool { return false })
	})
	if !strings.Contains(msg, "waiting for the watermark") {
		t.Fatalf("Eventually failed with %q, want it to name what it waited for", msg)
	}
	if msg := failure(t, func(tb testing.TB) {
		testenv.Eventually(tb, time.Millisecond, "nothing", func() bool { return true })
	}); msg != "" {
		t.Fatalf("Eventually of a true condition failed: %q", msg)
	}
}

// On Linux a missing requirement fails the test instead of skipping it.
func TestRequireOnLinuxFailsOnLinux(t *testing.T) {
	if msg := failure(t, func(tb testing.TB) { testenv.RequireOnLinux(tb, true, "x") }); msg != "" {
		t.Fatalf("a requirement that is there failed: %s", msg)
	}
	if runtime.GOOS != "linux" {
		t.Skip("the failing case is for Linux")
	}
	if msg := failure(t, func(tb testing.TB) { testenv.RequireOnLinux(tb, false, "the boot ID") }); !strings.Contains(msg, "the boot ID") {
		t.Fatalf("a missing requirement on Linux: %q, want a failure naming it", msg)
	}
}
