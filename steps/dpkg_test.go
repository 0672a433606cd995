package steps_test

// APT-INSTALL under a real Debian root (internal/debroot: a debootstrapped
// Debian 12, built once per machine, a fresh copy per test), through the
// applier and through the cairn binary:
//
//   - the inverse removes the package and exactly the dependencies its
//     install brought that nothing needs any more (never one installed
//     before, one marked manual since, or one another package needs);
//   - apt and dpkg survive cairn's death, the next command waits for them
//     and finishes a dpkg left half way (dpkg --configure -a) before it
//     undoes the move, and fails (exit 3) naming the holder of a dpkg lock
//     that stays held;
//   - a failed install leaves no package half configured; drift reports a
//     dpkg database that is not clean.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-cm/cairn/debian"
	"github.com/cairn-cm/cairn/internal/debroot"
	"github.com/cairn-cm/cairn/rootfs"
	"github.com/cairn-cm/cairn/steps"
)

// dpkgWant checks that the packages of want are installed beneath root and
// those of absent are not.
func dpkgWant(t *testing.T, root, when string, want, absent []string) {
	t.Helper()
	installed := debroot.Installed(t, root)
	for _, p := range want {
		if !slices.Contains(installed, p) {
			t.Errorf("%s: %s is not installed", when, p)
		}
	}
	for _, p := range absent {
		if slices.Contains(installed, p) {
			t.Errorf("%s: %s is installed", when, p)
		}
	}
}

// dpkgSame checks that the installed set beneath root is before, and that
// dpkg --audit finds nothing.
func dpkgSame(t *testing.T, root, when string, before []string) {
	t.Helper()
	if got := debroot.Installed(t, root); !slices.Equal(got, before) {
		var added, gone []string
		for _, p := range got {
			if !slices.Contains(before, p) {
				added = append(added, p)
			}
		}
		for _, p := range before {
			if !slices.Contains(got, p) {
				gone = append(gone, p)
			}
		}
		t.Errorf("%s: the installed packages are not as before: added %v, gone %v", when, added, gone)
	}
	if audit := debroot.Audit(t, root); audit != "" {
		t.Errorf("%s: dpkg --audit:\n%s", when, audit)
	}
}

// TestAptInstallRemovesWhatItBrought moves a Debian root to journals of
// packages with dependencies and back to the empty journal: the installed
// set is then exactly what it was, except for what must stay.
func TestAptInstallRemovesWhatItBrought(t *testing.T) {
	type move struct {
		lines          []string
		before         [][]string // commands run in the root before the move
		want, absent   []string   // installed or not after it
		wantNewAtLeast int        // packages the move adds, at least
	}
	for _, tc := range []struct {
		name   string
		before [][]string // commands run in the root before the first move
		moves  []move     // the last move is to the empty journal
		keep   []string   // installed at the end besides what was before
	}{
		{
			name: "jq and the two libraries it brings",
			moves: []move{
				{lines: []string{"APT-INSTALL jq"}, want: []string{"jq", "libjq1", "libonig5"}},
				{absent: []string{"jq", "libjq1", "libonig5"}},
			},
		},
		{
			name:   "a dependency installed by hand before stays",
			before: [][]string{{"apt-get", "install", "-y", "-q", "libonig5"}},
			moves: []move{
				{lines: []string{"APT-INSTALL jq"}, want: []string{"jq", "libjq1", "libonig5"}},
				{want: []string{"libonig5"}, absent: []string{"jq", "libjq1"}},
			},
		},
		{
			name: "a dependency marked manual since stays",
			moves: []move{
				{lines: []string{"APT-INSTALL jq"}, want: []string{"jq", "libjq1", "libonig5"}},
				{before: [][]string{{"apt-mark", "manual", "libjq1"}}, want: []string{"libjq1", "libonig5"}, absent: []string{"jq"}},
			},
			keep: []string{"libjq1", "libonig5"},
		},
		{
			name: "a dependency that another managed package needs stays until that one goes",
			moves: []move{
				// One apt-get call for both: libonig5 is brought for both.
				{lines: []string{"APT-INSTALL jq", "APT-INSTALL bfs"}, want: []string{"jq", "libjq1", "libonig5", "bfs"}},
				{lines: []string{"APT-INSTALL bfs"}, want: []string{"bfs", "libonig5"}, absent: []string{"jq", "libjq1"}},
				{absent: []string{"bfs", "libonig5"}},
			},
		},
		{
			name: "nginx-light and the twenty packages it brings",
			moves: []move{
				{lines: []string{"APT-INSTALL nginx-light"}, want: []string{"nginx-light", "nginx", "nginx-common"}, wantNewAtLeast: 15},
				{absent: []string{"nginx-light", "nginx", "nginx-common"}},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := debroot.New(t)
			for _, c := range tc.before {
				debroot.Chroot(t, root, c...)
			}
			before := debroot.Installed(t, root)
			h := newAptHost(t, root)
			for i, m := range tc.moves {
				for _, c := range m.before {
					debroot.Chroot(t, root, c...)
				}
				was := debroot.Installed(t, root)
				if _, err := h.apply(t, slices.Clone(m.lines)...); err != nil {
					t.Fatalf("move %d to %q: %v", i+1, m.lines, err)
				}
				when := fmt.Sprintf("after move %d to %q", i+1, m.lines)
				dpkgWant(t, root, when, m.want, m.absent)
				if n := len(debroot.Installed(t, root)) - len(was); m.wantNewAtLeast > 0 && n < m.wantNewAtLeast {
					t.Errorf("%s: %d packages added, want at least %d", when, n, m.wantNewAtLeast)
				}
			}
			want := slices.Clone(before)
			for _, p := range tc.keep {
				if !slices.Contains(want, p) {
					want = append(want, p)
				}
			}
			slices.Sort(want)
			dpkgSame(t, root, "after the move to the empty journal", want)
		})
	}
}

