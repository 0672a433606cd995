package steps

import (
	"context"

	"github.com/cairn-cm/cairn/journal"
)

// systemdEnableKind runs SYSTEMD-ENABLE.
//
// Syntax: SYSTEMD-ENABLE UNIT
//
// Forward: enable UNIT (systemctl enable: the links its [Install] section
// asks for). On a running systemd this goes over D-Bus and reloads the
// manager; on another root, with systemctl --root. A unit that does not
// exist, or has no [Install] section and so cannot be enabled, fails the
// step.
//
// Inverse: restore the original image of unit-enabled:UNIT: disable the
// unit if it was disabled before cairn enabled it; a unit that was already
// enabled stays enabled.
//
// Check: the unit is enabled.
//
// Example: SYSTEMD-ENABLE nginx.service
type systemdEnableKind struct{ unitEnabledImager }

var (
	_ Kind       = systemdEnableKind{}
	_ Imager     = systemdEnableKind{}
	_ Checker    = systemdEnableKind{}
	_ unitViewer = systemdEnableKind{}
)

func (systemdEnableKind) Op() string { return journal.OpSystemdEnable }

func (systemdEnableKind) Forward(ctx context.Context, env *Env, s *journal.Step) error {
	u, err := units(env)
	if err != nil {
		return err
	}
	return u.Enable(ctx, s.Args[0])
}

// viewedUnit: a drift check reads the unit's enablement with those of
// the other steps' units (checkView).
func (systemdEnableKind) viewedUnit(s *journal.Step) string { return s.Args[0] }

func (systemdEnableKind) Check(ctx context.Context, env *Env, s *journal.Step) (string, error) {
	u, err := units(env)
	if err != nil {
		return "", err
	}
	on, err := isEnabled(ctx, env, u, s.Args[0])
	if err != nil || on {
		return "", err
	}
	return "unit " + s.Args[0] + " is not enabled", nil
}
