package rootfs

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// TestRealDir resolves directories beneath a root, links followed as
// everywhere else, and names where they really are.
func TestRealDir(t *testing.T) {
	eachResolver(t, func(t *testing.T, userspace bool) {
		base := t.TempDir()
		dir := filepath.Join(base, "root")
		build(t, dir, "d:data/var/lib", "l:var->/data/var", "l:rel->data", "f:file=x", "l:dangling->/nope")
		build(t, base, "d:outside")
		r := openRoot(t, dir, userspace)
		realBase, err := filepath.EvalSymlinks(base)
		if err != nil {
			t.Fatal(err)
		}
		rootReal := filepath.Join(realBase, "root")
		if got, err := r.RealPath(); err != nil || got != rootReal {
			t.Fatalf("RealPath = %q, %v; want %q", got, err, rootReal)
		}
		for _, tc := range []struct {
			p, want string
			err     error
		}{
			{"/", rootReal, nil},
			{"/var/lib", rootReal + "/data/var/lib", nil},
			{"/rel/var", rootReal + "/data/var", nil},
			{"/var", rootReal + "/data/var", nil},
			{"/var/nope", "", fs.ErrNotExist},
			{"/dangling", "", fs.ErrNotExist},
			{"/file", "", syscall.ENOTDIR},
			{"/var/../..", "", ErrInvalidPath},
		} {
			got, info, err := r.RealDir(tc.p)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Errorf("RealDir(%s) = %q, %v; want %v", tc.p, got, err, tc.err)
				}
				continue
			}
			if err != nil || got != tc.want || !info.IsDir() {
				t.Errorf("RealDir(%s) = %q (dir %v), %v; want %q", tc.p, got, info.IsDir(), err, tc.want)
			}
		}
	})
}

// TestBeneath: the check of RealDir's result against the root's path.
func TestBeneath(t *testing.T) {
	for _, tc := range []struct {
		p, root string
		want    bool
	}{
		{"/srv/root", "/srv/root", true},
		{"/srv/root/var/lib/cairn", "/srv/root", true},
		{"/srv/rootfs/var", "/srv/root", false},
		{"/tmp/out", "/srv/root", false},
		{"/anything", "/", true},
	} {
		if got := beneath(tc.p, tc.root); got != tc.want {
			t.Errorf("beneath(%q, %q) = %v, want %v", tc.p, tc.root, got, tc.want)
		}
	}
}

// TestRemoveTempReadOnly: with no temporary file there, RemoveTemp succeeds
// on a read-only file system (an undo whose work is done must not fail).
func TestRemoveTempReadOnly(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	build(t, dir, "d:etc", "f:etc/.motd.cairn-tmp=left")
	if out, err := exec.Command("mount", "-o", "remount,ro", dir).CombinedOutput(); err != nil {
		t.Fatalf("remount ro: %v: %s", err, out)
	}
	eachResolver(t, func(t *testing.T, userspace bool) {
		r := openRoot(t, dir, userspace)
		if err := r.RemoveTemp("/etc/hostname"); err != nil {
			t.Errorf("RemoveTemp with nothing to remove on a read-only mount: %v", err)
		}
		if err := r.RemoveTemp("/etc/motd"); !errors.Is(err, syscall.EROFS) {
			t.Errorf("RemoveTemp of a leftover on a read-only mount: %v, want EROFS", err)
		}
	})
}
