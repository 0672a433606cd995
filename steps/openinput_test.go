package steps

import (
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-cm/cairn/internal/treefs"
	"golang.org/x/sys/unix"
)

// TestOpenInputAsBefore holds putInput on a treefs.Dir (journal apply's
// --source) to the errors it gives for every input that is not a regular
// file of the tree, word for word (the op is "stat" where the stat before
// the open failed, "open" where it found no regular file), and (docs/state.md:
// "a FIFO, a device such as /dev/zero or a socket is refused by a stat
// before it is opened, and never read or waited for") to no open of a FIFO
// or a device node at all, which inotify sees. Opening a device has effects
// of its own (a watchdog starts its timer, a tape rewinds), and opening a
// FIFO releases a writer waiting on it.
func TestOpenInputAsBefore(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	must(t, os.MkdirAll(filepath.Join(src, "sub"), 0o755))
	must(t, os.WriteFile(filepath.Join(src, "file"), []byte("x\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "outside"), []byte("out\n"), 0o644))
	must(t, syscall.Mkfifo(filepath.Join(src, "fifo"), 0o600))
	must(t, syscall.Mknod(filepath.Join(src, "null"), syscall.S_IFCHR|0o600, 1<<8|3))
	must(t, os.Symlink("../outside", filepath.Join(src, "out")))
	must(t, os.Symlink("nowhere", filepath.Join(src, "dangling")))
	must(t, os.Symlink("loop", filepath.Join(src, "loop")))
	must(t, os.Symlink("fifo", filepath.Join(src, "tofifo")))
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(src, "sock"), Net: "unix"})
	must(t, err)
	defer l.Close()
	d, err := treefs.OpenDir(src)
	must(t, err)
	defer d.Close()

	for _, tc := range []struct {
		name    string
		op, why string // the error: OP SRC/NAME: WHY
		watched bool   // a FIFO or a device: it must not be opened
	}{
		{"missing", "stat", "no such file or directory", false},
		{"sub", "open", "not a regular file", false},
		{"file/below", "stat", "not a directory", false},
		{"out", "stat", "symbolic link leads out of the tree", false},
		{"dangling", "stat", "no such file or directory", false},
		{"loop", "stat", "too many levels of symbolic links", false},
		{"sock", "open", "not a regular file", false},
		{"fifo", "open", "not a regular file", true},
		{"tofifo", "open", "not a regular file", true},
		{"null", "open", "not a regular file", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var opened bool
			var got error
			watch(t, filepath.Join(src, tc.name), tc.watched, &opened, func() {
				_, got = putInput(hashSink{}, d, tc.name, sourceName{src, tc.name}, "")
			})
			want := tc.op + " " + filepath.Join(src, tc.name) + ": " + tc.why
			if got == nil || got.Error() != want {
				t.Errorf("putInput on the treefs.Dir:\n  %v\nwant\n  %s", got, want)
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
