package steps_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-cm/cairn/steps"
)

// TestRecoverFailedFlight: a batch that fails in flight, while the next
// batch's records were logged (their ops never ran), and a kill once its
// undo has begun (the state as the first undo found it; the root as the
// in-process undo left it, which the recovery undoes again): the next
// command undoes every record of the intent log, the ops that never ran
// included (counted by its observer), and the tree is as before. (A copy
// of the root as the kill left it would not do: the undo images name
// their directories by inode, and recovery refuses another directory.)
func TestRecoverFailedFlight(t *testing.T) {
	t.Cleanup(steps.SetMaxBatch(4))
	base := t.TempDir()
	rootDir, state, src, snap := filepath.Join(base, "root"), filepath.Join(base, "state"), filepath.Join(base, "src"), filepath.Join(base, "killed")
	for _, d := range []string{filepath.Join(rootDir, "etc"), src} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(rootDir, "etc/full/entry"), 0o755); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for i := range 40 {
		content := fmt.Sprintf("new %d\n", i)
		if err := os.WriteFile(filepath.Join(src, fmt.Sprint(i)), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		p := fmt.Sprintf("/etc/f%d", i)
		switch {
		case i == 9:
			p = "/etc/full" // fails: a directory with entries
		case i%3 == 0:
			p = fmt.Sprintf("/etc/d%d/f", i)
			lines = append(lines, fmt.Sprintf("MKDIR /etc/d%d", i))
		case i%3 == 1:
			if err := os.WriteFile(filepath.Join(rootDir, p), []byte(fmt.Sprintf("host's %d\n", i)), 0o640); err != nil {
				t.Fatal(err)
			}
		}
		lines = append(lines, fmt.Sprintf("COPY %d %s sha256=%s", i, p, sha256hex(content)))
	}
	before, err := steps.SnapTree(rootDir)
	if err != nil {
		t.Fatal(err)
	}
	j, root := parseAndOpenRoot(t, rootDir, strings.Join(lines, "\n")+"\n")
	ctx := context.Background()
	obs := &snapObserver{undo: true, state: state, snap: snap, t: t}
	a, err := steps.Open(ctx, steps.Options{Root: root, StateDir: state, Create: true, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Apply(ctx, steps.Move{Journal: "site.journal", Steps: j, Source: os.DirFS(src), SourceName: src}); err == nil || !strings.Contains(err.Error(), "/etc/full") {
		t.Fatalf("apply: %v, want the COPY over a directory with entries to fail", err)
	}
	a.Close()
	logged := 0
	f, err := os.Open(filepath.Join(snap, "intent.log"))
	if err != nil {
		t.Fatalf("no intent log when the undo began (%d ops ran): %v", obs.ran.Load(), err)
	}
	for sc := bufio.NewScanner(f); sc.Scan(); {
		if strings.Contains(sc.Text(), `"t":"op"`) {
			logged++
		}
	}
	f.Close()
	if logged <= int(obs.ran.Load()) {
		t.Errorf("the intent log holds %d ops, %d ran: no batch was logged while one was in flight", logged, obs.ran.Load())
	}
	rec := &snapObserver{t: t}
	b, err := steps.Open(ctx, steps.Options{Root: root, StateDir: snap, Observer: rec})
	if err != nil {
		t.Fatalf("recovery: %v", err)
	}
	b.Close()
	if got := int(rec.undone.Load()); got != logged {
		t.Errorf("the recovery undid %d ops, want the %d of the intent log", got, logged)
	}
	after, err := steps.SnapTree(rootDir)
	if err != nil {
		t.Fatal(err)
	}
	if d := steps.DiffTrees(before, after, 10); len(d) > 0 {
		t.Errorf("after the recovery the tree is not as before:\n%s", strings.Join(d, "\n"))
	}
	t.Logf("%d ops logged, %d ran", logged, obs.ran.Load())
}
