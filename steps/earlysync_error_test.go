package steps

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/cairn-cm/cairn/rootfs"
)

// TestEarlySyncErrorFailsOneSync holds syncAll to what it was before
// earlySync (f8e643f): a write-back error fails the one syncfs after it,
// the kernel's rule, so the early syncfs's error fails the first syncAll
// (the commit's), and the next syncAll (the undo's, which finds nothing
// new) succeeds. An earlySync that kept its error for every later syncAll
// would fail the undo's sync with the commit's error too, and report a
// move undone whole as an undo that failed (exit 3, not 1).
func TestEarlySyncErrorFailsOneSync(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "root"), 0o755); err != nil {
		t.Fatal(err)
	}
	root, err := rootfs.Open(filepath.Join(dir, "root"))
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	a, err := Open(context.Background(), Options{Root: root, StateDir: filepath.Join(dir, "state"), Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()

	a.early = new(earlySync)
	a.early.start(func() error { return syscall.EIO }) // the write-back error of a batch's files
	if err := a.syncAll(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("the commit's syncAll = %v, want the early syncfs's EIO", err)
	}
	// fail's syncAll, after the undo restored every image.
	if err := a.syncAll(); err != nil {
		t.Errorf("the undo's syncAll after the commit failed = %v, want nil: the one write-back error is reported twice, and the undone move exits 3", err)
	}
}
