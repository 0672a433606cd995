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

// stateTest is a root with a directory srv and a state directory in which
// the Appliers it opens keep their journals.
type stateTest struct {
	t     *testing.T
	root  *rootfs.Root
	state string
}

func newStateTest(t *testing.T) *stateTest {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "srv"), 0o755); err != nil {
		t.Fatal(err)
	}
	root, err := rootfs.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	return &stateTest{t: t, root: root, state: filepath.Join(t.TempDir(), "state")}
}

// open opens the state; the caller closes it.
func (s *stateTest) open() *Applier {
	s.t.Helper()
	a, err := Open(context.Background(), Options{Root: s.root, StateDir: s.state, Create: true})
	if err != nil {
		s.t.Fatal(err)
	}
	return a
}

// move applies lines with a, or only plans them with dryRun.
func (s *stateTest) move(a *Applier, dryRun bool, lines ...string) {
	s.t.Helper()
	steps, err := journal.ParseSteps("t.journal", lines)
	if err != nil {
		s.t.Fatal(err)
	}
	if _, err := a.Apply(context.Background(), Move{Journal: "t.journal", Steps: steps, DryRun: dryRun, AllowRemoval: true}); err != nil {
		s.t.Fatal(err)
	}
}

// TestAppliedImagesConcurrent: Appliers opened one after another share the
// cached Applied; its images decoded from several goroutines at once (a
// status page of one, the move of the next) are one map, the images the
// move recorded, with no race.
func TestAppliedImagesConcurrent(t *testing.T) {
	st := newStateTest(t)
	a := st.open()
	st.move(a, false, "MKDIR /srv mode=0700", "MKDIR /srv/www mode=0755")
	want := a.Applied().Images()
	a.Close()

	first := st.open()
	shared := first.Applied()
	first.Close()
	second := st.open()
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
	// Meanwhile, the second plans a move that restores an image.
	st.move(second, true, "MKDIR /srv mode=0700")
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
	st := newStateTest(t)
	a := st.open()
	st.move(a, false, "MKDIR /srv mode=0755")
	a.Close()
	b := st.open()
	defer b.Close()
	loaded := b.Applied()
	if loaded.lazy == nil {
		t.Fatal("the images were not left encoded on open: the test proves nothing")
	}
	st.move(b, true, "MKDIR /srv mode=0755", "MKDIR /srv/www mode=0755")
	if loaded.lazy.m != nil {
		t.Errorf("a dry run of a move that only adds decoded the %d original images, which the cached journal now keeps decoded", len(loaded.lazy.m))
	}
}
