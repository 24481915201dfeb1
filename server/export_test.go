package server

import "sync"

// HoldCompletion makes every success with that Idempotency-Key wait for
// release before its idempotency record is written, after its reply; held
// is closed when one does. The returned func removes the hold.
func HoldCompletion(key string, release <-chan struct{}) (held <-chan struct{}, undo func()) {
	h := make(chan struct{})
	var once sync.Once
	f := func(k string) {
		if k != key {
			return
		}
		once.Do(func() { close(h) })
		<-release
	}
	testCompleteHook.Store(&f)
	return h, func() { testCompleteHook.Store(nil) }
}

// PanicOnce makes the first command executed with that Idempotency-Key
// panic. The returned func removes the hook.
func PanicOnce(key string) (undo func()) {
	var once sync.Once
	f := func(k string) {
		if k == key {
			once.Do(func() { panic("test: a command panics") })
		}
	}
	testExecHook.Store(&f)
	return func() { testExecHook.Store(nil) }
}
