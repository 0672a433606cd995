package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/cairn-cm/cairn/journal"
	"github.com/cairn-cm/cairn/steps"
)

// announce tells a MoveObserver of the move just made.
func (r *run) announce() {
	mo, ok := r.obs.(MoveObserver)
	if !ok {
		return
	}
	ap := r.a.Applied()
	var committed time.Time
	if c, err := r.m.Commit(plumbing.NewHash(ap.Commit)); err == nil {
		committed = c.Committer.When.UTC()
	}
	mo.Moved(ap.Commit, ap.Branch, ap.Group, committed, len(ap.Steps))
}

// moved updates the pin after a move to commit: a rollback pins the host
// there; an explicit move of a held host keeps it held, where it now is.
func (r *run) moved(commit string) {
	var pin Pin
	switch {
	case r.req.Mode == Rollback:
		r.pin(commit)
	case r.rest == Held && r.p.readRecord(r.a, recordPin, &pin):
		pin.Commit = commit
		if err := r.a.WriteRecord(recordPin, pin); err != nil {
			r.rep.Err = err
		}
	}
}

// readPin reads the pin (an empty Commit: not held). A pin that cannot be
// read holds the host where it is: a rollback's hold must not be lost to
// a disk error; cairn resume lifts it.
func (p *Pipeline) readPin(a *steps.Applier) Pin {
	var pin Pin
	if _, err := a.ReadRecord(recordPin, &pin); err != nil {
		p.log().Warn("cannot read the pin; the host is held where it is", "err", err)
		return Pin{Commit: a.Applied().Commit, Reason: "the pin cannot be read (cairn resume lifts it): " + err.Error()}
	}
	return pin
}

// pin holds the host at commit until cairn resume.
func (r *run) pin(commit string) {
	reason := r.req.Reason
	if reason == "" {
		reason = "cairn rollback"
	}
	if err := r.a.WriteRecord(recordPin, Pin{Commit: commit, Reason: reason, Since: time.Now().UTC()}); err != nil {
		r.rep.Err = err
	}
	r.rest = Held
}

// checkDrift checks the live state of the journal the host is at, repairs
// it with --drift repair, and ends the run with result.
func (r *run) checkDrift(ctx context.Context, applied *steps.Applied, result Result) {
	r.enter(CheckingDrift)
	drifted, err := r.a.Drift(ctx)
	if err != nil && ctx.Err() != nil {
		// Stopped (SIGTERM): the drift is left unchecked, and what the run
		// did (a move it keeps) stands.
		r.end(result, nil)
		return
	}
	if err != nil {
		r.end(ResultFailed, err)
		return
	}
	if len(drifted) > 0 && r.p.cfg.Drift == DriftRepair && r.req.Mode != Plan {
		if err := r.repair(ctx, applied); err != nil {
			if steps.ExitCode(err) == steps.ExitUndoFailed {
				r.end(ResultBroken, err)
				return
			}
			r.end(ResultFailed, err)
			return
		}
		result = ResultApplied
		if drifted, err = r.a.Drift(ctx); err != nil {
			r.end(ResultFailed, err)
			return
		}
	}
	r.rep.Drift = drifted
	if err := r.a.WriteRecord(recordDrift, driftRecord(drifted)); err != nil {
		r.p.log().Warn("cannot record the drift", "err", err)
	}
	r.end(result, nil)
}

// repair runs the drifted steps of the applied journal forward again.
func (r *run) repair(ctx context.Context, applied *steps.Applied) error {
	js, err := r.a.Journal()
	if err != nil {
		return err
	}
	move := steps.Move{Journal: applied.Journal, Commit: applied.Commit, Branch: applied.Branch, Group: applied.Group, Steps: js, BlobsName: blobsName, Repair: true}
	if applied.Commit != "" {
		if fsys, _, err := r.git.FS(applied.Commit); err == nil {
			move.Source, move.SourceName = fsys, short(applied.Commit)
		}
	}
	out, err := r.a.Apply(ctx, move)
	if out != nil {
		r.rep.Run.Ops += out.Ran
	}
	return err
}

