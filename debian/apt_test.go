package debian

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-cm/cairn/internal/debroot"
)

// TestAptRefusesRootWithoutDebian checks that every method refuses a root
// with no var/lib/dpkg/status, naming it, and runs nothing.
func TestAptRefusesRootWithoutDebian(t *testing.T) {
	root := t.TempDir()
	a := NewApt(root)
	want := root + " holds no Debian system (no var/lib/dpkg/status): APT-INSTALL needs one"
	ctx := context.Background()
	_, _, _, statusErr := a.Status(ctx, "hello")
	_, bringsErr := a.Brings(ctx, "hello")
	_, auditErr := a.Audit(ctx)
	_, repairErr := a.Repair(ctx)
	_, installedErr := a.Installed(ctx)
	for name, err := range map[string]error{
		"Status":    statusErr,
		"Installed": installedErr,
		"Brings":    bringsErr,
		"Install":   a.Install(ctx, "hello"),
		"Remove":    a.Remove(ctx, []string{"hello"}, nil),
		"SetAuto":   a.SetAuto(ctx, "hello", true),
		"Audit":     auditErr,
		"Repair":    repairErr,
	} {
		if err == nil || err.Error() != want {
			t.Errorf("%s: error %v, want %q", name, err, want)
		}
	}
}

// TestAptStatus reads the status of packages of this host through
// dpkg-query: one that every Debian system has, and one no system has.
func TestAptStatus(t *testing.T) {
	if _, err := exec.LookPath("dpkg-query"); err != nil {
		t.Skip("no dpkg-query here")
	}
	a := NewApt("/")
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		installed bool
	}{
		{"dpkg", true},
		{fmt.Sprintf("cairn-t-nope-%d", os.Getpid()), false},
	} {
		installed, version, _, err := a.Status(ctx, tc.name)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if installed != tc.installed || (version != "") != tc.installed {
			t.Errorf("%s: installed %v version %q, want installed %v", tc.name, installed, version, tc.installed)
		}
	}
}

// TestLockHolder names the process that holds an fcntl lock, as apt takes
// it, from /proc/locks.
func TestLockHolder(t *testing.T) {
	file := filepath.Join(t.TempDir(), "lock-frontend")
	if got := lockHolder(file); got != "" {
		t.Errorf("lockHolder of a missing file = %q", got)
	}
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := lockHolder(file); got != "" {
		t.Errorf("lockHolder of an unlocked file = %q", got)
	}
	lk := syscall.Flock_t{Type: syscall.F_WRLCK}
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_SETLK, &lk); err != nil {
		t.Fatal(err)
	}
	if got, want := lockHolder(file), fmt.Sprintf("process %d (", os.Getpid()); !strings.HasPrefix(got, want) {
		t.Errorf("lockHolder = %q, want %q...", got, want)
	}
}

func TestErrorLines(t *testing.T) {
	for _, tc := range []struct{ stderr, want string }{
		{"W: a warning\nE: Unable to locate package x\nE: second\n", "Unable to locate package x; second"},
		{"one\ntwo\nthree\nfour\n", "two; three; four"},
		{"", ""},
	} {
		if got := errorLines(tc.stderr); got != tc.want {
			t.Errorf("errorLines(%q) = %q, want %q", tc.stderr, got, tc.want)
		}
	}
}

func TestLockSeconds(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want int
	}{{0, 10}, {time.Second, 1}, {1500 * time.Millisecond, 2}, {time.Millisecond, 1}} {
		if got := (&Apt{LockTimeout: tc.d}).lockSeconds(); got != tc.want {
			t.Errorf("lockSeconds(%v) = %d, want %d", tc.d, got, tc.want)
		}
	}
}

func TestLockPath(t *testing.T) {
	for _, tc := range []struct{ stderr, want string }{
		{"E: Could not get lock /var/cache/apt/archives/lock. It is held by process 12 (apt-get)", "/var/cache/apt/archives/lock"},
		{"E: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), is another process using it?", "/var/lib/dpkg/lock-frontend"},
		{"E: Unable to locate package x", ""},
	} {
		if got := lockPath().FindString(tc.stderr); got != tc.want {
			t.Errorf("lockPath in %q = %q, want %q", tc.stderr, got, tc.want)
		}
	}
}

