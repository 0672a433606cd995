package cli

import (
	"math"
	"runtime/debug"
	"testing"
)

// TestApplyGC checks the collector setting of a move: GOGC 50 and a soft
// memory limit that grows with the steps, both restored afterwards; a
// GOGC or GOMEMLIMIT of the operator's is left alone.
func TestApplyGC(t *testing.T) {
	read := func() (gc int, limit int64) {
		gc = debug.SetGCPercent(100)
		debug.SetGCPercent(gc)
		return gc, debug.SetMemoryLimit(-1)
	}
	// From the runtime's defaults, whatever the environment of the test
	// process set (GOMEMLIMIT=1GiB go test made applyGC leave the limit).
	gcBefore := debug.SetGCPercent(100)
	limitBefore := debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() {
		debug.SetGCPercent(gcBefore)
		debug.SetMemoryLimit(limitBefore)
	})
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	gc0, limit0 := read()
	restore := applyGC(10_000)
	gc, limit := read()
	if want := int64(applyHeapBase + 10_000*applyHeapPerStep); gc != 50 || limit != want {
		t.Errorf("during a move of 10,000 steps: GOGC %d, limit %d; want 50, %d", gc, limit, want)
	}
	restore()
	if gc, limit := read(); gc != gc0 || limit != limit0 {
		t.Errorf("after the move: GOGC %d, limit %d; want %d, %d", gc, limit, gc0, limit0)
	}

	// The operator's settings win.
	t.Setenv("GOGC", "200")
	t.Setenv("GOMEMLIMIT", "1GiB")
	restore = applyGC(10_000)
	if gc, limit := read(); gc != gc0 || limit != limit0 {
		t.Errorf("with GOGC and GOMEMLIMIT set: GOGC %d, limit %d; want them left at %d, %d", gc, limit, gc0, limit0)
	}
	restore()
}
