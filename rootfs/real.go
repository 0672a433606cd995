package rootfs

import (
	"errors"
	"io/fs"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrOutsideRoot is the error of RealDir for a directory whose host path
// does not lie beneath the root's: one that a rename moved out of the root
// while it was resolved. (A file system mounted beneath the root is part
// of it: the kernel names its directories by their mount point.)
var ErrOutsideRoot = errors.New("lies outside the root")

// RealPath returns the host path of the root directory itself, with every
// link resolved, as the kernel names its descriptor (/proc/self/fd).
func (r *Root) RealPath() (string, error) {
	p, err := fdPath(r.fd)
	if err != nil {
		return "", &fs.PathError{Op: "realpath", Path: r.path, Err: err}
	}
	return p, nil
}

// RealDir resolves the directory p beneath the root, following every link
// in it, the last component included (a link there is followed as if it
// were a directory of the path), and returns the host path where that
// directory really is, with what lstat(2) says of it there. The path is
// verified: it lies beneath the root's real path, and it names the very
// directory that was resolved (same device and inode, no link in its last
// component). So the caller may use it with plain host-path calls, for a
// tree that only it writes. p "/" is the root itself.
//
// Errors: anything the resolution meets (fs.ErrNotExist for a missing
// component or a link whose target is missing beneath the root,
// syscall.ENOTDIR for a component that is no directory), ErrOutsideRoot,
// or the failure to name a descriptor (no /proc).
func (r *Root) RealDir(p string) (string, Info, error) {
	fail := func(err error) (string, Info, error) {
		return "", Info{}, &fs.PathError{Op: "realdir", Path: p, Err: err}
	}
	fd := r.fd
	if p != "/" {
		if !validPath(p) {
			return fail(ErrInvalidPath)
		}
		var owned bool
		var err error
		if fd, owned, err = r.resolve(p[1:]); err != nil {
			return fail(err)
		}
		if owned {
			defer unix.Close(fd)
		}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fail(err)
	}
	real, err := fdPath(fd)
	if err != nil {
		return fail(err)
	}
	rootReal, err := fdPath(r.fd)
	if err != nil {
		return fail(err)
	}
	if !beneath(real, rootReal) {
		return fail(ErrOutsideRoot)
	}
	var lst unix.Stat_t
	if err := unix.Lstat(real, &lst); err != nil {
		return fail(err)
	}
	if lst.Dev != st.Dev || lst.Ino != st.Ino || lst.Mode&unix.S_IFMT != unix.S_IFDIR {
		return fail(unix.EAGAIN) // moved or replaced meanwhile
	}
	return real, infoFromStat(&lst), nil
}

// beneath reports whether the host path p is root or lies beneath it.
func beneath(p, root string) bool {
	return root == "/" || p == root || strings.HasPrefix(p, root+"/")
}

// fdPath names the directory open as fd by its /proc/self/fd link. The
// kernel marks a removed directory " (deleted)", and a directory beyond the
// process's root has no absolute name: both are refused.
func fdPath(fd int) (string, error) {
	var buf [unix.PathMax]byte
	n, err := unix.Readlink(procSelfFD+strconv.Itoa(fd), buf[:])
	if err != nil {
		return "", err
	}
	p := string(buf[:n])
	if !strings.HasPrefix(p, "/") || strings.HasSuffix(p, " (deleted)") {
		return "", unix.ENOENT
	}
	return p, nil
}
