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
