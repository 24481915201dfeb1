// Package memtrim returns the memory a burst of work left behind to the
// operating system once a process has been idle.
//
// A busy Go process grows its heap to about twice what it holds live (the
// collector's default GOGC=100), and an embedded nats-server keeps a write
// buffer per stream block (up to 8 MB) that expires 10 s after its last use,
// is handed back to a pool by a cleanup after the next collection, and leaves
// the pool over two more. Go returns freed memory to the operating system
// slowly, so after a burst the process keeps well over what it holds for
// minutes (docs/performance.md, "Memory returned once idle"). Idle decides
// when a process is idle; Free collects and returns the free pages.
//
// Both act on the whole process: in a process that runs several engines,
// one engine's trim pauses the others for its collections (milliseconds on
// an idle heap).
package memtrim
