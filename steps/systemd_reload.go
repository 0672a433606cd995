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
// unit files, so the step runs again exactly when one of them changed.
// Where no systemd runs the root's units (a --root, a container, a chroot)
// it does nothing but warn: there is no manager whose view of the unit
// files could be stale, and the next systemd to boot the root reads them
// afresh. So a unit block can be applied to an image being built.
//
// Inverse: daemon-reload again, so systemd sees the unit files the rest of
// the plan restored; where no systemd runs the root's units, nothing but a
// warning, like the forward.
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

func (systemdReloadKind) Forward(ctx context.Context, env *Env, s *journal.Step) error {
	u, err := units(env)
	if err != nil {
		return err
	}
	if err := u.Running(); err != nil {
		env.logger().Warn(s.Op+" skipped: "+err.Error(), "step", s.Pos.String())
		return nil
	}
	return u.DaemonReload(ctx)
}

func (k systemdReloadKind) Inverse(ctx context.Context, env *Env, s *journal.Step) error {
	return againIfRunning(ctx, env, s, k.Forward)
}
