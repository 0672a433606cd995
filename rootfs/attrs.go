package rootfs

import (
	"bytes"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Extended attributes and times are read and written through a descriptor
// of the object itself (f*xattr(2), utimensat(2) on the descriptor), never
// through a name: a link is never followed, and what is read or set belongs
// to the inode that was opened.

// xattrSizeMax is XATTR_SIZE_MAX: the largest value, and the largest list
// of names, Linux hands out.
const xattrSizeMax = 64 << 10

// FileXattrs returns the extended attributes of the open file f (a regular
// file or a directory), value by name, in every namespace the process may
// read: user., trusted. and security. (security.capability included) for
// root, and system.posix_acl_access and system.posix_acl_default, the
// POSIX ACLs. It returns nil when f has none, or its file system keeps
// none.
func FileXattrs(f *os.File) (map[string][]byte, error) {
	var out map[string][]byte
	err := withFD(f, func(fd int) error {
		var err error
		out, err = xattrsFD(fd)
		return err
	})
	if err != nil {
		return nil, &fs.PathError{Op: "listxattr", Path: f.Name(), Err: err}
	}
	return out, nil
}

// SetFileXattrs makes the extended attributes of the open file f exactly
// want: names f has and want lacks are removed, the others set where their
// value differs. Set them after the owner and the mode: chown(2) drops
// security.capability, and an access ACL sets the group bits of the mode.
func SetFileXattrs(f *os.File, want map[string][]byte) error {
	return withFD(f, func(fd int) error { return setXattrsFD(fd, f.Name(), want) })
}

// SetFileMtime sets the modification time of the open file f to t (to the
// nanosecond) and leaves its access time. Set it last: writing or
// truncating f changes it again.
func SetFileMtime(f *os.File, t time.Time) error {
	err := withFD(f, func(fd int) error { return setMtimeFD(fd, t) })
	if err != nil {
		return &fs.PathError{Op: "utimensat", Path: f.Name(), Err: err}
	}
	return nil
}

// Xattrs is Root.Xattrs for name in d.
func (d *Dir) Xattrs(name string) (map[string][]byte, error) {
	var out map[string][]byte
	err := d.withObject("listxattr", name, func(fd int) error {
		var err error
		out, err = xattrsFD(fd)
		return err
	})
	return out, err
}

// SetXattrs is Root.SetXattrs for name in d.
func (d *Dir) SetXattrs(name string, want map[string][]byte) error {
	return d.withObject("setxattr", name, func(fd int) error { return setXattrsFD(fd, d.join(name), want) })
}

// Xattrs returns the extended attributes of the regular file or directory
// at p, as FileXattrs does. A link at p is an error (ErrSymlink), as is any
// other type (ErrNotRegular): links have no user attributes, and cairn
// keeps none of theirs.
func (r *Root) Xattrs(p string) (map[string][]byte, error) {
	d, name, err := r.parent("listxattr", p)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.Xattrs(name)
}

// SetXattrs makes the extended attributes of the regular file or directory
// at p exactly want, as SetFileXattrs does. A link at p is an error
// (ErrSymlink), never followed.
func (r *Root) SetXattrs(p string, want map[string][]byte) error {
	d, name, err := r.parent("setxattr", p)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.SetXattrs(name, want)
}

// withObject opens name in d for reading (never following a link, never
// blocking) and runs fn on the descriptor if it is a regular file or a
// directory.
func (d *Dir) withObject(op, name string, fn func(fd int) error) error {
	if !validName(name) {
		return d.err(op, name, ErrInvalidName)
	}
	fd, err := unix.Openat(d.fd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		if err == unix.ELOOP {
			return d.err(op, name, ErrSymlink)
		}
		return d.err(op, name, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return d.err(op, name, err)
	}
	if t := st.Mode & unix.S_IFMT; t != unix.S_IFREG && t != unix.S_IFDIR {
		return d.err(op, name, ErrNotRegular)
	}
	if err := fn(fd); err != nil {
		if pe, ok := err.(*fs.PathError); ok {
			return pe
		}
		return d.err(op, name, err)
	}
	return nil
}

// withFD runs fn on the descriptor of f.
func withFD(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

// xattrNames lists the attribute names of fd; nil if it has none or its
// file system keeps none.
func xattrNames(fd int) ([]string, error) {
	var small [1024]byte
	buf := small[:]
	for {
		n, err := unix.Flistxattr(fd, buf)
		switch {
		case err == unix.ENOTSUP || err == unix.ENOSYS:
			return nil, nil
		case err == unix.ERANGE && len(buf) < xattrSizeMax:
			buf = make([]byte, xattrSizeMax)
			continue
		case err != nil:
			return nil, err
		}
		var names []string
		for _, name := range strings.Split(string(buf[:n]), "\x00") {
			if name != "" {
				names = append(names, name)
			}
		}
		return names, nil
	}
}

// xattrValue reads one attribute of fd; ok is false if it vanished.
func xattrValue(fd int, name string, buf []byte) (value []byte, ok bool, err error) {
	for {
		n, err := unix.Fgetxattr(fd, name, buf)
		switch {
		case err == unix.ENODATA:
			return nil, false, nil
		case err == unix.ERANGE && len(buf) < xattrSizeMax:
			buf = make([]byte, xattrSizeMax)
			continue
		case err != nil:
			return nil, false, err
		}
		return bytes.Clone(buf[:n]), true, nil
	}
}

func xattrsFD(fd int) (map[string][]byte, error) {
	names, err := xattrNames(fd)
	if err != nil || len(names) == 0 {
		return nil, err
	}
	var small [256]byte
	out := make(map[string][]byte, len(names))
	for _, name := range names {
		v, ok, err := xattrValue(fd, name, small[:])
		if err != nil {
			return nil, err
		}
		if ok {
			out[name] = v
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// setXattrsFD makes the attributes of fd exactly want; errors name path
// and the attribute.
func setXattrsFD(fd int, path string, want map[string][]byte) error {
	have, err := xattrsFD(fd)
	if err != nil {
		return &fs.PathError{Op: "listxattr", Path: path, Err: err}
	}
	for _, name := range sortedNames(have) {
		if _, keep := want[name]; keep {
			continue
		}
		if err := unix.Fremovexattr(fd, name); err != nil && err != unix.ENODATA {
			return &fs.PathError{Op: "removexattr " + name, Path: path, Err: err}
		}
	}
	var unsupported []string
	for _, name := range sortedNames(want) {
		if v, ok := have[name]; ok && bytes.Equal(v, want[name]) {
			continue
		}
		if err := unix.Fsetxattr(fd, name, want[name], 0); err != nil {
			if err == unix.ENOTSUP {
				// The file system keeps no attribute of this kind (want
				// was read on another): set the others.
				unsupported = append(unsupported, name)
				continue
			}
			return &fs.PathError{Op: "setxattr " + name, Path: path, Err: err}
		}
	}
	if len(unsupported) > 0 {
		return &UnsupportedXattrsError{Path: path, Names: unsupported}
	}
	return nil
}

// UnsupportedXattrsError is the error of SetFileXattrs and SetXattrs when
// the file system refuses some attributes with ENOTSUP, as one that keeps
// none of their kind does (a ramfs, a vfat, user.* on an old tmpfs): every
// other attribute was set. It unwraps to unix.ENOTSUP.
type UnsupportedXattrsError struct {
	Path  string
	Names []string
}

func (e *UnsupportedXattrsError) Error() string {
	return e.Path + ": the file system keeps no attribute " + strings.Join(e.Names, ", ")
}

// Unwrap returns unix.ENOTSUP.
func (e *UnsupportedXattrsError) Unwrap() error { return unix.ENOTSUP }

func sortedNames(m map[string][]byte) []string {
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// setMtimeFD is futimens(3): utimensat(2) on the descriptor itself (a NULL
// path), the access time left as it is.
func setMtimeFD(fd int, t time.Time) error {
	mtime, err := unix.TimeToTimespec(t)
	if err != nil {
		return err
	}
	ts := [2]unix.Timespec{{Nsec: unix.UTIME_OMIT}, mtime}
	_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}
