package steps

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-cm/cairn/rootfs"
)

// remount remounts the file system at dir with opts ("ro", "rw").
func remount(t *testing.T, dir, opts string) {
	t.Helper()
	if out, err := exec.Command("mount", "-o", "remount,"+opts, dir).CombinedOutput(); err != nil {
		t.Fatalf("remount %s %s: %v: %s", opts, dir, err, out)
	}
}

// TestReadOnlyMount runs cairn against a root and a state directory on
// real read-only mounts: a MKDIR that fails there is undone (its undo has
// nothing to remove) and the move is exit 1, every time, never stuck at
// exit 3; show and drift need no writable root nor state.
func TestReadOnlyMount(t *testing.T) {
	base := t.TempDir()
	rootDir, stateFS := filepath.Join(base, "root"), filepath.Join(base, "statefs")
	mountTmpfs(t, rootDir, 1<<20)
	mountTmpfs(t, stateFS, 1<<20)
	state := filepath.Join(stateFS, "state")
	must(t, os.Mkdir(filepath.Join(rootDir, "etc"), 0o755))
	must(t, moveWith(t, rootDir, state, "", "MKDIR /srv", "MKDIR /srv/www mode=0750"))

	remount(t, rootDir, "ro")
	defer remount(t, rootDir, "rw")
	for try := range 2 {
		err := moveWith(t, rootDir, state, "", "MKDIR /srv", "MKDIR /srv/www mode=0750", "MKDIR /etc/new")
		var se *StepError
		if !errors.As(err, &se) || ExitCode(err) != ExitFailed || !strings.Contains(err.Error(), "read-only file system") {
			t.Fatalf("try %d: a MKDIR on a read-only root: %v (exit %d), want a StepError (exit 1)", try+1, err, ExitCode(err))
		}
		if _, err := os.Stat(filepath.Join(state, intentFile)); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("try %d: the intent log stays (%v)", try+1, err)
		}
	}

	for _, tc := range []struct {
		name  string
		setup func()
	}{
		{"with its lock file", func() {}},
		{"without a lock file", func() { must(t, os.Remove(filepath.Join(state, lockFile))) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			remount(t, stateFS, "rw")
			tc.setup()
			// Something drifts, for drift to find.
			remount(t, rootDir, "rw")
			must(t, os.Chmod(filepath.Join(rootDir, "srv/www"), 0o755))
			remount(t, rootDir, "ro")
			remount(t, stateFS, "ro")
			defer remount(t, stateFS, "rw")
			before := snapOf(t, stateFS)

			root, err := rootfs.Open(rootDir)
			must(t, err)
			defer root.Close()
			a, err := Open(context.Background(), Options{Root: root, StateDir: state})
			if err != nil {
				t.Fatalf("open a read-only state: %v", err)
			}
			steps, err := a.Journal()
			if err != nil || len(steps) != 2 {
				t.Errorf("the applied journal: %d steps, %v; want 2", len(steps), err)
			}
			drifted, err := a.Drift(context.Background())
			if err != nil || len(drifted) != 1 || !strings.Contains(drifted[0].Diff, "mode 0755, want 0750") {
				t.Errorf("drift on read-only mounts: %v, %v", drifted, err)
			}
			must(t, a.Close())
			if d := DiffTrees(before, snapOf(t, stateFS), 10); len(d) > 0 {
				t.Errorf("reading the state changed it:\n%s", strings.Join(d, "\n"))
			}
		})
	}
}

// TestReadOnlyStateMove: a move whose state lies on a read-only mount
// fails before any op runs, and that is exit 1 with nothing to undo: the
// intent log that could not be made is not "kept" (exit 3) because removing
// it fails with EROFS rather than ENOENT.
func TestReadOnlyStateMove(t *testing.T) {
	base := t.TempDir()
	rootDir, stateFS := filepath.Join(base, "root"), filepath.Join(base, "statefs")
	must(t, os.Mkdir(rootDir, 0o755))
	mountTmpfs(t, stateFS, 1<<20)
	state := filepath.Join(stateFS, "state")
	must(t, moveWith(t, rootDir, state, "", "MKDIR /srv"))
	remount(t, stateFS, "ro")
	defer remount(t, stateFS, "rw")
	before := snapOf(t, rootDir)
	err := moveWith(t, rootDir, state, "", "MKDIR /srv", "MKDIR /srv/www")
	if ExitCode(err) != ExitFailed || !strings.Contains(err.Error(), "read-only file system") || !strings.Contains(err.Error(), "0 ops undone") {
		t.Fatalf("a move with a read-only state: %v (exit %d), want exit 1, nothing undone", err, ExitCode(err))
	}
	if d := DiffTrees(before, snapOf(t, rootDir), 10); len(d) > 0 {
		t.Errorf("the root changed:\n%s", strings.Join(d, "\n"))
	}
}
