package rootfs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestLastComponentNotFollowed: no method follows a link in the last
// component; each acts on the link, replaces it, or refuses it, and the
// link's target never changes.
func TestLastComponentNotFollowed(t *testing.T) {
	tests := []struct {
		name  string
		op    func(r *Root) error
		check func(t *testing.T, root string, err error)
	}{
		{"Lstat", func(r *Root) error {
			info, err := r.Lstat("/flink")
			if err == nil && !info.IsSymlink() {
				return errors.New("not a link")
			}
			return err
		}, wantNil},
		{"Readlink", func(r *Root) error {
			target, err := r.Readlink("/flink")
			if err == nil && target != "/real/file" {
				return errors.New("target " + target)
			}
			return err
		}, wantNil},
		{"OpenFile", func(r *Root) error { _, err := readAll(r, "/flink"); return err }, wantErr(ErrSymlink)},
		{"ReadDirNames", func(r *Root) error { _, err := r.ReadDirNames("/dlink"); return err }, wantErr(ErrSymlink)},
		{"Mkdir", func(r *Root) error { return r.Mkdir("/dlink", 0o755) }, wantErr(fs.ErrExist)},
		{"Chmod", func(r *Root) error { return r.Chmod("/flink", 0o600) }, wantErr(ErrSymlink)},
		{"ChmodDirLink", func(r *Root) error { return r.Chmod("/dlink", 0o700) }, wantErr(ErrSymlink)},
		{"Lchown", func(r *Root) error { return r.Lchown("/flink", 4242, 4343) }, func(t *testing.T, root string, err error) {
			wantNil(t, root, err)
			var st syscall.Stat_t
			syscall.Lstat(filepath.Join(root, "flink"), &st)
			if st.Uid != 4242 || st.Gid != 4343 {
				t.Errorf("link owner %d:%d, want 4242:4343", st.Uid, st.Gid)
			}
		}},
		{"Remove", func(r *Root) error { return r.Remove("/dlink") }, func(t *testing.T, root string, err error) {
			wantNil(t, root, err)
			if _, err := os.Lstat(filepath.Join(root, "dlink")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("link still there: %v", err)
			}
		}},
		{"Symlink", func(r *Root) error { return r.Symlink("new-target", "/flink") }, wantLink("flink", "new-target")},
		{"CommitTemp", func(r *Root) error { return writeFile(r, "/flink", "replaced", 0o640) }, wantFile("flink", "replaced")},
		{"RenameOver", func(r *Root) error { return r.Rename("/other", "/flink") }, wantFile("flink", "other")},
		{"RenameLink", func(r *Root) error { return r.Rename("/flink", "/real/moved") }, wantLink("real/moved", "/real/file")},
		{"SymlinkOverDirLink", func(r *Root) error { return r.Symlink("x", "/dlink") }, wantLink("dlink", "x")},
	}
	eachResolver(t, func(t *testing.T, userspace bool) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				root := t.TempDir()
				build(t, root, "d:real/sub", "f:real/file=target", "f:other=other", "l:flink->/real/file", "l:dlink->real/sub")
				os.Chmod(filepath.Join(root, "real/file"), 0o644)
				before := snapshot(t, filepath.Join(root, "real"), "")
				err := tt.op(openRoot(t, root, userspace))
				tt.check(t, root, err)
				if tt.name == "RenameLink" {
					return // real/ gained the link
				}
				if d := diffSnapshots(before, snapshot(t, filepath.Join(root, "real"), "")); d != nil {
					t.Errorf("the link's target changed:\n%s", strings.Join(d, "\n"))
				}
			})
		}
	})
}

