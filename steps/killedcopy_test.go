package steps_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cairn-cm/cairn/journal"
	"github.com/cairn-cm/cairn/rootfs"
	"github.com/cairn-cm/cairn/steps"
)

// snapObserver copies the state directory when the first op starts, or
// with undo when the first undo starts, as a kill -9 then leaves it (the
// batch's intent log written, the blob store synced if the batch needed
// it); without a state, it copies nothing. It counts the ops that ran, and
// the undos.
type snapObserver struct {
	once        sync.Once
	undo        bool
	state, snap string
	ran, undone atomic.Int32
	t           *testing.T
}

func (o *snapObserver) OpStarted(ev steps.OpEvent) {
	if ev.Undo != o.undo {
		return
	}
	if o.state == "" {
		return
	}
	o.once.Do(func() {
		if err := copyStateTree(o.state, o.snap); err != nil {
			o.t.Errorf("snapshot: %v", err)
		}
	})
}

func (o *snapObserver) OpDone(ev steps.OpEvent) {
	if ev.Undo {
		o.undone.Add(1)
	} else {
		o.ran.Add(1)
	}
}

// TestKilledMoveRestoresOverwrittenFiles: a move of COPYs that overwrite
// files and make new ones, among new directories, killed once its first
// batch is logged (and then left to run on, as a kill after its ops would
// leave the root), is undone by the next command from the state as the
// kill left it: every overwritten file has its content back and every new
// object is gone. It holds undoNeedsBlobs and the blob store's write-behind
// buffer to making an overwritten file's content durable before its op
// runs.
func TestKilledMoveRestoresOverwrittenFiles(t *testing.T) {
	base := t.TempDir()
	rootDir, state, src, snap := filepath.Join(base, "root"), filepath.Join(base, "state"), filepath.Join(base, "src"), filepath.Join(base, "killed")
	for _, d := range []string{filepath.Join(rootDir, "etc"), src} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var lines []string
	before := map[string]string{}
	for i := range 40 {
		content := fmt.Sprintf("new %d\n", i)
		if err := os.WriteFile(filepath.Join(src, fmt.Sprint(i)), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		p := fmt.Sprintf("/etc/f%d", i)
		if i%2 == 0 {
			p = fmt.Sprintf("/etc/d%d/f", i)
			lines = append(lines, fmt.Sprintf("MKDIR /etc/d%d", i))
		} else {
			before[p] = fmt.Sprintf("host's %d\n", i)
			if err := os.WriteFile(filepath.Join(rootDir, p), []byte(before[p]), 0o640); err != nil {
				t.Fatal(err)
			}
		}
		lines = append(lines, fmt.Sprintf("COPY %d %s sha256=%s", i, p, sha256hex(content)))
	}
	j, root := parseAndOpenRoot(t, rootDir, strings.Join(lines, "\n")+"\n")
	ctx := context.Background()
	a, err := steps.Open(ctx, steps.Options{Root: root, StateDir: state, Create: true, Observer: &snapObserver{state: state, snap: snap, t: t}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Apply(ctx, steps.Move{Journal: "site.journal", Steps: j, Source: os.DirFS(src), SourceName: src}); err != nil {
		t.Fatalf("apply: %v", err)
	}
	a.Close()
	b, err := steps.Open(ctx, steps.Options{Root: root, StateDir: snap})
	if err != nil {
		t.Fatalf("recovery: %v", err)
	}
	b.Close()
	for p, want := range before {
		got, err := os.ReadFile(filepath.Join(rootDir, p))
		if err != nil || string(got) != want {
			t.Errorf("%s after recovery: %q, %v; want %q", p, got, err, want)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(rootDir, "etc"))
	if len(entries) != len(before) {
		t.Errorf("/etc holds %d entries after recovery, want the %d files it had", len(entries), len(before))
	}
}

// parseAndOpenRoot is the set-up of the tests that copy the state
// directory while a move runs and recover from the copy: text parsed as
// site.journal, and the root at rootDir opened (closed when the test ends).
func parseAndOpenRoot(t *testing.T, rootDir, text string) ([]journal.Step, *rootfs.Root) {
	t.Helper()
	j, err := journal.Parse("site.journal", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	root, err := rootfs.Open(rootDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	return j.Steps, root
}
