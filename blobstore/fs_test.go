package blobstore

import (
	"errors"
	"io/fs"
	"path/filepath"
	"testing"
)

// TestStoreFS: the store read as a file system gives every blob, small
// (packed) and large (a file of its own), by its sha256 with its size, and
// no blob it does not hold.
func TestStoreFS(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	b := openTestBlobs(t, dir)
	small, large := blobData(100, 1), blobData(smallBlobMax+1, 2)
	for _, data := range [][]byte{small, large} {
		if err := b.PutBlob(blobSum(data), data); err != nil {
			t.Fatal(err)
		}
	}
	fsys := b.FS()
	for _, data := range [][]byte{small, large} {
		sum := blobSum(data)
		fi, err := fs.Stat(fsys, sum)
		if err != nil || fi.Size() != int64(len(data)) || !fi.Mode().IsRegular() {
			t.Errorf("stat blob of %d bytes: %v, %v", len(data), fi, err)
		}
		got, err := fs.ReadFile(fsys, sum)
		if err != nil || string(got) != string(data) {
			t.Errorf("read blob of %d bytes: %d bytes, %v", len(data), len(got), err)
		}
	}
	for _, name := range []string{blobSum([]byte("absent")), "not-a-sum", "ab/cd"} {
		if _, err := fsys.Open(name); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("open %s: %v, want fs.ErrNotExist", name, err)
		}
	}
	// PutBlob checks the content against the sum it is given.
	var me *HashMismatchError
	if err := b.PutBlob(blobSum([]byte("absent")), large); !errors.As(err, &me) {
		t.Errorf("PutBlob of other content: %v, want a *HashMismatchError", err)
	}
	mustClose(t, b)
}
