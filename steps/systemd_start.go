package steps

import (
	"context"

	"github.com/cairn-cm/cairn/journal"
)

// systemdStartKind runs SYSTEMD-START.
//
// Syntax: SYSTEMD-START UNIT
//
// Forward: start UNIT and wait for its start job; a failed start fails the
// step. It needs a running systemd for the root: on a root other than /,
// or a host whose PID 1 is not systemd, the step fails and says so.
//
// Inverse: restore the original image of unit-started:UNIT: stop the unit
// if it was stopped before cairn started it; a unit that was running stays
// running.
//
// Check: the unit is active.
//
// Example: SYSTEMD-START nginx.service
type systemdStartKind struct{ unitStartedImager }

var (
	_ Kind    = systemdStartKind{}
	_ Imager  = systemdStartKind{}
	_ Checker = systemdStartKind{}
)

func (systemdStartKind) Op() string { return journal.OpSystemdStart }

func (systemdStartKind) Forward(ctx context.Context, env *Env, s *journal.Step) error {
	u, err := units(env)
	if err != nil {
		return err
	}
	return u.Start(ctx, s.Args[0])
}

func (systemdStartKind) Check(ctx context.Context, env *Env, s *journal.Step) (string, error) {
	u, err := units(env)
	if err != nil {
		return "", err
	}
	on, err := u.IsActive(ctx, s.Args[0])
	if err != nil || on {
		return "", err
	}
	return "unit " + s.Args[0] + " is not active", nil
}
