//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package embedded

import "syscall"

// openFileLimit is the process's limit on open files (its soft limit,
// which the Go runtime raises to the hard one at start); 0 if it cannot
// be read.
func openFileLimit() uint64 {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0
	}
	return l.Cur
}
