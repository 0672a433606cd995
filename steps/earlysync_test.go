package steps

import (
	"errors"
	"sync/atomic"
	"testing"
)

// TestEarlySync holds earlySync to one syncfs at a time, and to keeping
// the first error any had for wait, which the commit returns: the kernel
// reports a write-back error to one syncfs only.
func TestEarlySync(t *testing.T) {
	var nilSync *earlySync
	if err := nilSync.wait(); err != nil {
		t.Errorf("a nil earlySync waits with %v", err)
	}
	e := new(earlySync)
	var runs atomic.Int32
	release := make(chan struct{})
	failed := errors.New("syncfs: input/output error")
	e.start(func() error { runs.Add(1); <-release; return failed })
	e.start(func() error { runs.Add(1); return nil }) // one is under way: not run
	close(release)
	if err := e.wait(); !errors.Is(err, failed) {
		t.Errorf("wait = %v, want the syncfs's error", err)
	}
	e.start(func() error { runs.Add(1); return errors.New("a later error") })
	if err := e.wait(); !errors.Is(err, failed) {
		t.Errorf("wait after a second syncfs = %v, want the first error still", err)
	}
	if n := runs.Load(); n != 2 {
		t.Errorf("%d syncfs ran, want 2 (the second start came while one was under way)", n)
	}
}

// TestUndoNeedsBlobs: the blob store is synced before a batch runs only
// when an undo image of the batch keeps content there.
func TestUndoNeedsBlobs(t *testing.T) {
	absent := &Image{Absent: true}
	dir := &Image{Type: TypeDir, Mode: 0o755}
	file := &Image{Type: TypeFile, Mode: 0o644, Blob: "2f7930a8506ed811b621c09d28c628a7dd01b152cf99a3b52d5a6e277a4f777a"}
	for _, tc := range []struct {
		name string
		ops  []executed
		want bool
	}{
		{"none", nil, false},
		{"new objects", []executed{{undo: absent}, {undo: absent}, {undo: dir}}, false},
		{"a command without an image", []executed{{undo: nil}}, false},
		{"a file overwritten", []executed{{undo: absent}, {undo: file}}, true},
	} {
		if got := undoNeedsBlobs(tc.ops); got != tc.want {
			t.Errorf("%s: undoNeedsBlobs = %v, want %v", tc.name, got, tc.want)
		}
	}
}
