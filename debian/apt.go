package debian

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// DefaultLockTimeout is how long apt-get waits for the dpkg lock when Apt's
// LockTimeout is zero.
const DefaultLockTimeout = 10 * time.Second

// frontendLock is dpkg's front-end lock, which apt-get takes first.
const frontendLock = "var/lib/dpkg/lock-frontend"

// Apt drives apt-get, apt-mark and dpkg-query on the Debian system beneath
// a root. At "/" it runs them directly; beneath any other root it runs them
// chrooted into it, and only if the root holds a Debian system (a
// var/lib/dpkg/status); else every method returns an error that says so.
//
// Package specs are apt's own spelling: "NAME" for any version, or
// "NAME=VERSION" for one version.
type Apt struct {
	// Root is the root of the Debian system, "/" for the host.
	Root string
	// LockTimeout bounds the wait for the dpkg lock (apt-get's
	// DPkg::Lock::Timeout, whole seconds, at least 1); 0 means
	// DefaultLockTimeout.
	LockTimeout time.Duration
}

// NewApt returns the driver of the Debian system beneath root.
func NewApt(root string) *Apt { return &Apt{Root: root} }

// Status returns whether a package is installed, its version, and whether
// apt marks it automatically installed. A package dpkg does not know, or
// knows only by its leftover conffiles, is not installed.
func (a *Apt) Status(ctx context.Context, name string) (installed bool, version string, auto bool, err error) {
	if err := a.usable(); err != nil {
		return false, "", false, err
	}
	out, stderr, err := a.run(ctx, "dpkg-query", "-W", "-f=${db:Status-Status}\t${Version}\n", "--", name)
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) && exit.ExitCode() == 1 && strings.Contains(stderr, "no packages found") {
			return false, "", false, nil
		}
		return false, "", false, fmt.Errorf("%s: dpkg-query: %s", name, cmdError(err, stderr))
	}
	for line := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		st, ver, _ := strings.Cut(line, "\t")
		if st == "installed" {
			installed, version = true, ver
			break
		}
	}
	if !installed {
		return false, "", false, nil
	}
	marks, stderr, err := a.run(ctx, "apt-mark", "showauto", "--", name)
	if err != nil {
		return false, "", false, fmt.Errorf("%s: apt-mark showauto: %s", name, cmdError(err, stderr))
	}
	for m := range strings.FieldsSeq(marks) {
		if n, _, _ := strings.Cut(m, ":"); n == name || m == name {
			auto = true
		}
	}
	return true, version, auto, nil
}

// Install installs the packages of specs ("NAME" or "NAME=VERSION") in one
// apt-get call, non-interactively, keeping changed conffiles
// (--force-confold) and allowing a pinned version below the installed one.
// Dependencies come as apt resolves them (and are marked automatically
// installed).
func (a *Apt) Install(ctx context.Context, specs ...string) error {
	if len(specs) == 0 {
		return nil
	}
	if err := a.usable(); err != nil {
		return err
	}
	args := append(a.aptArgs("install", "--allow-downgrades"), "--")
	args = append(args, specs...)
	if _, stderr, err := a.run(ctx, "apt-get", args...); err != nil {
		return fmt.Errorf("%s: apt-get install: %s", strings.Join(specs, " "), a.aptError(err, stderr))
	}
	return nil
}

// Remove removes an installed package with apt-get remove, keeping its
// conffiles (not purge). It refuses, changing nothing, when apt would
// remove other packages with it (those that depend on it).
func (a *Apt) Remove(ctx context.Context, name string) error {
	if err := a.usable(); err != nil {
		return err
	}
	sim, stderr, err := a.run(ctx, "apt-get", "-s", "-q", "remove", "--", name)
	if err != nil {
		return fmt.Errorf("%s: apt-get remove (simulated): %s", name, cmdError(err, stderr))
	}
	var others []string
	sc := bufio.NewScanner(strings.NewReader(sim))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "Remv" {
			if n, _, _ := strings.Cut(f[1], ":"); n != name {
				others = append(others, f[1])
			}
		}
	}
	if len(others) > 0 {
		return fmt.Errorf("%s: apt-get remove would also remove %s, which depend on it: refusing", name, strings.Join(others, ", "))
	}
	if _, stderr, err := a.run(ctx, "apt-get", append(a.aptArgs("remove"), "--", name)...); err != nil {
		return fmt.Errorf("%s: apt-get remove: %s", name, a.aptError(err, stderr))
	}
	return nil
}

// SetAuto marks an installed package automatically or manually installed
// (apt-mark auto / manual).
func (a *Apt) SetAuto(ctx context.Context, name string, auto bool) error {
	if err := a.usable(); err != nil {
		return err
	}
	mark := "manual"
	if auto {
		mark = "auto"
	}
	if _, stderr, err := a.run(ctx, "apt-mark", mark, "--", name); err != nil {
		return fmt.Errorf("%s: apt-mark %s: %s", name, mark, cmdError(err, stderr))
	}
	return nil
}

