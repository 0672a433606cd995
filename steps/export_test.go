package steps

// SetMaxBatch makes the batches of the moves that follow n ops long, for
// the tests of many batches, and returns the function that puts it back.
func SetMaxBatch(n int) (restore func()) {
	old := maxBatch
	maxBatch = n
	return func() { maxBatch = old }
}
