package steps_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairn-cm/cairn/journal"
	"github.com/cairn-cm/cairn/rootfs"
	"github.com/cairn-cm/cairn/steps"
	"github.com/cairn-cm/cairn/systemd"
)

// unitHost is a temp root with unit files in etc/systemd/system, acted on
// by the real systemd driver, which uses systemctl --root there (never the
// running system: the root is not /).
type unitHost struct {
	t     *testing.T
	root  string
	state string
	unit  string // a unit with an [Install] section
	units steps.Units
	blobs string // COPY - content, by sha256
}

func newUnitHost(t *testing.T) *unitHost {
	t.Helper()
	if _, err := exec.LookPath("systemctl"); err != nil {
		t.Skip("systemctl is not installed (Debian package systemd)")
	}
	dir := t.TempDir()
	h := &unitHost{t: t, root: filepath.Join(dir, "root"), state: filepath.Join(dir, "state"), blobs: filepath.Join(dir, "blobs"), unit: fmt.Sprintf("cairn-t-%04x.service", rand.IntN(1<<16))}
	h.write(h.unit, "[Unit]\nDescription=cairn test\n\n[Service]\nExecStart=/bin/true\n\n[Install]\nWantedBy=multi-user.target\n")
	h.write("cairn-t-static.service", "[Unit]\nDescription=cairn test, no [Install]\n\n[Service]\nExecStart=/bin/true\n")
	h.units = systemd.New(h.root)
	return h
}

func (h *unitHost) write(unit, content string) {
	h.t.Helper()
	dir := filepath.Join(h.root, "etc/systemd/system")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, unit), []byte(content), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

func (h *unitHost) snap() steps.TreeSnap {
	h.t.Helper()
	tree, err := steps.SnapTree(h.root)
	if err != nil {
		h.t.Fatal(err)
	}
	return tree
}

// apply moves the root to the journal text with the systemd driver.
func (h *unitHost) apply(text string) error {
	h.t.Helper()
	return h.applyWith(steps.Host{Units: h.units}, text)
}

func (h *unitHost) applyWith(host steps.Host, text string) error {
	h.t.Helper()
	return h.applyCtx(context.Background(), host, text)
}

// applyCtx is applyWith with the ctx of Apply, which stops the move.
func (h *unitHost) applyCtx(ctx context.Context, host steps.Host, text string) error {
	h.t.Helper()
	j, err := journal.Parse("units.journal", []byte(text))
	if err != nil {
		h.t.Fatal(err)
	}
	root, err := rootfs.Open(h.root)
	if err != nil {
		h.t.Fatal(err)
	}
	defer root.Close()
	a, err := steps.Open(ctx, steps.Options{Root: root, StateDir: h.state, Create: true, Host: host})
	if err != nil {
		h.t.Fatal(err)
	}
	defer a.Close()
	_, err = a.Apply(ctx, steps.Move{Journal: "units.journal", Steps: j.Steps, Blobs: os.DirFS(h.blobs), BlobsName: h.blobs, AllowRemoval: true})
	return err
}

