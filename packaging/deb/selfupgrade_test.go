package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairn-cm/cairn/internal/debroot"
	"github.com/cairn-cm/cairn/internal/testhost"
)

// TestSelfUpgrade upgrades cairn through cairn in a real systemd host
// (issue 10): the agent, installed from the package at 1.0.0 and running
// as cairn.service, applies a commit that pins the package at 1.1.0 from a
// local apt repository. The move completes with a clean dpkg database, the
// agent re-executes the new binary in the same process (the same MainPID,
// no restart), and reports 1.1.0. Then a commit pinning 1.2.0, whose
// postinst fails, is rolled back to 1.1.0 like any other move, and the
// agent keeps running 1.1.0.
func TestSelfUpgrade(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: no packages built, no host booted")
	}
	for tool, pkg := range map[string]string{"dpkg-deb": "dpkg", "dpkg-scanpackages": "dpkg-dev", "git": "git"} {
		if _, err := exec.LookPath(tool); err != nil {
			debroot.SkipUnlessCI(t, "the self-upgrade test needs %s (apt-get install %s)", tool, pkg)
		}
	}
	aptDir, configDir := t.TempDir(), t.TempDir()
	h := testhost.Boot(t, testhost.Options{
		// Loopback only: the agent's port is the host's own, and apt
		// needs nothing but the file: repository.
		PrivateNetwork: true,
		Binds: []testhost.Bind{
			{Source: aptDir, Target: "/srv/apt", ReadOnly: true},
			{Source: configDir, Target: "/srv/config", ReadOnly: true},
		},
	})

	// The packages: 1.0.0 and 1.1.0 as make deb builds them, and 1.2.0
	// whose postinst fails at configure.
	start := time.Now()
	for _, v := range []string{"1.0.0", "1.1.0", "1.2.0"} {
		deb := buildDeb(t, v)
		if v == "1.2.0" {
			deb = breakPostinst(t, deb)
		}
		copyFile(t, deb, filepath.Join(aptDir, filepath.Base(deb)))
	}
	t.Logf("3 packages built in %v", time.Since(start).Round(time.Second))
	// A flat repository of them all (-m: every version, not the newest).
	scan := exec.Command("dpkg-scanpackages", "-m", ".", "/dev/null")
	scan.Dir = aptDir
	index, err := scan.Output()
	if err != nil {
		t.Fatalf("dpkg-scanpackages: %v", err)
	}
	if err := os.WriteFile(filepath.Join(aptDir, "Packages"), index, 0o644); err != nil {
		t.Fatal(err)
	}
	h.WriteFile("/etc/apt/sources.list.d/cairn-test.list", []byte("deb [trusted=yes] file:/srv/apt ./\n"), 0o644)
	// Only this source is updated: Debian's lists stay as the host has
	// them, and nothing reaches for the network.
	h.Run("apt-get", "update", "-q",
		"-o", "Dir::Etc::sourcelist=sources.list.d/cairn-test.list",
		"-o", "Dir::Etc::sourceparts=-", "-o", "APT::Get::List-Cleanup=0")
	if out := h.Run("apt-cache", "madison", "cairn"); strings.Count(out, "cairn |") != 3 {
		t.Fatalf("apt-cache madison cairn: want 1.0.0, 1.1.0 and 1.2.0:\n%s", out)
	}

	// The configuration repository, bound into the host: a first commit
	// that manages a file.
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", configDir, "-c", "user.name=test", "-c", "user.email=test@example.org"}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	commit := func(config, msg string) string {
		t.Helper()
		if err := os.WriteFile(filepath.Join(configDir, "main.cairn"), []byte(config), 0o644); err != nil {
			t.Fatal(err)
		}
		git("add", "main.cairn")
		git("commit", "-q", "-m", msg)
		return git("rev-parse", "HEAD")
	}
	git("init", "-q", "-b", "main")
	marker := "file \"/etc/cairn-selfup\" {\n  content = \"hello\\n\"\n}\n"
	c1 := commit(marker, "a file")

	// cairn 1.0.0, installed by hand: enabled, not started (no
	// CAIRN_REPO yet).
	h.CopyIn(filepath.Join(aptDir, "cairn_1.0.0_"+arch(t)+".deb"), "/root/cairn_1.0.0.deb")
	h.Run("dpkg", "-i", "/root/cairn_1.0.0.deb")
	if state := strings.TrimSpace(exitOutput(t, h, "systemctl", "is-active", "cairn")); state != "inactive" {
		t.Fatalf("after dpkg -i without CAIRN_REPO: cairn is %s, want inactive", state)
	}
	settings := string(h.ReadFile("/etc/default/cairn")) + `
CAIRN_REPO=/srv/config
CAIRN_ALLOW_UNSIGNED=true
CAIRN_LISTEN=127.0.0.1:9479
CAIRN_INTERVAL=1h
CAIRN_CONFIRM=0
`
	h.WriteFile("/etc/default/cairn", []byte(settings), 0o644)
	// A short watchdog: the program handed over to must go on pinging it
	// (the same PID, so the same WATCHDOG_PID), or systemd kills it
	// within the test.
	h.WriteFile("/etc/systemd/system/cairn.service.d/watchdog.conf", []byte("[Service]\nWatchdogSec=4s\n"), 0o644)
	h.Run("systemctl", "daemon-reload")
	h.Run("systemctl", "start", "cairn")
	// (systemd shows the watchdog of a started service only.)
	if got := strings.TrimSpace(h.Run("systemctl", "show", "cairn", "-p", "WatchdogUSec", "--value")); got != "4s" {
		t.Fatalf("cairn.service's watchdog: %s, want the drop-in's 4s", got)
	}
	pid := activePID(t, h)
	doc := waitStatus(t, h, "the first run", func(d statusDoc) bool {
		return d.LastRun != nil && d.LastRun.Commit == c1
	})
	if doc.LastRun.Result != "applied" || doc.Version != "1.0.0" {
		t.Fatalf("the first run: %s, version %s; want applied by 1.0.0 (error: %s)", doc.LastRun.Result, doc.Version, doc.LastRun.Error)
	}

	// The upgrade: a commit that pins cairn at 1.1.0.
	c2 := commit(marker+"\npackage \"cairn\" {\n  version = \"1.1.0\"\n}\n", "cairn 1.1.0")
	h.Run("curl", "-sSf", "-X", "POST", "http://127.0.0.1:9479/trigger")
	// The new program's first run finds the host at the tip: nothing to
	// recover, nothing to do. (Before that run, it shows the move's run,
	// recorded by 1.0.0.)
	doc = waitStatus(t, h, "the upgrade to 1.1.0", func(d statusDoc) bool {
		return d.Version == "1.1.0" && d.LastRun != nil && d.LastRun.Commit == c2 && d.LastRun.Result != "applied"
	})
	if doc.LastRun.Result != "unchanged" || doc.Applied == nil || doc.Applied.Commit != c2 || !doc.Converged {
		t.Fatalf("after the upgrade: last run %s at %s, applied %+v, converged %v; want unchanged at %s, converged", doc.LastRun.Result, doc.LastRun.Commit, doc.Applied, doc.Converged, c2)
	}
	if len(doc.RecentRuns) < 2 || doc.RecentRuns[1].Result != "applied" || doc.RecentRuns[1].Commit != c2 {
		t.Fatalf("the run before the handover: %+v, want the move to %s applied", doc.RecentRuns, c2)
	}
	checkInstalled(t, h, "1.1.0")
	// Two watchdog periods with nothing to do: the new program pings.
	time.Sleep(8 * time.Second)
	if got := activePID(t, h); got != pid {
		t.Fatalf("MainPID %d after the upgrade, want %d: the agent re-executes itself in its process", got, pid)
	}
	if exe := strings.TrimSpace(h.Run("readlink", fmt.Sprintf("/proc/%d/exe", pid))); exe != "/usr/bin/cairn" {
		t.Fatalf("the agent runs %q, want the new /usr/bin/cairn", exe)
	}
	unitIsCalm(t, h)
	metrics := h.Run("curl", "-sSf", "http://127.0.0.1:9479/metrics")
	for _, want := range []string{`cairn_build_info{goversion="`, `,version="1.1.0"} 1`, `cairn_applied_commit_info{branch="main",commit="` + c2 + `"`} {
		if !strings.Contains(metrics, want) {
			t.Fatalf("/metrics lacks %s:\n%s", want, grepLines(metrics, "cairn_build_info|cairn_applied_commit_info"))
		}
	}
	log := unitLog(t, h)
	if n := countMsg(log, "re-executing"); n != 1 {
		t.Fatalf("the unit's log says re-executing %d times, want once:\n%s", n, log)
	}
	if n := countMsg(log, "agent started"); n != 2 {
		t.Fatalf("the unit's log says agent started %d times, want twice (1.0.0, then 1.1.0):\n%s", n, log)
	}
	if strings.Contains(log, "recover") {
		t.Fatalf("the new program recovered something; the move had committed:\n%s", log)
	}
	dpkgLog := string(h.ReadFile("/var/log/dpkg.log"))
	if !regexp.MustCompile(`status installed cairn:\S+ 1\.1\.0`).MatchString(dpkgLog) {
		t.Fatalf("dpkg.log does not show cairn 1.1.0 installed:\n%s", dpkgLog)
	}

	// A failed upgrade: 1.2.0's postinst fails; the move is undone, 1.1.0
	// installed again, and the agent keeps running 1.1.0.
	c3 := commit(marker+"\npackage \"cairn\" {\n  version = \"1.2.0\"\n}\n", "cairn 1.2.0")
	h.Run("curl", "-sSf", "-X", "POST", "http://127.0.0.1:9479/trigger")
	doc = waitStatus(t, h, "the upgrade to 1.2.0", func(d statusDoc) bool {
		return d.LastRun != nil && d.LastRun.Commit == c3
	})
	if doc.LastRun.Result != "failed" || doc.Applied == nil || doc.Applied.Commit != c2 {
		t.Fatalf("the move to 1.2.0: %s, applied %+v; want failed, the host still at %s", doc.LastRun.Result, doc.Applied, c2)
	}
	if !strings.Contains(doc.LastRun.Error, "cairn") {
		t.Fatalf("the failed run's error does not name the package: %q", doc.LastRun.Error)
	}
	if len(doc.BadCommits) == 0 || doc.BadCommits[0].Commit != c3 {
		t.Fatalf("bad commits %+v, want %s", doc.BadCommits, c3)
	}
	checkInstalled(t, h, "1.1.0")
	// Another run: the host stays at c2 (c3 is bad), and the binary, put
	// back by the undo, is the program that runs: no handover.
	before := doc.LastRun.Finished
	h.Run("curl", "-sSf", "-X", "POST", "http://127.0.0.1:9479/trigger")
	doc = waitStatus(t, h, "a run after the failed upgrade", func(d statusDoc) bool {
		return d.LastRun != nil && d.LastRun.Finished.After(before)
	})
	if doc.Version != "1.1.0" || doc.LastRun.Result != "unchanged" || doc.Applied.Commit != c2 {
		t.Fatalf("after the failed upgrade: version %s, last run %s, applied %s; want 1.1.0, unchanged, %s", doc.Version, doc.LastRun.Result, doc.Applied.Commit, c2)
	}
	if got := activePID(t, h); got != pid {
		t.Fatalf("MainPID %d after the failed upgrade, want %d", got, pid)
	}
	unitIsCalm(t, h)
	if n := countMsg(unitLog(t, h), "re-executing"); n != 1 {
		t.Fatalf("the agent re-executed after a failed upgrade (%d re-executions in all, want 1)", n)
	}
	metrics = h.Run("curl", "-sSf", "http://127.0.0.1:9479/metrics")
	for _, want := range []string{`,version="1.1.0"} 1`, `cairn_runs_total{result="failed"} 1`, `cairn_ops_total{direction="inverse",kind="APT-INSTALL"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Fatalf("/metrics after the failed upgrade lacks %s:\n%s", want, grepLines(metrics, "cairn_build_info|cairn_runs_total|cairn_ops_total"))
		}
	}

	// A CHECK of the same commit that fails after the package changed
	// (here a move back to 1.0.0): the move is undone, 1.1.0 installed
	// again, and the agent, which hands over only after a move that
	// holds, keeps running 1.1.0.
	c4 := commit(marker+"\npackage \"cairn\" {\n  version = \"1.0.0\"\n}\n\ncheck \"never\" {\n  command  = \"false\"\n  timeout  = \"2s\"\n  interval = \"1s\"\n}\n", "cairn 1.0.0, and a check that fails")
	h.Run("curl", "-sSf", "-X", "POST", "http://127.0.0.1:9479/trigger")
	doc = waitStatus(t, h, "the move to 1.0.0 with a failing check", func(d statusDoc) bool {
		return d.LastRun != nil && d.LastRun.Commit == c4
	})
	if doc.LastRun.Result != "failed" || doc.Applied == nil || doc.Applied.Commit != c2 || doc.Version != "1.1.0" {
		t.Fatalf("the move to 1.0.0: %s, applied %+v, version %s; want failed, the host still at %s, 1.1.0 running", doc.LastRun.Result, doc.Applied, doc.Version, c2)
	}
	if !strings.Contains(doc.LastRun.Error, "CHECK command false") {
		t.Fatalf("the failed run's error does not name the check: %q", doc.LastRun.Error)
	}
	checkInstalled(t, h, "1.1.0")
	if got := activePID(t, h); got != pid {
		t.Fatalf("MainPID %d after the failed check, want %d", got, pid)
	}
	unitIsCalm(t, h)
	log = unitLog(t, h)
	if n := countMsg(log, "re-executing"); n != 1 {
		t.Fatalf("the agent re-executed after a failed move (%d re-executions in all, want 1)", n)
	}
	dpkgLog = string(h.ReadFile("/var/log/dpkg.log"))
	for _, v := range []string{"1.2.0", "1.0.0"} {
		// Each failed version was really installed (unpacked) before
		// the undo put 1.1.0 back.
		if !regexp.MustCompile(`upgrade cairn:\S+ 1\.1\.0 ` + regexp.QuoteMeta(v)).MatchString(dpkgLog) {
			t.Fatalf("dpkg.log shows no change from 1.1.0 to %s:\n%s", v, dpkgLog)
		}
	}
	t.Logf("the unit's log:\n%s", log)

	// The program handed over to stops as the unit asks.
	h.Run("systemctl", "stop", "cairn")
	if res := strings.TrimSpace(h.Run("systemctl", "show", "cairn", "-p", "Result", "--value")); res != "success" {
		t.Fatalf("systemctl stop cairn: the unit's result is %s, want success\n%s", res, unitLog(t, h))
	}
}

// statusDoc is what the test reads of the agent's /status.
type statusDoc struct {
	Version   string `json:"version"`
	State     string `json:"state"`
	Converged bool   `json:"converged"`
	Applied   *struct {
		Commit string `json:"commit"`
	} `json:"applied"`
	LastRun    *statusRun  `json:"last_run"`
	RecentRuns []statusRun `json:"recent_runs"`
	BadCommits []struct {
		Commit string `json:"commit"`
	} `json:"bad_commits"`
}

type statusRun struct {
	Finished time.Time `json:"finished"`
	Result   string    `json:"result"`
	Commit   string    `json:"commit"`
	Error    string    `json:"error"`
}

// waitStatus polls the agent's /status until done holds (and the agent is
// idle), for at most three minutes; while the agent hands over, nothing
// answers on its port, which is no error.
func waitStatus(t *testing.T, h *testhost.Host, what string, done func(statusDoc) bool) statusDoc {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	var last string
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		r, err := h.Exec(ctx, "curl", "-sSf", "http://127.0.0.1:9479/status")
		cancel()
		if err == nil && r.Code == 0 {
			last = r.Stdout
			var d statusDoc
			if err := json.Unmarshal([]byte(r.Stdout), &d); err != nil {
				t.Fatalf("/status: %v\n%s", err, r.Stdout)
			}
			if d.State == "idle" && done(d) {
				return d
			}
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Fatalf("%s: not done after 3 minutes; last /status:\n%s\nthe unit's log:\n%s", what, last, unitLog(t, h))
	return statusDoc{}
}

// checkInstalled checks that cairn is installed at version and that dpkg's
// database is clean.
func checkInstalled(t *testing.T, h *testhost.Host, version string) {
	t.Helper()
	if got := h.Run("dpkg-query", "-W", "-f=${db:Status-Status} ${Version}", "cairn"); got != "installed "+version {
		t.Fatalf("dpkg-query cairn: %q, want installed %s", got, version)
	}
	if out := h.Run("dpkg", "--audit"); out != "" {
		t.Fatalf("dpkg --audit:\n%s", out)
	}
	if got := strings.TrimSpace(h.Run("cairn", "version")); got != "cairn "+version {
		t.Fatalf("/usr/bin/cairn is %q, want cairn %s", got, version)
	}
}

// activePID returns cairn.service's MainPID, failing unless it is active.
func activePID(t *testing.T, h *testhost.Host) int {
	t.Helper()
	out := h.Run("systemctl", "show", "cairn", "-p", "MainPID", "-p", "ActiveState", "--value")
	var pid int
	var state string
	if _, err := fmt.Sscan(out, &pid, &state); err != nil || pid == 0 || state != "active" {
		t.Fatalf("cairn.service: MainPID and ActiveState %q, want a process, active\n%s", out, unitLog(t, h))
	}
	return pid
}

// unitIsCalm checks that systemd never restarted the agent nor killed
// anything of its unit: the handover is no failure in systemd's eyes.
func unitIsCalm(t *testing.T, h *testhost.Host) {
	t.Helper()
	if n := strings.TrimSpace(h.Run("systemctl", "show", "cairn", "-p", "NRestarts", "--value")); n != "0" {
		t.Fatalf("cairn.service restarted %s times, want 0", n)
	}
	log := unitLog(t, h)
	for _, bad := range []string{"Killing process", "SIGKILL", "Main process exited", "Failed with result", "timed out", "Stopping cairn", "Scheduled restart job", "Watchdog timeout"} {
		if strings.Contains(log, bad) {
			t.Fatalf("the log of cairn.service says %q:\n%s", bad, log)
		}
	}
}

// unitLog returns the log of cairn.service, a record a line: its message,
// then the agent's fields (CAIRN_STATE=idle ...), from journalctl -o json.
func unitLog(t *testing.T, h *testhost.Host) string {
	t.Helper()
	r, err := h.Exec(context.Background(), "journalctl", "-q", "--no-pager", "-o", "json", "-u", "cairn")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil {
			continue
		}
		msg, _ := rec["MESSAGE"].(string)
		b.WriteString(msg)
		var keys []string
		for k := range rec {
			if strings.HasPrefix(k, "CAIRN_") {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, " %s=%v", k, rec[k])
		}
		b.WriteString("\n")
	}
	return b.String()
}

// countMsg counts the records of the agent's log (unitLog) whose message
// is msg.
func countMsg(log, msg string) int {
	n := 0
	for _, l := range strings.Split(log, "\n") {
		if l == msg || strings.HasPrefix(l, msg+" CAIRN_") {
			n++
		}
	}
	return n
}

// exitOutput runs a command inside h and returns its stdout whatever its
// exit code.
func exitOutput(t *testing.T, h *testhost.Host, args ...string) string {
	t.Helper()
	r, err := h.Exec(context.Background(), args...)
	if err != nil {
		t.Fatal(err)
	}
	return r.Stdout
}

// breakPostinst returns a copy of the package deb whose postinst fails at
// configure (the whole package otherwise the same), rebuilt with dpkg-deb.
func breakPostinst(t *testing.T, deb string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tree")
	if out, err := exec.Command("dpkg-deb", "-R", deb, dir).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -R: %v\n%s", err, out)
	}
	postinst := filepath.Join(dir, "DEBIAN", "postinst")
	data, err := os.ReadFile(postinst)
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(data), "set -e\n", "set -e\nif [ \"$1\" = configure ]; then echo 'cairn: this postinst fails on purpose (a test)' >&2; exit 1; fi\n", 1)
	if broken == string(data) {
		t.Fatal("the postinst has no set -e line to break after")
	}
	if err := os.WriteFile(postinst, []byte(broken), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), filepath.Base(deb))
	if b, err := exec.Command("dpkg-deb", "--root-owner-group", "-b", dir, out).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -b: %v\n%s", err, b)
	}
	return out
}

// arch returns dpkg's architecture.
func arch(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("dpkg", "--print-architecture").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// grepLines returns the lines of s that match the regular expression re.
func grepLines(s, re string) string {
	r := regexp.MustCompile(re)
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if r.MatchString(l) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
