package rootfs

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// userXattrs skips the test when dir keeps no user attributes.
func userXattrs(t *testing.T, dir string) {
	t.Helper()
	if err := unix.Setxattr(dir, "user.probe", []byte("1"), 0); err != nil {
		t.Skipf("the file system of %s keeps no user attributes: %v", dir, err)
	}
	unix.Removexattr(dir, "user.probe")
}

// TestXattrs: Xattrs reads the attributes of a file or directory,
// SetXattrs makes them exactly the given set, and neither follows a link
// in the last component (the link's target keeps its attributes).
func TestXattrs(t *testing.T) {
	eachResolver(t, func(t *testing.T, userspace bool) {
		dir := t.TempDir()
		userXattrs(t, dir)
		build(t, dir, "d:etc/sub", "f:etc/file=x", "f:target=t", "l:etc/link->/target", "p:etc/fifo")
		r := openRoot(t, dir, userspace)
		for _, p := range []string{"/etc/file", "/etc/sub", "/target"} {
			if err := unix.Setxattr(filepath.Join(dir, p), "user.old", []byte("old"), 0); err != nil {
				t.Fatal(err)
			}
		}
		want := map[string][]byte{"user.a": []byte("1"), "user.b": {0, 1, 2}}
		for _, p := range []string{"/etc/file", "/etc/sub"} {
			if got, err := r.Xattrs(p); err != nil || !maps.EqualFunc(got, map[string][]byte{"user.old": []byte("old")}, eqBytes) {
				t.Errorf("Xattrs(%s) = %q, %v", p, got, err)
			}
			if err := r.SetXattrs(p, want); err != nil {
				t.Fatalf("SetXattrs(%s): %v", p, err)
			}
			if got, err := r.Xattrs(p); err != nil || !maps.EqualFunc(got, want, eqBytes) {
				t.Errorf("after SetXattrs, Xattrs(%s) = %q, %v; want %q", p, got, err, want)
			}
			if err := r.SetXattrs(p, map[string][]byte{}); err != nil {
				t.Fatal(err)
			}
			if got, err := r.Xattrs(p); err != nil || got != nil {
				t.Errorf("after SetXattrs of none, Xattrs(%s) = %q, %v; want nil", p, got, err)
			}
		}
		if _, err := r.Xattrs("/etc/link"); !errors.Is(err, ErrSymlink) {
			t.Errorf("Xattrs of a link: %v, want ErrSymlink", err)
		}
		if err := r.SetXattrs("/etc/link", want); !errors.Is(err, ErrSymlink) {
			t.Errorf("SetXattrs of a link: %v, want ErrSymlink", err)
		}
		if err := r.SetXattrs("/etc/fifo", want); !errors.Is(err, ErrNotRegular) {
			t.Errorf("SetXattrs of a FIFO: %v, want ErrNotRegular", err)
		}
		var buf [16]byte
		if n, err := unix.Getxattr(filepath.Join(dir, "target"), "user.old", buf[:]); err != nil || string(buf[:n]) != "old" {
			t.Errorf("the link's target lost its attribute: %q %v", buf[:n], err)
		}
	})
}

func eqBytes(a, b []byte) bool { return string(a) == string(b) }

// TestSetFileMtime sets an mtime to the nanosecond through a descriptor
// opened for reading, and leaves the access time.
func TestSetFileMtime(t *testing.T) {
	name := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(name, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	atime := time.Date(2001, 2, 3, 4, 5, 6, 7, time.UTC)
	if err := os.Chtimes(name, atime, time.Now()); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := time.Date(1969, 7, 20, 20, 17, 40, 123456789, time.UTC) // before 1970 too
	if err := SetFileMtime(f, want); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(name, &st); err != nil {
		t.Fatal(err)
	}
	if got := time.Unix(st.Mtim.Unix()); !got.Equal(want) {
		t.Errorf("mtime %s, want %s", got.UTC(), want)
	}
	if got := time.Unix(st.Atim.Unix()); !got.Equal(atime) {
		t.Errorf("atime %s, want it left at %s", got.UTC(), atime)
	}
}