func wantNil(t *testing.T, _ string, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(target error) func(*testing.T, string, error) {
	return func(t *testing.T, _ string, err error) {
		t.Helper()
		if !errors.Is(err, target) {
			t.Fatalf("err = %v, want %v", err, target)
		}
	}
}

func wantLink(p, target string) func(*testing.T, string, error) {
	return func(t *testing.T, root string, err error) {
		t.Helper()
		wantNil(t, root, err)
		if got, err := os.Readlink(filepath.Join(root, p)); err != nil || got != target {
			t.Fatalf("ROOT/%s -> %q (%v), want -> %q", p, got, err, target)
		}
	}
}

func wantFile(p, data string) func(*testing.T, string, error) {
	return func(t *testing.T, root string, err error) {
		t.Helper()
		wantNil(t, root, err)
		fi, err := os.Lstat(filepath.Join(root, p))
		if err != nil || !fi.Mode().IsRegular() {
			t.Fatalf("ROOT/%s is not a regular file: %v %v", p, fi, err)
		}
		if got, _ := os.ReadFile(filepath.Join(root, p)); string(got) != data {
			t.Fatalf("ROOT/%s = %q, want %q", p, got, data)
		}
	}
}

// TestDebianVarRun: with ROOT/var/run -> /run, as on a real Debian root,
// /var/run/x is ROOT/run/x, never the host's /run/x.
func TestDebianVarRun(t *testing.T) {
	eachResolver(t, func(t *testing.T, userspace bool) {
		root := t.TempDir()
		build(t, root, "d:var", "d:run", "l:var/run->/run")
		r := openRoot(t, root, userspace)
		name := "cairn-rootfs-test-" + filepath.Base(filepath.Dir(root))
		p := "/var/run/" + name
		if err := writeFile(r, p, "hello", 0o644); err != nil {
			t.Fatal(err)
		}
		if got, err := os.ReadFile(filepath.Join(root, "run", name)); err != nil || string(got) != "hello" {
			t.Fatalf("ROOT/run/%s = %q, %v", name, got, err)
		}
		if _, err := os.Lstat("/run/" + name); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("host /run/%s touched: %v", name, err)
		}
		if err := r.Mkdir("/var/run/d", 0o750); err != nil {
			t.Fatal(err)
		}
		if err := r.Symlink("../d", "/var/run/d/l"); err != nil {
			t.Fatal(err)
		}
		if names, err := r.ReadDirNames("/var/run"); !errors.Is(err, ErrSymlink) {
			t.Fatalf("ReadDirNames followed the link /var/run: %v %v", names, err)
		}
		for _, p := range []string{"/var/run/d", "/run/d"} {
			if names, err := r.ReadDirNames(p); err != nil || !slices.Equal(names, []string{"l"}) {
				t.Fatalf("ReadDirNames(%s) = %v, %v", p, names, err)
			}
		}
	})
}

// TestExactModes: modes are exact whatever the umask, the parent's setgid
// bit, and the way chmod is done (fchmodat2, /proc, reopen).
func TestExactModes(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	ways := []struct {
		name        string
		noFchmodat2 bool
		proc        string
	}{
		{"fchmodat2", false, procSelfFD},
		{"proc", true, procSelfFD},
		{"reopen", true, "/nonexistent/proc/self/fd/"},
	}
	for _, w := range ways {
		t.Run(w.name, func(t *testing.T) {
			defer func(proc string) { procSelfFD = proc; noFchmodat2.Store(false) }(procSelfFD)
			noFchmodat2.Store(w.noFchmodat2)
			procSelfFD = w.proc
			root := t.TempDir()
			build(t, root, "d:sgid", "f:file=x", "l:link->file")
			os.Chmod(filepath.Join(root, "sgid"), 0o2775)
			r := openRoot(t, root, false)
			for _, perm := range []uint32{0o755, 0o1777, 0o2750, 0o700, 0o000} {
				p := "/sgid/d" + octal(perm)
				if err := r.Mkdir(p, perm); err != nil {
					t.Fatal(err)
				}
				checkPerm(t, r, p, perm)
			}
			for _, perm := range []uint32{0o644, 0o4755, 0o600} {
				p := "/f" + octal(perm)
				if err := writeFile(r, p, "data", perm); err != nil {
					t.Fatal(err)
				}
				checkPerm(t, r, p, perm)
				if err := r.Chmod(p, 0o6711); err != nil {
					t.Fatal(err)
				}
				checkPerm(t, r, p, 0o6711)
			}
			if err := r.Chmod("/sgid", 0o1750); err != nil {
				t.Fatal(err)
			}
			checkPerm(t, r, "/sgid", 0o1750)
			if err := r.Chmod("/link", 0o600); !errors.Is(err, ErrSymlink) {
				t.Fatalf("Chmod(/link) = %v, want ErrSymlink", err)
			}
			checkPerm(t, r, "/file", 0o644&^0o077)
			if err := r.Mkdir("/bad", 0o10755); err == nil {
				t.Fatal("Mkdir accepted mode 010755")
			}
		})
	}
}

func octal(perm uint32) string {
	const digits = "01234567"
	return string([]byte{digits[perm>>9&7], digits[perm>>6&7], digits[perm>>3&7], digits[perm&7]})
}

