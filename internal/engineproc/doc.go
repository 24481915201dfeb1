// Package engineproc runs the bankbook engine as a separate process, the
// way an operator does: the real binary ('bankbook serve', or another of its
// subcommands that serves /readyz), a data directory, free loopback ports.
// The reliability run (internal/soak) and the load generator
// (internal/loadgen) drive the engine through it.
//
// What it guarantees:
//   - A Proc runs at most one child process at a time, always on the same
//     data directory and addresses, so it can be killed and restarted.
//   - The child runs in its own process group and is killed by the kernel
//     (Pdeathsig) if the process that started it dies first; its
//     environment has no BANKBOOK_* variables, which would change its
//     configuration behind the caller's back.
//   - Its output goes to a log file, after a marker line per start, so the
//     log of every start is kept.
//   - Every wait is bounded: WaitReady by its timeout, Kill by 30 seconds,
//     Stop by its grace period.
//   - CPU and RSS read the child's /proc entries (Linux only).
package engineproc
