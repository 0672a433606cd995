package cli

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

// TestLessGC checks the compile's collector settings: GOGC=400 and the
// floor as the memory limit at first; the limit raised to twice the live
// heap once a collection finds that larger than the floor; and every
// setting as it was after restore, with no later collection moving it.
func TestLessGC(t *testing.T) {
	setGC(t)
	restore := lessGC()
	if got := debug.SetGCPercent(-1); got != 400 {
		t.Errorf("GOGC during a compile: %d, want 400", got)
	}
	debug.SetGCPercent(400)
	if got := debug.SetMemoryLimit(-1); got != compileHeapFloor {
		t.Errorf("memory limit at the start: %d, want the floor %d", got, compileHeapFloor)
	}
	// A live heap of 64 MiB, more than the floor: the limit follows it.
	const live = 64 << 20
	keep := make([][]byte, 64)
	for i := range keep {
		keep[i] = make([]byte, 1<<20)
	}
	want := int64(compileHeapRatio * live)
	deadline := time.Now().Add(10 * time.Second)
	var got int64
	for time.Now().Before(deadline) {
		runtime.GC()
		if got = debug.SetMemoryLimit(-1); got >= want {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got < want || got > want+want/4 {
		t.Errorf("memory limit with 64 MiB live: %d MiB, want about %d MiB", got>>20, want>>20)
	}
	runtime.KeepAlive(keep)

	restore()
	keep = nil
	for range 3 {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if got := debug.SetGCPercent(-1); got != 100 {
		t.Errorf("GOGC after restore: %d, want 100", got)
	}
	debug.SetGCPercent(100)
	if got := debug.SetMemoryLimit(-1); got != 1<<40 {
		t.Errorf("memory limit after restore: %d, want %d", got, int64(1<<40))
	}
}

// TestLessGCLeavesOperatorSettings checks that an operator's GOGC or
// GOMEMLIMIT is left alone by a compile, and only the one set: the other
// is the compile's.
func TestLessGCLeavesOperatorSettings(t *testing.T) {
	t.Run("GOGC", func(t *testing.T) {
		setGC(t)
		t.Setenv("GOGC", "100")
		restore := lessGC()
		defer restore()
		if got := debug.SetGCPercent(100); got != 100 {
			t.Errorf("GOGC with GOGC set: %d, want 100 (untouched)", got)
		}
		if got := debug.SetMemoryLimit(-1); got != compileHeapFloor {
			t.Errorf("memory limit with only GOGC set: %d, want the compile's floor %d", got, compileHeapFloor)
		}
	})
	t.Run("GOMEMLIMIT", func(t *testing.T) {
		setGC(t)
		t.Setenv("GOMEMLIMIT", "1TiB")
		restore := lessGC()
		if got := debug.SetMemoryLimit(-1); got != 1<<40 {
			t.Errorf("memory limit with GOMEMLIMIT set: %d, want %d (untouched)", got, int64(1<<40))
		}
		if got := debug.SetGCPercent(400); got != 400 {
			t.Errorf("GOGC with only GOMEMLIMIT set: %d, want the compile's 400", got)
		}
		restore()
		if got := debug.SetGCPercent(100); got != 100 {
			t.Errorf("GOGC after restore: %d, want 100", got)
		}
	})
}

// setGC starts a test of the collector's settings from GOGC=100, a memory
// limit of 1 TiB and neither GOGC nor GOMEMLIMIT in the environment, and
// puts the settings back after it.
func setGC(t *testing.T) {
	gcBefore := debug.SetGCPercent(100)
	limitBefore := debug.SetMemoryLimit(1 << 40)
	t.Cleanup(func() {
		debug.SetGCPercent(gcBefore)
		debug.SetMemoryLimit(limitBefore)
	})
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
}
