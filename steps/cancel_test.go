package steps_test

// Cancellation is a contract (the package doc, "Stopping a move"): a
// signal stops a move between ops, never inside one. Through the cairn
// binary in a real Debian root (internal/debroot): one SIGTERM, and two
// (the command line's kill), while dpkg installs a package; the install
// runs to its end, the move is undone (or had completed), dpkg --audit
// finds nothing and no intent is left. Through the library: the recovery
// that Open makes of a dead process's move runs its undo even when Open's
// context is already cancelled.

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-cm/cairn/debian"
	"github.com/cairn-cm/cairn/internal/debroot"
	"github.com/cairn-cm/cairn/rootfs"
	"github.com/cairn-cm/cairn/steps"
)

// TestAptInstallSignal sends SIGTERM to cairn, once and then twice, while
// dpkg installs nginx-light and what it brings: apt-get and dpkg run to
// their end, the move then stops before its next op and is undone (exit 1;
// exit 0 would mean it had completed), the dpkg database is clean, and the
// state keeps no intent.
func TestAptInstallSignal(t *testing.T) {
	for _, tc := range []struct {
		name    string
		signals int
		say     string // what cairn notes on stderr
	}{
		{"one SIGTERM stops the move after the install", 1, "cairn: terminated: stopping after the step that runs"},
		{"a second SIGTERM does not kill apt-get or dpkg", 2, "cairn: terminated again: killing the step that runs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newDpkgHost(t)
			m := h.startNginx(t)
			before, newJ, showOld, cmd := m.before, m.newJ, m.showOld, m.cmd
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			t.Cleanup(func() {
				syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-done
			})
			// To cairn's process group, as a terminal's Ctrl-C would: the
			// package manager runs in a session of its own.
			for range tc.signals {
				if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM); err != nil {
					t.Fatal(err)
				}
				time.Sleep(200 * time.Millisecond)
			}
			select {
			case <-done:
			case <-time.After(10 * time.Minute):
				t.Fatalf("cairn still runs 10 minutes after the signal:\n%s", cmd.Stdout)
			}
			out := cmd.Stdout.(interface{ String() string }).String()
			t.Log(out)
			if !strings.Contains(out, tc.say) {
				t.Errorf("cairn did not say %q", tc.say)
			}
			if left := debroot.Procs(h.root); len(left) > 0 {
				t.Errorf("processes still run in the root after cairn ended: %v", left)
			}
			if !aptHistoryEnded(t, h.root, "nginx-light") {
				t.Error("apt's history log does not record that the apt-get install ended well: the signal reached it")
			}
			if audit := debroot.Audit(t, h.root); audit != "" {
				t.Errorf("dpkg --audit after the signal:\n%s", audit)
			}
			if _, err := os.Stat(filepath.Join(h.state, "intent.log")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the intent log is left: %v", err)
			}
			show := crashMust(t, 0, h.args("journal", "show")...).stdout
			switch code := cmd.ProcessState.ExitCode(); code {
			case 1: // undone
				if !strings.Contains(out, "new.journal:3:1: MKDIR /srv/site/www") || !strings.Contains(out, "interrupted before this step") {
					t.Errorf("cairn's output does not name the step it stopped before")
				}
				if show != showOld {
					t.Errorf("journal show after the undone move:\n%s\nwant:\n%s", show, showOld)
				}
				dpkgSame(t, h.root, "after the undone move", before)
				if _, err := os.Lstat(filepath.Join(h.root, "srv/site/www")); err == nil {
					t.Error("the move's last MKDIR ran after the signal")
				}
			case 0: // the move had completed
				if show == showOld {
					t.Error("cairn exited 0, yet the new journal is not applied")
				}
				dpkgWant(t, h.root, "after the completed move", []string{"nginx-light"}, nil)
			default:
				t.Errorf("exit %d, want 1 (undone) or 0 (completed)", code)
			}

			// The next package move works.
			crashMust(t, 0, h.args("journal", "apply", newJ)...)
			dpkgWant(t, h.root, "after the move again", []string{"nginx-light"}, nil)
		})
	}
}

// recoverCancelled opens the state with a context already cancelled, as a
// command that a signal reached while it recovered: the recovery must run
// to its end all the same.
func recoverCancelled(t *testing.T, root, state string, host steps.Host) {
	t.Helper()
	r, err := rootfs.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	kill := make(chan struct{})
	close(kill)
	a, err := steps.Open(ctx, steps.Options{Root: r, StateDir: state, Host: host, Kill: kill})
	if err != nil {
		t.Fatalf("open with a cancelled context: %v (exit %d)", err, steps.ExitCode(err))
	}
	a.Close()
	if _, err := os.Stat(filepath.Join(state, "intent.log")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the intent log is left after the recovery: %v", err)
	}
}

// TestRecoverCancelledExec leaves a move whose EXEC runs (cairn killed,
// SIGKILL), then opens the state with a cancelled context: the EXEC's undo
// command runs all the same, and the move's MKDIR is undone.
func TestRecoverCancelledExec(t *testing.T) {
	crashNeedRoot(t)
	dir := t.TempDir()
	root, state := filepath.Join(dir, "root"), filepath.Join(dir, "state")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "move.journal")
	// The command lets go of cairn's output (which a test's pipe reads) and
	// names itself, so that the test ends it.
	journalText := strings.ReplaceAll("MKDIR /a\nEXEC \"exec >/dev/null 2>&1; echo $$ > %s/pid; touch %s/started; exec sleep 600\" undo=\"touch %s/undone\"\n", "%s", dir)
	if err := os.WriteFile(file, []byte(journalText), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := crashStart(t, "journal", "apply", "--root", root, "--state", state, file)
	waitFor(t, 30*time.Second, "the EXEC to start", func() bool {
		_, err := os.Stat(filepath.Join(dir, "started"))
		return err == nil
	})
	t.Cleanup(func() {
		if pid, err := strconv.Atoi(strings.TrimSpace(readFile(t, filepath.Join(dir, "pid")))); err == nil {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	if !crashKill(t, cmd) {
		t.Fatal("the move ended before the kill")
	}

	recoverCancelled(t, root, state, steps.Host{})
	if _, err := os.Stat(filepath.Join(dir, "undone")); err != nil {
		t.Errorf("the EXEC's undo did not run: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(root, "a")); err == nil {
		t.Error("the MKDIR was not undone")
	}
}

// TestRecoverCancelledDpkg leaves a move whose package install cairn,
// apt-get and dpkg died in (a postinst half way), then opens the state
// with a cancelled context: the recovery still waits for the dpkg lock,
// finishes dpkg (dpkg --configure -a) and removes the package, and dpkg
// --audit is clean.
func TestRecoverCancelledDpkg(t *testing.T) {
	h := newDpkgHost(t)
	debroot.OnlyLocalRepo(t, h.root, dpkgSlow)
	before := debroot.Installed(t, h.root)
	h.killInPostinst(t, h.journal(t, "new.journal", "MKDIR /srv/site", "APT-INSTALL cairn-t-slow"))
	if audit := debroot.Audit(t, h.root); !strings.Contains(audit, "cairn-t-slow") {
		t.Fatalf("dpkg --audit after the kill does not list cairn-t-slow:\n%s", audit)
	}

	recoverCancelled(t, h.root, h.state, steps.Host{Packages: debian.NewApt(h.root)})
	dpkgSame(t, h.root, "after the recovery", before)
	if _, err := os.Lstat(filepath.Join(h.root, "srv/site")); err == nil {
		t.Error("the MKDIR was not undone")
	}
}
