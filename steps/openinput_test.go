package steps

import (
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-cm/cairn/internal/treefs"
	"golang.org/x/sys/unix"
)

// statFirst is a treefs.Dir seen as any other fs.FS: putInput then takes
// the way every source took before 435be72, a stat and then an open.
type statFirst struct{ d *treefs.Dir }

func (s statFirst) Open(name string) (fs.File, error)     { return s.d.Open(name) }
func (s statFirst) Stat(name string) (fs.FileInfo, error) { return s.d.Stat(name) }

// TestOpenInputAsBefore holds putInput on a treefs.Dir (journal apply's
// --source) to what it did before it opened the input without a stat
// first: the same error, word for word, for every input that is not a
// regular file of the tree, and (docs/state.md: "a FIFO, a device such as
// /dev/zero or a socket is refused by a stat before it is opened, and never
// read or waited for") no open of a FIFO or a device node at all, which
// inotify sees. Opening a device has effects of its own (a watchdog starts
// its timer, a tape rewinds), and opening a FIFO releases a writer waiting
// on it.
func TestOpenInputAsBefore(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "sub"), 0o755))
	must(os.WriteFile(filepath.Join(src, "file"), []byte("x\n"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "outside"), []byte("out\n"), 0o644))
	must(syscall.Mkfifo(filepath.Join(src, "fifo"), 0o600))
	must(syscall.Mknod(filepath.Join(src, "null"), syscall.S_IFCHR|0o600, 1<<8|3))
	must(os.Symlink("../outside", filepath.Join(src, "out")))
	must(os.Symlink("nowhere", filepath.Join(src, "dangling")))
	must(os.Symlink("loop", filepath.Join(src, "loop")))
	must(os.Symlink("fifo", filepath.Join(src, "tofifo")))
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(src, "sock"), Net: "unix"})
	must(err)
	defer l.Close()
	d, err := treefs.OpenDir(src)
	must(err)
	defer d.Close()

	for _, tc := range []struct {
		name    string
		watched bool // a FIFO or a device: it must not be opened
	}{
		{"missing", false},
		{"sub", false},
		{"file/below", false},
		{"out", false},
		{"dangling", false},
		{"loop", false},
		{"sock", false},
		{"fifo", true},
		{"tofifo", true},
		{"null", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, werr := putInput(hashSink{}, statFirst{d}, tc.name, sourceName{src, tc.name}, "")
			var opened bool
			var got error
			watch(t, filepath.Join(src, tc.name), tc.watched, &opened, func() {
				_, got = putInput(hashSink{}, d, tc.name, sourceName{src, tc.name}, "")
			})
			if werr == nil || got == nil || got.Error() != werr.Error() {
				t.Errorf("putInput on the treefs.Dir:\n  %v\nwant, as with a stat first:\n  %v", got, werr)
			}
			if opened {
				t.Errorf("putInput opened %s, which is no regular file (the stat first never did)", tc.name)
			}
		})
	}
}

// watch runs fn and reports in opened whether it opened the file p (an
// inotify IN_OPEN), when on.
func watch(t *testing.T, p string, on bool, opened *bool, fn func()) {
	t.Helper()
	if !on {
		fn()
		return
	}
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := unix.InotifyAddWatch(fd, real, unix.IN_OPEN); err != nil {
		t.Fatal(err)
	}
	fn()
	time.Sleep(10 * time.Millisecond)
	var buf [4096]byte
	n, _ := unix.Read(fd, buf[:])
	*opened = n > 0
}
