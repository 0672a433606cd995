package steps_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestMoveOverFarFutureMtime: a file whose mtime is past year 9999 (tmpfs,
// btrfs: any user may touch -d such a time on a file of theirs) has an undo
// image whose time encoding/json cannot encode (time.Time's MarshalJSON
// refuses it): the image keeps no time (imageMtime), and the move runs.
// (Before, a move over it panicked in the middle of its intent log, then
// failed, and every later move over the file failed too.)
func TestMoveOverFarFutureMtime(t *testing.T) {
	h := newImgHost(t)
	shm, err := os.MkdirTemp("/dev/shm", "cairn-mtime-")
	if err != nil {
		t.Skip("no /dev/shm:", err)
	}
	t.Cleanup(func() { os.RemoveAll(shm) })
	h.root = shm
	if err := os.MkdirAll(filepath.Join(h.root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(h.root, "etc", "x")
	if err := os.WriteFile(target, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// year 14645: past what os.Chtimes can say in int64 nanoseconds
	ts := []unix.Timespec{{Sec: 400_000_000_000}, {Sec: 400_000_000_000}}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, target, ts, 0); err != nil {
		t.Skip("cannot set the time:", err)
	}
	if fi, _ := os.Stat(target); fi.ModTime().Year() < 10000 {
		t.Skipf("the file system keeps no mtime past year 9999: %v", fi.ModTime())
	}
	a := h.openApplier(t, true, nil)
	sum := h.source(t, "x", []byte("new\n"))
	m := h.moveTo(t, "MKDIR /etc/y", fmt.Sprintf("COPY x /etc/x sha256=%s", sum))
	var res any
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("the move panicked: %v", r)
			}
		}()
		res, err = a.Apply(context.Background(), m)
	}()
	t.Logf("result %v, error %v", res, err)
	if err != nil {
		t.Fatalf("a move over a file with a time past year 9999 failed: %v", err)
	}
	if got, _ := os.ReadFile(target); string(got) != "new\n" {
		t.Errorf("/etc/x after the move: %q, want %q", got, "new\n")
	}
	if _, serr := os.Stat(filepath.Join(h.root, "etc", "y")); serr != nil {
		t.Errorf("/etc/y after the move: %v", serr)
	}
}
