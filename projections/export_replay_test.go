package projections

// SetBulkCommits makes replays commit a transaction every n commits (the
// default is bulkCommits) and returns a func that restores the default.
// Tests that call it must not run in parallel with replays.
func SetBulkCommits(n int) (restore func()) {
	bulkEvery = n
	return func() { bulkEvery = bulkCommits }
}
