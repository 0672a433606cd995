package rootfs

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestReadInfo(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "f"), []byte("content\n"), 0o640)
	os.Symlink("f", filepath.Join(dir, "l"))
	os.Mkdir(filepath.Join(dir, "d"), 0o711)
	if err := syscall.Mkfifo(filepath.Join(dir, "p"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Symlink("/outside-secret", filepath.Join(dir, "esc"))
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	buf := make([]byte, 3) // small: several reads
	tests := []struct {
		path     string
		regular  bool
		typ      fs.FileMode
		content  string
		notExist bool
	}{
		{path: "/f", regular: true, content: "content\n"},
		{path: "/l", typ: fs.ModeSymlink},   // never followed
		{path: "/esc", typ: fs.ModeSymlink}, // dangling out of the root: still the link
		{path: "/d", typ: fs.ModeDir},
		{path: "/p", typ: fs.ModeNamedPipe}, // does not block
		{path: "/nope", notExist: true},
		{path: "/f/x", notExist: true}, // through a file: ENOTDIR
	}
	for _, tt := range tests {
		var out bytes.Buffer
		info, err := r.ReadInfo(tt.path, &out, buf)
		if tt.notExist {
			if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
				t.Errorf("%s: err = %v, want not-exist or ENOTDIR", tt.path, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.path, err)
			continue
		}
		if info.IsRegular() != tt.regular || (!tt.regular && info.Type() != tt.typ) {
			t.Errorf("%s: type %v, want regular=%v %v", tt.path, info.Type(), tt.regular, tt.typ)
		}
		if out.String() != tt.content {
			t.Errorf("%s: content %q, want %q", tt.path, out.String(), tt.content)
		}
		if tt.path == "/f" && info.Perm() != 0o640 {
			t.Errorf("/f: mode %o", info.Perm())
		}
	}
}