func checkPerm(t *testing.T, r *Root, p string, want uint32) {
	t.Helper()
	info, err := r.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	if info.Perm() != want {
		t.Errorf("%s: mode %s, want %s", p, octal(info.Perm()), octal(want))
	}
}

// TestLchown: numeric ids, on files, directories and links; -1 keeps one.
func TestLchown(t *testing.T) {
	root := t.TempDir()
	build(t, root, "d:dir", "f:dir/file=x", "l:dir/link->file")
	r := openRoot(t, root, false)
	for _, p := range []string{"/dir", "/dir/file", "/dir/link"} {
		if err := r.Lchown(p, 1234, 5678); err != nil {
			t.Fatal(err)
		}
		if err := r.Lchown(p, -1, 4321); err != nil {
			t.Fatal(err)
		}
		info, err := r.Lstat(p)
		if err != nil || info.UID != 1234 || info.GID != 4321 {
			t.Errorf("%s: owner %d:%d (%v), want 1234:4321", p, info.UID, info.GID, err)
		}
	}
}

// TestErrors: messages name the op and the object path; errors.Is works.
func TestErrors(t *testing.T) {
	root := t.TempDir()
	build(t, root, "d:etc/foo", "f:etc/file=x", "d:full", "f:full/x=x", "p:fifo")
	r := openRoot(t, root, false)
	tests := []struct {
		err    error
		msg    string
		target error
	}{
		{r.Mkdir("/etc/foo", 0o755), "mkdir /etc/foo: file exists", fs.ErrExist},
		{r.Remove("/etc/nope"), "remove /etc/nope: no such file or directory", fs.ErrNotExist},
		{r.Mkdir("/nope/x", 0o755), "mkdir /nope/x: no such file or directory", fs.ErrNotExist},
		{r.Mkdir("/etc/file/x", 0o755), "mkdir /etc/file/x: not a directory", syscall.ENOTDIR},
		{r.Remove("/full"), "remove /full: directory not empty", syscall.ENOTEMPTY},
		{r.Symlink("x", "/etc/foo"), "symlink /etc/foo: is a directory", syscall.EISDIR},
		{r.Rename("/etc/nope", "/etc/x"), "rename /etc/nope /etc/x: no such file or directory", fs.ErrNotExist},
		{r.Rename("/etc/file", "/nope/x"), "rename /etc/file /nope/x: no such file or directory", fs.ErrNotExist},
		{r.CommitTemp("/etc/x"), "committemp /etc/x: no such file or directory", fs.ErrNotExist},
		{r.Chmod("/etc/file", 0o10000), "chmod /etc/file: invalid mode 010000: only 07777 may be set", nil},
		{second(r.OpenFile("/fifo")), "open /fifo: not a regular file", ErrNotRegular},
		{second(r.OpenFile("/etc")), "open /etc: not a regular file", ErrNotRegular},
		{second(r.ReadDirNames("/etc/file")), "readdir /etc/file: not a directory", syscall.ENOTDIR},
		{second(r.Readlink("/etc/file")), "readlink /etc/file: invalid argument", syscall.EINVAL},
		{second(r.Lstat("/etc/nope")), "lstat /etc/nope: no such file or directory", fs.ErrNotExist},
	}
	for _, tt := range tests {
		if tt.err == nil || tt.err.Error() != tt.msg {
			t.Errorf("err = %v, want %q", tt.err, tt.msg)
		}
		if tt.target != nil && !errors.Is(tt.err, tt.target) {
			t.Errorf("%v is not %v", tt.err, tt.target)
		}
	}
	// rename(2) of a symlink over a directory: EISDIR (or EEXIST/ENOTEMPTY
	// on some filesystems); never replaced.
	if err := r.Symlink("x", "/etc"); err == nil {
		t.Error("Symlink replaced a directory")
	}
	if err := writeFile(r, "/etc", "x", 0o644); err == nil {
		t.Error("CommitTemp replaced a directory")
	}
	if names, _ := os.ReadDir(filepath.Join(root)); len(names) != 3 {
		t.Errorf("temporary files left behind: %v", names)
	}
}

func second[T any](_ T, err error) error { return err }

func third[T, U any](_ T, _ U, err error) error { return err }

