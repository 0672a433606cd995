package systemd

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// tempRoot makes a root with unit files in etc/systemd/system and returns
// it with the name of a unit that can be enabled.
func tempRoot(t *testing.T) (root, unit string) {
	t.Helper()
	if _, err := exec.LookPath("systemctl"); err != nil {
		t.Skip("systemctl is not installed (Debian package systemd)")
	}
	root = t.TempDir()
	unit = fmt.Sprintf("cairn-t-%04x.service", rand.IntN(1<<16))
	dir := filepath.Join(root, "etc/systemd/system")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		unit:                     "[Service]\nExecStart=/bin/true\n\n[Install]\nWantedBy=multi-user.target\n",
		"cairn-t-static.service": "[Service]\nExecStart=/bin/true\n",
		"cairn-t.socket":         "[Socket]\nListenStream=/run/cairn-t.sock\n\n[Install]\nWantedBy=sockets.target\n",
		"cairn-t.service":        "[Service]\nExecStart=/bin/true\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root, unit
}

// TestManagerOffline enables and disables units with systemctl --root on a
// temp root, and reads their state back.
func TestManagerOffline(t *testing.T) {
	root, unit := tempRoot(t)
	m := New(root)
	if m.Live() {
		t.Fatalf("New(%s) talks to the running systemd; a root other than / must not", root)
	}
	ctx := context.Background()
	state := func(u string) string {
		t.Helper()
		s, err := m.UnitFileState(ctx, u)
		if err != nil {
			t.Fatalf("UnitFileState %s: %v", u, err)
		}
		return s
	}
	for u, want := range map[string]string{unit: "disabled", strings.TrimSuffix(unit, ".service"): "disabled", "cairn-t-static.service": "static", "cairn-t-nosuch.service": "not-found", "cairn-t.socket": "disabled"} {
		if got := state(u); got != want {
			t.Errorf("%s: state %q, want %q", u, got, want)
		}
	}
	link := filepath.Join(root, "etc/systemd/system/multi-user.target.wants", unit)
	for _, u := range []string{unit, "cairn-t.socket"} {
		if err := m.Enable(ctx, u); err != nil {
			t.Fatalf("Enable %s: %v", u, err)
		}
		if on, err := m.IsEnabled(ctx, u); err != nil || !on {
			t.Errorf("IsEnabled %s after Enable: %v, %v", u, on, err)
		}
	}
	if _, err := os.Lstat(link); err != nil {
		t.Errorf("Enable made no link: %v", err)
	}
	for _, u := range []string{unit, "cairn-t.socket"} {
		if err := m.Disable(ctx, u); err != nil {
			t.Fatalf("Disable %s: %v", u, err)
		}
		if on, err := m.IsEnabled(ctx, u); err != nil || on {
			t.Errorf("IsEnabled %s after Disable: %v, %v", u, on, err)
		}
	}
	if _, err := os.Lstat(link); !os.IsNotExist(err) {
		t.Errorf("Disable left the link: %v", err)
	}
	for _, tc := range []struct{ unit, want string }{
		{"cairn-t-nosuch.service", "does not exist"},
		{"cairn-t-static.service", "[Install]"},
		{"--global", "does not exist"}, // a unit name is never an option
	} {
		err := m.Enable(ctx, tc.unit)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Enable %s: %v, want an error saying %q", tc.unit, err, tc.want)
		}
	}
}

