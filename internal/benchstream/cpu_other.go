//go:build !unix

package benchstream

import "time"

// CPUTime is the CPU time this process has used so far; 0 here, where the
// platform does not say.
func CPUTime() time.Duration { return 0 }