// drift returns what the applied journal's checks find.
func (h *unitHost) drift() []string {
	h.t.Helper()
	root, err := rootfs.Open(h.root)
	if err != nil {
		h.t.Fatal(err)
	}
	defer root.Close()
	ctx := context.Background()
	a, err := steps.Open(ctx, steps.Options{Root: root, StateDir: h.state, Host: steps.Host{Units: h.units}})
	if err != nil {
		h.t.Fatal(err)
	}
	defer a.Close()
	d, err := a.Drift(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []string
	for _, x := range d {
		out = append(out, x.Diff)
	}
	return out
}

func (h *unitHost) enabled(unit string) bool {
	h.t.Helper()
	on, err := h.units.IsEnabled(context.Background(), unit)
	if err != nil {
		h.t.Fatal(err)
	}
	return on
}

func (h *unitHost) wantTree(want steps.TreeSnap, when string) {
	h.t.Helper()
	if d := steps.DiffTrees(want, h.snap(), 10); len(d) > 0 {
		h.t.Errorf("%s: the root differs:\n  %s", when, strings.Join(d, "\n  "))
	}
}

// TestSystemdEnableRollback enables a unit for real with systemctl --root
// through the applier, then moves to the empty journal: the unit is
// disabled again and the links under etc/systemd/system are as before.
func TestSystemdEnableRollback(t *testing.T) {
	for _, tc := range []struct {
		name       string
		preEnabled bool // enabled before cairn touches it: stays enabled
	}{
		{"disabled before", false},
		{"enabled before", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newUnitHost(t)
			if tc.preEnabled {
				if err := h.units.Enable(context.Background(), h.unit); err != nil {
					t.Fatal(err)
				}
			}
			before := h.snap()
			link := filepath.Join(h.root, "etc/systemd/system/multi-user.target.wants", h.unit)

			if err := h.apply("MKDIR /srv\nSYSTEMD-ENABLE " + h.unit + "\n"); err != nil {
				t.Fatalf("apply: %v", err)
			}
			if !h.enabled(h.unit) {
				t.Errorf("%s is not enabled after the apply", h.unit)
			}
			if target, err := os.Readlink(link); err != nil || target != "/etc/systemd/system/"+h.unit {
				t.Errorf("link %s: %q, %v", link, target, err)
			}
			if d := h.drift(); len(d) != 0 {
				t.Errorf("drift right after the apply: %q", d)
			}
			// Disabled by hand: the check sees it.
			if err := h.units.Disable(context.Background(), h.unit); err != nil {
				t.Fatal(err)
			}
			if d := h.drift(); len(d) != 1 || !strings.Contains(d[0], "is not enabled") {
				t.Errorf("drift after a disable by hand: %q, want the unit not enabled", d)
			}
			if err := h.units.Enable(context.Background(), h.unit); err != nil {
				t.Fatal(err)
			}

			if err := h.apply(""); err != nil {
				t.Fatalf("roll back to the empty journal: %v", err)
			}
			if got := h.enabled(h.unit); got != tc.preEnabled {
				t.Errorf("after the rollback: enabled %v, want %v", got, tc.preEnabled)
			}
			h.wantTree(before, "after the rollback")
		})
	}
}

// blob stores content for a COPY - step and returns its sha256.
func (h *unitHost) blob(content string) string {
	h.t.Helper()
	sum := fmt.Sprintf("%x", sha256.Sum256([]byte(content)))
	if err := os.MkdirAll(h.blobs, 0o755); err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(h.blobs, sum), []byte(content), 0o644); err != nil {
		h.t.Fatal(err)
	}
	return sum
}

// TestSystemdEnableNewUnit writes a unit file and enables it in one move:
// the before-image of the enablement is taken before the COPY runs, when
// the unit does not exist yet (not enabled). The empty journal disables it
// and removes the file.
func TestSystemdEnableNewUnit(t *testing.T) {
	h := newUnitHost(t)
	before := h.snap()
	unit := "cairn-t-new-" + h.unit
	sum := h.blob("[Service]\nExecStart=/bin/true\n\n[Install]\nWantedBy=multi-user.target\n")
	if err := h.apply("COPY - /etc/systemd/system/" + unit + " sha256=" + sum + "\nSYSTEMD-ENABLE " + unit + "\n"); err != nil {
		t.Fatalf("apply: %v", err)
	}
	if !h.enabled(unit) {
		t.Errorf("%s is not enabled after the apply", unit)
	}
	if err := h.apply(""); err != nil {
		t.Fatalf("roll back to the empty journal: %v", err)
	}
	h.wantTree(before, "after the rollback")
}