// undoMove moves the host back to the journal it was at before this run's
// move: the confirmation failed.
func (r *run) undoMove(ctx context.Context, prev *steps.Applied) error {
	js, err := prev.JournalSteps()
	if err != nil {
		return err
	}
	move := steps.Move{Journal: prev.Journal, Commit: prev.Commit, Branch: prev.Branch, Group: prev.Group, Steps: js, BlobsName: blobsName, AllowRemoval: true}
	if prev.Commit != "" {
		if fsys, _, err := r.git.FS(prev.Commit); err == nil {
			move.Source, move.SourceName = fsys, short(prev.Commit)
		}
	}
	// The way back is not stopped by a SIGTERM: the host must not stay at
	// a commit that failed its confirmation.
	out, err := r.a.Apply(context.WithoutCancel(ctx), move)
	if out != nil {
		r.rep.Run.Ops += out.Ran
	}
	if err != nil {
		return fmt.Errorf("undo the move after its confirmation failed: %w", err)
	}
	return nil
}

// stuck records that the way back from commit, which failed its
// confirmation with err, to the journal prev failed too: the next runs
// retry it (wayBack).
func (r *run) stuck(prev *steps.Applied, commit string, err error) {
	back := *prev
	back.Originals, back.Kept = nil, nil
	if werr := r.a.WriteRecord(recordWayBack, WayBack{Back: &back, Stuck: commit, Error: err.Error()}); werr != nil {
		r.p.log().Warn("cannot record the way back", "err", werr)
	}
}

// wayBack retries the way back recorded by stuck, first thing in a run, as
// a broken host's runs retry its recovery (§3); it reports whether it
// ended the run.
func (r *run) wayBack(ctx context.Context, applied *steps.Applied) bool {
	var wb WayBack
	if !r.p.readRecord(r.a, recordWayBack, &wb) || wb.Back == nil {
		return false
	}
	if applied.Commit != wb.Stuck {
		// The host was moved since (cairn apply --to, cairn rollback).
		if err := r.a.WriteRecord(recordWayBack, WayBack{}); err != nil {
			r.p.log().Warn("cannot clear the way back", "err", err)
		}
		return false
	}
	r.rep.Run.Commit = wb.Back.Commit
	r.enter(Applying)
	if err := r.undoMove(ctx, wb.Back); err != nil {
		r.end(ResultBroken, err)
		return true
	}
	if err := r.a.WriteRecord(recordWayBack, WayBack{}); err != nil {
		r.p.log().Warn("cannot clear the way back", "err", err)
	}
	r.end(ResultFailed, fmt.Errorf("%s: the host is back at %s", wb.Error, short(wb.Back.Commit)))
	return true
}

// hasChecks reports whether a journal has CHECK steps.
func hasChecks(js []journal.Step) bool {
	for i := range js {
		if js[i].Op == journal.OpCheck {
			return true
		}
	}
	return false
}

// persist writes the run's record at its end.
func (r *run) persist() {
	var runs []Run
	if _, err := r.a.ReadRecord(recordRuns, &runs); err != nil {
		r.p.log().Warn("cannot read the runs record", "err", err)
	}
	runs = append(runs, r.rep.Run)
	if len(runs) > keepRuns {
		runs = runs[len(runs)-keepRuns:]
	}
	if err := r.a.WriteRecord(recordRuns, runs); err != nil {
		r.p.log().Warn("cannot record the run", "err", err)
	}
}

// Resume lifts a rollback's pin (cairn resume): the next run moves the
// host to its target as usual. It reports whether there was a pin.
func (p *Pipeline) Resume(ctx context.Context) (bool, error) {
	a, err := p.open(ctx, steps.Options{Root: p.cfg.Root, StateDir: p.cfg.StateDir, Log: p.cfg.Log, Host: p.cfg.Drivers})
	if err != nil {
		return false, err
	}
	defer a.Close()
	if pin := p.readPin(a); pin.Commit == "" {
		return false, nil
	}
	if err := a.WriteRecord(recordPin, Pin{}); err != nil {
		return false, err
	}
	if err := a.WriteRecord(recordLifecycle, Lifecycle{State: Idle, Since: time.Now().UTC()}); err != nil {
		return false, err
	}
	p.log().Info("pin lifted")
	return true, nil
}
