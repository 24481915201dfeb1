//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package embedded

import "syscall"

// openFileLimit is the process's limit on open files (its soft limit,
// which the Go runtime raises to the hard one at start), and whether it
// could be read.
func openFileLimit() (uint64, bool) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, false
	}
	return l.Cur, true
}