// TestAptInstallFailedPostinst fails a move on a package whose postinst
// fails: the undo removes it, left half configured, and what the batch
// brought; dpkg is clean and the installed set as before.
func TestAptInstallFailedPostinst(t *testing.T) {
	root := debroot.New(t)
	debroot.LocalRepo(t, root, debroot.Deb{Name: "cairn-t-broken", Version: "1.0", Postinst: "#!/bin/sh\nexit 1\n"})
	before := debroot.Installed(t, root)
	h := newAptHost(t, root)
	_, err := h.apply(t, "APT-INSTALL jq", "APT-INSTALL cairn-t-broken")
	if err == nil || steps.ExitCode(err) != steps.ExitFailed {
		t.Fatalf("apply: %v, want a failed step (exit 1)", err)
	}
	if !strings.Contains(err.Error(), "site.cairn:2:1") {
		t.Errorf("the error does not blame cairn-t-broken (site.cairn:2:1): %v", err)
	}
	dpkgSame(t, root, "after the failed move", before)
}

// TestAptInstallDriftDpkg breaks dpkg behind cairn's back (a package left
// half configured): drift names it, on the first APT-INSTALL, and a repair
// finishes it.
func TestAptInstallDriftDpkg(t *testing.T) {
	root := debroot.New(t)
	debroot.LocalRepo(t, root, debroot.Deb{Name: "cairn-t-flaky", Version: "1.0",
		Postinst: "#!/bin/sh\nif [ \"$1\" = configure ] && [ ! -e /var/lib/cairn-t-flaky.once ]; then touch /var/lib/cairn-t-flaky.once; exit 1; fi\n"})
	h := newAptHost(t, root)
	lines := []string{"MKDIR /srv/site", "APT-INSTALL jq"}
	if _, err := h.apply(t, slices.Clone(lines)...); err != nil {
		t.Fatal(err)
	}
	if err := debroot.ChrootErr(root, "apt-get", "install", "-y", "-q", "cairn-t-flaky"); err == nil {
		t.Fatal("installing cairn-t-flaky succeeded, yet its postinst fails the first time")
	}
	a := h.open(t)
	drifted, err := a.Drift(context.Background())
	a.Close()
	if err != nil {
		t.Fatal(err)
	}
	want := "the dpkg database is not clean: dpkg --audit lists cairn-t-flaky (half-configured)"
	if len(drifted) != 1 || drifted[0].Step.Object() != "jq" || drifted[0].Diff != want {
		t.Fatalf("drift = %+v, want APT-INSTALL jq: %s", drifted, want)
	}
	res, err := h.move(t, true, slices.Clone(lines)...)
	if err != nil || len(res.Repaired) != 1 {
		t.Fatalf("repair: %v (%+v)", err, res)
	}
	if audit := debroot.Audit(t, root); audit != "" {
		t.Errorf("dpkg --audit after the repair:\n%s", audit)
	}
	dpkgWant(t, root, "after the repair", []string{"jq", "cairn-t-flaky"}, nil)
}

// dpkgHost is a Debian root and a state directory that the cairn binary
// moves, with the journals it moves between.
type dpkgHost struct {
	root, state, dir string
}

func newDpkgHost(t *testing.T) dpkgHost {
	t.Helper()
	crashCairn(t) // build it before the root: a build fails fast
	dir := t.TempDir()
	return dpkgHost{root: debroot.New(t), state: filepath.Join(dir, "state"), dir: dir}
}

