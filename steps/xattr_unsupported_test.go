package steps_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestRestoreXattrsUnsupported: an original image whose extended attributes
// the file system now under its path cannot hold (here /etc became a ramfs,
// which keeps none) is restored with its content, owner and mode, and a
// warning naming the attributes: the move does not fail, and fail again on
// every later try, for attributes no file there can have.
func TestRestoreXattrsUnsupported(t *testing.T) {
	h := newImgHost(t)
	x := filepath.Join(h.root, "etc/x")
	if err := os.WriteFile(x, []byte("original\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(x, "user.origin", []byte("planted"), 0); err != nil {
		t.Skipf("the temporary directory keeps no user attributes: %v", err)
	}
	h.mustApply(t, "COPY a /etc/x sha256="+h.source(t, "a", []byte("a\n")))
	// /etc becomes a ramfs holding what the COPY wrote.
	etc := filepath.Join(h.root, "etc")
	if err := unix.Mount("none", etc, "ramfs", 0, "mode=0755"); err != nil {
		t.Skipf("cannot mount a ramfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(etc, unix.MNT_DETACH) })
	if err := os.WriteFile(x, []byte("a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := h.apply(t, false); err != nil {
		t.Fatalf("the inverse of the COPY: %v", err)
	}
	data, err := os.ReadFile(x)
	fi, serr := os.Stat(x)
	if err != nil || serr != nil || string(data) != "original\n" || fi.Mode().Perm() != 0o640 {
		t.Errorf("/etc/x holds %q (%v, %v), want the original content with mode 0640", data, err, fi)
	}
	if log := h.log.String(); !strings.Contains(log, "user.origin") || !strings.Contains(log, "path=/etc/x") {
		t.Errorf("no warning names the attribute left out:\n%s", log)
	}
	if !bytes.Contains(h.log.Bytes(), []byte("level=WARN")) {
		t.Errorf("not a warning:\n%s", h.log.String())
	}
}