// TestManagerNotRunning checks that what needs a running systemd fails
// with an error saying why, never silently, where there is none: on a
// temp root always, and on / when PID 1 is not systemd (as here, in a
// container).
func TestManagerNotRunning(t *testing.T) {
	root, unit := tempRoot(t)
	roots := []string{root}
	if !Booted() {
		roots = append(roots, "/")
	}
	ctx := context.Background()
	for _, r := range roots {
		m := New(r)
		want := "no systemd is running (PID 1 is "
		if Booted() {
			want = "not the running system"
		}
		for _, tc := range []struct {
			name string
			call func() error
			verb string
		}{
			{"Start", func() error { return m.Start(ctx, unit) }, "cannot start units"},
			{"Stop", func() error { return m.Stop(ctx, unit) }, "cannot stop units"},
			{"Restart", func() error { return m.Restart(ctx, unit) }, "cannot restart units"},
			{"DaemonReload", func() error { return m.DaemonReload(ctx) }, "cannot reload"},
			{"CheckActive", func() error { return m.CheckActive(ctx, unit) }, "cannot check"},
			{"Running", m.Running, "cannot start"},
		} {
			err := tc.call()
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), tc.verb) {
				t.Errorf("root %s: %s: %v, want an error saying %q and %q", r, tc.name, err, want, tc.verb)
			}
		}
		if on, err := m.IsActive(ctx, unit); on || err != nil {
			t.Errorf("root %s: IsActive: %v, %v; want not active (nothing runs)", r, on, err)
		}
	}
}

// TestManagerLive acts on the running systemd over D-Bus; it runs only on
// a host booted with systemd, as root.
func TestManagerLive(t *testing.T) {
	if !Booted() {
		t.Skipf("PID 1 is %s, not systemd: no running systemd to test against", pid1Name())
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to manage units")
	}
	m := New("/")
	if !m.Live() {
		t.Fatal("New(/) on a host booted with systemd does not talk to it")
	}
	ctx := context.Background()
	unit := fmt.Sprintf("cairn-t-%04x.service", rand.IntN(1<<16))
	file := filepath.Join("/run/systemd/system", unit)
	if err := os.WriteFile(file, []byte("[Service]\nExecStart=/bin/sleep infinity\n\n[Install]\nWantedBy=multi-user.target\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m.Stop(ctx, unit)
		os.Remove(file)
		m.DaemonReload(ctx)
	})
	if err := m.DaemonReload(ctx); err != nil {
		t.Fatal(err)
	}
	if on, err := m.IsActive(ctx, unit); err != nil || on {
		t.Fatalf("IsActive before Start: %v, %v", on, err)
	}
	if err := m.Start(ctx, unit); err != nil {
		t.Fatal(err)
	}
	if err := m.CheckActive(ctx, unit); err != nil {
		t.Errorf("CheckActive after Start: %v", err)
	}
	if err := m.Restart(ctx, unit); err != nil {
		t.Errorf("Restart: %v", err)
	}
	if err := m.Stop(ctx, unit); err != nil {
		t.Fatal(err)
	}
	if on, err := m.IsActive(ctx, unit); err != nil || on {
		t.Errorf("IsActive after Stop: %v, %v", on, err)
	}
	if err := m.Start(ctx, "cairn-t-nosuch.service"); err == nil {
		t.Error("Start of a unit that does not exist succeeded")
	}
}