// TestInvalidPaths: every method refuses what is not an object path.
func TestInvalidPaths(t *testing.T) {
	r := openRoot(t, t.TempDir(), false)
	bad := []string{"", "/", "etc", "etc/x", "/etc/", "//etc", "/etc//x", "/etc/./x", "/etc/..", "/./etc", "/..", "/a\x00b"}
	for _, p := range bad {
		errs := []error{
			second(r.Lstat(p)), second(r.OpenFile(p)), second(r.Readlink(p)), second(r.ReadDirNames(p)),
			r.Mkdir(p, 0o755), r.Chmod(p, 0o755), r.Lchown(p, 0, 0), r.Remove(p), r.Rename(p, "/x"),
			r.Rename("/x", p), r.Symlink("x", p), second(r.CreateTemp(p, 0o644)), r.CommitTemp(p),
			r.RemoveTemp(p), r.SyncDir(p), third(r.OpenParent(p)),
		}
		for i, err := range errs {
			if !errors.Is(err, ErrInvalidPath) {
				t.Errorf("%q: method %d: err = %v, want ErrInvalidPath", p, i, err)
			}
		}
	}
	d, _, err := r.OpenParent("/x")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, name := range []string{"", ".", "..", "a/b", "/a", "a\x00"} {
		if _, err := d.Lstat(name); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Dir.Lstat(%q) = %v, want ErrInvalidName", name, err)
		}
	}
}

