package testhost

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-cm/cairn/internal/debroot"
)

// Options are how [Boot] makes a host. The zero value is a host on the
// machine's network with nothing shared.
type Options struct {
	// PrivateNetwork gives the host a network of its own, with a loopback
	// device only, instead of the machine's.
	PrivateNetwork bool
	// Binds are the machine's directories (or files) shared with the host.
	Binds []Bind
	// BootTimeout bounds the boot, until systemd says it is running or
	// degraded: 90 seconds when zero.
	BootTimeout time.Duration
	// CommandTimeout bounds each command that [Host.Exec] runs under a
	// context without a deadline, and each [Host.Run]: 2 minutes when
	// zero.
	CommandTimeout time.Duration
}

// Bind shares a path of the machine with the host.
type Bind struct {
	Source   string // the path on the machine, absolute
	Target   string // the path inside the host; Source when empty
	ReadOnly bool
}

// Host is a booted Debian 12 system whose PID 1 is systemd. Exec may be
// called from several goroutines at once; the methods that fail the test
// belong to the test's goroutine.
type Host struct {
	t       testing.TB
	name    string
	dir     string // made by Boot: the root and nothing else
	root    string
	leader  int
	script  string
	timeout time.Duration
}

// Result is what a command run inside a host did.
type Result struct {
	Stdout, Stderr string
	// Code is the command's exit code: -1 when a signal ended it.
	Code int
}

// Boot boots a fresh host for the test, and stops it and removes its root
// when the test ends (t.Cleanup), leaving no process behind. A host whose
// test process was killed before its cleanup is stopped by the next Boot
// on the machine.
//
// It skips the test without root, systemd-nspawn or debootstrap, and when
// the root cannot be built (no network), except in CI (CI set), whose
// .ci/run installs them: there it fails. A host that does not boot fails
// the test, with systemd's journal and the console in the message.
func Boot(t testing.TB, opts Options) *Host {
	t.Helper()
	skip := func(format string, args ...any) {
		t.Helper()
		debroot.SkipUnlessCI(t, "a systemd test host: "+format, args...)
	}
	if os.Geteuid() != 0 {
		skip("needs root (debootstrap, systemd-nspawn, nsenter)")
	}
	for tool, pkg := range map[string]string{"systemd-nspawn": "systemd-container", "debootstrap": "debootstrap", "nsenter": "util-linux"} {
		if _, err := exec.LookPath(tool); err != nil {
			skip("needs %s (apt-get install %s)", tool, pkg)
		}
	}
	script, err := debroot.RepoFile("scripts/testhost.sh")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(script, "--build").CombinedOutput(); err != nil {
		skip("%s --build: %v\n%s", script, err, out)
	}
	// Hosts of tests killed before their cleanup (go test's -timeout).
	if out, err := exec.Command(script, "reap").CombinedOutput(); err != nil {
		t.Fatalf("%s reap: %v\n%s", script, err, out)
	} else if len(out) > 0 {
		t.Logf("%s", out)
	}

	dir, err := debroot.ShmTempDir("cairn-testhost-")
	if err != nil {
		t.Fatal(err)
	}
	var id [4]byte
	rand.Read(id[:])
	h := &Host{
		t:       t,
		name:    "cairn-" + hex.EncodeToString(id[:]),
		dir:     dir,
		root:    filepath.Join(dir, "root"),
		script:  script,
		timeout: opts.CommandTimeout,
	}
	if h.timeout == 0 {
		h.timeout = 2 * time.Minute
	}

	args := []string{"boot", "--owner", strconv.Itoa(os.Getpid())}
	if opts.PrivateNetwork {
		args = append(args, "--private-network")
	}
	for _, b := range opts.Binds {
		flag, spec := "--bind", b.Source
		if b.ReadOnly {
			flag = "--bind-ro"
		}
		if b.Target != "" {
			spec += ":" + b.Target
		}
		args = append(args, flag, spec)
	}
	bootTimeout := opts.BootTimeout
	if bootTimeout == 0 {
		bootTimeout = 90 * time.Second
	}
	args = append(args, "--timeout", strconv.Itoa(int(bootTimeout.Seconds()+0.5)), h.name, h.root)

	t.Cleanup(h.stop)
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(script, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("boot a systemd test host: %s %s: %v\n%s", script, strings.Join(args, " "), err, stderr.String())
	}
	h.leader, err = strconv.Atoi(strings.TrimSpace(stdout.String()))
	if err != nil {
		t.Fatalf("boot a systemd test host: %s printed %q, not a PID", script, stdout.String())
	}
	t.Logf("systemd test host %s booted in %v (root %s, systemd is PID %d)", h.name, time.Since(start).Round(time.Millisecond), h.root, h.leader)
	return h
}

