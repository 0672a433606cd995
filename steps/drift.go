package steps

import (
	"context"
	"fmt"

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
func (a *Applier) Drift(ctx context.Context) ([]Drifted, error) {
	steps, err := a.Journal()
	if err != nil {
		return nil, err
	}
	return a.drift(ctx, steps, nil)
}

// drift checks steps; with a plan, only the steps it leaves unchanged.
func (a *Applier) drift(ctx context.Context, steps []journal.Step, plan *journal.Plan) ([]Drifted, error) {
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
	env := a.env.forCheck(newCheckView(checked))
	diffs := make([]string, len(idx))
	errs := make([]error, len(idx))
	parallel(len(idx), func(k int) {
		if ctx.Err() != nil {
			errs[k] = ctx.Err()
			return
		}
		s := checked[k]
		diffs[k], errs[k] = LookupKind(s.Op).(Checker).Check(ctx, env, s)
	})
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
	return out, ctx.Err()
}

// joinDiff joins two findings on one step.
func joinDiff(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}
