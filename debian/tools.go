package debian

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Tools runs the outside tools of the KUBECTL-APPLY and PLAYBOOK step kinds:
// kubectl and ansible-playbook, found on PATH when they run. Its zero value
// works: kubectl then uses the environment's KUBECONFIG (or
// ~/.kube/config) and that configuration's current context.
//
// The process environment is passed through to both tools unchanged, except
// for what the fields below set. A tool is not started once ctx is done;
// once started, it runs to its end unless ctx is done, and then its whole
// process group is killed at once. The applier's ops get a ctx that is done
// only when the operator kills the move (a second signal), never when it is
// merely stopped: a half-run apply is worse than a late one.
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
// going to out; a failure quotes the last lines of that output. The tool
// runs in a process group of its own, which is killed (SIGKILL) when ctx is
// done: the applier's ops get a ctx that is done only when the move is
// killed, and then kubectl's or ansible's children must die with it.
func run(ctx context.Context, prog string, args, env []string, out io.Writer) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: not started: %w", prog, context.Cause(ctx))
	}
	if out == nil {
		out = io.Discard
	}
	tail := &tailWriter{}
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = io.MultiWriter(out, tail)
	cmd.Stderr = cmd.Stdout
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); !errors.Is(err, syscall.ESRCH) {
			return err
		}
		return os.ErrProcessDone
	}
	cmd.WaitDelay = 2 * time.Second // then stop waiting for output a stray process holds
	err := cmd.Run()
	if errors.Is(err, exec.ErrWaitDelay) && ctx.Err() == nil {
		return nil // it succeeded; a process it left behind holds the output
	}
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("its process group was killed: %w", context.Cause(ctx))
		}
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
