package steps_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cairn-cm/cairn/steps"
)

// undoSnapObserver copies the state directory when the first undo starts,
// as a kill -9 then leaves it, and counts the ops that ran.
type undoSnapObserver struct {
	once        sync.Once
	state, snap string
	ran         atomic.Int32
	t           *testing.T
}

func (o *undoSnapObserver) OpStarted(ev steps.OpEvent) {
	if !ev.Undo {
		return
	}
	o.once.Do(func() {
		if err := copyStateTree(o.state, o.snap); err != nil {
			o.t.Errorf("snapshot: %v", err)
		}
	})
}
func (o *undoSnapObserver) OpDone(ev steps.OpEvent) {
	if !ev.Undo {
		o.ran.Add(1)
	}
}

// TestRecoverFailedFlight: a batch that fails in flight, while the next
// batch's records were logged (their ops never ran), and a kill once its
// undo has begun (the state as the first undo found it; the root as the
// in-process undo left it, which the recovery undoes again): the next
// command undoes the records of both from the intent log, the ops that
// never ran included, and the tree is as before.
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
		sum := sha256.Sum256([]byte(content))
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
		lines = append(lines, fmt.Sprintf("COPY %d %s sha256=%s", i, p, hex.EncodeToString(sum[:])))
	}
	before, err := steps.SnapTree(rootDir)
	if err != nil {
		t.Fatal(err)
	}
	j, root := parseAndOpenRoot(t, rootDir, strings.Join(lines, "\n")+"\n")
	ctx := context.Background()
	obs := &undoSnapObserver{state: state, snap: snap, t: t}
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
	b, err := steps.Open(ctx, steps.Options{Root: root, StateDir: snap})
	if err != nil {
		t.Fatalf("recovery: %v", err)
	}
	b.Close()
	after, err := steps.SnapTree(rootDir)
	if err != nil {
		t.Fatal(err)
	}
	if d := steps.DiffTrees(before, after, 10); len(d) > 0 {
		t.Errorf("after the recovery the tree is not as before:\n%s", strings.Join(d, "\n"))
	}
	t.Logf("%d ops logged, %d ran", logged, obs.ran.Load())
}
