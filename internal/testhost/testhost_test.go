package testhost_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairn-cm/cairn/internal/debroot"
	"github.com/cairn-cm/cairn/internal/testhost"
)

// sleeperUnit is a unit of the test's own, which runs until stopped.
const sleeperUnit = `[Unit]
Description=cairn test sleeper

[Service]
ExecStart=/bin/sleep infinity
`

// booted checks that h's systemd has finished booting and is PID 1.
func booted(t *testing.T, h *testhost.Host) {
	t.Helper()
	r, err := h.Exec(context.Background(), "systemctl", "is-system-running")
	if err != nil {
		t.Fatal(err)
	}
	if s := strings.TrimSpace(r.Stdout); s != "running" && s != "degraded" {
		t.Errorf("systemctl is-system-running = %q (exit %d), want running or degraded", s, r.Code)
	}
	if comm := strings.TrimSpace(h.Run("cat", "/proc/1/comm")); comm != "systemd" {
		t.Errorf("PID 1 inside is %q, want systemd", comm)
	}
	if name := strings.TrimSpace(h.Run("hostname")); name != h.Name() {
		t.Errorf("host name inside = %q, want %q", name, h.Name())
	}
}

func TestBootUnitJournal(t *testing.T) {
	t.Parallel()
	h := testhost.Boot(t, testhost.Options{})
	booted(t, h)

	h.WriteFile("/etc/systemd/system/cairn-sleeper.service", []byte(sleeperUnit), 0o644)
	h.Run("systemctl", "daemon-reload")
	h.Run("systemctl", "start", "cairn-sleeper.service")
	if s := strings.TrimSpace(h.Run("systemctl", "show", "-P", "ActiveState", "cairn-sleeper.service")); s != "active" {
		t.Errorf("cairn-sleeper.service is %q after start, want active", s)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(h.Run("systemctl", "show", "-P", "MainPID", "cairn-sleeper.service")))
	if err != nil || pid == 0 {
		t.Fatalf("MainPID of cairn-sleeper.service: %d, %v", pid, err)
	}
	if comm := strings.TrimSpace(h.Run("cat", fmt.Sprintf("/proc/%d/comm", pid))); comm != "sleep" {
		t.Errorf("the unit's main process is %q, want sleep", comm)
	}
	journal := h.Run("journalctl", "-u", "cairn-sleeper.service", "--no-pager", "-o", "cat")
	if !strings.Contains(journal, "Started cairn-sleeper.service - cairn test sleeper.") {
		t.Errorf("journalctl -u cairn-sleeper.service does not show its start:\n%s", journal)
	}
	h.Run("systemctl", "stop", "cairn-sleeper.service")
	if s := strings.TrimSpace(h.Run("systemctl", "show", "-P", "ActiveState", "cairn-sleeper.service")); s != "inactive" {
		t.Errorf("cairn-sleeper.service is %q after stop, want inactive", s)
	}
}

