package steps

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-cm/cairn/journal"
	"github.com/cairn-cm/cairn/rootfs"
)

// cancelAt cancels the move's context once the op of index at is done.
type cancelAt struct {
	at     int
	cancel context.CancelFunc
}

func (o *cancelAt) OpStarted(OpEvent) {}
func (o *cancelAt) OpDone(ev OpEvent) {
	if !ev.Undo && ev.Index == o.at {
		o.cancel()
	}
}

// TestStopInFlight stops moves of batches of two ops (most of which run in
// flight while the next batch's images are taken) after each op in turn:
// every stop ends with the move undone, the tree as before and no intent
// log left.
func TestStopInFlight(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	t.Cleanup(SetMaxBatch(2))
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "x"), []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sum, _ := HashReader(strings.NewReader("x\n"))
	var lines []string
	for d := range 3 {
		lines = append(lines, fmt.Sprintf("MKDIR /srv/d%d", d))
		for k := range 4 {
			lines = append(lines, fmt.Sprintf("COPY x /srv/d%d/f%d sha256=%s", d, k, sum), fmt.Sprintf("COPY x /old/f%d.%d sha256=%s", d, k, sum))
		}
	}
	j, err := journal.Parse("stop.journal", []byte(strings.Join(lines, "\n")+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	for at := 1; at <= len(lines); at++ {
		base := t.TempDir()
		rootDir := filepath.Join(base, "root")
		for _, d := range []string{"srv", "old"} {
			if err := os.MkdirAll(filepath.Join(rootDir, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		for d := range 3 {
			for k := range 4 {
				if err := os.WriteFile(filepath.Join(rootDir, fmt.Sprintf("old/f%d.%d", d, k)), []byte("old\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
		}
		before := snapOf(t, rootDir)
		root, err := rootfs.Open(rootDir)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		state := filepath.Join(base, "state")
		a, err := Open(context.Background(), Options{Root: root, StateDir: state, Create: true, Observer: &cancelAt{at: at, cancel: cancel}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = a.Apply(ctx, Move{Journal: "stop.journal", Steps: j.Steps, Source: os.DirFS(src), SourceName: src})
		a.Close()
		root.Close()
		cancel()
		if err == nil {
			t.Fatalf("stopped after op %d, the move committed", at)
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("stopped after op %d: %v, want the stop", at, err)
		}
		if d := DiffTrees(before, snapOf(t, rootDir), 5); len(d) > 0 {
			t.Fatalf("stopped after op %d, the tree is not as before:\n%s", at, strings.Join(d, "\n"))
		}
		if _, err := os.Stat(filepath.Join(state, "intent.log")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("stopped after op %d: intent log: %v, want none", at, err)
		}
	}
}
