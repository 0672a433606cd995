package rootfs

import (
	"io"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Info is the state of one object, from lstat(2).
type Info struct {
	Mode     uint32 // st_mode: the type (S_IFMT) and the mode bits (07777)
	UID, GID uint32
	Size     int64
	ModTime  time.Time
	// ChangeTime is st_ctime: the last change of the inode (content,
	// mode, owner, links), which no call but a clock change sets back.
	ChangeTime time.Time
	Dev, Ino   uint64
	Nlink      uint64
}

// Perm returns the mode bits, setuid, setgid and sticky included, as the
// journal writes them (0755, 1777).
func (i Info) Perm() uint32 { return i.Mode & 0o7777 }

// Type returns the type bits as an fs.FileMode: 0 for a regular file, else
// one of fs.ModeDir, fs.ModeSymlink, fs.ModeNamedPipe, fs.ModeSocket,
// fs.ModeDevice, fs.ModeDevice|fs.ModeCharDevice.
func (i Info) Type() fs.FileMode {
	switch i.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return fs.ModeDir
	case unix.S_IFLNK:
		return fs.ModeSymlink
	case unix.S_IFIFO:
		return fs.ModeNamedPipe
	case unix.S_IFSOCK:
		return fs.ModeSocket
	case unix.S_IFBLK:
		return fs.ModeDevice
	case unix.S_IFCHR:
		return fs.ModeDevice | fs.ModeCharDevice
	}
	return 0
}

// IsDir reports whether the object is a directory.
func (i Info) IsDir() bool { return i.Mode&unix.S_IFMT == unix.S_IFDIR }

// IsRegular reports whether the object is a regular file.
func (i Info) IsRegular() bool { return i.Mode&unix.S_IFMT == unix.S_IFREG }

// IsSymlink reports whether the object is a symbolic link.
func (i Info) IsSymlink() bool { return i.Mode&unix.S_IFMT == unix.S_IFLNK }

func infoFromStat(st *unix.Stat_t) Info {
	return Info{
		Mode:       st.Mode,
		UID:        st.Uid,
		GID:        st.Gid,
		Size:       st.Size,
		ModTime:    time.Unix(int64(st.Mtim.Sec), int64(st.Mtim.Nsec)), // int32 on 386, arm
		ChangeTime: time.Unix(int64(st.Ctim.Sec), int64(st.Ctim.Nsec)),
		Dev:        uint64(st.Dev),
		Ino:        st.Ino,
		Nlink:      uint64(st.Nlink),
	}
}

// Dir is an open directory beneath a Root, resolved once, for several
// operations on its entries. Its methods take a name, one path component,
// and never follow a link in it; they behave as the Root methods of the
// same name on the object path Path()+"/"+name, and their errors name that
// path. A Dir is safe for concurrent use; Close must not run concurrently
// with other methods.
//
// A Dir keeps the directory it resolved: if a component of its path is
// renamed or replaced after OpenParent, the Dir still acts on the directory
// it opened, which was beneath the root when it was resolved. Hold one for
// one operation (for a COPY: CreateTemp, write, SetOwnerMode, CommitTemp,
// Sync), not across a plan.
type Dir struct {
	fd    int
	owned bool   // fd is ours to close; false for the root's own descriptor
	path  string // the object path of the directory as given, "/" for the root
}

// Path returns the object path of the directory, as given to OpenParent
// (links in it unresolved).
func (d *Dir) Path() string { return d.path }

// Close releases the directory.
func (d *Dir) Close() error {
	if !d.owned {
		return nil
	}
	fd := d.fd
	d.owned, d.fd = false, -1
	if err := unix.Close(fd); err != nil {
		return &fs.PathError{Op: "close", Path: d.path, Err: err}
	}
	return nil
}

// join returns the object path of name in d.
func (d *Dir) join(name string) string {
	if d.path == "/" {
		return "/" + name
	}
	return d.path + "/" + name
}

func (d *Dir) err(op, name string, err error) error {
	return &fs.PathError{Op: op, Path: d.join(name), Err: err}
}

// Stat returns the state of the directory d itself: its Dev and Ino say
// which directory it is, whatever path led to it.
func (d *Dir) Stat() (Info, error) {
	var st unix.Stat_t
	if err := unix.Fstat(d.fd, &st); err != nil {
		return Info{}, &fs.PathError{Op: "stat", Path: d.path, Err: err}
	}
	return infoFromStat(&st), nil
}

