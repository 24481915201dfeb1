//go:build race

package notify_test

// raceEnabled says the tests run with the race detector: the engine they
// build gets it too (and shares the build cache with the tests' packages).
const raceEnabled = true
