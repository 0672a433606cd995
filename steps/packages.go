package steps

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/cairn-cm/cairn/journal"
)

// Packages is what steps need of the package manager (debian implements
// it). A package spec is "NAME" for any version or "NAME=VERSION".
//
// The methods that change the system run the package manager so that it
// does not depend on cairn staying alive (debian.Apt says how): if cairn
// dies, it runs to its end, and Repair, in the next cairn's recovery, waits
// for it.
type Packages interface {
	// Status returns whether a package is installed, its version, and
	// whether it is marked automatically installed. A package the package
	// manager does not know, or holds only half installed or configured, is
	// not installed (no error).
	Status(ctx context.Context, name string) (installed bool, version string, auto bool, err error)
	// Installed returns the version of every installed package, read at
	// once, keyed so that Status(name) says installed at version V exactly
	// when the map holds V for name. A drift check asks it once rather
	// than Status for each package (checkView).
	Installed(ctx context.Context) (map[string]string, error)
	// Brings returns the packages that an Install of specs would add: those
	// not installed now, dependencies included.
	Brings(ctx context.Context, specs ...string) ([]string, error)
	// Install installs the packages of specs in one call, non-interactively;
	// a pinned version may be below the installed one (a downgrade).
	Install(ctx context.Context, specs ...string) error
	// Remove removes the packages of names that are there in any state,
	// installed or left half way (keeping their conffiles), and those of
	// deps that are then no longer needed (marked automatically installed,
	// and required by no package that stays); nothing else, ever: it
	// refuses rather than remove another package.
	Remove(ctx context.Context, names, deps []string) error
	// SetAuto marks an installed package automatically installed or not.
	SetAuto(ctx context.Context, name string, auto bool) error
	// Audit returns what is wrong with the package database (dpkg --audit),
	// one finding per package; none when it is clean.
	Audit(ctx context.Context) ([]string, error)
	// Repair waits, with a bound, until no package manager runs, then
	// finishes what an interrupted one left (dpkg --configure -a) and
	// returns what Audit still finds. An error is a package manager still
	// running after the wait, or a command that could not run.
	Repair(ctx context.Context) ([]string, error)
	// Usable returns why packages cannot be managed beneath this root (no
	// Debian system there), or nil; the applier asks before anything
	// changes.
	Usable() error
}

// packageRecord is the Data of a package image: the version installed and
// whether it was marked automatically installed, and the packages that the
// op the image was taken for brings (Packages.Brings). A package that was
// not installed has an Absent image, with a record only to say what it
// brings.
type packageRecord struct {
	Version string   `json:"version,omitempty"`
	Auto    bool     `json:"auto,omitempty"`
	Brought []string `json:"brought,omitempty"`
}

// packageFamily captures and restores packages, the package family's
// images.
//
// Capture records absent (not installed, or only its conffiles left) or the
// installed version and its automatically-installed mark; and, when the
// step's forward op will run apt (the package is absent, or at another
// version than the one pinned), the packages that op brings: the package
// and the dependencies apt adds for it, which were not installed before.
//
// Restore brings a package back to its image, touching it only where it
// differs: a package that was absent and is there now (installed, or left
// half way by a failed or interrupted dpkg) is removed (apt-get remove, not
// purge: conffiles stay, since they may hold an administrator's edits or
// files that path steps manage, and dpkg then counts the package as not
// installed); one at another version now is installed at the former
// version again (a downgrade if need be); and the automatically-installed
// mark is set back, since installing a package marks it manual. A package
// that was there before at the same version is left untouched. Then the
// packages the op brought go too, those that nothing needs any more and
// that are still marked automatically installed (Packages.Remove): never
// one that was installed before, one marked manual since, or one that a
// package that stays requires.
type packageFamily struct{}

var (
	_ Imager       = packageFamily{}
	_ runsToItsEnd = packageFamily{}
)

// runsToItsEnd: a package op, its image and its undo are never killed
// (cancellation.opContext): apt-get and dpkg killed half way leave a
// broken package database.
func (packageFamily) runsToItsEnd() {}

// packages returns the package driver, or an error naming the step when
// this cairn has none.
func packages(env *Env, s *journal.Step) (Packages, error) {
	if env.Packages == nil {
		return nil, fmt.Errorf("%s %s: no package driver (this cairn cannot drive apt here)", s.Op, s.Object())
	}
	return env.Packages, nil
}

