package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-cm/cairn/internal/gittest"
	"github.com/cairn-cm/cairn/internal/testhost"
)

// TestDebPromoteTimer checks the promotion units the package ships, in a
// real systemd host: installed, the timer is neither enabled nor running
// (one machine of a fleet runs it, by choice); the service's hardening lets
// cairn promote run (systemd-analyze verify, then real runs); "nothing to
// promote" and "the group is locked" (exit 1) leave the unit successful,
// and bad settings or a Prometheus that does not answer (exit 2) fail it;
// an enabled timer is waiting, stays enabled through an upgrade, and is
// stopped by dpkg -r.
func TestDebPromoteTimer(t *testing.T) {
	h, v1, v2 := debHost(t, map[string]string{
		"/repo-even":   promoteRepo(t, false, false),
		"/repo-locked": promoteRepo(t, true, true),
		"/repo-ahead":  promoteRepo(t, false, true),
	})
	exec := func(args ...string) testhost.Result {
		t.Helper()
		r, err := h.Exec(context.Background(), args...)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	show := func(unit, prop string) string {
		t.Helper()
		return strings.TrimSpace(exec("systemctl", "show", "-P", prop, unit).Stdout)
	}

	if r := exec("dpkg", "-i", "/debs/"+filepath.Base(v1)); r.Code != 0 {
		t.Fatalf("dpkg -i: %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	for _, u := range []string{"cairn-promote.timer", "cairn-promote.service"} {
		if got := show(u, "UnitFileState"); got != "disabled" && got != "static" {
			t.Errorf("after install: %s is %q, want disabled", u, got)
		}
		if got := show(u, "ActiveState"); got != "inactive" {
			t.Errorf("after install: %s is %q, want inactive", u, got)
		}
	}
	if r := exec("systemd-analyze", "verify", "/lib/systemd/system/cairn-promote.service", "/lib/systemd/system/cairn-promote.timer"); r.Code != 0 || r.Stderr != "" {
		t.Errorf("systemd-analyze verify: %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	def := string(h.ReadFile("/etc/default/cairn-promote"))
	for _, v := range []string{"CAIRN_FROM", "CAIRN_TO", "CAIRN_PROMETHEUS", "CAIRN_SOAK"} {
		if !strings.Contains(def, "#"+v+"=") {
			t.Errorf("/etc/default/cairn-promote does not list %s:\n%s", v, def)
		}
	}

	// One run of the service with the settings of a case; its exit status
	// and result, and what it logged.
	runWith := func(settings string) (result, status, logged string) {
		t.Helper()
		h.WriteFile("/etc/default/cairn-promote", []byte(def+"\n"+settings), 0o644)
		exec("systemctl", "reset-failed", "cairn-promote.service")
		cursor := strings.TrimSpace(exec("journalctl", "-n", "0", "--show-cursor", "-q").Stdout)
		exec("systemctl", "start", "cairn-promote.service")
		logged = exec("journalctl", "-u", "cairn-promote.service", "-o", "cat", "--after-cursor", strings.TrimPrefix(cursor, "-- cursor: ")).Stdout
		return show("cairn-promote.service", "Result"), show("cairn-promote.service", "ExecMainStatus"), logged
	}
	base := "CAIRN_FROM=canary\nCAIRN_TO=web\nCAIRN_PROMETHEUS=http://127.0.0.1:9/\n"
	cases := []struct {
		name, settings, result, status, says string
	}{
		// systemd shows ExecMainStatus 0 for a oneshot that ended well,
		// even by SuccessExitStatus=1: what it logged tells the two apart.
		{"nothing to promote", base + "CAIRN_REPO=file:///repo-even\n", "success", "0", "nothing to"},
		{"locked", base + "CAIRN_REPO=file:///repo-locked\n", "success", "0", "group web is locked by Ops Person <ops@example.org>"},
		{"bad settings", base + "CAIRN_REPO=file:///repo-even\nCAIRN_TO=nosuchgroup\n", "exit-code", "2", "nosuchgroup"},
		// Prometheus does not answer: promote cannot decide, which must
		// not pass for "conditions not met".
		{"prometheus down", base + "CAIRN_REPO=file:///repo-ahead\n", "exit-code", "2", "connection refused"},
	}
	for _, c := range cases {
		result, status, logged := runWith(c.settings)
		if result != c.result || status != c.status {
			t.Errorf("%s: the unit's result is %s (exit %s), want %s (exit %s)\n%s", c.name, result, status, c.result, c.status, logged)
		}
		if !strings.Contains(logged, c.says) {
			t.Errorf("%s: the journal does not say %q:\n%s", c.name, c.says, logged)
		}
	}
	// The runs kept the repository's mirror in the unit's cache directory.
	if r := exec("test", "-f", "/var/cache/cairn-promote/mirror/HEAD"); r.Code != 0 {
		t.Errorf("no mirror in /var/cache/cairn-promote after the runs: %s", exec("ls", "-lR", "/var/cache/cairn-promote").Stdout)
	}

	// Enabled, the timer waits for its next slot, and stays enabled through
	// an upgrade; removing the package stops it.
	exec("systemctl", "enable", "--now", "cairn-promote.timer")
	if got := show("cairn-promote.timer", "ActiveState"); got != "active" {
		t.Errorf("enabled: cairn-promote.timer is %q, want active", got)
	}
	if r := exec("dpkg", "-i", "/debs/"+filepath.Base(v2)); r.Code != 0 {
		t.Fatalf("dpkg -i (upgrade): %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	if got, state := show("cairn-promote.timer", "UnitFileState"), show("cairn-promote.timer", "ActiveState"); got != "enabled" || state != "active" {
		t.Errorf("after the upgrade: cairn-promote.timer is %s and %s, want enabled and active", got, state)
	}
	if r := exec("dpkg", "-r", "cairn"); r.Code != 0 {
		t.Fatalf("dpkg -r: %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	if got := show("cairn-promote.timer", "ActiveState"); got == "active" {
		t.Errorf("after dpkg -r: cairn-promote.timer is still active")
	}
}

// promoteRepo makes a repository whose hosts block has a canary group on
// branch canary and a web group on the control branch main. Unless ahead,
// both branches hold one commit: nothing to promote; ahead, canary holds
// one commit more. Locked, main holds a lock of web (.cairn/locks/web, as
// cairn lock writes it).
func promoteRepo(t *testing.T, locked, ahead bool) string {
	t.Helper()
	r := gittest.New(t)
	r.Commit("main", map[string]string{
		"hosts.cairn": "hosts {\n  group \"canary\" {\n    match  = [\"canary-*\"]\n    branch = \"canary\"\n  }\n  group \"web\" {\n    match = [\"web-*\"]\n  }\n}\n",
		"main.cairn":  "dir \"/srv\" {}\n",
	})
	if locked {
		r.Commit("main", map[string]string{".cairn/locks/web": "reason: database migration until Friday\nby: Ops Person <ops@example.org>\nsince: 2026-12-03T10:00:00Z\n"})
	}
	r.Git("branch", "canary")
	if locked || ahead {
		r.Commit("canary", map[string]string{"main.cairn": "dir \"/srv\" {}\n\ndir \"/srv/new\" {}\n"})
	}
	return r.Dir
}
