package systemd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
)

// Manager is the unit driver of one root. The zero value is not usable;
// call New.
type Manager struct {
	root string
	// live is set when systemd runs as PID 1 and the root is /: units are
	// managed over D-Bus, and can be started and stopped.
	live bool
	// pid1 names PID 1 when systemd is not running, for error messages.
	pid1 string
}

// New returns the unit driver for the root at path root (a host path). It
// talks to the running systemd when PID 1 is systemd and root is /, and
// uses systemctl --root otherwise.
func New(root string) *Manager {
	m := &Manager{root: filepath.Clean(root)}
	booted := Booted()
	m.live = booted && m.root == "/"
	if !booted {
		m.pid1 = pid1Name()
	}
	return m
}

// Booted reports whether the host runs systemd as PID 1 (whether
// /run/systemd/system exists, as sd_booted(3) checks).
func Booted() bool {
	st, err := os.Lstat("/run/systemd/system")
	return err == nil && st.IsDir()
}

// Live reports whether the manager acts on a running systemd (over D-Bus).
func (m *Manager) Live() bool { return m.live }

// unitTypes are the unit type suffixes systemd knows.
var unitTypes = []string{".service", ".socket", ".target", ".device", ".mount", ".automount", ".swap", ".timer", ".path", ".slice", ".scope"}

// fullName returns a unit name with its type: like systemctl, a name
// without one is a service (nginx is nginx.service).
func fullName(unit string) string {
	for _, t := range unitTypes {
		if strings.HasSuffix(unit, t) {
			return unit
		}
	}
	return unit + ".service"
}

