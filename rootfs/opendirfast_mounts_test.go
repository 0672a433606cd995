package rootfs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestOpenDirFastAsWalk holds OpenDirFast to the component-by-component
// OpenDir walk it stands for, on a tree with a mount point on the way (a
// tmpfs, and a bind mount of a directory outside the root), where a walk
// crosses into the mounted directory.
func TestOpenDirFastAsWalk(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	build(t, dir, "d:a/b/m/x", "d:a/b/bind", "d:a/b/c")
	if err := os.MkdirAll(filepath.Join(outside, "in/deep"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", filepath.Join(dir, "a/b/m"), "tmpfs", 0, ""); err != nil {
		t.Skipf("mount: %v", err)
	}
	defer unix.Unmount(filepath.Join(dir, "a/b/m"), unix.MNT_DETACH)
	if err := os.MkdirAll(filepath.Join(dir, "a/b/m/y"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(outside, filepath.Join(dir, "a/b/bind"), "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(filepath.Join(dir, "a/b/bind"), unix.MNT_DETACH)
	r := openRoot(t, dir, false)
	base, err := r.OpenDir("/a")
	if err != nil {
		t.Fatal(err)
	}
	defer base.Close()
	walk := func(rel string) (*Dir, bool) {
		d, err := base.OpenDir(strings.Split(rel, "/")[0])
		if err != nil {
			return nil, false
		}
		for _, c := range strings.Split(rel, "/")[1:] {
			sub, err := d.OpenDir(c)
			d.Close()
			if err != nil {
				return nil, false
			}
			d = sub
		}
		return d, true
	}
	for _, tc := range []struct {
		rel string
		ok  bool // both open it: only b/m/x, hidden by the tmpfs, is not there
	}{
		{"b/m", true}, {"b/m/y", true}, {"b/m/x", false}, {"b/bind", true},
		{"b/bind/in", true}, {"b/bind/in/deep", true}, {"b/c", true},
	} {
		rel := tc.rel
		fast, ok1 := base.OpenDirFast(rel)
		slow, ok2 := walk(rel)
		if ok1 != tc.ok || ok2 != tc.ok {
			t.Errorf("%s: OpenDirFast ok %v, the walk %v; want %v", rel, ok1, ok2, tc.ok)
			continue
		}
		if !ok1 {
			continue
		}
		a, err := fast.Stat()
		if err != nil {
			t.Fatal(err)
		}
		b, err := slow.Stat()
		if err != nil {
			t.Fatal(err)
		}
		if a.Dev != b.Dev || a.Ino != b.Ino || fast.Path() != slow.Path() {
			t.Errorf("%s: OpenDirFast opened %d:%d %s, the walk %d:%d %s", rel, a.Dev, a.Ino, fast.Path(), b.Dev, b.Ino, slow.Path())
		}
		fast.Close()
		slow.Close()
	}
}