func (packageFamily) Capture(ctx context.Context, env *Env, s *journal.Step) (Image, error) {
	p, err := packages(env, s)
	if err != nil {
		return Image{}, err
	}
	name := s.Object()
	installed, version, auto, err := p.Status(ctx, name)
	if err != nil {
		return Image{}, err
	}
	rec := packageRecord{Version: version, Auto: auto}
	spec, want, pinned := aptWant(s)
	if !installed || (pinned && version != want) {
		if rec.Brought, err = p.Brings(ctx, spec); err != nil {
			return Image{}, err
		}
	}
	img := Image{Absent: !installed}
	if !installed && len(rec.Brought) == 0 {
		return img, nil
	}
	if !installed {
		rec = packageRecord{Brought: rec.Brought}
	}
	img.Data, err = json.Marshal(rec)
	return img, err
}

func (packageFamily) Restore(ctx context.Context, env *Env, s *journal.Step, img Image) error {
	p, err := packages(env, s)
	if err != nil {
		return err
	}
	name := s.Object()
	var rec packageRecord
	if len(img.Data) > 0 {
		if err := json.Unmarshal(img.Data, &rec); err != nil {
			return fmt.Errorf("%s: the package image: %w", name, err)
		}
	}
	if img.Absent {
		return p.Remove(ctx, []string{name}, rec.Brought)
	}
	if rec.Version == "" {
		return fmt.Errorf("%s: the package image records no version", name)
	}
	installed, version, auto, err := p.Status(ctx, name)
	if err != nil {
		return err
	}
	if !installed || version != rec.Version {
		if err := p.Install(ctx, name+"="+rec.Version); err != nil {
			return err
		}
		auto = false // installing marks it manual
	}
	if auto != rec.Auto {
		if err := p.SetAuto(ctx, name, rec.Auto); err != nil {
			return err
		}
	}
	if len(rec.Brought) > 0 {
		return p.Remove(ctx, nil, rec.Brought)
	}
	return nil
}

// recoverPackages readies the recovery of a move that a dead process left,
// if any of its ops (steps) is a package op: the package manager that
// process started runs on to its end without it, so Repair waits for it
// and finishes what it left half done (dpkg --configure -a) before anything
// is undone. It returns the check to make once the undo is done: the
// package database must be clean then (the undo removes what the move was
// installing, even half installed), else the recovery fails with what
// dpkg --audit lists (exit 3, the intent log kept for the next run).
//
// It runs as an undo (c.opContext: never stopped or killed), whatever the
// recovering command's context says: a recovery that gave up at a signal
// would leave dpkg half way for longer.
func recoverPackages(c *cancellation, env *Env, steps []*journal.Step) (afterUndo func() error, err error) {
	afterUndo = func() error { return nil }
	var first *journal.Step
	for _, s := range steps {
		if s.Signature().Family == journal.FamilyPackage {
			first = s
			break
		}
	}
	if first == nil {
		return afterUndo, nil
	}
	p, err := packages(env, first)
	if err != nil {
		return nil, err
	}
	ctx := c.opContext(first, doUndo)
	env.logger().Info("recovering package ops: waiting until no package manager runs, then checking the dpkg database", "step", describeStep(first))
	broken, err := p.Repair(ctx)
	if err != nil {
		return nil, fmt.Errorf("packages: %w", err)
	}
	if len(broken) == 0 {
		return afterUndo, nil
	}
	env.logger().Warn("the package database is not clean after dpkg --configure -a; undoing the move's package ops, then checking again", "audit", strings.Join(broken, "; "))
	return func() error {
		broken, err := p.Repair(ctx)
		if err != nil {
			return fmt.Errorf("packages: %w", err)
		}
		if len(broken) > 0 {
			return fmt.Errorf("packages: the dpkg database stays broken after dpkg --configure -a and the undo: dpkg --audit lists %s", strings.Join(broken, "; "))
		}
		return nil
	}, nil
}

// packagesDrift is the drift of the package database: what dpkg --audit
// lists, reported on the first package step of the applied journal, "" when
// it is clean or no step manages a package.
func packagesDrift(ctx context.Context, env *Env, steps []*journal.Step) (*journal.Step, string, error) {
	for _, s := range steps {
		if s.Signature().Family != journal.FamilyPackage || env.Packages == nil {
			continue
		}
		broken, err := env.Packages.Audit(ctx)
		if err != nil || len(broken) == 0 {
			return s, "", err
		}
		return s, "the dpkg database is not clean: dpkg --audit lists " + strings.Join(broken, "; "), nil
	}
	return nil, "", nil
}
