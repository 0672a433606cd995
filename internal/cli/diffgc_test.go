package cli

import (
	"runtime/debug"
	"testing"
)

// TestDiffGC checks the collector setting of a diff of two files: GOGC=400
// during it, the setting before after restore, and an operator's GOGC left
// alone.
func TestDiffGC(t *testing.T) {
	setGC(t)
	restore := diffGC()
	if got := debug.SetGCPercent(400); got != 400 {
		t.Errorf("GOGC during a diff: %d, want 400", got)
	}
	restore()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GOGC after restore: %d, want 100", got)
	}

	t.Setenv("GOGC", "100")
	restore = diffGC()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GOGC with GOGC set: %d, want 100 (untouched)", got)
	}
	restore()
}
