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