// TestAptChroots checks that beneath a root holding a dpkg database apt's
// tools run chrooted into it: this one has no dpkg-query, so it fails
// saying so.
func TestAptChroots(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chroot needs root")
	}
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "var/lib/dpkg"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "var/lib/dpkg/status"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, _, err := NewApt(root).Status(context.Background(), "dpkg")
	if err == nil || !strings.Contains(err.Error(), "chroot: failed to run command 'dpkg-query'") {
		t.Fatalf("error %v, want chroot failing to run dpkg-query", err)
	}
}

// TestRunDetached checks that a command that changes the system runs apart
// from cairn, so that cairn's death does not kill it: in a session of its
// own, its output in a file (no pipe to break), its input /dev/null.
func TestRunDetached(t *testing.T) {
	a := NewApt("/")
	out, err := a.runDetached("sh", "-c", `read -r _ _ _ _ _ sid _ </proc/self/stat; echo "$$ $sid"; readlink /proc/self/fd/0 /proc/self/fd/1 /proc/self/fd/2; echo oops >&2; exit 3`)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Fatalf("error %v, want exit status 3", err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 {
		t.Fatalf("output %q, want 5 lines", out)
	}
	f := strings.Fields(lines[0])
	if len(f) != 2 || f[0] != f[1] {
		t.Errorf("pid and session %v: the command is not the leader of a session of its own", f)
	}
	if f[1] == fmt.Sprint(mySession(t)) {
		t.Errorf("the command runs in cairn's session %s", f[1])
	}
	if lines[1] != "/dev/null" {
		t.Errorf("standard input %q, want /dev/null", lines[1])
	}
	for _, l := range lines[2:4] {
		if !strings.Contains(l, "cairn-apt-") || !strings.HasSuffix(l, " (deleted)") {
			t.Errorf("output goes to %q, want an unlinked file cairn-apt-*", l)
		}
	}
	if lines[4] != "oops" {
		t.Errorf("standard error %q not in the output", lines[4])
	}
}

// TestRunDetachedSelfUpgrade: apt-get, and so every maintainer script it
// runs, sees CAIRN_SELF_UPGRADE=1, by which cairn's own postinst knows not
// to restart the agent that waits for it; the queries (run) do not.
func TestRunDetachedSelfUpgrade(t *testing.T) {
	a := NewApt("/")
	out, err := a.runDetached("sh", "-c", `echo "${CAIRN_SELF_UPGRADE-unset}"`)
	if err != nil || out != "1\n" {
		t.Errorf("detached: CAIRN_SELF_UPGRADE %q (%v), want 1", out, err)
	}
	stdout, _, err := a.run(context.Background(), "sh", "-c", `echo "${CAIRN_SELF_UPGRADE-unset}"`)
	if err != nil || stdout != "unset\n" {
		t.Errorf("query: CAIRN_SELF_UPGRADE %q (%v), want unset", stdout, err)
	}
}

func mySession(t *testing.T) int {
	t.Helper()
	data, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Fatal(err)
	}
	// pid (comm) state ppid pgrp session ...
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	sid, _ := strconv.Atoi(f[3])
	return sid
}

// TestLocked sees a write lock (fcntl(2), as apt takes it) held by this
// very process (another's is seen in the recovery tests of steps), and no
// lock on an unlocked or missing file.
func TestLocked(t *testing.T) {
	file := filepath.Join(t.TempDir(), "lock")
	if locked(file) {
		t.Error("a missing file is locked")
	}
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if locked(file) {
		t.Error("an unlocked file is locked")
	}
	lk := syscall.Flock_t{Type: syscall.F_WRLCK}
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_SETLK, &lk); err != nil {
		t.Fatal(err)
	}
	if !locked(file) {
		t.Error("a lock of this process is not seen")
	}
	lk.Type = syscall.F_UNLCK
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_SETLK, &lk); err != nil {
		t.Fatal(err)
	}
	if locked(file) {
		t.Error("a released lock is still seen")
	}
}

