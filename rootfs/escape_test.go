package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// escapeTree makes base/outside, a sentinel tree that nothing may touch,
// and base/root, full of links that point out of it: absolute links to the
// sentinel's host path, relative ones that climb with "..", links to a
// directory and to a file outside. Where a link's in-root meaning exists it
// holds decoys, so that reads can tell which file they reached.
func escapeTree(t testing.TB) (base, root, outside string) {
	t.Helper()
	base = t.TempDir()
	root = filepath.Join(base, "root")
	outside = filepath.Join(base, "outside") // absolute, e.g. /tmp/TestX/001/outside
	build(t, base,
		"d:outside/dir", "d:outside/dir2", "f:outside/secret=secret",
		"f:outside/dir/f=outside", "f:outside/dir/outside-only=x", "f:outside/dir2/f=outside2",
		"d:root",
	)
	mirror := filepath.Join("root", outside) // the in-root meaning of outside
	build(t, base,
		"d:"+mirror+"/dir", "f:"+mirror+"/dir/f=decoy-abs", "f:"+mirror+"/dir/mirror-only=x",
		"d:root/outside/dir", "f:root/outside/dir/f=decoy-rel", "d:root/a/b",
		"d:root/real-etc", "f:root/real-etc/passwd=in-root",
	)
	build(t, root,
		"l:dirout->"+outside+"/dir",   // absolute, to a dir outside; mirror exists
		"l:dirout2->"+outside+"/dir2", // absolute, to a dir outside; no mirror
		"l:reldirout->../outside/dir", // relative, climbing out of the root
		"l:reldirout2->../../../../../../../../outside/dir2",
		"l:fileout->"+outside+"/secret", // to a file outside
		"l:relfileout->../outside/secret",
		"l:hostroot->/",
		"l:a/b/updir->../../../..",
		"l:proc->/proc",
		"l:etc->/real-etc",
		"l:"+".fileout.cairn-tmp->"+outside+"/secret", // a planted temp name
	)
	return base, root, outside
}

// TestEscape tries every method through every escaping link and checks
// that nothing outside the root was read or changed.
func TestEscape(t *testing.T) {
	// Paths through links first, the links themselves last, so that one
	// tree serves every path of an op.
	paths := func(outside string) []string {
		return []string{
			"/dirout/f", "/dirout/new", "/dirout2/f", "/dirout2/new",
			"/reldirout/f", "/reldirout/new", "/reldirout2/f",
			"/a/b/updir/outside/secret", "/a/b/updir/outside/dir/f",
			"/hostroot" + outside + "/secret", "/hostroot" + outside + "/dir/f",
			"/proc/self", "/etc/passwd",
			"/hostroot" + outside + "/dir", "/a/b/updir/outside",
			"/fileout", "/relfileout", "/dirout", "/reldirout", "/hostroot",
		}
	}
	moved := 0
	errLeak := errors.New("leak")
	ops := []struct {
		name string
		fn   func(r *Root, p string) error
	}{
		{"Lstat", func(r *Root, p string) error { _, err := r.Lstat(p); return err }},
		{"OpenFile", func(r *Root, p string) error {
			data, err := readAll(r, p)
			if strings.Contains(data, "outside") || strings.Contains(data, "secret") {
				return fmt.Errorf("%w: read %q", errLeak, data)
			}
			return err
		}},
		{"Readlink", func(r *Root, p string) error { _, err := r.Readlink(p); return err }},
		{"ReadDirNames", func(r *Root, p string) error {
			names, err := r.ReadDirNames(p)
			if slices.Contains(names, "outside-only") {
				return fmt.Errorf("%w: listed %q", errLeak, names)
			}
			return err
		}},
		{"Mkdir", func(r *Root, p string) error { return r.Mkdir(p, 0o700) }},
		{"Chmod", func(r *Root, p string) error { return r.Chmod(p, 0o600) }},
		{"Lchown", func(r *Root, p string) error { return r.Lchown(p, 4242, 4343) }},
		{"Remove", func(r *Root, p string) error { return r.Remove(p) }},
		{"RenameFrom", func(r *Root, p string) error { moved++; return r.Rename(p, fmt.Sprintf("/moved%d", moved)) }},
		{"RenameOnto", func(r *Root, p string) error {
			if err := writeFile(r, "/src", "src", 0o644); err != nil {
				return err
			}
			return r.Rename("/src", p)
		}},
		{"Symlink", func(r *Root, p string) error { return r.Symlink("x", p) }},
		{"Write", func(r *Root, p string) error { return writeFile(r, p, "written", 0o666) }},
		{"CreateTempTrunc", func(r *Root, p string) error {
			f, err := r.CreateTemp(p, 0o644)
			if err == nil {
				f.Close()
				err = r.RemoveTemp(p)
			}
			return err
		}},
		{"SyncDir", func(r *Root, p string) error { return r.SyncDir(p) }},
		{"Dir", func(r *Root, p string) error {
			d, name, err := r.OpenParent(p)
			if err != nil {
				return err
			}
			defer d.Close()
			d.Chmod(name, 0o777)
			d.Lchown(name, 1, 1)
			return d.Remove(name)
		}},
	}
	eachResolver(t, func(t *testing.T, userspace bool) {
		for _, op := range ops {
			base, root, outside := escapeTree(t)
			r := openRoot(t, root, userspace)
			for _, p := range paths(outside) {
				before := snapshot(t, base, root)
				if err := op.fn(r, p); errors.Is(err, errLeak) {
					t.Errorf("%s(%s): %v", op.name, p, err)
				}
				if d := diffSnapshots(before, snapshot(t, base, root)); d != nil {
					t.Errorf("%s(%s) changed things outside the root:\n%s", op.name, p, strings.Join(d, "\n"))
				}
			}
		}
	})
}

