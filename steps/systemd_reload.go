package steps

import (
	"context"

	"github.com/cairn-cm/cairn/journal"
)

// systemdReloadKind runs SYSTEMD-RELOAD.
//
// Syntax: SYSTEMD-RELOAD [on=HEX]
//
// Forward: make systemd reload its unit files (systemctl daemon-reload).
// on changes nothing but the line: the compiler sets it to a hash of the
// unit files, so the step runs again exactly when one of them changed. It
// needs a running systemd for the root, like SYSTEMD-START.
//
// Inverse: daemon-reload again, so systemd sees the unit files the rest of
// the plan restored.
// Where no systemd runs the root's units, the inverse does nothing but
// warn: nothing runs there, and the forward cannot have done anything.
//
// Check: none.
//
// Example: SYSTEMD-RELOAD on=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
type systemdReloadKind struct{}

var (
	_ Kind     = systemdReloadKind{}
	_ Inverter = systemdReloadKind{}
)

func (systemdReloadKind) Op() string { return journal.OpSystemdReload }

func (systemdReloadKind) Forward(ctx context.Context, env *Env, _ *journal.Step) error {
	u, err := units(env)
	if err != nil {
		return err
	}
	return u.DaemonReload(ctx)
}

func (k systemdReloadKind) Inverse(ctx context.Context, env *Env, s *journal.Step) error {
	return againIfRunning(ctx, env, s, k.Forward)
}
