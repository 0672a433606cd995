package debian

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestAptRefusesRootWithoutDebian checks that every method refuses a root
// with no var/lib/dpkg/status, naming it, and runs nothing.
func TestAptRefusesRootWithoutDebian(t *testing.T) {
	root := t.TempDir()
	a := NewApt(root)
	want := root + " holds no Debian system (no var/lib/dpkg/status): APT-INSTALL needs one"
	ctx := context.Background()
	_, _, _, statusErr := a.Status(ctx, "hello")
	for name, err := range map[string]error{
		"Status":  statusErr,
		"Install": a.Install(ctx, "hello"),
		"Remove":  a.Remove(ctx, "hello"),
		"SetAuto": a.SetAuto(ctx, "hello", true),
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
		if got := lockPath.FindString(tc.stderr); got != tc.want {
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
