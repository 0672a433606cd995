package steps

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/cairn-cm/cairn/internal/atomicfile"
	"github.com/cairn-cm/cairn/journal"
	"github.com/cairn-cm/cairn/statedir"
)

// parseAction reads an action's name back from the intent log.
func parseAction(name string) (journal.Action, bool) {
	for a := journal.Forward; a <= journal.Recheck; a++ {
		if a.String() == name {
			return a, true
		}
	}
	return 0, false
}

// cleanTemps removes the temporary files that a process killed while it
// wrote a blob or a state file (atomicfile) left.
func (a *Applier) cleanTemps() {
	a.st.blobs.Clean()
	for _, dir := range []string{a.st.dir, filepath.Join(a.st.dir, statedir.RecordsDir)} {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if atomicfile.IsTemp(e.Name()) {
				os.Remove(filepath.Join(dir, e.Name()))
			}
		}
	}
}

// recover finishes a move that a dead process left in the intent log: if it
// had committed, only the log goes; otherwise every recorded op is undone,
// in reverse order, from its undo image, and temporary files are removed.
// A corrupt log (readIntent) is an *IntentCorruptError, and stays.
func (a *Applier) recover(ctx context.Context) error {
	recs, ok, err := readIntent(a.st.dir)
	if !ok {
		// A process killed while it checked its inputs, before any intent,
		// or while it wrote a state file, may have left a temporary file.
		a.cleanTemps()
		return nil
	}
	if err != nil {
		return err
	}
	defer a.cleanTemps()
	if a.st.applied.Generation >= recs[0].To {
		return removeIntent(a.st.dir) // the move had committed
	}
	start := time.Now()
	type undoable struct {
		step   journal.Step
		action journal.Action
		undo   *Image
	}
	var ops []undoable // in the order they ran
	for _, r := range recs[1:] {
		if r.T != "op" {
			continue
		}
		// A record whose checksum holds but which cannot be read back (the
		// log of another build, or damage no checksum sees) leaves the log
		// unreadable as a whole: cairn cannot tell what to undo.
		unreadable := func(format string, args ...any) error {
			return &IntentCorruptError{File: filepath.Join(a.st.dir, intentFile), Reason: fmt.Sprintf("op %d: ", r.I) + fmt.Sprintf(format, args...)}
		}
		s, err := journal.ParseStep(parsePos(r.At), r.Step)
		if err != nil {
			return unreadable("%v", err)
		}
		action, ok := parseAction(r.Action)
		if !ok {
			return unreadable("unknown action %q", r.Action)
		}
		if LookupKind(s.Op) == nil {
			return unreadable("this build has no driver for %s", s.Op)
		}
		ops = append(ops, undoable{s, action, r.Undo})
	}
	// A package manager the dead process started runs on without it: wait
	// for it, and repair dpkg, before undoing (packages.go).
	opSteps := make([]*journal.Step, len(ops))
	for i := range ops {
		opSteps[i] = &ops[i].step
	}
	c := newCancellation(ctx, nil) // a recovery is never stopped or killed
	defer c.release()
	packagesAfterUndo, err := recoverPackages(c, a.env, opSteps)
	if err != nil {
		return &UndoError{Cause: fmt.Errorf("recovering the move interrupted in %s", a.st.dir), Errs: []error{err}}
	}
	undone := len(ops)
	// Device numbers are compared only if the move ran in this boot.
	boot := bootID()
	u := newUndoPass(boot == "" || recs[0].Boot != boot)
	for i := range ops {
		u.note(&ops[i].step, ops[i].undo)
	}
	errs := undoReverse(len(ops), func(i int) error {
		op := &ops[i]
		ev := opEvent(i+1, len(ops), &op.step, op.action, true)
		if err := a.observe(ev, func() error { return a.undoOp(c.opContext(&op.step, doUndo), &op.step, op.action, op.undo, u) }); err != nil {
			return fmt.Errorf("%s: undo: %w", describeStep(&op.step), err)
		}
		return nil
	})
	errs = append(errs, u.finish(a.env)...)
	if len(errs) > 0 {
		return &UndoError{Cause: fmt.Errorf("recovering the move interrupted in %s", a.st.dir), Errs: errs}
	}
	if err := packagesAfterUndo(); err != nil {
		return &UndoError{Cause: fmt.Errorf("recovering the move interrupted in %s", a.st.dir), Errs: []error{err}}
	}
	if err := a.syncAll(); err != nil {
		return &UndoError{Errs: []error{err}}
	}
	if err := removeIntent(a.st.dir); err != nil {
		return &UndoError{Errs: []error{err}}
	}
	a.env.logger().Warn("recovered an interrupted move: the host is back at the applied journal", "generation", a.st.applied.Generation, "undone", undone)
	a.st.record(HistoryEntry{Time: start.UTC(), Generation: a.st.applied.Generation, Result: HistoryRecovered, Ops: undone, Seconds: time.Since(start).Seconds()})
	return nil
}