// stop powers the host off and removes its root, then checks that nothing
// of it runs any longer.
func (h *Host) stop() {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := os.Stat(filepath.Join("/run/cairn-testhost", h.name)); err == nil {
		if out, err := exec.CommandContext(ctx, h.script, "stop", h.name).CombinedOutput(); err != nil {
			h.t.Errorf("stop the systemd test host %s: %v\n%s", h.name, err, out)
		}
	}
	if left := Procs(h.name); len(left) > 0 {
		h.t.Errorf("systemd test host %s: processes %v are still running after it stopped", h.name, left)
	}
	if err := os.RemoveAll(h.dir); err != nil {
		h.t.Errorf("remove the systemd test host's root %s: %v", h.dir, err)
	}
}

// Procs returns the machine's processes of the host named name: nspawn and
// everything inside, which scripts/testhost.sh runs in cgroups of their
// own, named cairn-testhost-NAME (a PID namespace's inode number would not
// do: the kernel gives it to a new namespace once the host's is gone).
func Procs(name string) []int {
	mark := "/cairn-testhost-" + name
	return debroot.ProcsWhere(func(proc string) bool {
		cgroups, err := os.ReadFile(filepath.Join(proc, "cgroup"))
		if err != nil {
			return false
		}
		for line := range strings.SplitSeq(string(cgroups), "\n") {
			if strings.HasSuffix(line, mark) || strings.Contains(line, mark+"/") {
				return true
			}
		}
		return false
	})
}

// Name returns the host's name: its host name and machine name, unique
// among the hosts booted on the machine.
func (h *Host) Name() string { return h.name }

// Root returns the path of the host's root directory on the machine. Files
// written there are seen inside at once, and the other way round.
func (h *Host) Root() string { return h.root }

// Leader returns the PID of the host's systemd (its PID 1) as the machine
// sees it.
func (h *Host) Leader() int { return h.leader }

// Path returns the machine's path of name, an absolute path inside the
// host. Symbolic links on the way are the machine's to follow: an absolute
// link leads out of the host's root.
func (h *Host) Path(name string) string {
	return filepath.Join(h.root, filepath.FromSlash(name))
}

// Exec runs a command inside the host, in all its namespaces, with the
// environment of its PID 1, as root, and returns what it printed and its
// exit code. The error is for a command that could not be run or was
// stopped by ctx (or by the host's command timeout when ctx has no
// deadline), not for a non-zero exit: then the whole process group of
// the command is killed.
func (h *Host) Exec(ctx context.Context, args ...string) (Result, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, h.timeout)
		defer cancel()
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, h.script, append([]string{"run", h.name}, args...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// The script execs nsenter, which forks the command into the host's
	// PID namespace: killing nsenter alone would leave the command
	// running, so the whole group goes.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	r := Result{Stdout: stdout.String(), Stderr: stderr.String()}
	if ctx.Err() != nil {
		return r, fmt.Errorf("run %q in %s: %w", args, h.name, context.Cause(ctx))
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		r.Code = exit.ExitCode()
		return r, nil
	}
	if err != nil {
		return r, fmt.Errorf("run %q in %s: %w", args, h.name, err)
	}
	return r, nil
}

// Run runs a command inside the host as Exec does, and returns its
// standard output; it fails the test unless the command exits 0.
func (h *Host) Run(args ...string) string {
	h.t.Helper()
	r, err := h.Exec(context.Background(), args...)
	if err != nil {
		h.t.Fatal(err)
	}
	if r.Code != 0 {
		h.t.Fatalf("run %q in %s: exit code %d\nstdout:\n%s\nstderr:\n%s", args, h.name, r.Code, r.Stdout, r.Stderr)
	}
	return r.Stdout
}

// WriteFile writes a file inside the host from the machine's side (see
// [Host.Path]), making its missing parent directories (0755); it fails the
// test on an error.
func (h *Host) WriteFile(name string, data []byte, perm fs.FileMode) {
	h.t.Helper()
	p := h.Path(name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(p, data, perm); err != nil {
		h.t.Fatal(err)
	}
}

// ReadFile reads a file inside the host from the machine's side (see
// [Host.Path]); it fails the test on an error.
func (h *Host) ReadFile(name string) []byte {
	h.t.Helper()
	data, err := os.ReadFile(h.Path(name))
	if err != nil {
		h.t.Fatal(err)
	}
	return data
}

// CopyIn copies the machine's file src to dst inside the host, with src's
// permission bits (a built binary keeps its executable bit); it fails the
// test on an error.
func (h *Host) CopyIn(src, dst string) {
	h.t.Helper()
	fi, err := os.Stat(src)
	if err != nil {
		h.t.Fatal(err)
	}
	data, err := os.ReadFile(src)
	if err != nil {
		h.t.Fatal(err)
	}
	h.WriteFile(dst, data, fi.Mode().Perm())
	// WriteFile's perm is filtered by the umask when it creates the file.
	if err := os.Chmod(h.Path(dst), fi.Mode().Perm()); err != nil {
		h.t.Fatal(err)
	}
}
