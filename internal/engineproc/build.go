package engineproc

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// Build compiles the bankbook command (./cmd/bankbook of the module that
// holds the working directory) to out, with the race detector when race is
// set.
func Build(ctx context.Context, out string, race bool) error {
	goBin, err := goTool()
	if err != nil {
		return err
	}
	mod, err := exec.CommandContext(ctx, goBin, "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("%w: go env GOMOD: %v", ErrBuild, err)
	}
	gomod := strings.TrimSpace(string(mod))
	if gomod == "" || gomod == os.DevNull {
		return fmt.Errorf("%w: not inside the bankbook module", ErrBuild)
	}
	args := []string{"build", "-o", out}
	if race {
		args = append(args, "-race")
	}
	cmd := exec.CommandContext(ctx, goBin, append(args, "./cmd/bankbook")...)
	cmd.Dir = filepath.Dir(gomod)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%w: go %s: %v\n%s", ErrBuild, strings.Join(args, " "), err, b)
	}
	return nil
}

// goTool finds the go command: on PATH, or in $GOROOT/bin.
func goTool() (string, error) {
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	if root := os.Getenv("GOROOT"); root != "" {
		p := filepath.Join(root, "bin", "go")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: the go command is not on PATH", ErrBuild)
}

// Built is the bankbook command built at most once per process into a
// temporary directory: what a package's tests share to run the engine as a
// separate process. Remove it after the tests (TestMain).
type Built struct {
	// Race builds with the race detector.
	Race bool

	once sync.Once
	dir  string
	path string
	err  error
}

// Path builds the command on the first call and returns its path; later
// calls return the first call's outcome.
func (b *Built) Path(ctx context.Context) (string, error) {
	b.once.Do(func() {
		if b.dir, b.err = os.MkdirTemp("", "bankbook-built-"); b.err != nil {
			return
		}
		b.path = filepath.Join(b.dir, "bankbook")
		b.err = Build(ctx, b.path, b.Race)
	})
	return b.path, b.err
}

// Remove deletes the directory Path built into, if any.
func (b *Built) Remove() {
	if b.dir != "" {
		_ = os.RemoveAll(b.dir)
	}
}
