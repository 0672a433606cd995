package steps

import (
	"context"
	"sync"

	"github.com/cairn-cm/cairn/journal"
)

// checkView is what one drift check reads of the package database and of
// unit files at once, instead of a program per step: every installed
// package's version (Packages.Installed) and the enablement of the units
// its steps name (Units.AreEnabled), each read when a check first needs
// it. It lives for that check alone (Applier.drift makes one per check,
// on an Env of its own): a check made during a move, an op's verification,
// has none and asks the drivers live.
type checkView struct {
	// units are the units the check's steps name (unitViewer).
	units []string

	pkgOnce  sync.Once
	versions map[string]string
	pkgErr   error

	unitOnce sync.Once
	enabled  map[string]bool
	unitErr  error
}

// unitViewer is a Checker whose check reads a unit's enablement through
// the check's view; it names the unit of a step before the check starts.
type unitViewer interface {
	viewedUnit(s *journal.Step) string
}

// newCheckView returns the view of a drift check of steps.
func newCheckView(steps []*journal.Step) *checkView {
	v := &checkView{}
	for _, s := range steps {
		if uv, ok := LookupKind(s.Op).(unitViewer); ok {
			v.units = append(v.units, uv.viewedUnit(s))
		}
	}
	return v
}

// forCheck returns an Env for one drift check: e's drivers and files, with
// v and the stat cache c (nil: every file is hashed). The Env is the
// check's own, so that neither outlives it.
func (e *Env) forCheck(v *checkView, c *statCache) *Env {
	return &Env{Root: e.Root, Blobs: e.Blobs, Log: e.Log, Output: e.Output, Host: e.Host, view: v, stats: c}
}

// installedVersion returns whether a package is installed, and its
// version: from the drift check's view when env has one, else from p.
func installedVersion(ctx context.Context, env *Env, p Packages, name string) (bool, string, error) {
	v := env.view
	if v == nil {
		installed, version, _, err := p.Status(ctx, name)
		return installed, version, err
	}
	v.pkgOnce.Do(func() { v.versions, v.pkgErr = p.Installed(ctx) })
	if v.pkgErr != nil {
		return false, "", v.pkgErr
	}
	version, ok := v.versions[name]
	return ok, version, nil
}

// isEnabled reports whether a unit is enabled: from the drift check's view
// when env has one and it could tell, else from u.
func isEnabled(ctx context.Context, env *Env, u Units, unit string) (bool, error) {
	if v := env.view; v != nil {
		v.unitOnce.Do(func() { v.enabled, v.unitErr = u.AreEnabled(ctx, v.units) })
		if v.unitErr != nil {
			return false, v.unitErr
		}
		if on, ok := v.enabled[unit]; ok {
			return on, nil
		}
	}
	return u.IsEnabled(ctx, unit)
}
