package soak

import (
	"context"
	"fmt"
	"time"

	"github.com/bankbook/bankbook/internal/engineproc"
)

// engineProc is the engine under test: one 'bankbook serve' child process at
// a time, always on the same data directory and addresses
// (engineproc.Proc, with the run's flags and its errors).
type engineProc struct {
	*engineproc.Proc
}

// newEngineProc picks two free loopback ports for the engine.
func newEngineProc(bin, dataDir, logPath string, extra []string) (*engineProc, error) {
	p, err := engineproc.New(engineproc.Config{
		Binary: bin, DataDir: dataDir, LogPath: logPath, Label: "soak",
		Args: append([]string{
			"--bank-sim", "--scan-interval", scanInterval.String(), "--cancel-window", cancelWindow.String(),
			"--durability", "safe", "--log-format", "json",
			// Notifications go to the fake chat provider in the engine's
			// process, fast enough that they keep up with the traffic.
			"--chat-sim", "--chat-sim-rate", "1000", "--notify-rate", "500", "--notify-burst", "50",
		}, extra...),
	})
	if err != nil {
		return nil, err
	}
	return &engineProc{Proc: p}, nil
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
