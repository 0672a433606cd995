package steps

import (
	"errors"
	"sync/atomic"
	"testing"

	"github.com/cairn-cm/cairn/journal"
)

// TestEarlySync holds earlySync to one syncfs at a time, and to keeping
// the first error any had for the next wait, which the commit returns (the
// kernel reports a write-back error to one syncfs only), and only for it:
// the undo that follows syncs on its own.
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
	if err := e.wait(); err != nil {
		t.Errorf("a second wait = %v, want nil: the error was returned once", err)
	}
	later := errors.New("a later error")
	e.start(func() error { runs.Add(1); return later })
	if err := e.wait(); !errors.Is(err, later) {
		t.Errorf("wait after a second syncfs = %v, want its error", err)
	}
	if n := runs.Load(); n != 2 {
		t.Errorf("%d syncfs ran, want 2 (the second start came while one was under way)", n)
	}
}

// TestUndoNeedsBlobs: the blob store is synced before a batch runs unless
// every op of the batch is a path op whose undo image keeps no content.
func TestUndoNeedsBlobs(t *testing.T) {
	step := func(line string) *journal.Step { return mustStep(t, line) }
	sum := "2f7930a8506ed811b621c09d28c628a7dd01b152cf99a3b52d5a6e277a4f777a"
	copyNew := executed{step: step("COPY a /srv/a sha256=" + sum), undo: &Image{Absent: true}}
	mkdir := executed{step: step("MKDIR /srv"), undo: &Image{Type: TypeDir, Mode: 0o755}}
	overwrite := executed{step: step("COPY b /srv/b sha256=" + sum), undo: &Image{Type: TypeFile, Mode: 0o644, Blob: sum}}
	playbook := executed{step: step("PLAYBOOK site.yml sha256=" + sum)}
	kubectl := executed{step: step("KUBECTL-APPLY manifests sha256=" + sum)}
	exec := executed{step: step(`EXEC "true"`)}
	for _, tc := range []struct {
		name string
		ops  []executed
		want bool
	}{
		{"none", nil, false},
		{"new objects", []executed{copyNew, copyNew, mkdir}, false},
		{"a file overwritten", []executed{copyNew, overwrite}, true},
		{"a playbook, whose undo reads its inputs from the store", []executed{copyNew, playbook}, true},
		{"a kubectl apply, the same", []executed{kubectl}, true},
		{"a command", []executed{exec}, true},
	} {
		if got := undoNeedsBlobs(tc.ops); got != tc.want {
			t.Errorf("%s: undoNeedsBlobs = %v, want %v", tc.name, got, tc.want)
		}
	}
}
