package steps

import (
	"context"
	"fmt"
	"strings"

	"github.com/cairn-cm/cairn/journal"
)

// aptInstallKind runs APT-INSTALL.
//
// Syntax: APT-INSTALL PKG [version=V]
//
// Forward: install PKG with apt-get, non-interactively, keeping changed
// conffiles; with version, exactly that version (apt's PKG=V, a downgrade
// if need be). A package already installed (at that version) is left as it
// is, but marked manually installed. Consecutive forward APT-INSTALLs run as
// one apt-get call, each keeping its own undo image, which records the
// packages its install brings. A dpkg database left half way by an
// interrupted dpkg is finished first (dpkg --configure -a). The wait for
// the dpkg lock is bounded; a lock still held after it fails the step,
// naming the holder. apt-get runs detached from cairn: if cairn dies, it
// runs to its end, and recovery waits for it. Under a --root, apt runs
// chrooted into it, and only if it holds a Debian system.
//
// Inverse: restore the original image: remove the package if cairn
// installed it (apt-get remove, keeping conffiles), with the dependencies
// that install brought and that nothing needs any more, install the former
// version again if cairn changed it, and leave a package that was there
// before at the same version untouched (see packageFamily).
//
// Check: installed, at that version when one is given; drift also reports
// a dpkg database that is not clean (dpkg --audit), on the journal's first
// APT-INSTALL.
//
// Example: APT-INSTALL nginx version=1.22.1-9
type aptInstallKind struct{ packageFamily }

var (
	_ Kind           = aptInstallKind{}
	_ Checker        = aptInstallKind{}
	_ Imager         = aptInstallKind{}
	_ BatchForwarder = aptInstallKind{}
)

func (aptInstallKind) Op() string { return journal.OpAptInstall }

// Forward installs one package: a batch of one. Like every package op it
// runs to its end, never killed (runsToItsEnd): the applier gives it a
// context that is never done.
func (k aptInstallKind) Forward(ctx context.Context, env *Env, s *journal.Step) error {
	return k.ForwardBatch(ctx, env, []*journal.Step{s})
}

// ForwardBatch installs the packages of several steps with one apt-get
// call. If that fails, it names the step that fails (a *BatchError): the
// one whose package dpkg left half way, if any; else it installs them one
// by one to find it.
func (aptInstallKind) ForwardBatch(ctx context.Context, env *Env, batch []*journal.Step) error {
	if len(batch) == 0 {
		return nil
	}
	p, err := packages(env, batch[0])
	if err != nil {
		return &BatchError{Index: 0, Err: err}
	}
	// A dpkg left half way (dpkg --audit lists packages) makes apt refuse:
	// finish it first, as apt says to (dpkg --configure -a).
	if broken, err := p.Audit(ctx); err != nil {
		return &BatchError{Index: 0, Err: err}
	} else if len(broken) > 0 {
		env.logger().Warn("APT-INSTALL: the dpkg database is not clean; running dpkg --configure -a first", "audit", strings.Join(broken, "; "))
		if _, err := p.Repair(ctx); err != nil {
			return &BatchError{Index: 0, Err: err}
		}
	}
	var specs []string
	var at []int
	for i, s := range batch {
		spec, needed, err := aptSpec(ctx, p, env, s)
		if err != nil {
			return &BatchError{Index: i, Err: err}
		}
		if needed {
			specs = append(specs, spec)
			at = append(at, i)
		}
	}
	err = p.Install(ctx, specs...)
	if err == nil || len(specs) == 1 {
		if err != nil {
			return &BatchError{Index: at[0], Err: err}
		}
		return nil
	}
	if ctx.Err() != nil {
		return &BatchError{Index: at[0], Err: err} // cancelled: no more apt runs
	}
	// dpkg failed on a package of the batch (its maintainer script): that
	// step is at fault, and another apt run would fail on it again.
	if broken, aerr := p.Audit(ctx); aerr == nil {
		for _, b := range broken {
			name, _, _ := strings.Cut(b, " ")
			for _, i := range at {
				if batch[i].Object() == name {
					return &BatchError{Index: i, Err: err}
				}
			}
		}
	}
	env.logger().Info("APT-INSTALL: the batch failed; installing one by one to find the step", "err", err)
	for j, spec := range specs {
		if err := p.Install(ctx, spec); err != nil {
			return &BatchError{Index: at[j], Err: err}
		}
	}
	return nil // the batch failed, one by one it worked: a passing trouble
}

// aptSpec returns the apt spec of a step and whether apt needs to run for
// it. An installed package that matches is only marked manual.
func aptSpec(ctx context.Context, p Packages, env *Env, s *journal.Step) (spec string, needed bool, err error) {
	name := s.Object()
	spec, want, pinned := aptWant(s)
	installed, version, auto, err := p.Status(ctx, name)
	if err != nil {
		return "", false, err
	}
	if !installed || (pinned && version != want) {
		return spec, true, nil
	}
	if auto {
		return spec, false, p.SetAuto(ctx, name, false)
	}
	env.logger().Debug("APT-INSTALL: already installed", "package", name, "version", version)
	return spec, false, nil
}

// aptWant returns the apt spec of a step ("NAME" or "NAME=VERSION") and
// the version it pins, if it does.
func aptWant(s *journal.Step) (spec, version string, pinned bool) {
	version, pinned = s.Lookup("version")
	if pinned {
		return s.Object() + "=" + version, version, true
	}
	return s.Object(), "", false
}

func (aptInstallKind) Check(ctx context.Context, env *Env, s *journal.Step) (string, error) {
	p, err := packages(env, s)
	if err != nil {
		return "", err
	}
	installed, version, err := installedVersion(ctx, env, p, s.Object())
	if err != nil {
		return "", err
	}
	want, pinned := s.Lookup("version")
	switch {
	case !installed:
		return "not installed", nil
	case pinned && version != want:
		return fmt.Sprintf("version %s installed, want %s", version, want), nil
	}
	return "", nil
}
