package reservations

// BeforeWrite runs f in Reserve between the reading of a name's reservation
// and the writing of its own, until the test ends.
func BeforeWrite(t interface{ Cleanup(func()) }, f func(name string)) {
	testHookBeforeWrite = f
	t.Cleanup(func() { testHookBeforeWrite = nil })
}
