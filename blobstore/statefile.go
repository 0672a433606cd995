package blobstore

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
)

// ErrNotCairns is the error for an entry of a state directory (and of the
// blob store in it) that cairn never makes there.
var ErrNotCairns = errors.New("not a regular file with one link, as cairn makes it (a link is not followed, a FIFO or a device not opened): refused")

// OpenStateFile opens name, a file of cairn's state directory or of its
// blob store, only if it is what cairn makes there: a regular file, and one
// with no other link when it is opened for writing. A link is never
// followed (O_NOFOLLOW), and a FIFO or a device is found by lstat(2) before
// any open(2) could block on it or set it going; either is ErrNotCairns.
//
// The default state lies beneath the root, so its entries are the root's
// content, which an image may bring; cairn runs as root and works in its
// state with host paths, so a link there would lead it to read, append to
// or truncate a host file, out of the root. flag is that of os.OpenFile;
// with os.O_CREATE, a missing file is made (mode perm).
func OpenStateFile(name string, flag int, perm os.FileMode) (*os.File, error) {
	refuse := &fs.PathError{Op: "open", Path: name, Err: ErrNotCairns}
	if fi, err := os.Lstat(name); err == nil && !fi.Mode().IsRegular() {
		return nil, refuse
	} else if err != nil && (flag&os.O_CREATE == 0 || !errors.Is(err, fs.ErrNotExist)) {
		return nil, err
	}
	f, err := os.OpenFile(name, flag|syscall.O_NOFOLLOW, perm)
	if errors.Is(err, syscall.ELOOP) {
		return nil, refuse
	}
	if err != nil {
		return nil, err
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, &fs.PathError{Op: "stat", Path: name, Err: err}
	}
	writes := flag&(os.O_WRONLY|os.O_RDWR) != 0
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG || writes && st.Nlink != 1 {
		f.Close()
		return nil, refuse
	}
	return f, nil
}
