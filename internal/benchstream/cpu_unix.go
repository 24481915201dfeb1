//go:build unix

package benchstream

import (
	"syscall"
	"time"
)

// CPUTime is the CPU time (user and system) this process has used so far,
// the embedded server's included; 0 where the platform does not say.
// Differences of it measure a step's CPU cost, which other processes on a
// shared machine disturb less than its wall time.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
