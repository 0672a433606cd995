package debian

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DefaultLockTimeout is how long apt-get waits for the dpkg lock when Apt's
// LockTimeout is zero.
const DefaultLockTimeout = 10 * time.Second

// DefaultRepairWait is how long Repair waits for the dpkg lock when Apt's
// RepairWait is zero: long enough for a package manager that a dead cairn
// left running to finish an install.
const DefaultRepairWait = 5 * time.Minute

// frontendLock is dpkg's front-end lock, which apt-get takes first (and
// holds to its end); dpkgLock is the one dpkg itself takes.
const (
	frontendLock = "var/lib/dpkg/lock-frontend"
	dpkgLock     = "var/lib/dpkg/lock"
)

// Apt drives apt-get, apt-mark and dpkg-query on the Debian system beneath
// a root. At "/" it runs them directly; beneath any other root it runs them
// chrooted into it, and only if the root holds a Debian system (a
// var/lib/dpkg/status); else every method returns an error that says so.
//
// Package specs are apt's own spelling: "NAME" for any version, or
// "NAME=VERSION" for one version.
//
// The commands that change the system (apt-get install and remove, apt-mark,
// dpkg --configure) do not depend on cairn staying alive: each runs in a
// session of its own, its output goes to an unlinked temporary file rather
// than a pipe, and no context cancels it. cairn waits for it; if cairn dies
// (kill -9, a crash), it runs to its end, and the next cairn waits for it
// in Repair. The queries (dpkg-query, apt-mark showauto, simulations) are
// cancelled with their context.
type Apt struct {
	// Root is the root of the Debian system, "/" for the host.
	Root string
	// LockTimeout bounds the wait for the dpkg lock (apt-get's
	// DPkg::Lock::Timeout, whole seconds, at least 1); 0 means
	// DefaultLockTimeout.
	LockTimeout time.Duration
	// RepairWait bounds Repair's wait for the dpkg lock; 0 means
	// DefaultRepairWait.
	RepairWait time.Duration
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

// Installed returns the version of every package that dpkg holds
// installed, read with one dpkg-query over the whole database: keyed by
// its name (NAME) and by its name and architecture (NAME:ARCH, NAME:all
// for an architecture-independent one). A package that is not installed
// (unknown, removed with only its conffiles left, or left half way) has
// no key. For any name, Status says installed at version V exactly when
// Installed maps the name to V: dpkg-query matches a name alone against
// every architecture, the first installed one winning, and NAME:ARCH
// against that architecture only. It is what a check of many packages
// asks instead of one Status each.
func (a *Apt) Installed(ctx context.Context) (map[string]string, error) {
	if err := a.usable(); err != nil {
		return nil, err
	}
	out, stderr, err := a.run(ctx, "dpkg-query", "-W", "-f=${Package}\t${Architecture}\t${db:Status-Status}\t${Version}\n")
	if err != nil {
		return nil, fmt.Errorf("installed packages: dpkg-query: %s", cmdError(err, stderr))
	}
	return parseInstalled(out), nil
}

// parseInstalled reads the lines of Installed's dpkg-query, "NAME\tARCH\t
// STATUS\tVERSION", in dpkg's order.
func parseInstalled(out string) map[string]string {
	versions := map[string]string{}
	for line := range strings.SplitSeq(out, "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 4 || f[0] == "" || f[2] != "installed" {
			continue
		}
		keys := []string{f[0]}
		if f[1] != "" {
			keys = append(keys, f[0]+":"+f[1])
		}
		for _, k := range keys {
			if _, ok := versions[k]; !ok {
				versions[k] = f[3]
			}
		}
	}
	return versions
}

// Install installs the packages of specs ("NAME" or "NAME=VERSION") in one
// apt-get call, non-interactively, keeping changed conffiles
// (--force-confold) and allowing a pinned version below the installed one.
// Dependencies come as apt resolves them (and are marked automatically
// installed). apt-get runs detached from cairn (see Apt) and ctx does not
// stop it.
func (a *Apt) Install(ctx context.Context, specs ...string) error {
	if len(specs) == 0 {
		return nil
	}
	if err := a.usable(); err != nil {
		return err
	}
	args := append(a.aptArgs("install", "--allow-downgrades"), "--")
	args = append(args, specs...)
	if out, err := a.runDetached("apt-get", args...); err != nil {
		return fmt.Errorf("%s: apt-get install: %s", strings.Join(specs, " "), a.aptError(err, out))
	}
	return nil
}

