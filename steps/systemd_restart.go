package steps

import (
	"context"

	"github.com/cairn-cm/cairn/journal"
)

// systemdRestartKind runs SYSTEMD-RESTART.
//
// Syntax: SYSTEMD-RESTART UNIT [on=HEX]
//
// Forward: restart UNIT (start it if it is stopped) and wait for the job.
// on changes nothing but the line: the compiler sets it to a hash of the
// files the unit depends on, so the step is new, and runs, exactly when one
// of them changed. It needs a running systemd for the root, like
// SYSTEMD-START.
//
// Inverse: restart the unit again, so that it runs the configuration the
// rest of the plan restored.
// Where no systemd runs the root's units, the inverse does nothing but
// warn: nothing runs there, and the forward cannot have done anything.
//
// Check: none (a restart is an event, not a state).
//
// Example: SYSTEMD-RESTART nginx.service on=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
type systemdRestartKind struct{}

var (
	_ Kind     = systemdRestartKind{}
	_ Inverter = systemdRestartKind{}
)

func (systemdRestartKind) Op() string { return journal.OpSystemdRestart }

func (systemdRestartKind) Forward(ctx context.Context, env *Env, s *journal.Step) error {
	u, err := units(env)
	if err != nil {
		return err
	}
	return u.Restart(ctx, s.Args[0])
}

func (k systemdRestartKind) Inverse(ctx context.Context, env *Env, s *journal.Step) error {
	return againIfRunning(ctx, env, s, k.Forward)
}