// TestAptDebianRoot drives apt chrooted into a real Debian root: what an
// install brings, the install, and the removal of the package with exactly
// the dependencies it brought, leaving the installed set as it was.
func TestAptDebianRoot(t *testing.T) {
	root := debroot.New(t)
	a := NewApt(root)
	ctx := context.Background()
	before := debroot.Installed(t, root)

	brings, err := a.Brings(ctx, "jq")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(brings), "[libonig5 libjq1 jq]"; got != want {
		t.Errorf("Brings(jq) = %s, want %s", got, want)
	}
	if err := a.Install(ctx, "jq"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		auto bool
	}{{"jq", false}, {"libjq1", true}, {"libonig5", true}} {
		installed, _, auto, err := a.Status(ctx, tc.name)
		if err != nil || !installed || auto != tc.auto {
			t.Errorf("%s: installed %v auto %v (%v), want installed, auto %v", tc.name, installed, auto, err, tc.auto)
		}
	}
	// Removing a package that others depend on is refused.
	err = a.Remove(ctx, []string{"libjq1"}, nil)
	if want := "libjq1: apt-get remove would also remove jq, which depend on it: refusing"; err == nil || err.Error() != want {
		t.Errorf("removing libjq1: %v, want %q", err, want)
	}
	// A package not in deps stays, even unneeded and auto.
	if err := a.Remove(ctx, []string{"jq"}, []string{"libjq1"}); err != nil {
		t.Fatal(err)
	}
	if installed, _, _, _ := a.Status(ctx, "libonig5"); !installed {
		t.Error("libonig5, not in deps, was removed")
	}
	if err := a.Remove(ctx, nil, []string{"libonig5", "dpkg"}); err != nil {
		t.Fatal(err)
	}
	if got := debroot.Installed(t, root); !slices.Equal(got, before) {
		t.Errorf("installed after the removal:\n%v\nwant as before:\n%v", got, before)
	}
}