// Brings returns the packages that installing specs would add, those not
// installed now, dependencies included, in apt's order, from a simulation
// (apt-get -s install) with the options of Install. What it returns is what
// an Install of the same specs right after installs.
func (a *Apt) Brings(ctx context.Context, specs ...string) ([]string, error) {
	if len(specs) == 0 {
		return nil, nil
	}
	if err := a.usable(); err != nil {
		return nil, err
	}
	args := append([]string{"-s", "-q", "install", "--allow-downgrades", "--"}, specs...)
	out, stderr, err := a.run(ctx, "apt-get", args...)
	if err != nil {
		return nil, fmt.Errorf("%s: apt-get install (simulated): %s", strings.Join(specs, " "), cmdError(err, stderr))
	}
	var brings []string
	for line := range strings.SplitSeq(out, "\n") {
		// "Inst NAME (VERSION ...)" installs a package anew; "Inst NAME
		// [OLD] (VERSION ...)" changes the version of one installed.
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == "Inst" && strings.HasPrefix(f[2], "(") {
			brings = append(brings, f[1])
		}
	}
	return brings, nil
}

// Remove removes the packages of names that dpkg holds in any state but
// not-installed and config-files (installed, or left half way by an
// interrupted or failed dpkg run), keeping their conffiles (remove, not
// purge); and, with them, those of deps that are then no longer needed:
// still marked automatically installed and required by no package that
// stays (apt's autoremove rule, applied to deps alone: no other package is
// ever autoremoved). It refuses, changing nothing, when apt would remove
// any other package with them (one that depends on them). apt-get runs
// detached from cairn (see Apt).
func (a *Apt) Remove(ctx context.Context, names, deps []string) error {
	if err := a.usable(); err != nil {
		return err
	}
	var present []string
	if len(names) > 0 {
		states, err := a.states(ctx, names)
		if err != nil {
			return err
		}
		for _, n := range names {
			if st := states[n]; st != "" && st != "not-installed" && st != "config-files" {
				present = append(present, n)
			}
		}
	}
	what := strings.Join(names, " ")
	if what == "" {
		what = "the packages they brought"
	}
	remove := slices.Clone(present)
	if len(deps) > 0 {
		// What apt would autoremove once present is gone, restricted to deps.
		sim, err := a.simulateRemove(ctx, what, true, present)
		if err != nil {
			return err
		}
		for _, d := range deps {
			if slices.Contains(sim, d) && !slices.Contains(remove, d) {
				remove = append(remove, d)
			}
		}
	}
	if len(remove) == 0 {
		return nil
	}
	sim, err := a.simulateRemove(ctx, what, false, remove)
	if err != nil {
		return err
	}
	var others []string
	for _, n := range sim {
		if !slices.Contains(remove, n) {
			others = append(others, n)
		}
	}
	if len(others) > 0 {
		return fmt.Errorf("%s: apt-get remove would also remove %s, which depend on it: refusing", what, strings.Join(others, ", "))
	}
	if out, err := a.runDetached("apt-get", append(a.aptArgs("remove"), append([]string{"--"}, remove...)...)...); err != nil {
		return fmt.Errorf("%s: apt-get remove %s: %s", what, strings.Join(remove, " "), a.aptError(err, out))
	}
	return nil
}

// simulateRemove returns the packages that apt-get remove of names would
// remove (with autoremove, those it would then autoremove too, all over
// the system).
func (a *Apt) simulateRemove(ctx context.Context, what string, autoremove bool, names []string) ([]string, error) {
	args := []string{"-s", "-q", "remove"}
	if autoremove {
		args = append(args, "--auto-remove")
	}
	args = append(append(args, "--"), names...)
	out, stderr, err := a.run(ctx, "apt-get", args...)
	if err != nil {
		return nil, fmt.Errorf("%s: apt-get remove (simulated): %s", what, cmdError(err, stderr))
	}
	var removed []string
	for line := range strings.SplitSeq(out, "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "Remv" {
			removed = append(removed, f[1])
		}
	}
	return removed, nil
}

