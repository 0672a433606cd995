package steps

import (
	"context"
	"fmt"

	"github.com/cairn-cm/cairn/journal"
)

// kubectlKind runs KUBECTL-APPLY through the outside-tools driver.
//
// Syntax: KUBECTL-APPLY PATH sha256=HEX [kustomize=true]
//
// PATH is a directory of the source (the checkout the journal was compiled
// from); sha256 is the compiler's hash of its files (each regular file
// beneath it, in lexical order, "RELPATH\x00SHA256\n", hashed). The
// applier's preflight checks the directory against it and keeps every file
// in the blob store, with the listing itself as blob sha256.
//
// Forward: write the files from the blob store into a temporary directory
// and run `kubectl apply --recursive -f DIR` there, or `kubectl apply -k
// DIR` with kustomize=true.
//
// Inverse: the same on the inputs it was applied with, taken from the blob
// store (the source may be gone): `kubectl delete --ignore-not-found=true`
// with -f or -k.
//
// Check: none in v1.
//
// Example: KUBECTL-APPLY deploy/web sha256=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 kustomize=true
type kubectlKind struct{}

var (
	_ Kind     = kubectlKind{}
	_ Inverter = kubectlKind{}
)

func (kubectlKind) Op() string { return journal.OpKubectlApply }

func (kubectlKind) Forward(ctx context.Context, env *Env, s *journal.Step) error {
	return runKubectl(ctx, env, s, "apply")
}

func (kubectlKind) Inverse(ctx context.Context, env *Env, s *journal.Step) error {
	return runKubectl(ctx, env, s, "delete")
}

// runKubectl runs kubectl verb on the step's inputs.
func runKubectl(ctx context.Context, env *Env, s *journal.Step, verb string) error {
	tools, err := toolDriver(env, s)
	if err != nil {
		return err
	}
	dir, cleanup, err := materialize(env, s)
	if err != nil {
		return fmt.Errorf("kubectl %s %s: %w", verb, s.Args[0], err)
	}
	defer cleanup()
	if err := tools.Kubectl(ctx, verb, dir, s.Get("kustomize") == "true", env.output()); err != nil {
		return fmt.Errorf("kubectl %s %s: %w", verb, s.Args[0], err)
	}
	return nil
}
