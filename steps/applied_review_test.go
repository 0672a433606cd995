package steps

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"

	"github.com/cairn-cm/cairn/journal"
	"github.com/cairn-cm/cairn/rootfs"
)

// TestAppliedImagesConcurrent: Appliers opened one after another share the
// cached Applied; its images decoded from several goroutines at once (a
// status page of one, the move of the next) are one map, the images the
// move recorded, with no race.
func TestAppliedImagesConcurrent(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "srv"), 0o755); err != nil {
		t.Fatal(err)
	}
	root, err := rootfs.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	state := filepath.Join(t.TempDir(), "state")
	open := func() *Applier {
		t.Helper()
		a, err := Open(ctx, Options{Root: root, StateDir: state, Create: true})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	a := open()
	steps, err := journal.ParseSteps("t.journal", []string{"MKDIR /srv mode=0700", "MKDIR /srv/www mode=0755"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Apply(ctx, Move{Journal: "t.journal", Steps: steps}); err != nil {
		t.Fatal(err)
	}
	want := a.Applied().Images()
	a.Close()

	first := open()
	shared := first.Applied()
	first.Close()
	second := open()
	defer second.Close()
	if second.Applied() != shared {
		t.Fatal("the second open did not share the cached Applied: the test proves nothing")
	}
	var wg sync.WaitGroup
	got := make([]map[string]Image, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				got[i] = shared.Images()
			} else {
				got[i] = second.Applied().Images()
			}
		}()
	}
	// Meanwhile, the second plans a move that reads the images (preflight).
	more, err := journal.ParseSteps("t.journal", []string{"MKDIR /srv mode=0700"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := second.Apply(ctx, Move{Journal: "t.journal", Steps: more, AllowRemoval: true, DryRun: true}); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for i, g := range got {
		if !reflect.DeepEqual(g, want) {
			t.Errorf("goroutine %d: Images() = %v; want %v", i, g, want)
		}
	}
}

// TestForwardPlanLeavesImagesEncoded: a plan that restores no original
// image (a move that only adds, a dry run, a repair's reruns, a move that
// preflight refuses) leaves the cached applied journal's images encoded:
// only an inverse op reads one.
func TestForwardPlanLeavesImagesEncoded(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	root, err := rootfs.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	state := filepath.Join(t.TempDir(), "state")
	open := func() *Applier {
		t.Helper()
		a, err := Open(ctx, Options{Root: root, StateDir: state, Create: true})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	parse := func(lines ...string) []journal.Step {
		s, err := journal.ParseSteps("t.journal", lines)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a := open()
	if _, err := a.Apply(ctx, Move{Journal: "t.journal", Steps: parse("MKDIR /srv mode=0755")}); err != nil {
		t.Fatal(err)
	}
	a.Close()
	b := open()
	defer b.Close()
	loaded := b.Applied()
	if loaded.lazy == nil {
		t.Fatal("the images were not left encoded on open: the test proves nothing")
	}
	if _, err := b.Apply(ctx, Move{Journal: "t.journal", Steps: parse("MKDIR /srv mode=0755", "MKDIR /srv/www mode=0755"), DryRun: true}); err != nil {
		t.Fatal(err)
	}
	if loaded.lazy.m != nil {
		t.Errorf("a dry run of a move that only adds decoded the %d original images, which the cached journal now keeps decoded", len(loaded.lazy.m))
	}
}