// journal writes a journal file of lines and returns its path.
func (h dpkgHost) journal(t *testing.T, name string, lines ...string) string {
	t.Helper()
	file := filepath.Join(h.dir, name)
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

func (h dpkgHost) args(cmd ...string) []string {
	return append(cmd, "--root", h.root, "--state", h.state)
}

// waitFor polls until cond holds, failing the test after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting %v for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// procRunning returns the live processes (not zombies) chrooted into root
// whose command line holds every one of words.
func procRunning(root string, words ...string) []int {
	var out []int
	for _, pid := range debroot.Procs(root) {
		stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if i := bytes.LastIndexByte(stat, ')'); i < 0 || bytes.HasPrefix(stat[i+1:], []byte(" Z")) {
			continue
		}
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		args := strings.Split(string(cmdline), "\x00")
		if !slices.ContainsFunc(words, func(w string) bool { return !slices.Contains(args, w) }) {
			out = append(out, pid)
		}
	}
	return out
}

// aptHistoryEnded reports whether apt's history log beneath root records
// an apt-get run whose command line holds what, and that it ended without
// an error.
func aptHistoryEnded(t *testing.T, root, what string) bool {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "var/log/apt/history.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, stanza := range strings.Split(string(data), "\n\n") {
		if strings.Contains(stanza, "Commandline: apt-get") && strings.Contains(stanza, what) {
			return strings.Contains(stanza, "End-Date:") && !strings.Contains(stanza, "\nError:")
		}
	}
	return false
}

// nginxMove is a move of the cairn binary from a journal that does not
// install nginx-light to one that does (with the twenty packages it
// brings), caught while dpkg installs.
type nginxMove struct {
	before              []string // the packages installed before
	oldJ, newJ, showOld string   // the journals, and journal show at oldJ
	cmd                 *exec.Cmd
}

// startNginx applies the old journal, starts the move to the new one, and
// returns once dpkg installs.
func (h dpkgHost) startNginx(t *testing.T) nginxMove {
	t.Helper()
	m := nginxMove{before: debroot.Installed(t, h.root)}
	m.oldJ = h.journal(t, "old.journal", "MKDIR /srv/site")
	m.newJ = h.journal(t, "new.journal", "MKDIR /srv/site", "APT-INSTALL nginx-light", "MKDIR /srv/site/www")
	crashMust(t, 0, h.args("journal", "apply", m.oldJ)...)
	m.showOld = crashMust(t, 0, h.args("journal", "show")...).stdout
	m.cmd = crashStart(t, h.args("journal", "apply", m.newJ)...)
	// apt-get runs dpkg with --status-fd to install (its simulations and
	// queries run dpkg too, without).
	waitFor(t, 120*time.Second, "dpkg to install", func() bool { return len(procRunning(h.root, "/usr/bin/dpkg", "--status-fd")) > 0 })
	return m
}

// TestAptInstallCrash kills cairn (SIGKILL to its process group) while
// dpkg installs nginx-light and the twenty packages it brings: apt and dpkg
// run on to their end; the next command waits for them before it recovers
// (dpkg is clean, the host back at the old journal, nothing of the install
// left), and the next package move works.
func TestAptInstallCrash(t *testing.T) {
	h := newDpkgHost(t)
	m := h.startNginx(t)
	before, oldJ, newJ, showOld := m.before, m.oldJ, m.newJ, m.showOld
	if !crashKill(t, m.cmd) {
		t.Fatal("the move ended before the kill")
	}
	if len(procRunning(h.root, "apt-get", "install")) == 0 {
		t.Fatal("apt-get install died with cairn")
	}

	show := crashRun(t, h.args("journal", "show")...)
	if show.code != 0 || show.stdout != showOld {
		t.Fatalf("journal show after the kill: exit %d, stdout:\n%s\nstderr:\n%s", show.code, show.stdout, show.stderr)
	}
	if !strings.Contains(show.stderr, "recovered an interrupted move") {
		t.Errorf("journal show did not say that it recovered the move:\n%s", show.stderr)
	}
	if left := debroot.Procs(h.root); len(left) > 0 {
		t.Errorf("processes still run in the root after the recovery: %v (the recovery did not wait for them)", left)
	}
	if !aptHistoryEnded(t, h.root, "nginx-light") {
		t.Error("apt's history log does not record that the apt-get install which cairn started ended well: it died with cairn")
	}
	dpkgSame(t, h.root, "after the recovery", before)
	if _, err := os.Lstat(filepath.Join(h.root, "srv/site")); err != nil {
		t.Errorf("the old journal's MKDIR is gone: %v", err)
	}

	// The next package move works, and so does its way back.
	crashMust(t, 0, h.args("journal", "apply", newJ)...)
	dpkgWant(t, h.root, "after the move again", []string{"nginx-light"}, nil)
	crashMust(t, 0, h.args("journal", "apply", oldJ)...)
	dpkgSame(t, h.root, "after the move back", before)
}

