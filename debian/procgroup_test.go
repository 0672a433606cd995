package debian

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// pgidProbe puts programs named names first on PATH, each of which writes
// "PID PGID" of itself to a file and exits 0, and returns that file.
func pgidProbe(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	out := filepath.Join(dir, "pgid")
	// Fields 1 and 5 of /proc/PID/stat are the pid and the process group
	// (the names hold no spaces, so field 2 is one word).
	body := "#!/bin/sh\nset -- $(cat /proc/$$/stat)\necho \"$1 $5\" > " + out + "\n"
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return out
}

// leadsOwnGroup fails the test unless the probe ran as the leader of a
// process group of its own: not in the test's (cairn's) group, which a
// terminal's Ctrl-C reaches.
func leadsOwnGroup(t *testing.T, file string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("the program did not run: %v", err)
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		t.Fatalf("probe wrote %q", b)
	}
	pid, _ := strconv.Atoi(f[0])
	pgid, _ := strconv.Atoi(f[1])
	if pgid == syscall.Getpgrp() || pgid != pid {
		t.Errorf("the program (pid %d) ran in process group %d, cairn's is %d: a terminal's Ctrl-C would reach it", pid, pgid, syscall.Getpgrp())
	}
}

// TestToolsOwnProcessGroup checks that apt-get, dpkg-query (here through
// chroot) and the shadow tools run in a process group of their own. A
// terminal sends Ctrl-C to its whole foreground process group: with cairn,
// a SIGINT reached apt-get, dpkg and the maintainer script that ran, and
// left the package half configured, although a stopped move lets a package
// operation run to its end.
func TestToolsOwnProcessGroup(t *testing.T) {
	t.Run("apt", func(t *testing.T) {
		out := pgidProbe(t, "chroot")
		root := t.TempDir()
		if err := os.MkdirAll(filepath.Join(root, "var/lib/dpkg"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "var/lib/dpkg/status"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := NewApt(root).Status(context.Background(), "hello"); err != nil {
			t.Fatal(err)
		}
		leadsOwnGroup(t, out)
	})
	t.Run("accounts", func(t *testing.T) {
		out := pgidProbe(t, "groupadd")
		if err := NewAccounts(templateRoot(t)).AddGroup(GroupSpec{Name: uniqueName(t)}); err != nil {
			t.Fatal(err)
		}
		leadsOwnGroup(t, out)
	})
}
