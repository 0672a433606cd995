package steps

import (
	"context"
	"fmt"
	"os"
	"os/exec"

	"github.com/cairn-cm/cairn/journal"
)

// execKind runs EXEC.
//
// Syntax: EXEC COMMAND [undo=COMMAND] [creates=PATH]
//
// Forward: run COMMAND with /bin/sh -c on the host (not in the root), with
// CAIRN_ROOT set to the root; with creates, only while PATH (beneath the
// root) is absent. A non-zero exit fails the step.
//
// Inverse: run undo if given, else nothing, which the plan says.
//
// Check: none.
//
// Example: EXEC "update-ca-certificates" undo="update-ca-certificates --fresh"
type execKind struct{}

var (
	_ Kind     = execKind{}
	_ Inverter = execKind{}
)

func (execKind) Op() string { return journal.OpExec }

func (execKind) Forward(ctx context.Context, env *Env, s *journal.Step) error {
	if creates, ok := s.Lookup("creates"); ok {
		st, err := lstatPath(env, creates)
		if err != nil {
			return err
		}
		if st.exists {
			env.logger().Info("EXEC skipped: its creates path exists", "path", creates)
			return nil
		}
	}
	return runShell(ctx, env, s.Args[0])
}

func (execKind) Inverse(ctx context.Context, env *Env, s *journal.Step) error {
	if undo, ok := s.Lookup("undo"); ok {
		return runShell(ctx, env, undo)
	}
	return nil
}

// runShell runs command with /bin/sh -c, its output going to env.Output. It
// is not tied to ctx: a command, once started, runs to its end, and
// cancellation is checked between steps.
func runShell(_ context.Context, env *Env, command string) error {
	cmd := exec.Command("/bin/sh", "-c", command)
	cmd.Env = append(os.Environ(), "CAIRN_ROOT="+env.Root.Path())
	cmd.Stdout = env.output()
	cmd.Stderr = env.output()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%q: %w", command, err)
	}
	return nil
}
