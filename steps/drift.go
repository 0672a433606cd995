package steps

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/cairn-cm/cairn/journal"
)

// Drifted is an applied step whose live state no longer matches it.
type Drifted struct {
	Step *journal.Step
	// Diff says what differs.
	Diff string
}

// Journal returns the steps of the applied journal, parsed, with their
// positions: what journal show prints and Drift checks. A step that does
// not parse is an *InputError (exit 2) for both.
func (a *Applier) Journal() ([]journal.Step, error) {
	steps, err := a.Applied().JournalSteps()
	if err != nil {
		return nil, &InputError{Err: err}
	}
	return steps, nil
}

// Drift checks the live state of every applied step of a kind with a check
// (§7), several at a time, and returns the drifted ones in journal order.
// File hashes come through the state's stat cache, which it writes back
// with Options.SaveStatCache.
func (a *Applier) Drift(ctx context.Context) ([]Drifted, error) {
	steps, err := a.Journal()
	if err != nil {
		return nil, err
	}
	drifted, _, err := a.drift(ctx, steps, nil, a.statCache(), a.saveStats, false)
	return drifted, err
}

// drift checks steps; with a plan, only the steps it leaves unchanged. It
// reads file hashes through stats, the state's stat cache (nil: none), and
// with save writes the cache back. With proof (and save), it returns what
// the check read, for a no-op's proof (nil when the check cannot give
// one).
func (a *Applier) drift(ctx context.Context, steps []journal.Step, plan *journal.Plan, stats *statCache, save, proof bool) ([]Drifted, *proofRecorder, error) {
	var recorded *proofRecorder
	skip := map[*journal.Step]bool{}
	if plan != nil {
		for _, s := range plan.Added {
			skip[s] = true
		}
	}
	var idx []int
	for i := range steps {
		if _, ok := LookupKind(steps[i].Op).(Checker); ok && !skip[&steps[i]] {
			idx = append(idx, i)
		}
	}
	checked := make([]*journal.Step, len(idx))
	for k, i := range idx {
		checked[k] = &steps[i]
	}
	// The checks read packages and units through a view of this check
	// alone: one query for all rather than a program per step.
	env := a.env.forCheck(newCheckView(checked), stats)
	if proof && save && stats != nil {
		env.proof = newProofRecorder(env.Root, checked)
	}
	diffs := make([]string, len(idx))
	errs := make([]error, len(idx))
	env.stats.expect(len(idx))
	parallel(len(idx), func(k int) {
		if ctx.Err() != nil {
			errs[k] = ctx.Err()
			return
		}
		s := checked[k]
		diffs[k], errs[k] = LookupKind(s.Op).(Checker).Check(ctx, env, s)
	})
	env.stats.closeDirs()
	a.lastStats = env.stats
	if c := env.stats; c != nil {
		a.env.logger().Debug("drift check: stat cache", "from-cache", c.hits.Load(), "hashed", c.hashed.Load(), "full", c.full)
		if save && ctx.Err() == nil {
			a.saveStatCache(c)
			if c.saved && env.proof.complete() {
				recorded = env.proof
			}
		}
		// The Applier keeps the counts (lastStats), not the entries: a
		// map of every managed file, megabytes held between checks.
		c.old, c.fresh, c.hitPaths = nil, nil, nil
	}
	// The package database as a whole: a dpkg left half way breaks every
	// package, reported on the first package step (packages.go).
	pkgStep, pkgDiff, pkgErr := packagesDrift(ctx, env, checked)
	var out []Drifted
	for k, i := range idx {
		s := &steps[i]
		diff := diffs[k]
		if errs[k] != nil {
			diff = fmt.Sprintf("cannot check: %v", errs[k])
		}
		if s == pkgStep {
			switch {
			case pkgErr != nil:
				diff = joinDiff(diff, fmt.Sprintf("cannot check the dpkg database: %v", pkgErr))
			case pkgDiff != "":
				diff = joinDiff(diff, pkgDiff)
			}
		}
		if diff != "" {
			out = append(out, Drifted{Step: s, Diff: diff})
		}
	}
	return out, recorded, ctx.Err()
}

// statCache reads the state's stat cache for a drift check; nil without
// a state directory.
func (a *Applier) statCache() *statCache {
	if a.st == nil {
		return nil
	}
	c, err := newStatCache(a.st.dir, a.rehash, time.Now())
	if err != nil {
		a.env.logger().Warn("the stat cache is left out: every file is hashed", "error", err)
	}
	return c
}

// saveStatCache writes c back; a cache that cannot be written only costs
// the next check its hashing.
func (a *Applier) saveStatCache(c *statCache) {
	if c == nil {
		return
	}
	if err := c.save(a.st.dir); err != nil {
		a.env.logger().Warn("the stat cache is not written: the next check hashes every file", "error", err)
	}
}

// joinDiff joins two findings on one step.
func joinDiff(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// planInputs is what a plan starts from: the applied journal, the new
// journal's canonical lines, the steps and plan from one to the other, and
// with Move.Repair the stat cache, read.
type planInputs struct {
	base     *Applied
	newLines []string
	oldSteps []journal.Step
	plan     *journal.Plan
	stats    *statCache
}

// planInputs runs the static checks of m.Steps, makes the plan and, with
// m.Repair, reads the stat cache: three reads of what nothing changes
// meanwhile, side by side (a third of a no-op's time before its drift
// check). The static checks' errors come first, as when they ran first.
func (a *Applier) planInputs(m Move) (*planInputs, error) {
	in := &planInputs{base: a.Applied()}
	var errs journal.ErrorList
	var wg sync.WaitGroup
	wg.Go(func() { errs = a.static(m.Steps) })
	if m.Repair {
		// Read before the check starts, the cache's clock (its racy
		// rule) only starts earlier: more entries are hashed, none fewer.
		wg.Go(func() { in.stats = a.statCache() })
	}
	in.newLines = journal.Canonicals(m.Steps)
	var err error
	in.oldSteps, in.plan, err = planFrom(in.base, m.Steps, in.newLines)
	wg.Wait()
	if len(errs) > 0 {
		return nil, &InputError{Err: errs}
	}
	if err != nil {
		return nil, err
	}
	return in, nil
}

// planFrom parses the applied journal base and makes the plan from it to
// the new steps, whose canonical lines are newLines. A new journal that is
// the applied one line for line (a no-op, as most runs are) has an empty
// plan, and its own steps stand for the applied ones, which are then
// neither parsed nor diffed: only their positions could differ, and
// nothing a plan without ops does reads them.
func planFrom(base *Applied, newSteps []journal.Step, newLines []string) ([]journal.Step, *journal.Plan, error) {
	if sameLines(base.Steps, newLines) {
		return newSteps, &journal.Plan{}, nil
	}
	oldSteps, err := base.JournalSteps()
	if err != nil {
		return nil, nil, &InputError{Err: err}
	}
	return oldSteps, journal.MakePlanLines(oldSteps, journal.Canonicals(oldSteps), newSteps, newLines), nil
}

// sameLines reports whether the applied steps are lines, in order.
func sameLines(applied []AppliedStep, lines []string) bool {
	if len(applied) != len(lines) {
		return false
	}
	for i := range lines {
		if applied[i].Step != lines[i] {
			return false
		}
	}
	return true
}
