package soak

import (
	"context"
	"fmt"
	"time"

	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/internal/engineproc"
)

// engineProc is the engine under test: one 'bankbook serve' child process at
// a time, always on the same data directory and addresses
// (engineproc.Proc, with the run's flags and its errors).
type engineProc struct {
	*engineproc.Proc
	logPath string
}

// newEngineProc picks two free loopback ports for the engine.
func newEngineProc(bin, dataDir, logPath string, extra []string) (*engineProc, error) {
	p, err := engineproc.New(engineproc.Config{
		Binary: bin, DataDir: dataDir, LogPath: logPath, Label: "soak",
		Args: append([]string{
			"--bank-sim", "--scan-interval", scanInterval.String(), "--cancel-window", cancelWindow.String(),
			"--durability", "safe", "--log-format", "json",
		}, extra...),
	})
	if err != nil {
		return nil, err
	}
	return &engineProc{Proc: p, logPath: logPath}, nil
}

// start starts the engine; its output goes to the log file, after a marker line.
func (p *engineProc) start() error {
	if err := p.Start(); err != nil {
		return fmt.Errorf("%w: %w", ErrEngine, err)
	}
	return nil
}

// waitReady polls /readyz until it answers 200, the process exits, or
// timeout passes.
func (p *engineProc) waitReady(ctx context.Context, timeout time.Duration) error {
	if err := p.WaitReady(ctx, timeout); err != nil {
		return fmt.Errorf("%w: %w", ErrEngine, err)
	}
	return nil
}

func (p *engineProc) seed(role auth.Role) string { return p.Seed(role) }
func (p *engineProc) exited() <-chan struct{}    { return p.Exited() }
func (p *engineProc) kill() error                { return p.Kill() }
func (p *engineProc) stop(grace time.Duration) error {
	return p.Stop(grace)
}
func (p *engineProc) logCount(s string) (n, first int) { return p.LogCount(s) }

// logTail returns about the last n bytes of the engine's output (the log
// file may outlive the process, or never have had one).
func (p *engineProc) logTail(n int64) string { return engineproc.LogTail(p.logPath, n) }

// engineEnv is the run's environment without BANKBOOK_* variables, which
// would change the engine's configuration behind the run's back.
func engineEnv() []string { return engineproc.Env() }