// TestEscapeMeaning: through escaping links, reads and writes reach the
// in-root meaning of the link, as if the root were "/".
func TestEscapeMeaning(t *testing.T) {
	eachResolver(t, func(t *testing.T, userspace bool) {
		base, root, outside := escapeTree(t)
		before := snapshot(t, base, root)
		r := openRoot(t, root, userspace)
		mirror := filepath.Join(root, outside)

		for p, want := range map[string]string{
			"/dirout/f":                      "decoy-abs",
			"/reldirout/f":                   "decoy-rel",
			"/a/b/updir/outside/dir/f":       "decoy-rel",
			"/hostroot" + outside + "/dir/f": "decoy-abs",
			"/etc/passwd":                    "in-root",
		} {
			if got, err := readAll(r, p); err != nil || got != want {
				t.Errorf("read %s = %q, %v; want %q", p, got, err, want)
			}
		}
		if names, err := r.ReadDirNames("/hostroot" + outside + "/dir"); err != nil || !slices.Equal(names, []string{"f", "mirror-only"}) {
			t.Errorf("ReadDirNames = %v, %v", names, err)
		}
		dev, ino := hostIno(t, filepath.Join(root, "real-etc/passwd"))
		if info, err := r.Lstat("/etc/passwd"); err != nil || info.Dev != dev || info.Ino != ino {
			t.Errorf("/etc/passwd is not ROOT/real-etc/passwd: %v", err)
		}
		for _, p := range []string{"/fileout", "/relfileout"} {
			if _, err := r.OpenFile(p); !errors.Is(err, ErrSymlink) {
				t.Errorf("OpenFile(%s) = %v, want ErrSymlink", p, err)
			}
			if err := r.Chmod(p, 0o777); !errors.Is(err, ErrSymlink) {
				t.Errorf("Chmod(%s) = %v, want ErrSymlink", p, err)
			}
		}
		if err := r.Mkdir("/dirout2/new", 0o755); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Mkdir(/dirout2/new) = %v, want ENOENT", err)
		}
		if err := r.Mkdir("/proc/x", 0o755); !errors.Is(err, syscall.ELOOP) {
			t.Errorf("Mkdir(/proc/x) = %v, want ELOOP", err)
		}
		if err := writeFile(r, "/dirout/new", "new", 0o644); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(filepath.Join(mirror, "dir/new")); string(got) != "new" {
			t.Errorf("ROOT%s/dir/new = %q", outside, got)
		}
		if err := writeFile(r, "/reldirout2/new", "new", 0o644); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("write /reldirout2/new = %v, want ENOENT", err)
		}
		if err := r.Remove("/reldirout/f"); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Lstat(filepath.Join(root, "outside/dir/f")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("ROOT/outside/dir/f not removed: %v", err)
		}
		if err := r.Symlink("x", "/fileout"); err != nil {
			t.Fatal(err)
		}
		if err := writeFile(r, "/relfileout", "replaced", 0o600); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(filepath.Join(root, "relfileout")); string(got) != "replaced" {
			t.Errorf("ROOT/relfileout = %q", got)
		}
		if err := r.Rename("/hostroot"+outside+"/dir/f", "/a/b/updir/stolen"); err != nil {
			t.Fatal(err)
		}
		if got, err := readAll(r, "/stolen"); err != nil || got != "decoy-abs" {
			t.Errorf("/stolen = %q, %v", got, err)
		}
		if d := diffSnapshots(before, snapshot(t, base, root)); d != nil {
			t.Errorf("changed outside the root:\n%s", strings.Join(d, "\n"))
		}
	})
}

// TestPlantedHardLinkTemp: a temporary name planted as a hard link to a
// file outside the root is unlinked, never written through. (Unlinking it
// changes the outside file's link count: that is its own inode's metadata,
// not a write.)
func TestPlantedHardLinkTemp(t *testing.T) {
	eachResolver(t, func(t *testing.T, userspace bool) {
		_, root, outside := escapeTree(t)
		secret := filepath.Join(outside, "secret")
		if err := os.Link(secret, filepath.Join(root, ".relfileout.cairn-tmp")); err != nil {
			t.Fatal(err)
		}
		r := openRoot(t, root, userspace)
		if err := writeFile(r, "/relfileout", "pwned", 0o777); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(secret)
		if err != nil {
			t.Fatal(err)
		}
		if data, _ := os.ReadFile(secret); string(data) != "secret" || fi.Mode().Perm() != 0o644 {
			t.Errorf("secret changed: %q %v", data, fi.Mode())
		}
	})
}
