package worker

// Resolve is resolve, for tests of a resolve that finds its dead letter
// already removed.
var Resolve = (*DeadLetters).resolve
