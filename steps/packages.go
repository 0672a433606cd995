package steps

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cairn-cm/cairn/journal"
)

// Packages is what steps need of the package manager (debian implements
// it). A package spec is "NAME" for any version or "NAME=VERSION".
type Packages interface {
	// Status returns whether a package is installed, its version, and
	// whether it is marked automatically installed. A package the package
	// manager does not know is not installed (no error).
	Status(ctx context.Context, name string) (installed bool, version string, auto bool, err error)
	// Install installs the packages of specs in one call, non-interactively;
	// a pinned version may be below the installed one (a downgrade).
	Install(ctx context.Context, specs ...string) error
	// Remove removes an installed package (keeping its conffiles).
	Remove(ctx context.Context, name string) error
	// SetAuto marks an installed package automatically installed or not.
	SetAuto(ctx context.Context, name string, auto bool) error
	// Usable returns why packages cannot be managed beneath this root (no
	// Debian system there), or nil; the applier asks before anything
	// changes.
	Usable() error
}

// packageRecord is the Data of a package image: the version installed and
// whether it was marked automatically installed. A package that was not
// installed has an Absent image and no record.
type packageRecord struct {
	Version string `json:"version"`
	Auto    bool   `json:"auto,omitempty"`
}

// packageFamily captures and restores packages, the package family's
// images.
//
// Capture records absent (not installed, or only its conffiles left) or the
// installed version and its automatically-installed mark.
//
// Restore brings a package back to its image, touching it only where it
// differs: a package that was absent and is installed now is removed (apt-get
// remove, not purge: conffiles stay, since they may hold an administrator's
// edits or files that path steps manage, and dpkg then counts the package
// as not installed); one at another version now is installed at the former
// version again (a downgrade if need be); and the automatically-installed
// mark is set back, since installing a package marks it manual. A package
// that was there before at the same version is left untouched. Dependencies
// that an install pulled in stay, marked automatically installed, for
// `apt-get autoremove` to clear: removing them could remove what others use.
type packageFamily struct{}

var _ Imager = packageFamily{}

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
	if !installed {
		return Image{Absent: true}, nil
	}
	data, err := json.Marshal(packageRecord{Version: version, Auto: auto})
	if err != nil {
		return Image{}, err
	}
	return Image{Data: data}, nil
}

func (packageFamily) Restore(ctx context.Context, env *Env, s *journal.Step, img Image) error {
	ctx = context.WithoutCancel(ctx) // never killed: see aptInstallKind.Forward
	p, err := packages(env, s)
	if err != nil {
		return err
	}
	name := s.Object()
	installed, version, auto, err := p.Status(ctx, name)
	if err != nil {
		return err
	}
	if img.Absent {
		if installed {
			return p.Remove(ctx, name)
		}
		return nil
	}
	var rec packageRecord
	if err := json.Unmarshal(img.Data, &rec); err != nil || rec.Version == "" {
		return errors.Join(fmt.Errorf("%s: the package image records no version", name), err)
	}
	if !installed || version != rec.Version {
		if err := p.Install(ctx, name+"="+rec.Version); err != nil {
			return err
		}
		auto = false // installing marks it manual
	}
	if auto != rec.Auto {
		return p.SetAuto(ctx, name, rec.Auto)
	}
	return nil
}
