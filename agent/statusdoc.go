package agent

import (
	"context"
	"io/fs"
	"path/filepath"
	"reflect"
	"time"

	"github.com/cairn-cm/cairn/agent/gitfs"

	"github.com/cairn-cm/cairn/agent/status"
	"github.com/cairn-cm/cairn/steps"
)

// recordDrift holds the drift the last run found.
const recordDrift = "drift"

// mirrorDir is the bare repository in the state directory.
const mirrorDir = "repo.git"

// Status reads the status document from the state directory: what the
// last run recorded. It changes nothing (a half done move is recovered
// first, as by every command that opens the state: what the undo's
// commands print goes to the Output, as in a run; the agent's recovery
// after a crash is this one, at its start).
func (p *Pipeline) Status(ctx context.Context) (status.Document, error) {
	doc := p.emptyStatus()
	a, err := p.open(ctx, steps.Options{Root: p.cfg.Root, StateDir: p.cfg.StateDir, Log: p.cfg.Log, Output: p.cfg.Output, Host: p.cfg.Drivers})
	if err != nil {
		return doc, err
	}
	defer a.Close()
	return p.status(a, doc)
}

// emptyStatus is the status document before anything is read.
func (p *Pipeline) emptyStatus() status.Document {
	return status.Document{Host: p.cfg.Host, Group: p.cfg.Group, Branch: p.cfg.Branch, State: string(Idle), Version: p.cfg.Version, Drift: []status.Drift{}, BadCommits: []status.BadCommit{}}
}

// status fills doc from the records of an open state.
func (p *Pipeline) status(a *steps.Applier, doc status.Document) (status.Document, error) {
	var (
		life   Lifecycle
		target Target
		runs   []Run
		bad    []BadMove
		drift  []status.Drift
	)
	for _, r := range []struct {
		name string
		v    any
	}{{recordLifecycle, &life}, {recordTarget, &target}, {recordRuns, &runs}, {recordBad, &bad}, {recordDrift, &drift}} {
		// A record that cannot be read costs its part of the display, not
		// the status: an agent whose status fails does not start.
		p.readRecord(a, r.name, r.v)
	}
	pin := p.readPin(a)
	if life.State != "" {
		doc.State, doc.StateSince = string(life.State), life.Since
	}
	if pin.Commit != "" {
		doc.Held = &status.Hold{Reason: pin.Reason, Commit: pin.Commit, Since: pin.Since}
	}
	if !State(doc.State).Resting() {
		// The run that recorded this state was killed: this process holds
		// the state's lock, and opening the state undid its move. The
		// host rests.
		doc.State = string(Idle)
		if doc.Held != nil {
			doc.State = string(Held)
		}
	}
	applied := a.Applied()
	if applied.Commit != "" || len(applied.Steps) > 0 {
		doc.Applied = &status.Applied{Commit: applied.Commit, Branch: applied.Branch, Group: applied.Group, Steps: len(applied.Steps), Time: appliedAt(runs, applied.Commit)}
		if applied.Commit != "" && applied.Commit == target.Commit {
			doc.Applied.Committed = target.Time
		} else if t, ok := p.commitTime(a, applied.Commit); ok {
			doc.Applied.Committed = t
		}
	}
	if target.Commit != "" || target.Branch != "" {
		// A target without a commit: the group's branch is missing on the
		// server (shown, never converged).
		doc.Target = &status.Target{Commit: target.Commit, Branch: target.Branch, Committed: target.Time, Fetched: target.Fetched}
		doc.Branch = target.Branch
		if doc.Group == "" {
			doc.Group = target.Group
		}
	}
	if drift != nil {
		doc.Drift = drift
	}
	for i := len(runs) - 1; i >= 0; i-- {
		doc.RecentRuns = append(doc.RecentRuns, runs[i].status())
	}
	if len(doc.RecentRuns) > 0 {
		doc.LastRun = &doc.RecentRuns[0]
	}
	for _, b := range bad {
		doc.BadCommits = append(doc.BadCommits, status.BadCommit{Commit: b.To, From: b.From, Reason: b.Reason, Since: b.At})
	}
	var wb WayBack
	stuck := p.readRecord(a, recordWayBack, &wb) && wb.Back != nil && wb.Stuck == applied.Commit
	doc.Converged = doc.Applied != nil && doc.Target != nil && doc.Applied.Commit == doc.Target.Commit && len(doc.Drift) == 0 && !stuck
	return doc, nil
}

// commitTime returns the committer time of a commit in the state's mirror
// of the repository.
func (p *Pipeline) commitTime(a *steps.Applier, commit string) (time.Time, bool) {
	git, err := gitfs.Open(filepath.Join(a.StateDir(), mirrorDir))
	if err != nil {
		return time.Time{}, false
	}
	defer git.Close()
	fsys, _, err := git.FS(commit)
	if err != nil {
		return time.Time{}, false
	}
	info, err := fs.Stat(fsys, ".")
	if err != nil {
		return time.Time{}, false
	}
	return info.ModTime().UTC(), true
}

// status is the run as the status document shows it.
func (r Run) status() status.Run {
	states := make([]string, len(r.States))
	for i, s := range r.States {
		states[i] = string(s)
	}
	return status.Run{Started: r.Started, Finished: r.Finished, Result: string(r.Result), Commit: r.Commit, From: r.From, Ops: r.Ops, Error: r.Error, States: states}
}

// appliedAt returns when the host moved to commit: the end of the last
// run that applied it, or the zero time when the runs kept do not say.
func appliedAt(runs []Run, commit string) time.Time {
	for i := len(runs) - 1; i >= 0; i-- {
		if runs[i].Result == ResultApplied && runs[i].Commit == commit {
			return runs[i].Finished
		}
	}
	return time.Time{}
}

// driftRecord is the drift of a run as the status document shows it.
func driftRecord(drifted []steps.Drifted) []status.Drift {
	out := make([]status.Drift, len(drifted))
	for i, d := range drifted {
		src := d.Step.Source
		if src == "" {
			src = d.Step.Pos.String()
		}
		out[i] = status.Drift{Step: d.Step.Canonical(), Source: src, Diff: d.Diff}
	}
	return out
}

// readRecord reads one of the agent's own records, which the next run
// rewrites: one that cannot be read (a disk error, a hand edit) is logged
// and read as missing.
func (p *Pipeline) readRecord(a *steps.Applier, name string, v any) bool {
	found, err := a.ReadRecord(name, v)
	if err != nil {
		p.log().Warn("cannot read a record of the agent; it is taken as missing", "record", name, "err", err)
		// What a decoding that failed half way filled in is dropped.
		reflect.ValueOf(v).Elem().SetZero()
		return false
	}
	return found
}
