package treefs_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/cairn-cm/cairn/agent/gitfs"
	"github.com/cairn-cm/cairn/internal/treefs"
)

// secret is what the file outside the tree holds: no result may show it.
const secret = "SECRET-OUTSIDE-THE-TREE"

// tree makes a configuration tree in a temporary directory, beside a
// directory "outside" holding a secret, with links of every kind: inside
// the tree, absolute, climbing out, looping and dangling. It returns the
// tree's path.
func tree(t *testing.T) string {
	t.Helper()
	top := t.TempDir()
	dir := filepath.Join(top, "config")
	files := map[string]string{
		"a.txt":             "A",
		"sub/b.txt":         "B",
		"sub/deep/c.txt":    "C",
		"outside-name.txt":  "not outside",
		"../outside/secret": secret,
	}
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"in":             "a.txt",
		"subin":          "sub",
		"sub/up":         "../a.txt",
		"sub/dotdot":     "..",
		"sub/deep/upup":  "../../sub/b.txt",
		"chain1":         "chain2",
		"chain2":         "subin/b.txt",
		"abs":            filepath.Join(top, "outside", "secret"),
		"abs-inside":     filepath.Join(dir, "a.txt"), // absolute, even to a file of the tree
		"abs-etc":        "/etc/passwd",
		"out":            "../outside/secret",
		"outdir":         "../outside",
		"sub/out":        "../../outside/secret",
		"sub/outback":    "../../config/a.txt", // out, then back in: still out
		"loop1":          "loop2",
		"loop2":          "loop1",
		"dangling":       "nope",
		"sub/deep/viaup": "../../outdir/secret",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(dir, filepath.FromSlash(name))); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// names are the paths every file system of the tree is asked for.
var names = []string{
	"a.txt", "sub/b.txt", "in", "subin/b.txt", "sub/up", "sub/dotdot/a.txt", "sub/deep/upup",
	"chain1", "abs", "abs-inside", "abs-etc", "out", "outdir/secret", "sub/out", "sub/outback",
	"loop1", "dangling", "sub/deep/viaup", "missing", "subin/deep/c.txt", "subin/../a.txt",
}

// outcome classifies what reading name gave: its content, or the kind of
// its error.
func outcome(data []byte, err error) string {
	switch {
	case err == nil:
		return "content " + string(data)
	case errors.Is(err, treefs.ErrLinkEscapes):
		return "escapes"
	case errors.Is(err, treefs.ErrLinkLoop):
		return "loop"
	case errors.Is(err, fs.ErrNotExist):
		return "missing"
	case errors.Is(err, fs.ErrInvalid):
		return "invalid"
	}
	return "error " + err.Error()
}

// git commits the tree to a repository of its own and returns the
// revision's file system.
func git(t *testing.T, dir string) fs.FS {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	for _, args := range [][]string{
		{"init", "-q"}, {"add", "-A"}, {"commit", "-q", "-m", "tree"},
	} {
		cmd := exec.Command("git", append([]string{"-c", "init.defaultBranch=main"}, args...)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
			"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	r, err := gitfs.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	fsys, _, err := r.FS("HEAD")
	if err != nil {
		t.Fatal(err)
	}
	return fsys
}

// openDir opens the tree, resolving in user space when userSpace is set.
func openDir(t *testing.T, dir string, userSpace bool) *treefs.Dir {
	t.Helper()
	d, err := treefs.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if userSpace {
		treefs.UserSpace(d)
	}
	return d
}

// TestSameAsGit: a directory refuses exactly the paths a git revision of it
// refuses, with the same error, and reads the same content elsewhere;
// openat2 and the user-space walk agree. No result shows the secret.
func TestSameAsGit(t *testing.T) {
	dir := tree(t)
	gfs := git(t, dir)
	for _, userSpace := range []bool{false, true} {
		d := openDir(t, dir, userSpace)
		for _, name := range names {
			want := outcome(fs.ReadFile(gfs, name))
			data, err := d.ReadFile(name)
			got := outcome(data, err)
			if got != want {
				t.Errorf("user space %v: ReadFile(%q) = %s, git says %s", userSpace, name, got, want)
			}
			if err != nil && strings.Contains(err.Error(), secret) || strings.Contains(string(data), secret) {
				t.Errorf("ReadFile(%q) shows what lies outside the tree: %q %v", name, data, err)
			}
			if want == "escapes" {
				var pe *fs.PathError
				if !errors.As(err, &pe) || pe.Err.Error() != "symbolic link leads out of the tree" || pe.Path != name {
					t.Errorf("ReadFile(%q): %v, want an *fs.PathError for %q saying the link leads out of the tree", name, err, name)
				}
			}
			_, gerr := fs.Stat(gfs, name)
			_, derr := d.Stat(name)
			if a, b := outcome(nil, derr), outcome(nil, gerr); a != b {
				t.Errorf("user space %v: Stat(%q) = %s, git says %s", userSpace, name, a, b)
			}
		}
	}
}

// TestWalkSameAsGit: fs.WalkDir and fs.Glob see the same names in both,
// and the same types (links as links).
func TestWalkSameAsGit(t *testing.T) {
	dir := tree(t)
	gfs := git(t, dir)
	list := func(fsys fs.FS) string {
		var b strings.Builder
		err := fs.WalkDir(fsys, ".", func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if e.IsDir() && e.Name() == ".git" {
				return fs.SkipDir
			}
			b.WriteString(p + " " + e.Type().String() + "\n")
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		matches, err := fs.Glob(fsys, "sub/*")
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(strings.Join(matches, " "))
		return b.String()
	}
	if got, want := list(openDir(t, dir, false)), list(gfs); got != want {
		t.Errorf("the directory lists\n%s\ngit lists\n%s", got, want)
	}
	d := openDir(t, dir, false)
	if target, err := d.ReadLink("out"); err != nil || target != "../outside/secret" {
		t.Errorf("ReadLink(out) = %q, %v", target, err)
	}
	if info, err := d.Lstat("abs"); err != nil || info.Mode().Type() != fs.ModeSymlink {
		t.Errorf("Lstat(abs) = %v, %v; want a link", info, err)
	}
	if _, err := d.ReadLink("a.txt"); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("ReadLink of a regular file: %v, want fs.ErrInvalid", err)
	}
}

// TestFS runs the standard library's checks of a file system over a tree
// without links out of it (fstest.TestFS reads every file it lists).
func TestFS(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{"a": "A", "d/b": "B", "d/e/c": "C"} {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(content), 0o644)
	}
	os.Symlink("d/b", filepath.Join(dir, "link"))
	for _, userSpace := range []bool{false, true} {
		if err := fstest.TestFS(openDir(t, dir, userSpace), "a", "d/b", "d/e/c", "link"); err != nil {
			t.Errorf("user space %v: %v", userSpace, err)
		}
	}
}

// TestNotRegular: a FIFO, a socket and a device are refused with
// ErrNotRegular at once, never read and never waited for, whether named
// or reached through a link inside the tree.
func TestNotRegular(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Symlink("fifo", filepath.Join(dir, "to-fifo"))
	names := []string{"fifo", "to-fifo"}
	if err := syscall.Mknod(filepath.Join(dir, "zero"), syscall.S_IFCHR|0o644, 1<<8|5); err == nil {
		names = append(names, "zero") // a copy of /dev/zero (root only)
	} else {
		t.Logf("no device node (%v): not checked", err)
	}
	sock := filepath.Join(dir, "sock")
	if fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM, 0); err == nil {
		defer syscall.Close(fd)
		if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: sock}); err == nil {
			names = append(names, "sock")
		}
	}
	for _, userSpace := range []bool{false, true} {
		d := openDir(t, dir, userSpace)
		for _, name := range names {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			done := make(chan error, 1)
			go func() {
				_, err := d.ReadFile(name)
				if err == nil {
					var f fs.File
					if f, err = d.Open(name); err == nil {
						_, err = io.ReadAll(f)
					}
				}
				done <- err
			}()
			select {
			case err := <-done:
				if !errors.Is(err, treefs.ErrNotRegular) {
					t.Errorf("user space %v: reading %s: %v, want %v", userSpace, name, err, treefs.ErrNotRegular)
				}
			case <-ctx.Done():
				t.Fatalf("user space %v: reading %s still blocks after 5s", userSpace, name)
			}
			cancel()
			if _, err := d.Open(name); !errors.Is(err, treefs.ErrNotRegular) {
				t.Errorf("Open(%s): %v, want %v", name, err, treefs.ErrNotRegular)
			}
			if info, err := d.Stat(name); err != nil || info.Mode().IsRegular() {
				t.Errorf("Stat(%s) = %v, %v: want it described, not regular", name, info, err)
			}
		}
	}
}

