package steps_test

// A drift check of many packages and units through the real drivers,
// beneath a Debian root of the test's own: the verdicts of each step, and
// the programs the check starts, counted by wrappers first in PATH.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cairn-cm/cairn/debian"
	"github.com/cairn-cm/cairn/internal/debroot"
	"github.com/cairn-cm/cairn/journal"
	"github.com/cairn-cm/cairn/rootfs"
	"github.com/cairn-cm/cairn/steps"
	"github.com/cairn-cm/cairn/systemd"
)

// countPrograms puts wrappers of programs first in PATH that log each run
// ("NAME ARGS...", on one line) before running the real one, and returns
// the log's reader, which empties it; its lines are sorted (the checks run
// in parallel).
func countPrograms(t *testing.T, programs ...string) func() []string {
	t.Helper()
	dir := t.TempDir()
	log := filepath.Join(dir, "runs")
	for _, p := range programs {
		real, err := exec.LookPath(p)
		if err != nil {
			t.Skipf("no %s here", p)
		}
		// One write per run: the checks run in parallel.
		body := fmt.Sprintf("#!/bin/sh\nrun=$(echo %s \"$*\" | tr '\\n' ' ')\necho \"$run\" >> %s\nexec %s \"$@\"\n", p, log, real)
		if err := os.WriteFile(filepath.Join(dir, p), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return func() []string {
		b, _ := os.ReadFile(log)
		os.Remove(log)
		runs := strings.Split(strings.TrimSpace(string(b)), "\n")
		slices.Sort(runs)
		return runs
	}
}

// TestDriftBatchesQueries checks a drift check of n packages and n units,
// five of them drifted in every way a check sees (a package removed, one
// at another version than pinned, one with only its conffiles left, a unit
// disabled, a unit file gone): the verdicts are the per-step checks', and
// the check starts a number of programs that does not grow with n (one
// dpkg-query, one dpkg --audit, one systemctl is-enabled and one more
// after the unit that does not exist). A second check, after the host
// changed again, reads it afresh.
func TestDriftBatchesQueries(t *testing.T) {
	const n = 40
	root := debroot.New(t)
	status, err := os.OpenFile(filepath.Join(root, "var/lib/dpkg/status"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	units := filepath.Join(root, "usr/lib/systemd/system")
	lines := []string{"APT-INSTALL jq"}
	for i := range n {
		name := fmt.Sprintf("cairn-t-p%02d", i)
		// Registered as installed: they are in no archive.
		fmt.Fprintf(status, "Package: %s\nStatus: install ok installed\nPriority: optional\nSection: misc\nMaintainer: t <t@example.org>\nArchitecture: all\nVersion: 1.0-1\nDescription: a test entry\n\n", name)
		// Empty lists of files and of their sums: else dpkg --audit finds
		// the database unclean.
		for _, ext := range []string{".list", ".md5sums"} {
			if err := os.WriteFile(filepath.Join(root, "var/lib/dpkg/info", name+ext), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		unit := "[Unit]\nDescription=t\n\n[Service]\nExecStart=/bin/true\n\n[Install]\nWantedBy=multi-user.target\n"
		if err := os.WriteFile(filepath.Join(units, name+".service"), []byte(unit), 0o644); err != nil {
			t.Fatal(err)
		}
		line := "APT-INSTALL " + name
		if i%2 == 1 {
			line += " version=1.0-1"
		}
		lines = append(lines, line, "SYSTEMD-ENABLE "+name+".service")
	}
	if err := status.Close(); err != nil {
		t.Fatal(err)
	}
	for i := range lines {
		lines[i] += fmt.Sprintf(" # site.cairn:%d:1", i+1)
	}
	ss, err := journal.ParseSteps("site.journal", lines)
	if err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(t.TempDir(), "state")
	open := func(create bool) *steps.Applier {
		t.Helper()
		r, err := rootfs.Open(root)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		a, err := steps.Open(context.Background(), steps.Options{Root: r, StateDir: state, Create: create,
			Host: steps.Host{Packages: debian.NewApt(root), Units: systemd.New(root)}})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	a := open(true)
	_, err = a.Apply(context.Background(), steps.Move{Journal: "site.journal", Steps: ss})
	a.Close()
	if err != nil {
		t.Fatalf("apply: %v", err)
	}

	// Behind cairn's back.
	debroot.Chroot(t, root, "apt-get", "remove", "-y", "-q", "jq")
	editStatus := func(old, new string) {
		t.Helper()
		file := filepath.Join(root, "var/lib/dpkg/status")
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), old) {
			t.Fatalf("no %q in the dpkg status", old)
		}
		if err := os.WriteFile(file, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p01 := "Package: cairn-t-p01\nStatus: install ok installed\nPriority: optional\nSection: misc\nMaintainer: t <t@example.org>\nArchitecture: all\nVersion: 1.0-1\n"
	editStatus(p01, strings.Replace(p01, "1.0-1", "1.0-2", 1))
	editStatus("Package: cairn-t-p02\nStatus: install ok installed\n", "Package: cairn-t-p02\nStatus: deinstall ok config-files\n")
	systemctl := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("systemctl", append([]string{"--root=" + root}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("systemctl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	systemctl("disable", "cairn-t-p03.service")
	systemctl("disable", "cairn-t-p04.service")
	if err := os.Remove(filepath.Join(units, "cairn-t-p04.service")); err != nil {
		t.Fatal(err)
	}

	runs := countPrograms(t, "chroot", "systemctl", "dpkg-query", "apt-mark")
	drift := func(when string, want []string) {
		t.Helper()
		a := open(false)
		drifted, err := a.Drift(context.Background())
		a.Close()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, d := range drifted {
			got = append(got, d.Step.Op+" "+d.Step.Object()+": "+d.Diff)
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s: drift\n%s\nwant\n%s", when, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	drift("first check", []string{
		"APT-INSTALL jq: not installed",
		"APT-INSTALL cairn-t-p01: version 1.0-2 installed, want 1.0-1",
		"APT-INSTALL cairn-t-p02: not installed",
		"SYSTEMD-ENABLE cairn-t-p03.service: unit cairn-t-p03.service is not enabled",
		"SYSTEMD-ENABLE cairn-t-p04.service: unit cairn-t-p04.service is not enabled",
	})
	got := runs()
	want := []string{"chroot dpkg --audit", "chroot dpkg-query -W", "systemctl --root=", "systemctl --root="}
	if len(got) != len(want) {
		t.Fatalf("a drift check of %d packages and %d units ran %d programs, want %d:\n%s", n+1, n, len(got), len(want), strings.Join(got, "\n"))
	}
	for i, w := range want {
		if !strings.HasPrefix(strings.Replace(got[i], root+" ", "", 1), w) {
			t.Errorf("program %d: %q, want %s...", i, got[i], w)
		}
	}

	// Put back: a new check sees it.
	editStatus("Package: cairn-t-p02\nStatus: deinstall ok config-files\n", "Package: cairn-t-p02\nStatus: install ok installed\n")
	systemctl("enable", "cairn-t-p03.service")
	drift("second check", []string{
		"APT-INSTALL jq: not installed",
		"APT-INSTALL cairn-t-p01: version 1.0-2 installed, want 1.0-1",
		"SYSTEMD-ENABLE cairn-t-p04.service: unit cairn-t-p04.service is not enabled",
	})
}