// OpenDir opens the directory name in d, never following a link there: a
// link is an error (ErrSymlink), anything but a directory ENOTDIR. The
// caller must Close the Dir.
func (d *Dir) OpenDir(name string) (*Dir, error) {
	if !validName(name) {
		return nil, d.err("open", name, ErrInvalidName)
	}
	fd, err := unix.Openat(d.fd, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if err == unix.ELOOP || (err == unix.ENOTDIR && d.isSymlink(name)) {
			return nil, d.err("open", name, ErrSymlink)
		}
		return nil, d.err("open", name, err)
	}
	return &Dir{fd: fd, owned: true, path: d.join(name)}, nil
}

// belowHow asks openat2 for a directory beneath a Dir, no link on the way.
var belowHow = unix.OpenHow{
	Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC,
	Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
}

// noOpenat2 is set once openat2 answered ENOSYS or EPERM (an old kernel, a
// seccomp filter): OpenDirFast then says no at once.
var noOpenat2 atomic.Bool

// OpenDirFast opens the directory rel beneath d, several components
// ("a/b/c"), in one lookup that follows no link: what OpenDir, component
// after component, would open. ok is false if that one lookup failed, for
// whatever reason (something missing, a link, no openat2): the caller then
// walks with OpenDir, whose errors say which component and why.
func (d *Dir) OpenDirFast(rel string) (sub *Dir, ok bool) {
	if noOpenat2.Load() || !validRel(rel) {
		return nil, false
	}
	for {
		fd, err := unix.Openat2(d.fd, rel, &belowHow)
		switch err {
		case nil:
			return &Dir{fd: fd, owned: true, path: d.join(rel)}, true
		case unix.EINTR:
			continue
		case unix.ENOSYS, unix.EPERM:
			noOpenat2.Store(true)
		}
		return nil, false
	}
}

// validRel reports whether rel is one or more valid names joined by "/".
func validRel(rel string) bool {
	for {
		name, rest, more := strings.Cut(rel, "/")
		if !validName(name) {
			return false
		}
		if !more {
			return true
		}
		rel = rest
	}
}

// Lstat is Root.Lstat for name in d.
func (d *Dir) Lstat(name string) (Info, error) {
	if !validName(name) {
		return Info{}, d.err("lstat", name, ErrInvalidName)
	}
	var st unix.Stat_t
	if err := unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return Info{}, d.err("lstat", name, err)
	}
	return infoFromStat(&st), nil
}

