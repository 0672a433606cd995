package debian

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

// Tools runs the outside tools of the KUBECTL-APPLY and PLAYBOOK step kinds:
// kubectl and ansible-playbook, found on PATH when they run. Its zero value
// works: kubectl then uses the environment's KUBECONFIG (or
// ~/.kube/config) and that configuration's current context.
//
// The process environment is passed through to both tools unchanged, except
// for what the fields below set. A command, once started, runs to its end:
// cancellation is checked before it starts, never by killing it halfway
// (a half-run apply is worse than a late one).
type Tools struct {
	// Kubeconfig, if set, is passed to kubectl as KUBECONFIG.
	Kubeconfig string
	// Context, if set, is passed to kubectl as --context.
	Context string
	// KubectlProgram and PlaybookProgram name the programs; empty means
	// "kubectl" and "ansible-playbook" looked up on PATH.
	KubectlProgram  string
	PlaybookProgram string
}

// tailLines is how many last lines of a failed tool's output its error
// quotes.
const tailLines = 8

// Kubectl runs kubectl VERB ("apply" or "delete") on the manifests in dir:
// `kubectl [--context=C] apply --recursive -f DIR`, or `-k DIR` when
// kustomize is set; delete adds --ignore-not-found=true, so that deleting
// what is already gone (an undo of an apply that failed halfway) succeeds.
// Its output goes to out.
func (t Tools) Kubectl(ctx context.Context, verb, dir string, kustomize bool, out io.Writer) error {
	if verb != "apply" && verb != "delete" {
		return fmt.Errorf("kubectl: unknown verb %q (apply or delete)", verb)
	}
	args := KubectlArgs(t.Context, verb, dir, kustomize)
	var env []string
	if t.Kubeconfig != "" {
		env = append(env, "KUBECONFIG="+t.Kubeconfig)
	}
	return run(ctx, program(t.KubectlProgram, "kubectl"), args, env, out)
}

// KubectlArgs returns the arguments Kubectl passes to kubectl.
func KubectlArgs(kubeContext, verb, dir string, kustomize bool) []string {
	var args []string
	if kubeContext != "" {
		args = append(args, "--context="+kubeContext)
	}
	args = append(args, verb)
	if verb == "delete" {
		args = append(args, "--ignore-not-found=true")
	}
	if kustomize {
		return append(args, "-k", dir)
	}
	return append(args, "--recursive", "-f", dir)
}

// Playbook runs the playbook file on this host: `ansible-playbook -c local
// -i localhost, -e operation=OPERATION -e cairn_root=ROOT PLAYBOOK`, with
// CAIRN_ROOT=ROOT in its environment. Its output goes to out.
func (t Tools) Playbook(ctx context.Context, playbook, operation, root string, out io.Writer) error {
	if operation != "apply" && operation != "delete" {
		return fmt.Errorf("ansible-playbook: unknown operation %q (apply or delete)", operation)
	}
	env := []string{"CAIRN_ROOT=" + root, "ANSIBLE_NOCOLOR=1"}
	return run(ctx, program(t.PlaybookProgram, "ansible-playbook"), PlaybookArgs(playbook, operation, root), env, out)
}

// PlaybookArgs returns the arguments Playbook passes to ansible-playbook.
func PlaybookArgs(playbook, operation, root string) []string {
	return []string{"-c", "local", "-i", "localhost,", "-e", "operation=" + operation, "-e", "cairn_root=" + root, playbook}
}

func program(name, def string) string {
	if name == "" {
		return def
	}
	return name
}

// run runs a tool with the process environment and env added, its output
// going to out; a failure quotes the last lines of that output.
func run(ctx context.Context, prog string, args, env []string, out io.Writer) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: not started: %w", prog, err)
	}
	if out == nil {
		out = io.Discard
	}
	tail := &tailWriter{}
	cmd := exec.Command(prog, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = io.MultiWriter(out, tail)
	cmd.Stderr = cmd.Stdout
	if err := cmd.Run(); err != nil {
		quote := ""
		if t := tail.String(); t != "" {
			quote = "\n" + t
		}
		return fmt.Errorf("%s %s: %w%s", prog, strings.Join(args, " "), err, quote)
	}
	return nil
}

// tailWriter keeps the last tailLines lines written to it.
type tailWriter struct{ buf []byte }

func (w *tailWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	if len(w.buf) > 64<<10 {
		w.buf = append(w.buf[:0], w.buf[len(w.buf)-16<<10:]...)
	}
	return len(p), nil
}

func (w *tailWriter) String() string {
	lines := bytes.Split(bytes.TrimRight(w.buf, "\n"), []byte("\n"))
	if len(lines) > tailLines {
		lines = lines[len(lines)-tailLines:]
	}
	return strings.TrimSpace(string(bytes.Join(lines, []byte("\n"))))
}
