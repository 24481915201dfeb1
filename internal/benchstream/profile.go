package benchstream

import (
	"os"
	"runtime/pprof"
	"testing"
)

// CPUProfile starts a CPU profile into the file the environment variable
// env names, and returns what stops it; without the variable it does
// nothing. A benchmark profiles only the step it measures this way, not its
// prefill.
func CPUProfile(b testing.TB, env string) (stop func()) {
	path := os.Getenv(env)
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			b.Error(err)
		}
	}
}
