package steps

import (
	"context"
	"fmt"

	"github.com/cairn-cm/cairn/journal"
)

// playbookKind runs PLAYBOOK through the outside-tools driver.
//
// Syntax: PLAYBOOK PATH sha256=HEX
//
// PATH is a playbook file of the source; sha256 is the hash of that file
// alone, as the compiler makes it. The applier's preflight checks the file
// against it and keeps it in the blob store. Only the file is an input: a
// playbook runs on its own, in a temporary directory, so files beside it in
// the source (roles, templates, vars files) are not found; write the
// playbook self-contained.
//
// Forward: write the playbook from the blob store into a temporary
// directory and run `ansible-playbook -c local -i localhost,` on it with
// the extra vars operation=apply and cairn_root=ROOT (and CAIRN_ROOT in its
// environment).
//
// Inverse: the same playbook, from the blob store, with operation=delete.
//
// Check: none.
//
// Example: PLAYBOOK ops/monitoring.yml sha256=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
type playbookKind struct{}

var (
	_ Kind     = playbookKind{}
	_ Inverter = playbookKind{}
)

func (playbookKind) Op() string { return journal.OpPlaybook }

func (playbookKind) Forward(ctx context.Context, env *Env, s *journal.Step) error {
	return runPlaybook(ctx, env, s, "apply")
}

func (playbookKind) Inverse(ctx context.Context, env *Env, s *journal.Step) error {
	return runPlaybook(ctx, env, s, "delete")
}

// runPlaybook runs the step's playbook with operation.
func runPlaybook(ctx context.Context, env *Env, s *journal.Step, operation string) error {
	tools, err := toolDriver(env, s)
	if err != nil {
		return err
	}
	file, cleanup, err := materialize(env, s)
	if err != nil {
		return fmt.Errorf("playbook %s operation=%s: %w", s.Args[0], operation, err)
	}
	defer cleanup()
	if err := tools.Playbook(ctx, file, operation, env.Root.Path(), env.output()); err != nil {
		return fmt.Errorf("playbook %s operation=%s: %w", s.Args[0], operation, err)
	}
	return nil
}
