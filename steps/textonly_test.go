package steps_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-cm/cairn/journal"
	"github.com/cairn-cm/cairn/rootfs"
	"github.com/cairn-cm/cairn/steps"
	"golang.org/x/sys/unix"
)

// TestStateKeepsOnlyText: what cairn's state would have to keep as a
// string that is no valid UTF-8 (a path in the journal, a link target or
// an attribute's name found on the host) is refused before anything is
// touched, with the step or the object named: encoding/json would write
// U+FFFD for its bad bytes, and the undo would restore something else.
func TestStateKeepsOnlyText(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	needUserXattrs(t, dir)
	root, err := rootfs.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	srv := filepath.Join(dir, "srv")
	if err := os.Mkdir(srv, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(srv, "link")
	if err := os.Symlink("to-\xfe", link); err != nil {
		t.Fatal(err)
	}
	tagged := filepath.Join(srv, "tagged")
	if err := os.Mkdir(tagged, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(tagged, "user.\xff", []byte("1"), 0); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		lines []string
		want  []string // in the error
	}{
		{"a path of the journal", []string{`MKDIR /srv/ok`, `MKDIR "/srv/\xff"`},
			[]string{"t.journal:2:1", `MKDIR "/srv/\xff"`, "no valid UTF-8"}},
		// The link's target would be the image of a later move's undo.
		{"a link target of the journal", []string{`MKDIR /srv/ok`, `SYMLINK "/x\xff" /srv/new`},
			[]string{"t.journal:2:1", `SYMLINK "/srv/new": "/x\xff" is no valid UTF-8`}},
		{"a link target on the host", []string{`MKDIR /srv/ok`, `SYMLINK /elsewhere /srv/link`},
			[]string{"/srv/link: forward: before-image: refusing to act", `"to-\xfe"`, "no valid UTF-8"}},
		{"an attribute's name on the host", []string{`MKDIR /srv/ok`, `RM /srv/tagged`},
			[]string{"/srv/tagged: forward: before-image: refusing to act", `"user.\xff"`, "no valid UTF-8"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newStateApplier(t, root)
			js, err := journal.ParseSteps("t.journal", tt.lines)
			if err != nil {
				t.Fatal(err)
			}
			_, err = a.Apply(ctx, steps.Move{Journal: "t.journal", Steps: js, AllowRemoval: true})
			if err == nil {
				t.Fatal("the move ran")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if _, err := os.Lstat(filepath.Join(srv, "ok")); !os.IsNotExist(err) {
				t.Errorf("/srv/ok after the refused move: %v, want it never made or undone", err)
			}
			if target, err := os.Readlink(link); err != nil || target != "to-\xfe" {
				t.Errorf("/srv/link after the refused move: %q, %v", target, err)
			}
			v := make([]byte, 8)
			if n, err := unix.Getxattr(tagged, "user.\xff", v); err != nil || string(v[:n]) != "1" {
				t.Errorf("/srv/tagged's attribute after the refused move: %q, %v", v[:max(n, 0)], err)
			}
		})
	}
}

// TestPlanAfterFirstMoveFailed: a first move that fails removes the state
// directory its Applier made (it holds nothing), and a later plan of that
// Applier says so, instead of reading the closed state or saying that the
// applied journal changed.
func TestPlanAfterFirstMoveFailed(t *testing.T) {
	ctx := context.Background()
	root, err := rootfs.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	a := newStateApplier(t, root)
	for i, lines := range [][]string{{`MKDIR /srv`, `MKDIR /srv`}, {`MKDIR /srv`}} {
		js, err := journal.ParseSteps("t.journal", lines)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if _, err := a.Apply(ctx, steps.Move{Journal: "t.journal", Steps: js}); err == nil {
				t.Fatal("the first move ran")
			}
			continue
		}
		// Refused by the plan already, which would read the closed state.
		if _, err := a.Plan(ctx, steps.Move{Journal: "t.journal", Steps: js}); err == nil || !strings.Contains(err.Error(), "is closed") {
			t.Errorf("the plan of a move after a failed first one: %v, want that the state directory is closed", err)
		}
	}
}

// newStateApplier opens an Applier of root with a new state directory of
// its own, closed when the test ends.
func newStateApplier(t *testing.T, root *rootfs.Root) *steps.Applier {
	t.Helper()
	a, err := steps.Open(context.Background(), steps.Options{Root: root, StateDir: filepath.Join(t.TempDir(), "state"), Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}
