package steps

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cairn-cm/cairn/journal"
)

// Units is what steps need of a unit manager (systemd implements it). Unit
// names are full names (nginx.service). Enabling and disabling work on any
// root; starting, stopping and reloading need a running systemd, and fail
// with an error that says why where there is none.
type Units interface {
	// CheckActive returns nil if the unit is active, else why not.
	CheckActive(ctx context.Context, unit string) error
	// IsEnabled reports whether the unit is enabled; a unit that does not
	// exist is not.
	IsEnabled(ctx context.Context, unit string) (bool, error)
	// AreEnabled reports whether each of units is enabled, as IsEnabled
	// would, asking the manager for all at once. A unit it cannot tell is
	// missing from the map (IsEnabled, asked alone, says why). A drift
	// check asks it once rather than IsEnabled for each unit (checkView).
	AreEnabled(ctx context.Context, units []string) (map[string]bool, error)
	// Enable enables the unit; a unit that does not exist or cannot be
	// enabled is an error.
	Enable(ctx context.Context, unit string) error
	// Disable disables the unit.
	Disable(ctx context.Context, unit string) error
	// IsActive reports whether the unit is running; where no systemd runs
	// the root's units, none is.
	IsActive(ctx context.Context, unit string) (bool, error)
	// Start starts the unit and waits until it has started.
	Start(ctx context.Context, unit string) error
	// Stop stops the unit and waits until it has stopped.
	Stop(ctx context.Context, unit string) error
	// Restart restarts the unit (starts it if it is stopped).
	Restart(ctx context.Context, unit string) error
	// DaemonReload makes the manager reload its unit files.
	DaemonReload(ctx context.Context) error
	// Running returns nil if a systemd runs the root's units, so that they
	// can be started, stopped and reloaded, else an error that says why not.
	Running() error
}

// errNoUnits is the error of a unit step when no unit driver is plugged in.
var errNoUnits = errors.New("no unit driver is configured (cairn was built or started without systemd support)")

// units returns the unit driver, or an error if there is none.
func units(env *Env) (Units, error) {
	if env.Units == nil {
		return nil, errNoUnits
	}
	return env.Units, nil
}

// againIfRunning runs the inverse of SYSTEMD-RESTART or SYSTEMD-RELOAD,
// which is their forward again, if a systemd runs the root's units. Where
// none does, no unit runs any configuration, so there is nothing to bring
// up to date; and the forward, which needs one too, cannot have done
// anything either. Failing would make the undo of such a failed forward
// fail, and every later run retry it in vain.
func againIfRunning(ctx context.Context, env *Env, s *journal.Step, forward func(context.Context, *Env, *journal.Step) error) error {
	u, err := units(env)
	if err != nil {
		return err
	}
	if err := u.Running(); err != nil {
		env.logger().Warn(s.Op+" inverse skipped: "+err.Error(), "step", s.Pos.String())
		return nil
	}
	return forward(ctx, env, s)
}

// Unit states recorded in the images of the unit families.
const (
	unitEnabled  = "enabled"
	unitDisabled = "disabled"
	unitActive   = "active"
	unitInactive = "inactive"
)

// unitRecord is the Data of a unit image: the unit's enablement (family
// unit-enabled) or whether it runs (family unit-started).
type unitRecord struct {
	State string `json:"state"`
}

func unitImage(state string) (Image, error) {
	data, err := json.Marshal(unitRecord{State: state})
	return Image{Data: data}, err
}

func readUnitImage(img Image) (string, error) {
	var r unitRecord
	if err := json.Unmarshal(img.Data, &r); err != nil {
		return "", fmt.Errorf("unit image: %w", err)
	}
	return r.State, nil
}

// unitEnabledImager captures and restores the identity unit-enabled:U. Its
// image records whether U was enabled; restoring disables a unit that was
// disabled and is enabled now. A unit that was enabled is left as it is:
// cairn never disabled it, so it has nothing to give back.
type unitEnabledImager struct{}

var _ Imager = unitEnabledImager{}

func (unitEnabledImager) Capture(ctx context.Context, env *Env, s *journal.Step) (Image, error) {
	u, err := units(env)
	if err != nil {
		return Image{}, err
	}
	on, err := u.IsEnabled(ctx, s.Args[0])
	if err != nil {
		return Image{}, err
	}
	if on {
		return unitImage(unitEnabled)
	}
	return unitImage(unitDisabled)
}

func (unitEnabledImager) Restore(ctx context.Context, env *Env, s *journal.Step, img Image) error {
	u, err := units(env)
	if err != nil {
		return err
	}
	was, err := readUnitImage(img)
	if err != nil || was != unitDisabled {
		return err
	}
	on, err := u.IsEnabled(ctx, s.Args[0])
	if err != nil || !on {
		return err
	}
	return u.Disable(ctx, s.Args[0])
}

// unitStartedImager captures and restores the identity unit-started:U. Its
// image records whether U was running; restoring stops a unit that was
// stopped and runs now.
type unitStartedImager struct{}

var _ Imager = unitStartedImager{}

func (unitStartedImager) Capture(ctx context.Context, env *Env, s *journal.Step) (Image, error) {
	u, err := units(env)
	if err != nil {
		return Image{}, err
	}
	on, err := u.IsActive(ctx, s.Args[0])
	if err != nil {
		return Image{}, err
	}
	if on {
		return unitImage(unitActive)
	}
	return unitImage(unitInactive)
}

func (unitStartedImager) Restore(ctx context.Context, env *Env, s *journal.Step, img Image) error {
	u, err := units(env)
	if err != nil {
		return err
	}
	was, err := readUnitImage(img)
	if err != nil || was != unitInactive {
		return err
	}
	on, err := u.IsActive(ctx, s.Args[0])
	if err != nil || !on {
		return err
	}
	return u.Stop(ctx, s.Args[0])
}