// TestTempPath: deterministic, in the same directory, within NAME_MAX.
func TestTempPath(t *testing.T) {
	if got := TempPath("/etc/motd"); got != "/etc/.motd.cairn-tmp" {
		t.Errorf("TempPath(/etc/motd) = %q", got)
	}
	if got := TempPath("/x"); got != "/.x.cairn-tmp" {
		t.Errorf("TempPath(/x) = %q", got)
	}
	fits := strings.Repeat("a", 244)
	if got := TempPath("/d/" + fits); got != "/d/."+fits+".cairn-tmp" {
		t.Errorf("TempPath of 244 bytes = %q", got)
	}
	long := "/d/" + strings.Repeat("b", 255)
	got := TempPath(long)
	if got != TempPath(long) || !strings.HasPrefix(got, "/d/.cairn-") || len(got)-3 > 255 || got == TempPath(long[:len(long)-1]+"c") {
		t.Errorf("TempPath of 255 bytes = %q", got)
	}
	// And the file really lands there.
	root := t.TempDir()
	build(t, root, "d:d")
	r := openRoot(t, root, false)
	f, err := r.CreateTemp(long, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if f.Name() != got {
		t.Errorf("Name() = %q, want %q", f.Name(), got)
	}
	if _, err := os.Lstat(filepath.Join(root, got)); err != nil {
		t.Error(err)
	}
	if err := r.CommitTemp(long); err != nil {
		t.Fatal(err)
	}
}

// TestLeftoverTemp: a leftover at the temporary name, whatever it is, is
// replaced, never written through.
func TestLeftoverTemp(t *testing.T) {
	eachResolver(t, func(t *testing.T, userspace bool) {
		root := t.TempDir()
		build(t, root, "d:etc", "f:etc/shadow=secret", "l:etc/.motd.cairn-tmp->shadow", "l:etc/.issue.cairn-tmp->shadow")
		if err := os.Link(filepath.Join(root, "etc/shadow"), filepath.Join(root, "etc/.hosts.cairn-tmp")); err != nil {
			t.Fatal(err)
		}
		r := openRoot(t, root, userspace)
		for _, p := range []string{"/etc/motd", "/etc/hosts"} {
			if err := writeFile(r, p, "new", 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := r.Symlink("motd", "/etc/issue"); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(filepath.Join(root, "etc/shadow")); string(got) != "secret" {
			t.Errorf("shadow = %q", got)
		}
		if names, _ := r.ReadDirNames("/etc"); !slices.Equal(names, []string{"hosts", "issue", "motd", "shadow"}) {
			t.Errorf("entries: %v", names)
		}
		if err := r.RemoveTemp("/etc/motd"); err != nil {
			t.Errorf("RemoveTemp of an absent temp: %v", err)
		}
	})
}

// TestRemove: files, links, empty directories; not a directory with
// entries.
func TestRemove(t *testing.T) {
	root := t.TempDir()
	build(t, root, "d:empty", "d:full", "f:full/x=x", "f:file=x", "l:link->full", "p:fifo")
	r := openRoot(t, root, false)
	for _, p := range []string{"/empty", "/file", "/link", "/fifo"} {
		if err := r.Remove(p); err != nil {
			t.Error(err)
		}
		if _, err := r.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s still there: %v", p, err)
		}
	}
	if err := r.Remove("/full"); !errors.Is(err, syscall.ENOTEMPTY) {
		t.Errorf("Remove(/full) = %v", err)
	}
}

// TestRenameAcrossLinkedDirs: both ends resolve their own parents.
func TestRenameAcrossLinkedDirs(t *testing.T) {
	eachResolver(t, func(t *testing.T, userspace bool) {
		root := t.TempDir()
		build(t, root, "d:a", "d:b", "l:la->/a", "l:lb->../b", "f:a/f=x")
		r := openRoot(t, root, userspace)
		if err := r.Rename("/la/f", "/lb/g"); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(filepath.Join(root, "b/g")); string(got) != "x" {
			t.Errorf("b/g = %q", got)
		}
		d, name, err := r.OpenParent("/lb/g")
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		if d.Path() != "/lb" || name != "g" {
			t.Errorf("OpenParent = %q %q", d.Path(), name)
		}
		if err := d.Rename(name, "h"); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Lstat("h"); err != nil {
			t.Fatal(err)
		}
	})
}

// TestDirCopy: one resolution for a whole COPY, as the applier does it.
func TestDirCopy(t *testing.T) {
	root := t.TempDir()
	build(t, root, "d:etc")
	r := openRoot(t, root, false)
	d, name, err := r.OpenParent("/etc/motd")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	f, err := d.CreateTemp(name, 0o4755)
	if err != nil {
		t.Fatal(err)
	}
	if f.Name() != "/etc/.motd.cairn-tmp" {
		t.Errorf("Name() = %q", f.Name())
	}
	f.WriteString("hello")
	if err := SetOwnerMode(f, 1000, 1000, 0o4755); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := d.CommitTemp(name); err != nil {
		t.Fatal(err)
	}
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := d.Syncfs(); err != nil {
		t.Fatal(err)
	}
	info, err := d.Lstat(name)
	if err != nil || info.Perm() != 0o4755 || info.UID != 1000 || info.Size != 5 {
		t.Errorf("motd: %+v %v", info, err)
	}
	if err := r.SyncDir("/etc/motd"); err != nil {
		t.Error(err)
	}
	if err := r.Syncfs(); err != nil {
		t.Error(err)
	}
	if got, err := readAll(r, "/etc/motd"); got != "hello" || err != nil {
		t.Errorf("read %q %v", got, err)
	}
}

// TestClosed: a closed Root fails cleanly, never acts on a reused fd.
func TestClosed(t *testing.T) {
	r, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if r.Path() == "" || r.HostPath("/etc/motd") != filepath.Join(r.Path(), "etc/motd") {
		t.Errorf("Path %q HostPath %q", r.Path(), r.HostPath("/etc/motd"))
	}
	r.Close()
	if err := r.Mkdir("/x", 0o755); !errors.Is(err, syscall.EBADF) {
		t.Errorf("Mkdir after Close = %v", err)
	}
	if err := r.Close(); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("second Close = %v", err)
	}
	if _, err := Open(filepath.Join(t.TempDir(), "nope")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open of a missing dir = %v", err)
	}
}

// TestConcurrent: one Root, many goroutines, both resolvers at once.
func TestConcurrent(t *testing.T) {
	root := t.TempDir()
	build(t, root, "d:real", "l:link->/real")
	r := openRoot(t, root, false)
	done := make(chan error)
	for g := range 8 {
		go func() {
			var err error
			for i := 0; i < 50 && err == nil; i++ {
				if g == 0 && i == 25 {
					r.userspace.Store(true)
				}
				p := "/link/g" + octal(uint32(g)) + "-" + octal(uint32(i))
				if err = writeFile(r, p, "x", 0o640); err == nil {
					var info Info
					info, err = r.Lstat(p)
					if err == nil && info.Perm() != 0o640 {
						err = errors.New(p + ": wrong mode")
					}
				}
			}
			done <- err
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	if names, err := r.ReadDirNames("/real"); err != nil || len(names) != 400 {
		t.Errorf("%d entries, %v", len(names), err)
	}
}

// TestDirCreateUnnamed: a file made without a name, written, and given its
// name only when whole (through AT_EMPTY_PATH or, without the capability,
// /proc); anything already at the name (a file, a hard link, a link, a
// directory) is left as it is, never written through, and the error is
// fs.ErrExist; a file never linked leaves nothing.
func TestDirCreateUnnamed(t *testing.T) {
	ways := []struct {
		name            string
		noEmptyPathLink bool
	}{
		{"AT_EMPTY_PATH", false},
		{"proc", true},
	}
	for _, w := range ways {
		t.Run(w.name, func(t *testing.T) {
			defer noEmptyPathLink.Store(false)
			noEmptyPathLink.Store(w.noEmptyPathLink)
			root := t.TempDir()
			build(t, root, "d:etc", "f:etc/shadow=secret", "l:etc/motd->shadow", "l:etc/dangling->nowhere", "d:etc/dir")
			if err := os.Link(filepath.Join(root, "etc/shadow"), filepath.Join(root, "etc/hosts")); err != nil {
				t.Fatal(err)
			}
			r := openRoot(t, root, false)
			d, err := r.OpenDir("/etc")
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			names := func() []string {
				names, err := r.ReadDirNames("/etc")
				if err != nil {
					t.Fatal(err)
				}
				slices.Sort(names)
				return names
			}
			before := names()
			for _, name := range []string{"shadow", "hosts", "motd", "dangling", "dir"} {
				f, err := d.CreateUnnamed(name, 0o644)
				if err != nil {
					t.Fatal(err)
				}
				f.WriteString("new")
				err = d.Link(f, name)
				f.Close()
				if !errors.Is(err, fs.ErrExist) {
					t.Errorf("Link(%s): %v, want fs.ErrExist", name, err)
				}
			}
			if _, err := os.Lstat(filepath.Join(root, "nowhere")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the dangling link's target was made: %v", err)
			}
			if got, _ := os.ReadFile(filepath.Join(root, "etc/shadow")); string(got) != "secret" {
				t.Errorf("shadow = %q", got)
			}

			f, err := d.CreateUnnamed("new", 0o4750)
			if err != nil {
				t.Fatal(err)
			}
			if f.Name() != "/etc/new" {
				t.Errorf("Name() = %q", f.Name())
			}
			f.WriteString("hello")
			if err := SetOwnerMode(f, 1000, 1000, 0o4750); err != nil {
				t.Fatal(err)
			}
			if got := names(); !slices.Equal(got, before) {
				t.Errorf("before the link, /etc holds %q, want %q", got, before)
			}
			if err := d.Link(f, "new"); err != nil {
				t.Fatal(err)
			}
			f.Close()
			info, err := d.Lstat("new")
			if err != nil || info.Perm() != 0o4750 || info.UID != 1000 || info.Size != 5 || info.Nlink != 1 {
				t.Errorf("new: %+v %v", info, err)
			}

			// Never linked: nothing is left.
			f, err = d.CreateUnnamed("cut", 0o644)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteString("cut sh")
			f.Close()
			after := append(slices.Clone(before), "new")
			slices.Sort(after)
			if got := names(); !slices.Equal(got, after) {
				t.Errorf("after a file never linked, /etc holds %q", got)
			}
		})
	}

	r := openRoot(t, t.TempDir(), false)
	d, err := r.OpenDir("/")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, name := range []string{"..", "a/b", ""} {
		if _, err := d.CreateUnnamed(name, 0o644); !errors.Is(err, ErrInvalidName) {
			t.Errorf("CreateUnnamed(%q): %v, want ErrInvalidName", name, err)
		}
	}
	if _, err := d.CreateUnnamed("x", 0o10644); err == nil {
		t.Error("CreateUnnamed with a type bit in the mode: no error")
	}
}

// TestOpenDirFast holds OpenDirFast to the directory that OpenDir, one
// component after another, opens, and to saying no wherever that walk
// would fail or follow nothing but links: a missing component, a file, a
// link to a directory (inside the root or out of it), an invalid path.
func TestOpenDirFast(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	build(t, dir, "d:a/b/c", "f:a/file=x", "l:a/up->..", "l:a/in->b", "l:a/out->"+outside, "d:a/b/c/d")
	r := openRoot(t, dir, false)
	base, err := r.OpenDir("/a")
	if err != nil {
		t.Fatal(err)
	}
	defer base.Close()
	for _, tc := range []struct {
		rel  string
		want string // the host path it opens, "" for no
	}{
		{"b", "a/b"},
		{"b/c", "a/b/c"},
		{"b/c/d", "a/b/c/d"},
		{"nope", ""},
		{"b/nope", ""},
		{"file", ""},
		{"file/x", ""},
		{"in", ""},
		{"in/c", ""},
		{"up", ""},
		{"out", ""},
		{"", ""},
		{"/b", ""},
		{"b/", ""},
		{"b//c", ""},
		{"b/../b", ""},
		{"./b", ""},
		{"..", ""},
	} {
		sub, ok := base.OpenDirFast(tc.rel)
		if ok != (tc.want != "") {
			t.Errorf("OpenDirFast(%q): ok %v, want %v", tc.rel, ok, tc.want != "")
		}
		if !ok {
			if sub != nil {
				t.Errorf("OpenDirFast(%q): a Dir with ok false", tc.rel)
			}
			continue
		}
		if got, want := sub.Path(), "/a/"+tc.rel; got != want {
			t.Errorf("OpenDirFast(%q).Path() = %q, want %q", tc.rel, got, want)
		}
		info, err := sub.Stat()
		if err != nil {
			t.Fatal(err)
		}
		dev, ino := hostIno(t, filepath.Join(dir, tc.want))
		if info.Dev != dev || info.Ino != ino {
			t.Errorf("OpenDirFast(%q) opened %d:%d, want %s (%d:%d)", tc.rel, info.Dev, info.Ino, tc.want, dev, ino)
		}
		sub.Close()
	}
}

// TestRootID holds Root.ID to what stat says of the root directory.
func TestRootID(t *testing.T) {
	dir := t.TempDir()
	r := openRoot(t, dir, false)
	dev, ino := r.ID()
	wantDev, wantIno := hostIno(t, dir)
	if dev != wantDev || ino != wantIno {
		t.Errorf("ID() = %d:%d, want %d:%d", dev, ino, wantDev, wantIno)
	}
}

// TestSetOwnerModeOnlyWhatDiffers holds SetOwnerMode to the owner and mode
// asked for, set-id bits kept across a change of owner, and to changing
// nothing (the inode's ctime stays) where fstat says they are so already.
func TestSetOwnerModeOnlyWhatDiffers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give files away")
	}
	for _, tc := range []struct {
		name             string
		fromUID, fromGID int
		fromMode         uint32
		uid, gid         int
		mode             uint32
		changes          bool
	}{
		{"already so", 0, 0, 0o644, 0, 0, 0o644, false},
		{"already so, owner kept", 1000, 1000, 0o600, -1, -1, 0o600, false},
		{"mode", 0, 0, 0o600, 0, 0, 0o644, true},
		{"owner", 0, 0, 0o644, 1000, 1000, 0o644, true},
		{"group only", 0, 0, 0o644, -1, 1000, 0o644, true},
		{"owner of a setuid file", 0, 0, 0o4755, 1000, 1000, 0o4755, true},
		{"setgid added", 0, 0, 0o755, 0, 0, 0o2755, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := filepath.Join(t.TempDir(), "f")
			f, err := os.OpenFile(name, os.O_CREATE|os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := os.Chown(name, tc.fromUID, tc.fromGID); err != nil {
				t.Fatal(err)
			}
			if err := unix.Chmod(name, tc.fromMode); err != nil {
				t.Fatal(err)
			}
			var before, after unix.Stat_t
			if err := unix.Stat(name, &before); err != nil {
				t.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond) // past the coarse clock's tick
			if err := SetOwnerMode(f, tc.uid, tc.gid, tc.mode); err != nil {
				t.Fatal(err)
			}
			if err := unix.Stat(name, &after); err != nil {
				t.Fatal(err)
			}
			wantUID, wantGID := uint32(tc.fromUID), uint32(tc.fromGID)
			if tc.uid >= 0 {
				wantUID = uint32(tc.uid)
			}
			if tc.gid >= 0 {
				wantGID = uint32(tc.gid)
			}
			if after.Uid != wantUID || after.Gid != wantGID || after.Mode&0o7777 != tc.mode {
				t.Errorf("now %d:%d %#o, want %d:%d %#o", after.Uid, after.Gid, after.Mode&0o7777, wantUID, wantGID, tc.mode)
			}
			if changed := after.Ctim != before.Ctim; changed != tc.changes {
				t.Errorf("inode changed: %v, want %v", changed, tc.changes)
			}
		})
	}
}