// states returns dpkg's status of each package it knows of names
// ("installed", "half-configured", "config-files", ...); a package it
// does not know has none.
func (a *Apt) states(ctx context.Context, names []string) (map[string]string, error) {
	out, stderr, err := a.run(ctx, "dpkg-query", append([]string{"-W", "-f=${binary:Package}\t${Package}\t${db:Status-Status}\n", "--"}, names...)...)
	var exit *exec.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 1 && strings.Contains(stderr, "no packages found")) {
		return nil, fmt.Errorf("%s: dpkg-query: %s", strings.Join(names, " "), cmdError(err, stderr))
	}
	states := map[string]string{}
	for line := range strings.SplitSeq(out, "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 3 {
			continue
		}
		for _, n := range f[:2] {
			if states[n] == "" || states[n] == "not-installed" {
				states[n] = f[2]
			}
		}
	}
	return states, nil
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
	if out, err := a.runDetached("apt-mark", mark, "--", name); err != nil {
		return fmt.Errorf("%s: apt-mark %s: %s", name, mark, cmdError(err, out))
	}
	return nil
}

// Audit returns what dpkg --audit finds wrong with the dpkg database, one
// finding per package ("NAME (half-configured)"), or its words when they
// name no package; and, first, a dpkg killed before it merged its journal
// of status changes (var/lib/dpkg/updates), which dpkg --audit does not
// see but for which apt refuses to run ("dpkg was interrupted"). None when
// the database is clean.
func (a *Apt) Audit(ctx context.Context) ([]string, error) {
	if err := a.usable(); err != nil {
		return nil, err
	}
	var findings []string
	if pendingUpdates(filepath.Join(a.Root, "var/lib/dpkg/updates")) {
		findings = append(findings, "dpkg was interrupted (/var/lib/dpkg/updates holds journal entries it did not merge)")
	}
	out, stderr, err := a.run(ctx, "dpkg", "--audit")
	if err != nil && strings.TrimSpace(out) == "" {
		return nil, fmt.Errorf("dpkg --audit: %s", cmdError(err, stderr))
	}
	if strings.TrimSpace(out) == "" {
		return findings, nil
	}
	// Each group of findings is a paragraph of prose, then one indented
	// line per package: " NAME   DESCRIPTION".
	var names []string
	for line := range strings.SplitSeq(out, "\n") {
		if strings.HasPrefix(line, " ") {
			if f := strings.Fields(line); len(f) > 0 && !slices.Contains(names, f[0]) {
				names = append(names, f[0])
			}
		}
	}
	if len(names) == 0 {
		return append(findings, strings.Join(strings.Fields(out), " ")), nil
	}
	states, err := a.states(ctx, names)
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		if st := states[n]; st != "" && st != "installed" {
			n = fmt.Sprintf("%s (%s)", n, st)
		}
		findings = append(findings, n)
	}
	return findings, nil
}

// pendingUpdates reports whether dpkg's journal directory holds entries
// (files named by digits alone), as apt looks to tell that dpkg was
// interrupted.
func pendingUpdates(dir string) bool {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if name := e.Name(); name != "" && strings.Trim(name, "0123456789") == "" {
			return true
		}
	}
	return false
}

// Repair makes the dpkg database usable after a package manager was
// interrupted: it waits, at most RepairWait, until no process holds the
// dpkg locks (a package manager that a dead cairn started runs on to its
// end: wait for it), then asks dpkg --audit and, if it lists anything,
// runs dpkg --configure -a (non-interactively, keeping changed
// conffiles) and asks again. It returns what dpkg --audit still lists,
// none when the database is clean. An error is a lock still held after
// the wait (naming its holder) or a command that could not run.
func (a *Apt) Repair(ctx context.Context) ([]string, error) {
	if err := a.usable(); err != nil {
		return nil, err
	}
	if err := a.waitUnlocked(ctx, a.RepairWait); err != nil {
		return nil, err
	}
	broken, err := a.Audit(ctx)
	if err != nil || len(broken) == 0 {
		return nil, err
	}
	out, cerr := a.runDetached("dpkg", "--force-confdef", "--force-confold", "--configure", "-a")
	broken, err = a.Audit(ctx)
	if err != nil {
		return nil, err
	}
	if len(broken) > 0 && cerr != nil {
		// dpkg's own words on what failed, as the last finding.
		broken = append(broken, "dpkg --configure -a: "+cmdError(cerr, out).Error())
	}
	return broken, nil
}

