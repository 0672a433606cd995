package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cairn-cm/cairn/internal/gittest"
	"github.com/cairn-cm/cairn/internal/testhost"
)

// TestDebLifecycle installs, upgrades, removes and purges the package in a
// real systemd host (internal/testhost), and checks after each step what a
// Debian administrator expects of a daemon's package: installed, the unit
// is enabled but not started without CAIRN_REPO, /var/lib/cairn is 0700;
// with a repository (file://, bound into the host) the agent runs; an
// upgrade restarts it on the new version (cairn_build_info), one run by
// cairn itself (CAIRN_SELF_UPGRADE=1) does not, and one of a disabled unit
// leaves it stopped; dpkg -r stops it and keeps the state and settings, and
// installing again starts it; dpkg -P says what it removes and removes it.
// dpkg --audit stays clean throughout.
func TestDebLifecycle(t *testing.T) {
	h, v1, v2 := debHost(t, map[string]string{"/repo": configRepo(t)})
	exec := func(args ...string) testhost.Result {
		t.Helper()
		r, err := h.Exec(context.Background(), args...)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	state := func() string { // systemctl is-active
		t.Helper()
		return strings.TrimSpace(exec("systemctl", "is-active", "cairn.service").Stdout)
	}
	audit := func(step string) {
		t.Helper()
		if r := exec("dpkg", "--audit"); r.Code != 0 || r.Stdout != "" {
			t.Errorf("%s: dpkg --audit: %d\n%s%s", step, r.Code, r.Stdout, r.Stderr)
		}
	}
	deb := func(path string) string { return "/debs/" + filepath.Base(path) }

	// Install: enabled, not started (no CAIRN_REPO), state 0700, pages.
	r := exec("dpkg", "-i", deb(v1))
	if r.Code != 0 {
		t.Fatalf("dpkg -i: %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	if !strings.Contains(r.Stderr, "not started: set CAIRN_REPO") {
		t.Errorf("dpkg -i does not say why the agent is not started:\n%s", r.Stderr)
	}
	audit("install")
	if got := strings.TrimSpace(exec("systemctl", "is-enabled", "cairn.service").Stdout); got != "enabled" {
		t.Errorf("after install: cairn.service is %q, want enabled", got)
	}
	if got := state(); got != "inactive" {
		t.Errorf("after install without CAIRN_REPO: cairn.service is %q, want inactive", got)
	}
	if got := strings.TrimSpace(h.Run("stat", "-c", "%a %U:%G", "/var/lib/cairn")); got != "700 root:root" {
		t.Errorf("/var/lib/cairn: %s, want 700 root:root", got)
	}
	for _, f := range []string{"/usr/share/man/man1/cairn.1.gz", "/usr/share/man/man1/cairn-agent.1.gz", "/usr/share/bash-completion/completions/cairn", "/usr/share/cairn/prometheus/alerts.yml"} {
		if _, err := os.Stat(h.Path(f)); err != nil {
			t.Errorf("after install: %v", err)
		}
	}
	if got := h.Run("cairn", "version"); got != "cairn 1.0~test1\n" {
		t.Errorf("cairn version: %q", got)
	}

	// Settings: a repository (a file:// one bound into the host), and the
	// agent runs, applies it, and reports its version.
	conf := string(h.ReadFile("/etc/default/cairn")) +
		"\nCAIRN_REPO=file:///repo\nCAIRN_HOST=web-1\nCAIRN_ALLOW_UNSIGNED=true\nCAIRN_CONFIRM=0\nCAIRN_INTERVAL=2s\n"
	h.WriteFile("/etc/default/cairn", []byte(conf), 0o644)
	h.Run("systemctl", "start", "cairn.service")
	waitFor(t, "the agent applies /srv/cairn-test", func() bool {
		_, err := os.Stat(h.Path("/srv/cairn-test"))
		return err == nil
	})
	pid1 := mainPID(t, h)
	if v := buildInfo(t, h); v != "1.0~test1" {
		t.Errorf("before the upgrade: cairn_build_info version %q", v)
	}

	// Upgrade: the running agent is restarted and runs the new binary.
	if r := exec("dpkg", "-i", deb(v2)); r.Code != 0 {
		t.Fatalf("dpkg -i (upgrade): %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	audit("upgrade")
	if got := state(); got != "active" {
		t.Errorf("after the upgrade: cairn.service is %q, want active", got)
	}
	pid2 := mainPID(t, h)
	if pid2 == pid1 {
		t.Errorf("after the upgrade: the agent was not restarted (main PID %s)", pid1)
	}
	if v := buildInfo(t, h); v != "1.0~test2" {
		t.Errorf("after the upgrade: cairn_build_info version %q, want 1.0~test2", v)
	}
	if !strings.Contains(string(h.ReadFile("/etc/default/cairn")), "CAIRN_REPO=file:///repo") {
		t.Error("the upgrade lost the settings in /etc/default/cairn")
	}

	// An upgrade that cairn's own agent runs (CAIRN_SELF_UPGRADE): dpkg
	// completes and the agent is left running for it to re-execute itself.
	r = exec("env", "CAIRN_SELF_UPGRADE=1", "dpkg", "-i", deb(v1))
	if r.Code != 0 {
		t.Fatalf("dpkg -i (by the agent): %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	audit("self-upgrade")
	// The agent, seeing its executable replaced, re-executes it in place
	// after its next run (state "reloading" for that moment): the main
	// PID stays.
	waitFor(t, "the agent active after the self-upgrade", func() bool { return state() == "active" })
	if pid := mainPID(t, h); pid != pid2 {
		t.Errorf("an upgrade run by the agent restarted it (main PID %s, then %s)", pid2, pid)
	}
	if !strings.Contains(r.Stderr, "not restarted now") {
		t.Errorf("the postinst does not say who restarts the agent:\n%s", r.Stderr)
	}

	// A unit the administrator disabled and stopped stays so through an
	// upgrade.
	h.Run("systemctl", "disable", "--now", "cairn.service")
	if r := exec("dpkg", "-i", deb(v2)); r.Code != 0 {
		t.Fatalf("dpkg -i (upgrade, disabled): %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	audit("upgrade of a disabled unit")
	if got := state(); got != "inactive" {
		t.Errorf("after upgrading a disabled unit: cairn.service is %q, want inactive", got)
	}
	if got := strings.TrimSpace(exec("systemctl", "is-enabled", "cairn.service").Stdout); got != "disabled" {
		t.Errorf("after upgrading a disabled unit: it is %q, want disabled", got)
	}
	h.Run("systemctl", "enable", "--now", "cairn.service")

	// Remove: stopped; the state and the settings stay.
	if r := exec("dpkg", "-r", "cairn"); r.Code != 0 {
		t.Fatalf("dpkg -r: %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	audit("remove")
	if got := state(); got == "active" || got == "activating" {
		t.Errorf("after dpkg -r: cairn.service is %q", got)
	}
	for _, f := range []string{"/var/lib/cairn", "/etc/default/cairn"} {
		if _, err := os.Stat(h.Path(f)); err != nil {
			t.Errorf("after dpkg -r: %v", err)
		}
	}
	if _, err := os.Stat(h.Path("/usr/bin/cairn")); err == nil {
		t.Error("after dpkg -r: /usr/bin/cairn is still there")
	}

	// Installed again over the settings and state that stayed: the agent
	// runs again, from where it was.
	if r := exec("dpkg", "-i", deb(v2)); r.Code != 0 {
		t.Fatalf("dpkg -i (after dpkg -r): %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	audit("reinstall")
	if got := state(); got != "active" {
		t.Errorf("installed again with CAIRN_REPO set: cairn.service is %q, want active", got)
	}
	if v := buildInfo(t, h); v != "1.0~test2" {
		t.Errorf("installed again: cairn_build_info version %q, want 1.0~test2", v)
	}
	if r := exec("dpkg", "-r", "cairn"); r.Code != 0 {
		t.Fatalf("dpkg -r: %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	if got := state(); got == "active" || got == "activating" {
		t.Errorf("after dpkg -r: cairn.service is %q", got)
	}

	// Purge: it says what it removes, and removes the state and the
	// settings, and systemd's links to the unit.
	r = exec("dpkg", "-P", "cairn")
	if r.Code != 0 {
		t.Fatalf("dpkg -P: %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	if !strings.Contains(r.Stderr, "removing /var/lib/cairn") || !strings.Contains(r.Stderr, "roll this host back") {
		t.Errorf("dpkg -P does not say what purging loses:\n%s", r.Stderr)
	}
	for _, f := range []string{"/var/lib/cairn", "/etc/default/cairn", "/etc/systemd/system/multi-user.target.wants/cairn.service"} {
		if _, err := os.Lstat(h.Path(f)); err == nil {
			t.Errorf("after dpkg -P: %s is still there", f)
		}
	}
	if got := strings.TrimSpace(exec("dpkg-query", "-W", "-f=${db:Status-Status}", "cairn").Stdout); got != "not-installed" && got != "" {
		t.Errorf("after dpkg -P: dpkg says cairn is %q", got)
	}
}

// configRepo makes a git repository with a configuration that puts one file
// on host web-1.
func configRepo(t *testing.T) string {
	t.Helper()
	r := gittest.New(t)
	r.Commit("main", map[string]string{
		"hosts.cairn": "hosts {\n  group \"web\" {\n    match = [\"web-*\"]\n  }\n}\n",
		"main.cairn":  "dir \"/srv\" {}\n\nfile \"/srv/cairn-test\" {\n  content = \"applied\\n\"\n}\n",
	})
	return r.Dir
}

// debHost builds the package at two versions (twoDebs) and boots a systemd
// test host without a network, with them in /debs and each repository of
// repos (target in the host: directory here) bound read-only; it returns
// the host and the packages' paths here. It skips under -short and
// without git.
func debHost(t *testing.T, repos map[string]string) (h *testhost.Host, v1, v2 string) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: the package is not built")
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("needs git for the configuration repository")
	}
	debs, v1, v2 := twoDebs(t)
	binds := []testhost.Bind{{Source: debs, Target: "/debs", ReadOnly: true}}
	for target, dir := range repos {
		binds = append(binds, testhost.Bind{Source: dir, Target: target, ReadOnly: true})
	}
	return testhost.Boot(t, testhost.Options{PrivateNetwork: true, Binds: binds}), v1, v2
}

// mainPID is cairn.service's main PID inside the host.
func mainPID(t *testing.T, h *testhost.Host) string {
	t.Helper()
	return strings.TrimSpace(h.Run("systemctl", "show", "-P", "MainPID", "cairn.service"))
}

var buildInfoVersion = regexp.MustCompile(`(?m)^cairn_build_info\{[^}]*version="([^"]*)"`)

// buildInfo is the version label of the running agent's cairn_build_info,
// waiting for the agent to answer.
func buildInfo(t *testing.T, h *testhost.Host) string {
	t.Helper()
	var version string
	waitFor(t, "the agent's /metrics", func() bool {
		r, err := h.Exec(context.Background(), "curl", "-sf", "http://127.0.0.1:9479/metrics")
		if err != nil || r.Code != 0 {
			return false
		}
		m := buildInfoVersion.FindStringSubmatch(r.Stdout)
		if m == nil {
			return false
		}
		version = m[1]
		return true
	})
	return version
}

// waitFor polls cond for up to a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("waited a minute for %s", what)
}

// TestDebAdminSettings checks the package against settings an
// administrator makes outside /etc/default/cairn: a mode and owner of
// /var/lib/cairn set with dpkg-statoverride, which the postinst says it
// keeps, survive the agent's start (systemd's StateDirectory= would chown
// and chmod it back); and an agent whose repository is given in a drop-in's
// ExecStart= (not CAIRN_REPO) is restarted onto the new version by an
// upgrade, not left running the old binary.
func TestDebAdminSettings(t *testing.T) {
	h, v1, v2 := debHost(t, map[string]string{"/repo": configRepo(t)})
	run := func(args ...string) testhost.Result {
		t.Helper()
		r, err := h.Exec(context.Background(), args...)
		if err != nil || r.Code != 0 {
			t.Fatalf("%s: %v %d\n%s%s", args, err, r.Code, r.Stdout, r.Stderr)
		}
		return r
	}
	run("dpkg", "-i", "/debs/"+filepath.Base(v1))
	run("dpkg-statoverride", "--update", "--add", "root", "adm", "0750", "/var/lib/cairn")
	// Without CAIRN_REPO the agent exits 2, after systemd has set up the
	// unit's directories.
	h.Exec(context.Background(), "systemctl", "start", "cairn.service")
	if got := strings.TrimSpace(h.Run("stat", "-c", "%a %U:%G", "/var/lib/cairn")); got != "750 root:adm" {
		t.Errorf("/var/lib/cairn after the agent's start: %s, want the statoverride's 750 root:adm", got)
	}

	h.WriteFile("/etc/systemd/system/cairn.service.d/repo.conf", []byte("[Service]\nExecStart=\n"+
		"ExecStart=/usr/bin/cairn agent --repo file:///repo --host web-1 --allow-unsigned --confirm 0 --interval 2s\n"), 0o644)
	run("systemctl", "daemon-reload")
	run("systemctl", "reset-failed", "cairn.service")
	run("systemctl", "start", "cairn.service")
	pid1 := mainPID(t, h)
	if v := buildInfo(t, h); v != "1.0~test1" {
		t.Fatalf("before the upgrade: cairn_build_info version %q", v)
	}
	r := run("dpkg", "-i", "/debs/"+filepath.Base(v2))
	if pid := mainPID(t, h); pid == pid1 {
		t.Errorf("an upgrade left the agent whose repository a drop-in's ExecStart= gives running the old binary (main PID %s)\n%s", pid, r.Stderr)
	} else if v := buildInfo(t, h); v != "1.0~test2" {
		t.Errorf("after the upgrade: cairn_build_info version %q, want 1.0~test2", v)
	}
}

// twoDebs builds the package at versions 1.0~test1 and 1.0~test2 into a
// directory of their own, to bind into a host, and returns it and their
// paths.
func twoDebs(t *testing.T) (dir, v1, v2 string) {
	t.Helper()
	v1 = buildDeb(t, "1.0~test1")
	v2 = buildDeb(t, "1.0~test2")
	dir = t.TempDir()
	for _, d := range []string{v1, v2} {
		data, err := os.ReadFile(d)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(d)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir, v1, v2
}
