// Package datadir keeps two engines off one data directory.
//
// Lock takes an exclusive operating-system lock (flock(2)) on the file
// LOCK in the directory and writes the holder's process ID into it. While
// the lock is held, every other Lock of the same directory fails at once
// with a *LockedError (ErrLocked) that names the directory and, when the
// file says, the holder's PID: from another process, and from the same
// process too (each Lock opens the file anew, and flock locks belong to the
// open file, not to the process).
//
// The lock is the kernel's: it is released by the release function Lock
// returns, and also when the holder exits or is killed, however it ends, so
// a crashed engine never leaves a directory locked. The file itself stays
// (removing it could let two processes lock two different files of the same
// name); its content is only a hint for the error message, and release
// empties it.
//
// An engine takes the lock before it starts anything that writes into the
// directory (the embedded NATS server's JetStream store, the read-model
// file) and releases it after all of them stopped.
//
// Lock works on Linux, macOS and the BSDs; elsewhere it returns an error
// matching errors.ErrUnsupported.
//
// LockDir locks a directory itself, with no file in it, the same way: a
// replay holds it on its output directory so that a second replay into it
// is refused instead of mixing their files.
package datadir