func TestExec(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "shared"), []byte("from the machine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h := testhost.Boot(t, testhost.Options{
		PrivateNetwork: true,
		Binds:          []testhost.Bind{{Source: dir, Target: "/mnt/shared", ReadOnly: true}},
	})

	tests := []struct {
		name      string
		args      []string
		stdout    string
		stderrHas string
		code      int
	}{
		{"exit code", []string{"sh", "-c", "echo out; echo err >&2; exit 3"}, "out\n", "err", 3},
		{"environment of PID 1", []string{"sh", "-c", `echo "$container $HOME ${NOTIFY_SOCKET:-none}"`}, "systemd-nspawn /root none\n", "", 0},
		{"read-only bind", []string{"cat", "/mnt/shared/shared"}, "from the machine\n", "", 0},
		{"bind is read-only", []string{"touch", "/mnt/shared/x"}, "", "Read-only file system", 1},
		{"private network", []string{"sh", "-c", "ls /sys/class/net"}, "lo\n", "", 0},
		{"not found", []string{"no-such-command"}, "", "No such file", 127},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := h.Exec(context.Background(), tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			if r.Stdout != tt.stdout || r.Code != tt.code || !strings.Contains(r.Stderr, tt.stderrHas) {
				t.Errorf("%q: stdout %q, exit %d, stderr %q; want %q, %d, stderr with %q", tt.args, r.Stdout, r.Code, r.Stderr, tt.stdout, tt.code, tt.stderrHas)
			}
		})
	}

	t.Run("files both ways", func(t *testing.T) {
		h.WriteFile("/srv/in/a", []byte("a\n"), 0o600)
		if got := h.Run("stat", "-c", "%a %s", "/srv/in/a"); got != "600 2\n" {
			t.Errorf("stat inside of a file written outside: %q", got)
		}
		src := filepath.Join(dir, "tool")
		if err := os.WriteFile(src, []byte("#!/bin/sh\necho tool ran\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		h.CopyIn(src, "/usr/local/bin/tool")
		if got := h.Run("tool"); got != "tool ran\n" {
			t.Errorf("a copied-in executable printed %q", got)
		}
		h.Run("sh", "-c", "echo made inside > /root/b")
		if got := string(h.ReadFile("/root/b")); got != "made inside\n" {
			t.Errorf("ReadFile of a file made inside: %q", got)
		}
	})

	t.Run("timeout kills the command", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := h.Exec(ctx, "sleep", "1000")
		if err == nil {
			t.Fatal("sleep 1000 under a 500ms deadline returned no error")
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("Exec returned %v after its deadline", d)
		}
		// The sleep inside is gone too, not just nsenter.
		deadline := time.Now().Add(5 * time.Second)
		for {
			r, err := h.Exec(context.Background(), "pgrep", "-x", "sleep")
			if err != nil {
				t.Fatal(err)
			}
			if r.Code == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("sleep still runs inside after its Exec was cancelled: %s", r.Stdout)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

// hostProcs are what the machine sees of a booted host: its name, the
// leader's PID namespace and cgroups.
type hostProcs struct {
	name, pidns, cgroup string
}

func procsOf(t *testing.T, h *testhost.Host) hostProcs {
	t.Helper()
	p := hostProcs{name: h.Name()}
	var err error
	if p.pidns, err = os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", h.Leader())); err != nil {
		t.Fatal(err)
	}
	cgroup, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", h.Leader()))
	if err != nil {
		t.Fatal(err)
	}
	p.cgroup = string(cgroup)
	return p
}

// left returns what of p still runs: nspawn and the processes inside.
func (p hostProcs) left() []string {
	var left []string
	for _, pid := range testhost.Procs(p.name) {
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		left = append(left, fmt.Sprintf("%s %d", strings.TrimSpace(string(comm)), pid))
	}
	return left
}

// TestTwoHosts runs two hosts at once: each has its own systemd, names,
// cgroups and units, and after the test's cleanup nothing of either runs.
func TestTwoHosts(t *testing.T) {
	t.Parallel()
	var procs [2]hostProcs
	var roots [2]string
	t.Run("boot", func(t *testing.T) {
		// One after the other: Boot may end the test (t.Fatal, t.Skip), which
		// only the test's goroutine may do. Boots at the same time are
		// the parallel tests'.
		hosts := [2]*testhost.Host{testhost.Boot(t, testhost.Options{}), testhost.Boot(t, testhost.Options{})}
		if hosts[0].Name() == hosts[1].Name() || hosts[0].Root() == hosts[1].Root() {
			t.Fatalf("two hosts share a name or root: %s %s, %s %s", hosts[0].Name(), hosts[0].Root(), hosts[1].Name(), hosts[1].Root())
		}
		for i, h := range hosts {
			booted(t, h)
			procs[i], roots[i] = procsOf(t, h), h.Root()
			// The check below must see a running host.
			if left := procs[i].left(); len(left) < 3 || !slices.ContainsFunc(left, func(p string) bool { return strings.HasPrefix(p, "systemd-nspawn ") }) {
				t.Errorf("host %d: the processes seen of it are %v, want nspawn, systemd and more", i, left)
			}
		}
		if procs[0].pidns == procs[1].pidns {
			t.Errorf("both hosts are in PID namespace %s", procs[0].pidns)
		}
		// Else their systemds would manage the same cgroups.
		if procs[0].cgroup == procs[1].cgroup {
			t.Errorf("both hosts' systemds are in the cgroups\n%s", procs[0].cgroup)
		}
		if a, b := hosts[0].ReadFile("/etc/machine-id"), hosts[1].ReadFile("/etc/machine-id"); string(a) == string(b) {
			t.Errorf("both hosts have machine id %s", a)
		}
		// A unit started in one is not in the other.
		hosts[0].WriteFile("/etc/systemd/system/cairn-sleeper.service", []byte(sleeperUnit), 0o644)
		hosts[0].Run("systemctl", "daemon-reload")
		hosts[0].Run("systemctl", "start", "cairn-sleeper.service")
		if s := strings.TrimSpace(hosts[0].Run("systemctl", "is-active", "cairn-sleeper.service")); s != "active" {
			t.Errorf("cairn-sleeper.service in the first host: %s", s)
		}
		r, err := hosts[1].Exec(context.Background(), "systemctl", "is-active", "cairn-sleeper.service")
		if err != nil {
			t.Fatal(err)
		}
		if s := strings.TrimSpace(r.Stdout); s != "inactive" || r.Code == 0 {
			t.Errorf("cairn-sleeper.service in the second host: %s (exit %d), want inactive", s, r.Code)
		}
		r, err = hosts[1].Exec(context.Background(), "pgrep", "-x", "sleep")
		if err != nil {
			t.Fatal(err)
		}
		if r.Code != 1 {
			t.Errorf("pgrep -x sleep in the second host: exit %d, %s; want none (exit 1)", r.Code, r.Stdout)
		}
	})
	if procs[0].name == "" {
		return // skipped, or failed to boot
	}
	for i, p := range procs {
		if left := p.left(); len(left) > 0 {
			t.Errorf("host %d: still running after its test ended: %s", i, strings.Join(left, ", "))
		}
		if _, err := os.Stat(roots[i]); !os.IsNotExist(err) {
			t.Errorf("host %d: its root %s is still there (%v)", i, roots[i], err)
		}
	}
}

// TestOfflineInstall installs nginx-light from the .debs the root holds,
// with no network but loopback, and sees the real service it brings run.
func TestOfflineInstall(t *testing.T) {
	t.Parallel()
	h := testhost.Boot(t, testhost.Options{PrivateNetwork: true})
	h.Run("apt-get", "install", "-y", "-q", "--no-download", "nginx-light")
	if s := strings.TrimSpace(h.Run("systemctl", "is-active", "nginx.service")); s != "active" {
		t.Errorf("nginx.service is %q after its install, want active", s)
	}
	if code := h.Run("curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1/"); code != "200" {
		t.Errorf("nginx inside answered %q, want 200", code)
	}
	journal := h.Run("journalctl", "-u", "nginx.service", "--no-pager", "-o", "cat")
	if !strings.Contains(journal, "Started nginx.service") {
		t.Errorf("journalctl -u nginx.service does not show its start:\n%s", journal)
	}
}

// TestBootFails boots a host that cannot be running in time (a timeout of
// zero seconds): the script says why, with the console, and leaves nothing
// behind.
func TestBootFails(t *testing.T) {
	t.Parallel()
	testhost.Boot(t, testhost.Options{}) // skips where hosts cannot boot
	script, err := debroot.RepoFile("scripts/testhost.sh")
	if err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "root")
	name := fmt.Sprintf("cairn-fails-%d", os.Getpid())
	out, err := exec.Command(script, "boot", "--timeout", "0", name, dest).CombinedOutput()
	if err == nil {
		t.Fatalf("boot --timeout 0 succeeded:\n%s", out)
	}
	for _, want := range []string{name + " did not boot: ", "--- console:"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("boot --timeout 0 says no %q:\n%s", want, out)
		}
	}
	if left := testhost.Procs(name); len(left) > 0 {
		t.Errorf("processes %v of the host that did not boot are running", left)
	}
	for _, p := range []string{dest, "/run/cairn-testhost/" + name} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s is still there after a failed boot (%v)", p, err)
		}
	}
}
