package steps

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cairn-cm/cairn/journal"
	"github.com/cairn-cm/cairn/rootfs"
)

// mountTmpfs mounts a tmpfs of size bytes at dir (made if missing),
// unmounted at the end of the test; it skips without root.
func mountTmpfs(t *testing.T, dir string, size int) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	must(t, os.MkdirAll(dir, 0o755))
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0755", size), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
}

// moveWith applies lines to rootDir with the state in stateDir and the
// sources in src.
func moveWith(t *testing.T, rootDir, stateDir, src string, lines ...string) error {
	t.Helper()
	root, err := rootfs.Open(rootDir)
	must(t, err)
	defer root.Close()
	steps, err := journal.ParseSteps("t.journal", lines)
	must(t, err)
	a, err := Open(context.Background(), Options{Root: root, StateDir: stateDir, Create: true})
	if err != nil {
		return err
	}
	defer a.Close()
	_, err = a.Apply(context.Background(), Move{Journal: "t.journal", Steps: steps, Source: os.DirFS(src), SourceName: src})
	return err
}

// TestMoveFailsOnFullDisk fills the state's file system in the middle of a
// move, with a real tmpfs: an intent-log write or the commit that fails
// after ops ran undoes them, and the move is exit 1 (the host is back),
// never exit 2. A blob store that is full while the inputs are read is
// blamed on the store, not on the source.
func TestMoveFailsOnFullDisk(t *testing.T) {
	base := t.TempDir()
	fsDir := filepath.Join(base, "fs")
	mountTmpfs(t, fsDir, 256<<10)
	state, fill := filepath.Join(fsDir, "state"), filepath.Join(fsDir, "fill")
	src := filepath.Join(base, "src")
	must(t, os.Mkdir(src, 0o755))
	big := strings.Repeat("big content\n", 100<<10)
	must(t, os.WriteFile(filepath.Join(src, "big"), []byte(big), 0o644))
	bigSum, _ := HashReader(strings.NewReader(big))
	// An EXEC that fills the file system, and whose undo frees it.
	filler := fmt.Sprintf("EXEC %s undo=%s", strconv.Quote("dd if=/dev/zero of="+fill+" bs=4k 2>/dev/null; true"), strconv.Quote("rm -f "+fill))
	many := []string{"MKDIR /srv", "MKDIR /srv/new", filler}
	for i := range 300 {
		many = append(many, fmt.Sprintf("MKDIR /srv/new/d%03d", i))
	}
	for _, tc := range []struct {
		name  string
		lines []string
		exit  int
		want  []string
	}{
		{"the commit fails", []string{"MKDIR /srv", "MKDIR /srv/new", "MKDIR /srv/new/a", filler}, ExitFailed,
			[]string{"the move failed", "applied.json", "no space left on device", "3 ops undone"}},
		{"an intent-log write fails", many, ExitFailed,
			[]string{"the move failed", "intent log: write " + state + "/intent.log", "no space left on device", "2 ops undone"}},
		{"the blob store is full", []string{"MKDIR /srv", "MKDIR /srv/new", "COPY big /srv/new/big sha256=" + bigSum}, ExitBadInput,
			[]string{"t.journal:3:1: COPY big: storing in the blob store " + state + "/blobs: no space left on device"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rootDir := filepath.Join(base, strings.ReplaceAll(tc.name, " ", "-"))
			must(t, os.RemoveAll(state))
			must(t, os.MkdirAll(filepath.Join(rootDir, "srv"), 0o755))
			must(t, moveWith(t, rootDir, state, src, "MKDIR /srv"))
			before := snapOf(t, rootDir)
			err := moveWith(t, rootDir, state, src, tc.lines...)
			if ExitCode(err) != tc.exit {
				t.Fatalf("apply: %v (exit %d), want exit %d", err, ExitCode(err), tc.exit)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("the error does not say %q:\n%v", w, err)
				}
			}
			var me *MoveError
			if tc.exit == ExitFailed && !errors.As(err, &me) {
				t.Errorf("the error is a %T, want a *MoveError", err)
			}
			if d := DiffTrees(before, snapOf(t, rootDir), 10); len(d) > 0 {
				t.Errorf("the host is not as before the move:\n%s", strings.Join(d, "\n"))
			}
			if _, err := os.Stat(filepath.Join(state, intentFile)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the intent log is still there (%v)", err)
			}
			if _, err := os.Stat(fill); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the EXEC's undo did not run (%v)", err)
			}
		})
	}
}