// pid1Name returns the command name of PID 1, or "unknown".
func pid1Name() string {
	b, err := os.ReadFile("/proc/1/comm")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

// notLive explains why verb cannot be done here.
func (m *Manager) notLive(verb string) error {
	if m.pid1 != "" {
		return fmt.Errorf("no systemd is running (PID 1 is %s): cannot %s", m.pid1, verb)
	}
	return fmt.Errorf("the root is %s, not the running system /: cannot %s", m.root, verb)
}

// Running returns nil if a systemd runs the root's units, so that they can
// be started, stopped and reloaded, else an error that says why not.
func (m *Manager) Running() error {
	if m.live {
		return nil
	}
	return m.notLive("start, stop or reload units")
}

// IsEnabled reports whether unit is enabled (enabled, enabled-runtime or
// an alias of an enabled unit). A unit that does not exist is not enabled.
func (m *Manager) IsEnabled(ctx context.Context, unit string) (bool, error) {
	state, err := m.UnitFileState(ctx, unit)
	if err != nil {
		return false, err
	}
	return enabledState(state), nil
}

func enabledState(state string) bool {
	switch state {
	case "enabled", "enabled-runtime", "alias":
		return true
	}
	return false
}

// UnitFileState returns the unit file state of unit, as `systemctl
// is-enabled` prints it (enabled, disabled, static, masked, ...), or
// "not-found" when the unit does not exist.
func (m *Manager) UnitFileState(ctx context.Context, unit string) (string, error) {
	unit = fullName(unit)
	if m.live {
		return m.liveUnitFileState(ctx, unit)
	}
	out, stderr, err := m.systemctl(ctx, "is-enabled", "--", unit)
	state := strings.TrimSpace(out)
	if state != "" && !strings.ContainsAny(state, " \n") {
		// is-enabled exits non-zero for disabled units; the state is what
		// it printed.
		return state, nil
	}
	if err != nil && strings.Contains(stderr, "No such file or directory") {
		return "not-found", nil
	}
	if err != nil {
		return "", fmt.Errorf("systemctl --root=%s is-enabled %s: %s", m.root, unit, errText(err, stderr))
	}
	return "", fmt.Errorf("systemctl --root=%s is-enabled %s: unexpected output %q", m.root, unit, out)
}

// UnitFileStates returns the unit file states of several units, as
// UnitFileState would one by one, asking for all at once: one systemctl
// --root=ROOT is-enabled of them all (and one more after each unit that
// does not exist, at which systemctl stops), or one D-Bus connection on a
// running systemd. A unit whose state it cannot tell is missing from the
// map: UnitFileState, asked for it alone, says why. The error is that of
// ctx, or of a D-Bus connection that could not be made.
func (m *Manager) UnitFileStates(ctx context.Context, units []string) (map[string]string, error) {
	var names []string
	seen := make(map[string]bool, len(units))
	for _, u := range units {
		if n := fullName(u); !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	states := map[string]string{}
	if m.live {
		c, err := m.conn(ctx)
		if err != nil {
			return nil, err
		}
		defer c.Close()
		for _, n := range names {
			if st, err := m.connUnitFileState(ctx, c, n); err == nil {
				states[n] = st
			}
		}
	} else {
		for rest := names; len(rest) > 0; {
			out, stderr, err := m.systemctl(ctx, append([]string{"is-enabled", "--"}, rest...)...)
			if ctx.Err() != nil {
				break
			}
			var got map[string]string
			got, rest = readIsEnabled(rest, out, stderr, err)
			maps.Copy(states, got)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("unit file states: %w", err)
	}
	byName := make(map[string]string, len(units))
	for _, u := range units {
		if st, ok := states[fullName(u)]; ok {
			byName[u] = st
		}
	}
	return byName, nil
}

// AreEnabled reports whether each of several units is enabled, as
// IsEnabled would one by one, asking for all at once (UnitFileStates). A
// unit it cannot tell is missing from the map: ask IsEnabled.
func (m *Manager) AreEnabled(ctx context.Context, units []string) (map[string]bool, error) {
	states, err := m.UnitFileStates(ctx, units)
	if err != nil {
		return nil, err
	}
	enabled := make(map[string]bool, len(states))
	for u, st := range states {
		enabled[u] = enabledState(st)
	}
	return enabled, nil
}

// readIsEnabled reads what systemctl is-enabled -- UNITS... printed and how
// it ended. systemctl prints the state of each unit, one line each, in
// order, and stops at the first unit it cannot tell, saying why on stderr
// ("Failed to get unit file state for U: No such file or directory" for one
// that does not exist); its exit status says only whether one of them is
// enabled. It returns the states read (not-found for a unit that does not
// exist, as UnitFileState has it) and the units after the one it stopped
// at, still to ask. A unit in neither is one to ask alone: one it could
// not tell for another reason, or every unit left when the output is not
// what systemctl prints.
func readIsEnabled(units []string, stdout, stderr string, err error) (states map[string]string, rest []string) {
	states = map[string]string{}
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if stdout == "" {
		lines = nil
	}
	if len(lines) > len(units) {
		return states, nil
	}
	for i, l := range lines {
		if l == "" || strings.ContainsAny(l, " \t") {
			return states, nil
		}
		states[units[i]] = l
	}
	k := len(lines)
	if k == len(units) || err == nil {
		return states, nil
	}
	var exit *exec.ExitError
	failed := "Failed to get unit file state for " + units[k] + ": "
	switch {
	case !errors.As(err, &exit) || !strings.Contains(stderr, failed):
		return states, nil
	case strings.Contains(stderr, failed+"No such file or directory"):
		states[units[k]] = "not-found"
	}
	return states, units[k+1:]
}

// Enable enables unit, and fails if it is not enabled afterwards (a unit
// with no [Install] section cannot be enabled) or does not exist.
func (m *Manager) Enable(ctx context.Context, unit string) error {
	unit = fullName(unit)
	if m.live {
		if err := m.liveEnable(ctx, unit, true); err != nil {
			return err
		}
	} else if _, stderr, err := m.systemctl(ctx, "enable", "--", unit); err != nil {
		return fmt.Errorf("systemctl --root=%s enable %s: %s", m.root, unit, errText(err, stderr))
	}
	state, err := m.UnitFileState(ctx, unit)
	if err != nil {
		return err
	}
	if !enabledState(state) {
		return fmt.Errorf("%s is %s after enabling it (does the unit have an [Install] section?)", unit, state)
	}
	return nil
}

// Disable disables unit.
func (m *Manager) Disable(ctx context.Context, unit string) error {
	unit = fullName(unit)
	if m.live {
		return m.liveEnable(ctx, unit, false)
	}
	if _, stderr, err := m.systemctl(ctx, "disable", "--", unit); err != nil {
		return fmt.Errorf("systemctl --root=%s disable %s: %s", m.root, unit, errText(err, stderr))
	}
	return nil
}

// IsActive reports whether unit is active (or reloading). Where no systemd
// runs the root's units, no unit is active.
func (m *Manager) IsActive(ctx context.Context, unit string) (bool, error) {
	unit = fullName(unit)
	if !m.live {
		return false, nil
	}
	// A unit that does not exist is not active: Capture may look before
	// the step that writes its file has run.
	state, _, err := m.activeState(ctx, unit)
	if err != nil {
		return false, err
	}
	return state == "active" || state == "reloading", nil
}

// CheckActive returns nil if unit is active, else why not.
func (m *Manager) CheckActive(ctx context.Context, unit string) error {
	unit = fullName(unit)
	if !m.live {
		return m.notLive("check whether units are active")
	}
	state, exists, err := m.activeState(ctx, unit)
	if err != nil {
		return err
	}
	if !exists {
		return fmt.Errorf("unit %s does not exist", unit)
	}
	if state != "active" {
		return fmt.Errorf("unit %s is %s", unit, state)
	}
	return nil
}

// Start starts unit and waits for its start job to finish.
func (m *Manager) Start(ctx context.Context, unit string) error {
	return m.job(ctx, "start", unit, (*sddbus.Conn).StartUnitContext)
}

// Stop stops unit and waits for its stop job to finish.
func (m *Manager) Stop(ctx context.Context, unit string) error {
	return m.job(ctx, "stop", unit, (*sddbus.Conn).StopUnitContext)
}

// Restart restarts unit (starting it if it is not running) and waits for
// the job to finish.
func (m *Manager) Restart(ctx context.Context, unit string) error {
	return m.job(ctx, "restart", unit, (*sddbus.Conn).RestartUnitContext)
}

// DaemonReload makes systemd reload its unit files (systemctl
// daemon-reload).
func (m *Manager) DaemonReload(ctx context.Context) error {
	if !m.live {
		return m.notLive("reload the systemd manager")
	}
	c, err := m.conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.ReloadContext(ctx); err != nil {
		return fmt.Errorf("daemon-reload: %w", err)
	}
	return nil
}

type jobFunc func(c *sddbus.Conn, ctx context.Context, name, mode string, ch chan<- string) (int, error)

// job runs a start, stop or restart job over D-Bus and waits for its result.
func (m *Manager) job(ctx context.Context, verb, unit string, run jobFunc) error {
	unit = fullName(unit)
	if !m.live {
		return m.notLive(verb + " units")
	}
	c, err := m.conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	ch := make(chan string, 1)
	if _, err := run(c, ctx, unit, "replace", ch); err != nil {
		return fmt.Errorf("%s %s: %w", verb, unit, err)
	}
	select {
	case result := <-ch:
		if result != "done" {
			return fmt.Errorf("%s %s: job %s (see journalctl -u %s)", verb, unit, result, unit)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s %s: %w", verb, unit, ctx.Err())
	}
}

func (m *Manager) conn(ctx context.Context) (*sddbus.Conn, error) {
	c, err := sddbus.NewWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to systemd over D-Bus: %w", err)
	}
	return c, nil
}

// unitProperty returns a unit's LoadState and the property asked for.
func (m *Manager) unitProperty(ctx context.Context, unit, name string) (load, value string, err error) {
	c, err := m.conn(ctx)
	if err != nil {
		return "", "", err
	}
	defer c.Close()
	return connUnitProperty(ctx, c, unit, name)
}

// connUnitProperty is unitProperty over the connection c.
func connUnitProperty(ctx context.Context, c *sddbus.Conn, unit, name string) (load, value string, err error) {
	props, err := c.GetUnitPropertiesContext(ctx, unit)
	if err != nil {
		return "", "", fmt.Errorf("unit %s: %w", unit, err)
	}
	load, _ = props["LoadState"].(string)
	value, _ = props[name].(string)
	return load, value, nil
}

// activeState returns a unit's ActiveState, and whether it exists.
func (m *Manager) activeState(ctx context.Context, unit string) (state string, exists bool, err error) {
	load, state, err := m.unitProperty(ctx, unit, "ActiveState")
	if err != nil {
		return "", false, err
	}
	return state, load != "not-found" || state == "active", nil
}

func (m *Manager) liveUnitFileState(ctx context.Context, unit string) (string, error) {
	c, err := m.conn(ctx)
	if err != nil {
		return "", err
	}
	defer c.Close()
	return m.connUnitFileState(ctx, c, unit)
}

// connUnitFileState is liveUnitFileState over the connection c.
func (m *Manager) connUnitFileState(ctx context.Context, c *sddbus.Conn, unit string) (string, error) {
	load, state, err := connUnitProperty(ctx, c, unit, "UnitFileState")
	if err != nil {
		return "", err
	}
	if load == "not-found" {
		return "not-found", nil
	}
	return state, nil
}

// liveEnable enables or disables unit over D-Bus, then reloads the manager,
// as systemctl does.
func (m *Manager) liveEnable(ctx context.Context, unit string, enable bool) error {
	c, err := m.conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if enable {
		_, _, err = c.EnableUnitFilesContext(ctx, []string{unit}, false, false)
	} else {
		_, err = c.DisableUnitFilesContext(ctx, []string{unit}, false)
	}
	verb := map[bool]string{true: "enable", false: "disable"}[enable]
	if err != nil {
		return fmt.Errorf("%s %s: %w", verb, unit, err)
	}
	if err := c.ReloadContext(ctx); err != nil {
		return fmt.Errorf("%s %s: daemon-reload: %w", verb, unit, err)
	}
	return nil
}

// systemctl runs systemctl --root=ROOT with args and returns its output.
// It runs in a process group of its own, like every program cairn runs for
// an op, so that a terminal's Ctrl-C, which goes to cairn's foreground
// process group, never interrupts an enable half way: cairn alone decides
// when a move stops (steps.Applier.Apply).
func (m *Manager) systemctl(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	cmd := exec.CommandContext(ctx, "systemctl", append([]string{"--root=" + m.root, "--no-pager"}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// errText is a command's error with what it printed on stderr.
func errText(err error, stderr string) string {
	stderr = strings.TrimSpace(stderr)
	var ee *exec.ExitError
	if stderr != "" && errors.As(err, &ee) {
		return stderr
	}
	if stderr != "" {
		return err.Error() + ": " + stderr
	}
	return err.Error()
}