// TestSystemctlOwnProcessGroup checks that systemctl runs in a process
// group of its own, out of the reach of a terminal's Ctrl-C, which goes to
// cairn's whole foreground process group (debian's TestToolsOwnProcessGroup
// holds the same for apt and the shadow tools). A stand-in systemctl
// reports its pid and process group.
func TestSystemctlOwnProcessGroup(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "pgid")
	// Fields 1 and 5 of /proc/PID/stat are the pid and the process group.
	body := "#!/bin/sh\nset -- $(cat /proc/$$/stat)\necho \"$1 $5\" > " + out + "\necho enabled\n"
	if err := os.WriteFile(filepath.Join(dir, "systemctl"), []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	if state, err := New(t.TempDir()).UnitFileState(context.Background(), "cairn-t.service"); err != nil || state != "enabled" {
		t.Fatalf("UnitFileState = %q, %v", state, err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var pid, pgid int
	if _, err := fmt.Sscan(string(b), &pid, &pgid); err != nil {
		t.Fatalf("probe wrote %q", b)
	}
	if pgid == syscall.Getpgrp() || pgid != pid {
		t.Errorf("systemctl (pid %d) ran in process group %d, cairn's is %d: a terminal's Ctrl-C would reach it", pid, pgid, syscall.Getpgrp())
	}
}

// exitError returns the error of a real program that exits with code.
func exitError(t *testing.T, code int) error {
	t.Helper()
	err := exec.Command("sh", "-c", fmt.Sprintf("exit %d", code)).Run()
	if err == nil {
		t.Fatalf("sh -c 'exit %d' succeeded", code)
	}
	return err
}

// TestReadIsEnabled reads what systemd 252's systemctl --root=R
// is-enabled -- UNITS... prints: one state per unit in order, whatever its
// exit status (0 when one is enabled), and, at the first unit it cannot
// tell, its reason on stderr, and nothing more.
func TestReadIsEnabled(t *testing.T) {
	const noSuch = "Failed to get unit file state for %s: No such file or directory\n"
	for _, tc := range []struct {
		name           string
		units          []string
		stdout, stderr string
		code           int // exit status, -1 not run
		want           map[string]string
		rest           []string
	}{
		{"every state", []string{"a.service", "b.service", "c.service", "d.service", "e.service", "t@x.service", "t@.service"},
			"enabled\ndisabled\nstatic\nmasked\nalias\nenabled-runtime\nindirect\n", "", 0,
			map[string]string{"a.service": "enabled", "b.service": "disabled", "c.service": "static", "d.service": "masked", "e.service": "alias", "t@x.service": "enabled-runtime", "t@.service": "indirect"}, nil},
		{"none enabled", []string{"b.service", "c.service"}, "disabled\nstatic\n", "", 1,
			map[string]string{"b.service": "disabled", "c.service": "static"}, nil},
		{"unknown in the middle", []string{"a.service", "nope.service", "b.service", "c.service"}, "enabled\n", fmt.Sprintf(noSuch, "nope.service"), 1,
			map[string]string{"a.service": "enabled", "nope.service": "not-found"}, []string{"b.service", "c.service"}},
		{"unknown first", []string{"nope.service", "a.service"}, "", fmt.Sprintf(noSuch, "nope.service"), 1,
			map[string]string{"nope.service": "not-found"}, []string{"a.service"}},
		{"unknown last", []string{"a.service", "nope.service"}, "enabled\n", fmt.Sprintf(noSuch, "nope.service"), 1,
			map[string]string{"a.service": "enabled", "nope.service": "not-found"}, []string{}},
		{"another failure: asked alone", []string{"a.service", "bad.service", "b.service"}, "enabled\n", "Failed to get unit file state for bad.service: Permission denied\n", 1,
			map[string]string{"a.service": "enabled"}, []string{"b.service"}},
		{"a failure naming no unit: the rest alone", []string{"a.service", "b.service"}, "", "Failed to connect to bus\n", 1,
			map[string]string{}, nil},
		{"not run", []string{"a.service"}, "", "", -1, map[string]string{}, nil},
		{"more lines than units", []string{"a.service"}, "enabled\nenabled\n", "", 0, map[string]string{}, nil},
		{"not a state", []string{"a.service", "b.service"}, "enabled\nsome words\n", "", 0, map[string]string{"a.service": "enabled"}, nil},
		{"fewer lines, exit 0", []string{"a.service", "b.service"}, "enabled\n", "", 0, map[string]string{"a.service": "enabled"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			switch {
			case tc.code > 0:
				err = exitError(t, tc.code)
			case tc.code < 0:
				err = exec.ErrNotFound
			}
			states, rest := readIsEnabled(tc.units, tc.stdout, tc.stderr, err)
			if !maps.Equal(states, tc.want) {
				t.Errorf("states %v, want %v", states, tc.want)
			}
			if !slices.Equal(rest, tc.rest) {
				t.Errorf("rest %q, want %q", rest, tc.rest)
			}
		})
	}
}

// countingSystemctl puts a systemctl first in PATH that counts its runs in
// a file, then runs the real one; it returns the count's reader.
func countingSystemctl(t *testing.T) func() int {
	t.Helper()
	real, err := exec.LookPath("systemctl")
	if err != nil {
		t.Skip("systemctl is not installed (Debian package systemd)")
	}
	dir := t.TempDir()
	count := filepath.Join(dir, "runs")
	body := fmt.Sprintf("#!/bin/sh\necho run >> %s\nexec %s \"$@\"\n", count, real)
	if err := os.WriteFile(filepath.Join(dir, "systemctl"), []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return func() int {
		b, _ := os.ReadFile(count)
		return strings.Count(string(b), "run")
	}
}

// TestUnitFileStatesAgree checks that UnitFileStates and AreEnabled say of
// units in every state, on a root read by systemctl --root, what
// UnitFileState and IsEnabled say one by one, in one systemctl run and one
// more after each unit that does not exist.
func TestUnitFileStatesAgree(t *testing.T) {
	root, unit := tempRoot(t)
	// Unit files where packages put them: a unit masked in /etc hides one.
	dir := filepath.Join(root, "usr/lib/systemd/system")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{
		"cairn-t-alias.service":  "[Service]\nExecStart=/bin/true\n\n[Install]\nWantedBy=multi-user.target\nAlias=cairn-t-other.service\n",
		"cairn-t-masked.service": "[Service]\nExecStart=/bin/true\n\n[Install]\nWantedBy=multi-user.target\n",
		"cairn-t-tmpl@.service":  "[Service]\nExecStart=/bin/true\n\n[Install]\nWantedBy=multi-user.target\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m := New(root)
	ctx := context.Background()
	for _, u := range []string{"cairn-t-alias.service", "cairn-t-tmpl@a.service", "cairn-t.socket"} {
		if err := m.Enable(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("systemctl", "--root="+root, "mask", "cairn-t-masked.service").CombinedOutput(); err != nil {
		t.Fatalf("systemctl mask: %v: %s", err, out)
	}
	units := []string{unit, "cairn-t-nosuch.service", "cairn-t-alias.service", "cairn-t-other.service",
		"cairn-t-static", "cairn-t-masked.service", "cairn-t-tmpl@a.service", "cairn-t-tmpl@b.service",
		"cairn-t-tmpl@.service", "cairn-t-nosuch2", "cairn-t.socket", "cairn-t-static.service", strings.TrimSuffix(unit, ".service")}
	want := map[string]string{unit: "disabled", "cairn-t-nosuch.service": "not-found", "cairn-t-alias.service": "enabled",
		"cairn-t-other.service": "alias", "cairn-t-static": "static", "cairn-t-masked.service": "masked",
		"cairn-t-tmpl@a.service": "enabled", "cairn-t-tmpl@b.service": "disabled", "cairn-t-tmpl@.service": "indirect",
		"cairn-t-nosuch2": "not-found", "cairn-t.socket": "enabled", "cairn-t-static.service": "static", strings.TrimSuffix(unit, ".service"): "disabled"}
	runs := countingSystemctl(t)
	states, err := m.UnitFileStates(ctx, units)
	if err != nil {
		t.Fatal(err)
	}
	if n := runs(); n != 3 {
		t.Errorf("UnitFileStates of %d units, 2 of them unknown, ran systemctl %d times, want 3", len(units), n)
	}
	if !maps.Equal(states, want) {
		t.Errorf("UnitFileStates = %v\nwant %v", states, want)
	}
	enabled, err := m.AreEnabled(ctx, units)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range units {
		st, err := m.UnitFileState(ctx, u)
		if err != nil {
			t.Fatalf("UnitFileState %s: %v", u, err)
		}
		on, err := m.IsEnabled(ctx, u)
		if err != nil {
			t.Fatalf("IsEnabled %s: %v", u, err)
		}
		if st != states[u] || on != enabled[u] {
			t.Errorf("%s: UnitFileState %q IsEnabled %v, UnitFileStates %q AreEnabled %v", u, st, on, states[u], enabled[u])
		}
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := m.UnitFileStates(cancelled, units); err == nil {
		t.Error("UnitFileStates with a cancelled context: no error")
	}
}
