package worker

// Resolve is resolve, for tests of a resolve that finds its dead letter
// already removed.
var Resolve = (*DeadLetters).resolve

// Mark and Marked are mark and marked, for tests of a dead-lettered message
// whose Term did not reach the server.
var (
	Mark   = (*DeadLetters).mark
	Marked = (*DeadLetters).marked
)

// BeforeNote runs f between the reading of the last uncertain note and the
// writing of the next one, until the test ends.
func BeforeNote(t interface{ Cleanup(func()) }, f func(subject string)) {
	testHookBeforeNote = f
	t.Cleanup(func() { testHookBeforeNote = nil })
}