// TestSystemdFailures runs unit steps that fail here: starting or
// restarting needs a running systemd for the root, which a temp root never
// has (a daemon-reload there is skipped: testdata/script/unit_root.txtar);
// a missing unit, a unit without [Install], or no driver at all.
// Each error names the step and says why, and the plan is undone: the
// root is as it was.
func TestSystemdFailures(t *testing.T) {
	for _, tc := range []struct {
		name  string
		lines string // %s is the unit
		want  []string
		noDrv bool
	}{
		{"start", "MKDIR /srv\nSYSTEMD-ENABLE %[1]s\nSYSTEMD-START %[1]s\n", []string{"SYSTEMD-START %s", "cannot start units"}, false},
		{"restart", "MKDIR /srv\nSYSTEMD-ENABLE %[1]s\nSYSTEMD-RESTART %[1]s on=" + strings.Repeat("ab", 32) + "\n", []string{"SYSTEMD-RESTART %s", "cannot restart units"}, false},
		{"missing unit", "MKDIR /srv\nSYSTEMD-ENABLE %[1]s\nSYSTEMD-ENABLE cairn-t-nosuch.service\n", []string{"SYSTEMD-ENABLE cairn-t-nosuch.service", "does not exist"}, false},
		{"no [Install]", "SYSTEMD-ENABLE %[1]s\nSYSTEMD-ENABLE cairn-t-static.service\n", []string{"SYSTEMD-ENABLE cairn-t-static.service", "[Install]"}, false},
		{"no driver", "MKDIR /srv\nSYSTEMD-ENABLE %[1]s\n", []string{"SYSTEMD-ENABLE %s", "no unit driver"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newUnitHost(t)
			before := h.snap()
			host := steps.Host{Units: h.units}
			if tc.noDrv {
				host = steps.Host{}
			}
			err := h.applyWith(host, fmt.Sprintf(tc.lines, h.unit))
			if err == nil {
				t.Fatal("the apply succeeded; want an error")
			}
			if code := steps.ExitCode(err); code != steps.ExitFailed {
				t.Errorf("exit code %d, want %d (step failed, host restored): %v", code, steps.ExitFailed, err)
			}
			for _, w := range tc.want {
				if w = strings.ReplaceAll(w, "%s", h.unit); !strings.Contains(err.Error(), w) {
					t.Errorf("the error does not say %q: %v", w, err)
				}
			}
			if h.enabled(h.unit) {
				t.Errorf("%s is still enabled: the plan was not undone", h.unit)
			}
			h.wantTree(before, "after the failed apply")
		})
	}
}

// TestStopBeforeAnImage stops a move (the ctx of Apply, a first SIGTERM)
// while an EXEC runs, before a SYSTEMD-ENABLE whose before-image asks
// systemctl: the move must stop before that step, saying so, and be undone.
// Images were taken with the ctx of Apply, so the stop failed the unit
// step's image instead ("before-image: systemctl ... is-enabled: context
// canceled"), blaming the unit for the operator's signal.
func TestStopBeforeAnImage(t *testing.T) {
	h := newUnitHost(t)
	before := h.snap()
	dir := t.TempDir()
	started, release := filepath.Join(dir, "started"), filepath.Join(dir, "release")
	command := "touch " + started + "; while [ ! -e " + release + " ]; do sleep 0.01; done"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if _, err := os.Stat(started); err == nil {
				break
			}
		}
		cancel() // the EXEC runs: stop the move
		os.WriteFile(release, nil, 0o644)
	}()
	err := h.applyCtx(ctx, steps.Host{Units: h.units}, fmt.Sprintf("EXEC %q undo=true\nSYSTEMD-ENABLE %s\n", command, h.unit))
	var se *steps.StepError
	if !errors.As(err, &se) || se.Step.Op != journal.OpSystemdEnable || !strings.Contains(err.Error(), "interrupted before this step") || strings.Contains(err.Error(), "before-image") {
		t.Fatalf("error %v, want the move stopped before SYSTEMD-ENABLE", err)
	}
	h.wantTree(before, "after the stopped move")
}