// chrooted reports whether commands run chrooted into the root.
func (a *Apt) chrooted() bool {
	return filepath.Clean(a.Root) != "/" && a.Root != ""
}

// usable refuses a root that holds no Debian system.
// Usable returns why packages cannot be managed beneath the root: a root
// other than / must hold a Debian system (var/lib/dpkg/status) to chroot
// into.
func (a *Apt) Usable() error { return a.usable() }

func (a *Apt) usable() error {
	if !a.chrooted() {
		return nil
	}
	if _, err := os.Stat(filepath.Join(a.Root, "var/lib/dpkg/status")); err != nil {
		return fmt.Errorf("%s holds no Debian system (no var/lib/dpkg/status): APT-INSTALL needs one", a.Root)
	}
	return nil
}

func (a *Apt) lockSeconds() int {
	d := a.LockTimeout
	if d == 0 {
		d = DefaultLockTimeout
	}
	return max(1, int((d+time.Second-1)/time.Second))
}

// aptArgs are the arguments of a non-interactive apt-get command.
func (a *Apt) aptArgs(cmd string, more ...string) []string {
	args := []string{
		"-y", "-q",
		"-o", "DPkg::Lock::Timeout=" + strconv.Itoa(a.lockSeconds()),
		"-o", "Dpkg::Options::=--force-confdef",
		"-o", "Dpkg::Options::=--force-confold",
		cmd,
	}
	return append(args, more...)
}

// run runs a command (chrooted into the root when it is not /) and returns
// its standard output and error.
//
// The command runs in a process group of its own, so that a terminal's
// Ctrl-C, which goes to cairn's foreground process group, never reaches
// apt-get, dpkg or a maintainer script: a dpkg interrupted half way leaves
// packages half configured. cairn alone decides when a stopped move ends,
// and it never kills apt-get or dpkg while they change packages
// (steps.Applier.Apply).
func (a *Apt) run(ctx context.Context, name string, args ...string) (stdout, stderr string, err error) {
	if a.chrooted() {
		args = append([]string{a.Root, name}, args...)
		name = "chroot"
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive", "APT_LISTCHANGES_FRONTEND=none", "LC_ALL=C")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.String(), errb.String(), err
}

// aptError explains a failed apt-get: a dpkg lock still held after the
// wait names its holder; otherwise apt's error lines.
func (a *Apt) aptError(err error, stderr string) error {
	if strings.Contains(stderr, "lock-frontend") || strings.Contains(stderr, "Could not get lock") {
		lock := "/" + frontendLock
		if m := lockPath.FindString(stderr); m != "" {
			lock = m
		}
		holder := lockHolder(filepath.Join(a.Root, lock))
		if holder == "" {
			holder = "another process"
		}
		which := "dpkg"
		if !strings.HasPrefix(lock, "/var/lib/dpkg/") {
			which = "apt"
		}
		return fmt.Errorf("the %s lock %s is held by %s: gave up after waiting %ds (%s)", which, lock, holder, a.lockSeconds(), errorLines(stderr))
	}
	return cmdError(err, stderr)
}

// lockPath finds the lock file that apt names in its error.
var lockPath = regexp.MustCompile(`/var/[^\s()]*/lock(-frontend)?\b`)

// cmdError is a failed command's error with its "E:" lines, or the last
// lines of its standard error.
func cmdError(err error, stderr string) error {
	if msg := errorLines(stderr); msg != "" {
		return fmt.Errorf("%w: %s", err, msg)
	}
	return err
}

func errorLines(stderr string) string {
	var lines, all []string
	for l := range strings.SplitSeq(strings.TrimSpace(stderr), "\n") {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		all = append(all, l)
		if strings.HasPrefix(l, "E: ") {
			lines = append(lines, strings.TrimPrefix(l, "E: "))
		}
	}
	if len(lines) == 0 {
		lines = all[max(0, len(all)-3):]
	}
	return strings.Join(lines, "; ")
}

// lockHolder names the process that holds a lock on file ("process 123
// (apt-get)"), from /proc/locks; "" if it cannot tell.
func lockHolder(file string) string {
	var st syscall.Stat_t
	if syscall.Stat(file, &st) != nil {
		return ""
	}
	data, err := os.ReadFile("/proc/locks")
	if err != nil {
		return ""
	}
	major, minor := (st.Dev>>8)&0xfff|(st.Dev>>32)&^0xfff, st.Dev&0xff|(st.Dev>>12)&^0xff
	want := fmt.Sprintf("%02x:%02x:%d", major, minor, st.Ino)
	for line := range strings.SplitSeq(string(data), "\n") {
		f := strings.Fields(line)
		// "1: FLOCK  ADVISORY  WRITE 1577 fe:00:398608 0 EOF"
		if len(f) < 6 || f[1] == "->" || f[5] != want {
			continue
		}
		pid := f[4]
		comm, _ := os.ReadFile(filepath.Join("/proc", pid, "comm"))
		if c := strings.TrimSpace(string(comm)); c != "" {
			return fmt.Sprintf("process %s (%s)", pid, c)
		}
		return "process " + pid
	}
	return ""
}
