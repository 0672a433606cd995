package steps

import (
	"bytes"
	"os"

	"github.com/cairn-cm/cairn/blobstore"
)

// errNotCairns is the error for an entry of the state directory that cairn
// never makes there.
var errNotCairns = blobstore.ErrNotCairns

// openStateFile opens name, a file of the state directory, only if it is
// what cairn makes there (blobstore.OpenStateFile): a regular file, with no
// other link when it is opened for writing, never through a link.
func openStateFile(name string, flag int, perm os.FileMode) (*os.File, error) {
	return blobstore.OpenStateFile(name, flag, perm)
}

// readStateFile reads the whole of name, a file of the state directory, as
// openStateFile opens it.
func readStateFile(name string) ([]byte, error) {
	f, err := openStateFile(name, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var buf bytes.Buffer
	if fi, err := f.Stat(); err == nil {
		buf.Grow(int(fi.Size()) + bytes.MinRead) // as os.ReadFile: one read, no regrowth
	}
	_, err = buf.ReadFrom(f)
	return buf.Bytes(), err
}
