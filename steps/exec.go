package steps

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/cairn-cm/cairn/journal"
)

// execKind runs EXEC.
//
// Syntax: EXEC COMMAND [undo=COMMAND] [creates=PATH] [timeout=10m]
//
// Forward: run COMMAND with /bin/sh -c on the host (not in the root), with
// CAIRN_ROOT set to the root; with creates, only while PATH (beneath the
// root) is absent. A non-zero exit fails the step; so does a command still
// running after timeout, whose process group is then killed (runShell).
//
// Inverse: run undo if given (bounded by the same timeout), else nothing,
// which the plan says.
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
	return runShell(ctx, env, s.Args[0], execTimeout(s))
}

func (execKind) Inverse(ctx context.Context, env *Env, s *journal.Step) error {
	if undo, ok := s.Lookup("undo"); ok {
		return runShell(ctx, env, undo, execTimeout(s))
	}
	return nil
}

// execTimeout returns the timeout of an EXEC step.
func execTimeout(s *journal.Step) time.Duration {
	d, err := time.ParseDuration(s.Get("timeout"))
	if err != nil || d <= 0 {
		d, _ = time.ParseDuration(journal.DefaultExecTimeout)
	}
	return d
}

// outputGrace is how long cairn waits for a command's output to close
// after the command ended or was killed: a process that left the command's
// process group (a daemon it started) may hold the output open for good.
const outputGrace = 2 * time.Second

// runShell runs command with /bin/sh -c on the host, its output going to
// env.Output, and waits for it at most timeout.
//
// The command runs in a process group of its own. When the timeout
// expires, or ctx is done, the whole group is killed (SIGKILL to -pgid):
// the shell and every process it started that stayed in the group, not
// the shell alone, whose children would live on. Its own group also keeps a
// terminal's Ctrl-C, which goes to cairn's foreground group, from reaching
// the command: cairn alone decides when it dies. Ops get a ctx that is done
// only when the move is killed (Options.Kill), never when it is merely
// stopped, so a command once started runs to its end or its timeout unless
// the operator insists.
func runShell(ctx context.Context, env *Env, command string, timeout time.Duration) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%q: not started: %w", command, context.Cause(ctx))
	}
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(tctx, "/bin/sh", "-c", command)
	cmd.Env = append(os.Environ(), "CAIRN_ROOT="+env.Root.Path())
	cmd.Stdout = env.output()
	cmd.Stderr = env.output()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return killGroup(cmd.Process) }
	cmd.WaitDelay = outputGrace
	err := cmd.Run()
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("%q: its process group was killed: %w", command, context.Cause(ctx))
	case tctx.Err() != nil:
		return fmt.Errorf("%q: timed out after %s: its process group was killed", command, timeout)
	case errors.Is(err, exec.ErrWaitDelay):
		// It exited 0; a process it left behind holds the output.
		env.logger().Warn("a process that the command started still holds its output; cairn does not wait for it", "command", command)
		return nil
	}
	return fmt.Errorf("%q: %w", command, err)
}

// killGroup kills the process group that p leads.
func killGroup(p *os.Process) error {
	err := syscall.Kill(-p.Pid, syscall.SIGKILL)
	if errors.Is(err, syscall.ESRCH) {
		return os.ErrProcessDone
	}
	return err
}
