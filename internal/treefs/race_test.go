package treefs_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-cm/cairn/internal/treefs"
)

// TestEAGAINFallbackNoWayOut: when openat2 keeps answering EAGAIN (renames
// racing with a ".." of a lookup), the user-space walk that decides
// instead is no way out of the tree: a directory on the walked path
// swapped for a link out between the walk and the open is refused, where
// openat(2) followed it and read the file outside. Lookups that nothing
// races with still work, links inside included.
func TestEAGAINFallbackNoWayOut(t *testing.T) {
	top := t.TempDir()
	dir := filepath.Join(top, "config")
	for name, content := range map[string]string{"config/d/f": "inside", "outside/f": secret, "config/sub/b.txt": "B"} {
		p := filepath.Join(top, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("sub/b.txt", filepath.Join(dir, "in")); err != nil {
		t.Fatal(err)
	}
	d, err := treefs.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()

	undo := treefs.RacingRenames(func() {})
	for name, want := range map[string]string{"sub/b.txt": "B", "in": "B", "d/f": "inside"} {
		if data, err := d.ReadFile(name); err != nil || string(data) != want {
			t.Errorf("ReadFile(%s) = %q, %v; want %q", name, data, err, want)
		}
	}
	if fi, err := d.Lstat("in"); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("Lstat(in) = %v, %v; want the link", fi, err)
	}
	if target, err := d.ReadLink("in"); err != nil || target != "sub/b.txt" {
		t.Errorf("ReadLink(in) = %q, %v", target, err)
	}
	undo()

	defer treefs.RacingRenames(func() {
		if err := os.Rename(filepath.Join(dir, "d"), filepath.Join(dir, "d.old")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("../outside", filepath.Join(dir, "d")); err != nil {
			t.Fatal(err)
		}
	})()
	data, err := d.ReadFile("d/f")
	if strings.Contains(string(data), secret) {
		t.Fatalf("ReadFile(d/f) read the file outside the tree: %q", data)
	}
	if !errors.Is(err, treefs.ErrLinkEscapes) {
		t.Errorf("ReadFile(d/f) = %v, want %v", err, treefs.ErrLinkEscapes)
	}
}