// TestAptRepair leaves dpkg half way, as an interrupted or failed dpkg run
// does, and checks that Audit names what is wrong, Repair finishes it
// (dpkg --configure -a), Remove takes a package in any state, and Repair
// waits for the dpkg lock, with a bound, naming its holder.
func TestAptRepair(t *testing.T) {
	root := debroot.New(t)
	debroot.OnlyLocalRepo(t, root,
		// Its postinst fails the first time only.
		debroot.Deb{Name: "cairn-t-flaky", Version: "1.0", Postinst: "#!/bin/sh\nset -e\nif [ \"$1\" = configure ] && [ ! -e /var/lib/cairn-t-flaky.once ]; then touch /var/lib/cairn-t-flaky.once; exit 1; fi\n"},
		// Its postinst always fails.
		debroot.Deb{Name: "cairn-t-broken", Version: "1.0", Postinst: "#!/bin/sh\nexit 1\n"},
	)
	a := NewApt(root)
	a.RepairWait = 500 * time.Millisecond
	ctx := context.Background()
	before := debroot.Installed(t, root)

	if err := a.Install(ctx, "cairn-t-flaky"); err == nil {
		t.Fatal("the install succeeded, yet the postinst failed")
	}
	broken, err := a.Audit(ctx)
	if err != nil || fmt.Sprint(broken) != "[cairn-t-flaky (half-configured)]" {
		t.Fatalf("Audit = %q (%v), want cairn-t-flaky (half-configured)", broken, err)
	}
	if broken, err := a.Repair(ctx); err != nil || len(broken) > 0 {
		t.Fatalf("Repair = %q, %v; want a clean database", broken, err)
	}
	if installed, _, _, _ := a.Status(ctx, "cairn-t-flaky"); !installed {
		t.Error("cairn-t-flaky is not installed after dpkg --configure -a")
	}

	if err := a.Install(ctx, "cairn-t-broken"); err == nil {
		t.Fatal("the install succeeded, yet the postinst failed")
	}
	broken, err = a.Repair(ctx)
	if err != nil || len(broken) != 2 || broken[0] != "cairn-t-broken (half-configured)" || !strings.HasPrefix(broken[1], "dpkg --configure -a: exit status 1") {
		t.Errorf("Repair = %q (%v), want cairn-t-broken still half-configured and dpkg's error", broken, err)
	}
	if err := a.Remove(ctx, []string{"cairn-t-broken", "cairn-t-flaky"}, nil); err != nil {
		t.Fatal(err)
	}
	if audit := debroot.Audit(t, root); audit != "" {
		t.Errorf("dpkg --audit after the removal:\n%s", audit)
	}
	if got := debroot.Installed(t, root); !slices.Equal(got, before) {
		t.Errorf("installed after the removal:\n%v\nwant as before:\n%v", got, before)
	}

	// A dpkg killed before it merged its journal: dpkg --audit says
	// nothing, apt refuses to run, Repair merges it.
	if err := os.WriteFile(filepath.Join(root, "var/lib/dpkg/updates/0007"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if broken, err := a.Audit(ctx); err != nil || fmt.Sprint(broken) != "[dpkg was interrupted (/var/lib/dpkg/updates holds journal entries it did not merge)]" {
		t.Errorf("Audit with a journal entry = %q (%v)", broken, err)
	}
	if broken, err := a.Repair(ctx); err != nil || len(broken) > 0 {
		t.Errorf("Repair with a journal entry = %q, %v; want a clean database", broken, err)
	}

	// A held lock: Repair gives up after RepairWait, naming the holder.
	f, err := os.OpenFile(filepath.Join(root, frontendLock), os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lk := syscall.Flock_t{Type: syscall.F_WRLCK}
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_SETLK, &lk); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = a.Repair(ctx)
	want := fmt.Sprintf("the dpkg lock /var/lib/dpkg/lock-frontend is held by process %d (", os.Getpid())
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "gave up after waiting 500ms") {
		t.Errorf("Repair with the lock held: %v, want %q...", err, want)
	}
	if took := time.Since(start); took < a.RepairWait || took > 30*time.Second {
		t.Errorf("Repair gave up after %v, want about %v", took, a.RepairWait)
	}
}

// installedOutput is what Installed's dpkg-query printed beneath a Debian
// root (TestAptInstalledAgreesWithStatus makes one), cut down: a package of
// every architecture kind, one of two architectures (Multi-Arch: same),
// and the states that are not installed.
const installedOutput = `adduser	all	installed	3.134
cairn-t-conf	all	config-files	2.0-1
cairn-t-half	amd64	half-configured	4.0-1
cairn-t-ma	amd64	installed	3.0-2
cairn-t-ma	i386	installed	3.0-1
cairn-t-unpacked	all	unpacked	1.0-1
cairn-t-ma2	amd64	half-installed	5.0-2
cairn-t-ma2	i386	installed	5.0-1
libc6	amd64	installed	2.36-9+deb12u14
nginx-common	all	config-files	1.22.1-9+deb12u9
`

// TestParseInstalled reads real dpkg-query output: an installed package is
// there by its name and by NAME:ARCH, the first installed architecture
// giving the name's version; unknown ones, those with only their conffiles
// left and those left half way are not.
func TestParseInstalled(t *testing.T) {
	got := parseInstalled(installedOutput)
	for _, tc := range []struct {
		name, version string // "" not installed
	}{
		{"adduser", "3.134"},
		{"adduser:all", "3.134"},
		{"adduser:amd64", ""},
		{"cairn-t-conf", ""},
		{"cairn-t-conf:all", ""},
		{"cairn-t-half", ""},
		{"cairn-t-unpacked", ""},
		{"cairn-t-ma", "3.0-2"},
		{"cairn-t-ma:amd64", "3.0-2"},
		{"cairn-t-ma:i386", "3.0-1"},
		{"cairn-t-ma:armhf", ""},
		{"cairn-t-ma2", "5.0-1"},
		{"cairn-t-ma2:amd64", ""},
		{"libc6", "2.36-9+deb12u14"},
		{"libc6:amd64", "2.36-9+deb12u14"},
		{"libc6:", ""},
		{"nginx-common", ""},
		{"nope", ""},
	} {
		if v := got[tc.name]; v != tc.version {
			t.Errorf("%s: version %q, want %q", tc.name, v, tc.version)
		}
	}
	if n := len(got); n != 9 {
		t.Errorf("%d keys, want 9 (4 installed packages of one architecture and 1 of two, by name and NAME:ARCH): %v", n, got)
	}
	if got := parseInstalled(""); len(got) != 0 {
		t.Errorf("an empty database: %v", got)
	}
}

// TestAptInstalledAgreesWithStatus checks, beneath a real Debian root
// whose dpkg database holds packages in every state and of two
// architectures, that Installed says of every name what Status says.
func TestAptInstalledAgreesWithStatus(t *testing.T) {
	root := debroot.New(t)
	debroot.Chroot(t, root, "dpkg", "--add-architecture", "i386")
	f, err := os.OpenFile(filepath.Join(root, "var/lib/dpkg/status"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []struct{ name, arch, status, version string }{
		{"cairn-t-unpacked", "all", "install ok unpacked", "1.0-1"},
		{"cairn-t-conf", "all", "deinstall ok config-files", "2.0-1"},
		{"cairn-t-half", "amd64", "install ok half-configured", "4.0-1"},
		{"cairn-t-ma", "i386", "install ok installed", "3.0-1"},
		{"cairn-t-ma", "amd64", "install ok installed", "3.0-2"},
		{"cairn-t-ma2", "i386", "install ok installed", "5.0-1"},
		{"cairn-t-ma2", "amd64", "install ok half-installed", "5.0-2"},
	} {
		fmt.Fprintf(f, "Package: %s\nStatus: %s\nPriority: optional\nSection: misc\nMaintainer: t <t@example.org>\nArchitecture: %s\nVersion: %s\n", e.name, e.status, e.arch, e.version)
		if e.arch != "all" {
			fmt.Fprintf(f, "Multi-Arch: same\n")
		}
		if strings.HasSuffix(e.status, "config-files") {
			fmt.Fprintf(f, "Conffiles:\n /etc/%s.conf 0123456789abcdef0123456789abcdef\n", e.name)
		}
		fmt.Fprintf(f, "Description: a test entry\n\n")
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	a := NewApt(root)
	ctx := context.Background()
	versions, err := a.Installed(ctx)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"dpkg", "dpkg:amd64", "dpkg:i386", "dpkg:", "Dpkg", "adduser", "adduser:all", "adduser:amd64",
		"cairn-t-unpacked", "cairn-t-conf", "cairn-t-conf:all", "cairn-t-half", "cairn-t-ma", "cairn-t-ma:i386",
		"cairn-t-ma:amd64", "cairn-t-ma:armhf", "cairn-t-ma2", "cairn-t-ma2:amd64", "cairn-t-ma2:i386", "cairn-t-nope"}
	for _, n := range names {
		installed, version, _, err := a.Status(ctx, n)
		if err != nil {
			t.Fatalf("Status(%s): %v", n, err)
		}
		v, ok := versions[n]
		if ok != installed || v != version {
			t.Errorf("%s: Installed says %v %q, Status says %v %q", n, ok, v, installed, version)
		}
	}
	// The cases that matter are there: a name of two architectures, and
	// each state that is not installed.
	for n, want := range map[string]string{"cairn-t-ma": "3.0-2", "cairn-t-ma:i386": "3.0-1", "cairn-t-ma2": "5.0-1", "cairn-t-conf": "", "cairn-t-half": "", "cairn-t-unpacked": ""} {
		if versions[n] != want {
			t.Errorf("%s: %q, want %q", n, versions[n], want)
		}
	}
}