// waitUnlocked waits until no process holds dpkg's front-end lock or its
// own, polling; after d (0: DefaultRepairWait) it fails, naming the holder.
func (a *Apt) waitUnlocked(ctx context.Context, d time.Duration) error {
	if d == 0 {
		d = DefaultRepairWait
	}
	deadline := time.Now().Add(d)
	for {
		var held string
		for _, l := range []string{frontendLock, dpkgLock} {
			file := filepath.Join(a.Root, l)
			if locked(file) {
				held = "/" + l
				break
			}
		}
		if held == "" {
			return nil
		}
		if time.Now().After(deadline) {
			holder := lockHolder(filepath.Join(a.Root, held))
			if holder == "" {
				holder = "another process"
			}
			return fmt.Errorf("the dpkg lock %s is held by %s: gave up after waiting %s", held, holder, d)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the dpkg lock %s: %w", held, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// locked reports whether some process holds a lock on file (fcntl(2), as
// apt and dpkg take it), as /proc/locks lists it. It opens nothing: closing
// a file would release the locks this very process holds on it.
func locked(file string) bool { return lockHolder(file) != "" }

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
		// No pseudo-terminal for dpkg's output: there is no terminal, and
		// beneath a --root without /dev/pts apt would complain it has none.
		"-o", "Dpkg::Use-Pty=0",
		"-o", "Dpkg::Options::=--force-confdef",
		"-o", "Dpkg::Options::=--force-confold",
		cmd,
	}
	return append(args, more...)
}

// command returns a tool's command line (chrooted into the root when it is
// not /).
func (a *Apt) command(name string, args ...string) (string, []string) {
	if a.chrooted() {
		return "chroot", append([]string{a.Root, name}, args...)
	}
	return name, args
}

// environ is the tools' environment: non-interactive, the C locale.
func environ() []string {
	return append(os.Environ(), "DEBIAN_FRONTEND=noninteractive", "APT_LISTCHANGES_FRONTEND=none", "LC_ALL=C")
}

// run runs a query and returns its standard output and error; cancelling
// ctx kills it. It runs in a process group of its own, so that a terminal's
// Ctrl-C, which goes to cairn's foreground process group, never reaches it:
// cairn alone decides when a command ends. Commands that change packages
// run detached instead (runDetached).
func (a *Apt) run(ctx context.Context, name string, args ...string) (stdout, stderr string, err error) {
	name, args = a.command(name, args...)
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Env = environ()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.String(), errb.String(), err
}

// maxOutput is how much of a detached command's output is kept: its end.
const maxOutput = 64 << 10

// runDetached runs a command that changes the system so that it does not
// depend on cairn staying alive: in a session of its own (no signal sent
// to cairn's process group or terminal reaches it), its standard input
// /dev/null, its output in an unlinked temporary file (no pipe to break
// when cairn dies: dpkg would die of SIGPIPE half way), and no context to
// kill it. It waits for the command and returns the end of its output
// (standard output and error together).
func (a *Apt) runDetached(name string, args ...string) (string, error) {
	f, err := os.CreateTemp("", "cairn-apt-*.log")
	if err != nil {
		return "", fmt.Errorf("%s: output file: %w", name, err)
	}
	defer f.Close()
	os.Remove(f.Name()) // the command keeps it open; nothing is left behind
	name, args = a.command(name, args...)
	cmd := exec.Command(name, args...)
	// CAIRN_SELF_UPGRADE tells cairn's own maintainer scripts that cairn
	// runs this apt-get: when it upgrades cairn, the postinst must not
	// restart cairn.service, which would stop the agent that waits for
	// this very command (packaging/deb/postinst).
	cmd.Env = append(environ(), "CAIRN_SELF_UPGRADE=1")
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Run()
	size, serr := f.Seek(0, io.SeekEnd)
	if serr != nil {
		return "", errors.Join(err, serr)
	}
	off := max(0, size-maxOutput)
	out := make([]byte, size-off)
	if _, rerr := f.ReadAt(out, off); rerr != nil && rerr != io.EOF {
		return "", errors.Join(err, rerr)
	}
	return string(out), err
}

// aptError explains a failed apt-get: a dpkg lock still held after the
// wait names its holder; otherwise apt's error lines.
func (a *Apt) aptError(err error, stderr string) error {
	if strings.Contains(stderr, "lock-frontend") || strings.Contains(stderr, "Could not get lock") {
		lock := "/" + frontendLock
		if m := lockPath().FindString(stderr); m != "" {
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

// lockPath finds the lock file that apt names in its error; compiled at
// its first use, not by every run of the cairn binary.
var lockPath = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`/var/[^\s()]*/lock(-frontend)?\b`) })

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