// dpkgSlow is a package whose postinst stops the first time it
// configures, until it is killed.
var dpkgSlow = debroot.Deb{Name: "cairn-t-slow", Version: "1.0",
	Postinst: "#!/bin/sh\nif [ \"$1\" = configure ] && [ ! -e /var/lib/cairn-t-slow.once ]; then touch /var/lib/cairn-t-slow.once; sleep 600; fi\n"}

// killInPostinst applies the journal file with the cairn binary and, once
// dpkgSlow's postinst runs, kills cairn, apt-get and dpkg (as a power loss
// or the OOM killer would): dpkg is left half way.
func (h dpkgHost) killInPostinst(t *testing.T, journal string) {
	t.Helper()
	cmd := crashStart(t, h.args("journal", "apply", journal)...)
	waitFor(t, 60*time.Second, "the postinst to run", func() bool {
		_, err := os.Stat(filepath.Join(h.root, "var/lib/cairn-t-slow.once"))
		return err == nil
	})
	crashKill(t, cmd)
	debroot.Kill(h.root)
}

// TestAptInstallCrashDpkgKilled kills cairn and, with it, apt-get and dpkg
// (as a power loss or the OOM killer would) in the postinst of a package
// of a batch: dpkg is left half way, and the next command finishes it
// (dpkg --configure -a) before it undoes the batch.
func TestAptInstallCrashDpkgKilled(t *testing.T) {
	h := newDpkgHost(t)
	// The postinst stops the first time, until it is killed.
	debroot.LocalRepo(t, h.root, dpkgSlow)
	before := debroot.Installed(t, h.root)
	oldJ := h.journal(t, "old.journal", "MKDIR /srv/site")
	newJ := h.journal(t, "new.journal", "MKDIR /srv/site", "APT-INSTALL jq", "APT-INSTALL cairn-t-slow")
	crashMust(t, 0, h.args("journal", "apply", oldJ)...)

	h.killInPostinst(t, newJ)
	if audit := debroot.Audit(t, h.root); !strings.Contains(audit, "cairn-t-slow") {
		t.Fatalf("dpkg --audit after the kill does not list cairn-t-slow:\n%s", audit)
	}

	show := crashRun(t, h.args("journal", "show")...)
	if show.code != 0 || !strings.Contains(show.stderr, "recovered an interrupted move") {
		t.Fatalf("journal show after the kill: exit %d, stderr:\n%s", show.code, show.stderr)
	}
	dpkgSame(t, h.root, "after the recovery", before)
	crashMust(t, 0, h.args("journal", "apply", newJ)...)
	dpkgWant(t, h.root, "after the move again", []string{"jq", "cairn-t-slow"}, nil)
}

// TestAptInstallRecoveryLockHeld leaves a move with a package op to
// recover while a process holds the dpkg lock past the wait: the recovery
// fails (exit 3), naming the holder, and keeps the intent log; once the
// lock is free, the next command recovers.
func TestAptInstallRecoveryLockHeld(t *testing.T) {
	h := newDpkgHost(t)
	debroot.OnlyLocalRepo(t, h.root, dpkgSlow)
	before := debroot.Installed(t, h.root)
	newJ := h.journal(t, "new.journal", "APT-INSTALL cairn-t-slow")
	h.killInPostinst(t, newJ)

	f, err := os.OpenFile(filepath.Join(h.root, "var/lib/dpkg/lock-frontend"), os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	lk := syscall.Flock_t{Type: syscall.F_WRLCK}
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_SETLK, &lk); err != nil {
		t.Fatal(err)
	}
	apt := debian.NewApt(h.root)
	apt.RepairWait = 500 * time.Millisecond
	r, err := rootfs.Open(h.root)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, err = steps.Open(context.Background(), steps.Options{Root: r, StateDir: h.state, Host: steps.Host{Packages: apt}})
	want := fmt.Sprintf("the dpkg lock /var/lib/dpkg/lock-frontend is held by process %d (", os.Getpid())
	if err == nil || steps.ExitCode(err) != steps.ExitUndoFailed || !strings.Contains(err.Error(), want) {
		t.Fatalf("open with the lock held: %v (exit %d), want exit 3 and %q", err, steps.ExitCode(err), want)
	}
	if _, err := os.Stat(filepath.Join(h.state, "intent.log")); err != nil {
		t.Errorf("the intent log is gone after the failed recovery: %v", err)
	}
	f.Close() // releases the lock

	crashMust(t, 0, h.args("journal", "show")...)
	if _, err := os.Stat(filepath.Join(h.state, "intent.log")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the intent log is still there after the recovery: %v", err)
	}
	dpkgSame(t, h.root, "after the recovery", before)
}