// OpenFile is Root.OpenFile for name in d.
func (d *Dir) OpenFile(name string) (*os.File, error) {
	if !validName(name) {
		return nil, d.err("open", name, ErrInvalidName)
	}
	// O_NONBLOCK so that a FIFO does not block the open; it is refused
	// below, and the flag is cleared for a regular file.
	fd, err := unix.Openat(d.fd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		if err == unix.ELOOP { // O_NOFOLLOW and the last component is a link
			return nil, d.err("open", name, ErrSymlink)
		}
		return nil, d.err("open", name, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, d.err("open", name, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, d.err("open", name, ErrNotRegular)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFL, 0); err != nil {
		unix.Close(fd)
		return nil, d.err("open", name, err)
	}
	return os.NewFile(uintptr(fd), d.join(name)), nil
}

// Readlink is Root.Readlink for name in d.
func (d *Dir) Readlink(name string) (string, error) {
	if !validName(name) {
		return "", d.err("readlink", name, ErrInvalidName)
	}
	var small [256]byte
	buf := small[:]
	for {
		n, err := unix.Readlinkat(d.fd, name, buf)
		if err != nil {
			return "", d.err("readlink", name, err)
		}
		if n < len(buf) {
			return string(buf[:n]), nil
		}
		buf = make([]byte, 2*len(buf))
	}
}

// ReadDirNames is Root.ReadDirNames for name in d.
func (d *Dir) ReadDirNames(name string) ([]string, error) {
	if !validName(name) {
		return nil, d.err("readdir", name, ErrInvalidName)
	}
	fd, err := unix.Openat(d.fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if err == unix.ELOOP || (err == unix.ENOTDIR && d.isSymlink(name)) {
			return nil, d.err("readdir", name, ErrSymlink)
		}
		return nil, d.err("readdir", name, err)
	}
	f := os.NewFile(uintptr(fd), d.join(name))
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	return names, nil
}

// isSymlink reports whether name in d is a link, to explain an error.
func (d *Dir) isSymlink(name string) bool {
	var st unix.Stat_t
	return unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK
}

// Mkdir is Root.Mkdir for name in d.
func (d *Dir) Mkdir(name string, perm uint32) error {
	if !validName(name) {
		return d.err("mkdir", name, ErrInvalidName)
	}
	if perm&^0o7777 != 0 {
		return d.err("mkdir", name, modeError(perm))
	}
	if err := unix.Mkdirat(d.fd, name, perm); err != nil {
		return d.err("mkdir", name, err)
	}
	// mkdir(2) applies the umask and may inherit the parent's setgid bit.
	if err := chmodAt(d.fd, name, perm); err != nil {
		unix.Unlinkat(d.fd, name, unix.AT_REMOVEDIR)
		return d.err("mkdir", name, err)
	}
	return nil
}

// Chmod is Root.Chmod for name in d.
func (d *Dir) Chmod(name string, perm uint32) error {
	if !validName(name) {
		return d.err("chmod", name, ErrInvalidName)
	}
	if perm&^0o7777 != 0 {
		return d.err("chmod", name, modeError(perm))
	}
	if err := chmodAt(d.fd, name, perm); err != nil {
		return d.err("chmod", name, err)
	}
	return nil
}

// noFchmodat2 is set once fchmodat2(2) (Linux 6.6) turned out to be
// missing or filtered; chmodAt then goes through /proc (Debian 12's 6.1).
var noFchmodat2 atomic.Bool

// procSelfFD is where chmodAt finds its descriptors when fchmodat2 is
// missing; a variable so that tests can take /proc away.
var procSelfFD = "/proc/self/fd/"

// chmodAt sets the mode of name in dirfd to perm without following a link
// there: a link gives ErrSymlink.
func chmodAt(dirfd int, name string, perm uint32) error {
	if !noFchmodat2.Load() {
		// unix.Fchmodat turns ENOSYS into EOPNOTSUPP, which fchmodat2 also
		// answers for a link; call it directly to tell them apart.
		p, err := unix.BytePtrFromString(name)
		if err != nil {
			return err
		}
		_, _, e := unix.Syscall6(unix.SYS_FCHMODAT2, uintptr(dirfd), uintptr(unsafe.Pointer(p)), uintptr(perm), unix.AT_SYMLINK_NOFOLLOW, 0, 0)
		switch e {
		case 0:
			return nil
		case unix.EOPNOTSUPP:
			var st unix.Stat_t
			if unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
				return ErrSymlink
			}
			return e
		case unix.ENOSYS:
			noFchmodat2.Store(true)
		case unix.EPERM:
			// Either the file refuses (immutable) or an old seccomp filter
			// answers EPERM for syscalls it does not know. If the other way
			// works, it was the filter.
			if err := chmodProc(dirfd, name, perm); err != nil {
				return e
			}
			noFchmodat2.Store(true)
			return nil
		default:
			return e
		}
	}
	return chmodProc(dirfd, name, perm)
}

// chmodProc is chmodAt without fchmodat2.
func chmodProc(dirfd int, name string, perm uint32) error {
	// As glibc does: an O_PATH descriptor of the name itself, checked not
	// to be a link, changed through its /proc magic link.
	fd, err := unix.Openat(dirfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return ErrSymlink
	}
	err = unix.Chmod(procSelfFD+strconv.Itoa(fd), perm)
	if err != unix.ENOENT {
		return err
	}
	// No /proc (a bare chroot): reopen a regular file or a directory for
	// reading, which has no side effect, check it is the same inode, and
	// fchmod that.
	if t := st.Mode & unix.S_IFMT; t != unix.S_IFREG && t != unix.S_IFDIR {
		return unix.EOPNOTSUPP
	}
	rfd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(rfd)
	var rst unix.Stat_t
	if err := unix.Fstat(rfd, &rst); err != nil {
		return err
	}
	if rst.Dev != st.Dev || rst.Ino != st.Ino {
		return unix.EAGAIN // replaced under us
	}
	return unix.Fchmod(rfd, perm)
}

// Lchown is Root.Lchown for name in d.
func (d *Dir) Lchown(name string, uid, gid int) error {
	if !validName(name) {
		return d.err("lchown", name, ErrInvalidName)
	}
	if err := unix.Fchownat(d.fd, name, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return d.err("lchown", name, err)
	}
	return nil
}

// Remove is Root.Remove for name in d.
func (d *Dir) Remove(name string) error {
	if !validName(name) {
		return d.err("remove", name, ErrInvalidName)
	}
	err := unix.Unlinkat(d.fd, name, 0)
	if err == unix.EISDIR {
		err = unix.Unlinkat(d.fd, name, unix.AT_REMOVEDIR)
	}
	if err != nil {
		return d.err("remove", name, err)
	}
	return nil
}

// Rename renames oldname to newname, both in d, as Root.Rename does.
func (d *Dir) Rename(oldname, newname string) error {
	if !validName(oldname) || !validName(newname) {
		return &os.LinkError{Op: "rename", Old: d.join(oldname), New: d.join(newname), Err: ErrInvalidName}
	}
	if err := unix.Renameat(d.fd, oldname, d.fd, newname); err != nil {
		return &os.LinkError{Op: "rename", Old: d.join(oldname), New: d.join(newname), Err: err}
	}
	return nil
}

// Symlink is Root.Symlink for name in d.
func (d *Dir) Symlink(target, name string) error {
	if !validName(name) {
		return d.err("symlink", name, ErrInvalidName)
	}
	tmp := tempName(name)
	err := unix.Symlinkat(target, d.fd, tmp)
	if err == unix.EEXIST {
		if err = unix.Unlinkat(d.fd, tmp, 0); err == nil {
			err = unix.Symlinkat(target, d.fd, tmp)
		}
	}
	if err != nil {
		return d.err("symlink", name, err)
	}
	if err := unix.Renameat(d.fd, tmp, d.fd, name); err != nil {
		unix.Unlinkat(d.fd, tmp, 0)
		return d.err("symlink", name, err)
	}
	return nil
}

// CreateTemp is Root.CreateTemp for name in d.
func (d *Dir) CreateTemp(name string, perm uint32) (*os.File, error) {
	if !validName(name) {
		return nil, d.err("createtemp", name, ErrInvalidName)
	}
	if perm&^0o7777 != 0 {
		return nil, d.err("createtemp", name, modeError(perm))
	}
	tmp := tempName(name)
	// O_EXCL, not O_TRUNC: a leftover at tmp could be a hard link to a file
	// elsewhere; unlink it and make a new file instead of writing through.
	const flags = unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err := unix.Openat(d.fd, tmp, flags, perm&0o777)
	if err == unix.EEXIST {
		if err = unix.Unlinkat(d.fd, tmp, 0); err == nil {
			fd, err = unix.Openat(d.fd, tmp, flags, perm&0o777)
		}
	}
	if err != nil {
		return nil, d.err("createtemp", name, err)
	}
	// open(2) applies the umask.
	if err := unix.Fchmod(fd, perm); err != nil {
		unix.Close(fd)
		unix.Unlinkat(d.fd, tmp, 0)
		return nil, d.err("createtemp", name, err)
	}
	return os.NewFile(uintptr(fd), d.join(tmp)), nil
}

// CreateUnnamed creates a regular file in d that has no name yet
// (O_TMPFILE), for writing, to be given the name name by Link once it is
// written: it appears there whole, never partly written, and a file that is
// never linked (the caller closes it, the process dies) is freed by the
// kernel, leaving nothing in d. name is only checked and used in the file's
// Name and in errors. The file's mode is perm's permission bits less the
// umask; the caller sets the mode it wants after the owner (chown clears
// set-id bits). A file system without O_TMPFILE fails (EOPNOTSUPP; EISDIR
// or EINVAL from older kernels).
func (d *Dir) CreateUnnamed(name string, perm uint32) (*os.File, error) {
	if !validName(name) {
		return nil, d.err("create", name, ErrInvalidName)
	}
	if perm&^0o7777 != 0 {
		return nil, d.err("create", name, modeError(perm))
	}
	fd, err := unix.Openat(d.fd, ".", unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, perm&0o777)
	if err != nil {
		return nil, d.err("create", name, err)
	}
	return os.NewFile(uintptr(fd), d.join(name)), nil
}

// Link gives f, a file made by CreateUnnamed in d, the name name in d
// (linkat(2)), where nothing is: if anything is there (a file, a link, a
// directory), it fails with an error that is fs.ErrExist, and nothing is
// touched.
func (d *Dir) Link(f *os.File, name string) error {
	if !validName(name) {
		return d.err("link", name, ErrInvalidName)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return d.err("link", name, err)
	}
	cerr := rc.Control(func(fd uintptr) { err = linkAt(int(fd), d.fd, name) })
	if err == nil {
		err = cerr
	}
	if err != nil {
		return d.err("link", name, err)
	}
	return nil
}

// noEmptyPathLink is set once linkat(2) refused AT_EMPTY_PATH where the
// link through /proc worked: it answers ENOENT to a caller without
// CAP_DAC_READ_SEARCH (root has it, unless in a user namespace on an older
// kernel). linkAt then goes through /proc.
var noEmptyPathLink atomic.Bool

// linkAt gives the file of descriptor fd the name name in dirfd.
func linkAt(fd, dirfd int, name string) error {
	if !noEmptyPathLink.Load() {
		err := unix.Linkat(fd, "", dirfd, name, unix.AT_EMPTY_PATH)
		if err != unix.ENOENT {
			return err
		}
		// No capability, or the directory was removed: /proc tells them
		// apart. A name already there answers EEXIST only through /proc
		// (the first call failed before looking at it), and that is
		// Link's answer then.
		if perr := linkProc(fd, dirfd, name); perr != nil {
			if perr == unix.EEXIST {
				return perr
			}
			return err
		}
		noEmptyPathLink.Store(true)
		return nil
	}
	return linkProc(fd, dirfd, name)
}

// linkProc is linkAt through the descriptor's /proc magic link, as
// open(2) describes for O_TMPFILE without the capability.
func linkProc(fd, dirfd int, name string) error {
	return unix.Linkat(unix.AT_FDCWD, procSelfFD+strconv.Itoa(fd), dirfd, name, unix.AT_SYMLINK_FOLLOW)
}

// CommitTemp is Root.CommitTemp for name in d.
func (d *Dir) CommitTemp(name string) error {
	if !validName(name) {
		return d.err("committemp", name, ErrInvalidName)
	}
	if err := unix.Renameat(d.fd, tempName(name), d.fd, name); err != nil {
		return d.err("committemp", name, err)
	}
	return nil
}

// RemoveTemp is Root.RemoveTemp for name in d.
func (d *Dir) RemoveTemp(name string) error {
	if !validName(name) {
		return d.err("removetemp", name, ErrInvalidName)
	}
	// Look first: with nothing to remove, there is nothing to do, and a
	// read-only file system would answer unlink with EROFS all the same.
	tmp := tempName(name)
	var st unix.Stat_t
	if err := unix.Fstatat(d.fd, tmp, &st, unix.AT_SYMLINK_NOFOLLOW); err == unix.ENOENT {
		return nil
	}
	if err := unix.Unlinkat(d.fd, tmp, 0); err != nil && err != unix.ENOENT {
		return d.err("removetemp", name, err)
	}
	return nil
}

// Sync fsyncs the directory d, making creations, removals and renames of
// its entries durable.
func (d *Dir) Sync() error {
	return d.syncWith("sync", unix.Fsync)
}

// Syncfs flushes the filesystem that holds the directory d (syncfs(2)).
func (d *Dir) Syncfs() error {
	return d.syncWith("syncfs", unix.Syncfs)
}

// syncWith runs fn on a readable descriptor of d: fsync(2) and syncfs(2)
// refuse O_PATH descriptors.
func (d *Dir) syncWith(op string, fn func(int) error) error {
	fd, err := unix.Openat(d.fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &fs.PathError{Op: op, Path: d.path, Err: err}
	}
	err = fn(fd)
	unix.Close(fd)
	if err != nil {
		return &fs.PathError{Op: op, Path: d.path, Err: err}
	}
	return nil
}

// ReadInfo is Root.ReadInfo for name in d.
func (d *Dir) ReadInfo(name string, w io.Writer, buf []byte) (Info, error) {
	if !validName(name) {
		return Info{}, d.err("read", name, ErrInvalidName)
	}
	// O_NONBLOCK so that a FIFO does not block the open; a regular file
	// ignores it, so it need not be cleared for reading.
	fd, err := unix.Openat(d.fd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		if err == unix.ELOOP || err == unix.ENXIO {
			// A link (O_NOFOLLOW) or a socket: say what it is.
			info, lerr := d.Lstat(name)
			if lerr != nil {
				return Info{}, lerr
			}
			return info, nil
		}
		return Info{}, d.err("read", name, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return Info{}, d.err("read", name, err)
	}
	info := infoFromStat(&st)
	if !info.IsRegular() {
		return info, nil
	}
	for {
		n, err := unix.Read(fd, buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return info, werr
			}
		}
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return info, d.err("read", name, err)
		case n == 0:
			return info, nil
		}
	}
}