// TestSumFile: SumFile gives the sha256 of what ReadFile reads, for files
// shorter than, as long as and longer than its buffer, and the errors
// OpenFile gives; a small file costs no allocation but the two of openat2
// (the path and its open_how).
func TestSumFile(t *testing.T) {
	dir := tree(t)
	const bufSize = 64
	sizes := []int{0, 1, bufSize - 1, bufSize, bufSize + 1, 3*bufSize + 5}
	for _, n := range sizes {
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("size%d", n)), bytes.Repeat([]byte{'x'}, n), 0o644)
	}
	buf := make([]byte, bufSize)
	for _, userSpace := range []bool{false, true} {
		d := openDir(t, dir, userSpace)
		for _, n := range sizes {
			name := fmt.Sprintf("size%d", n)
			got, err := d.SumFile(name, buf)
			if want := sha256.Sum256(bytes.Repeat([]byte{'x'}, n)); err != nil || got != want {
				t.Errorf("user space %v: SumFile(%s) = %x, %v; want %x", userSpace, name, got, err, want)
			}
		}
		for _, n := range sizes { // no buffer: "any length" includes none
			name := fmt.Sprintf("size%d", n)
			got, err := d.SumFile(name, nil)
			if want := sha256.Sum256(bytes.Repeat([]byte{'x'}, n)); err != nil || got != want {
				t.Errorf("user space %v: SumFile(%s, nil) = %x, %v; want %x", userSpace, name, got, err, want)
			}
		}
		for _, name := range []string{"sub", "missing", "abs", "out", "loop1", "dangling"} {
			_, want := d.OpenFile(name)
			if _, err := d.SumFile(name, buf); want == nil || err == nil || err.Error() != want.Error() {
				t.Errorf("user space %v: SumFile(%s): %v; OpenFile says %v", userSpace, name, err, want)
			}
		}
	}
	d := openDir(t, dir, false)
	if allocs := testing.AllocsPerRun(20, func() { d.SumFile("size1", buf) }); allocs > 2 {
		t.Errorf("SumFile of a small file: %v allocations, want at most 2 (openat2's)", allocs)
	}
}

// BenchmarkSumFile hashes a source file of the size bench/genconfig writes
// (under 4 KiB), as the compiler hashes each of the thousands it copies.
func BenchmarkSumFile(b *testing.B) {
	dir := b.TempDir()
	os.WriteFile(filepath.Join(dir, "f.conf"), bytes.Repeat([]byte("key = value\n"), 200), 0o644)
	d, err := treefs.OpenDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	buf := make([]byte, 32<<10)
	for b.Loop() {
		if _, err := d.SumFile("f.conf", buf); err != nil {
			b.Fatal(err)
		}
	}
}
