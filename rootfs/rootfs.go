package rootfs

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

var (
	// ErrInvalidPath is the error for an object path that is not absolute
	// and clean, or is "/".
	ErrInvalidPath = errors.New("invalid object path: must be absolute and clean, and not /")
	// ErrInvalidName is the error for a Dir method given a name that is not
	// exactly one path component.
	ErrInvalidName = errors.New("invalid name: must be one path component")
	// ErrSymlink is the error for an operation that refuses a symbolic link
	// in the last component: OpenFile, ReadDirNames and Chmod.
	ErrSymlink = errors.New("is a symbolic link")
	// ErrNotRegular is the error for OpenFile on anything but a regular
	// file (a directory, a FIFO, a device, a socket).
	ErrNotRegular = errors.New("not a regular file")
)

// UnsafePathError is the error for a path through a link that a user
// other than root could have planted and that leads to a directory of
// someone else (systemd's "unsafe path transition"): a link in a directory
// owned by such a user, or owned by one itself, is followed only to a
// directory owned by that same user. So /home/alice/.ssh -> /root/.ssh is
// refused, while alice's own links among her own directories are followed.
type UnsafePathError struct {
	Link      string // the object path of the link, its directory resolved
	DirUID    uint32 // the owner of the directory that holds the link
	LinkUID   uint32 // the owner of the link itself
	TargetUID uint32 // the owner of the directory the link leads to
	// UserName, if set, names a uid for the message ("" if unknown).
	UserName func(uid uint32) string
}

func (e *UnsafePathError) Error() string {
	var what string
	switch {
	case e.DirUID == 0:
		what = "a link owned by " + e.user(e.LinkUID)
	case e.LinkUID == 0 || e.LinkUID == e.DirUID:
		what = "a link in a directory owned by " + e.user(e.DirUID)
	default:
		what = "a link owned by " + e.user(e.LinkUID) + " in a directory owned by " + e.user(e.DirUID)
	}
	return "unsafe path: " + e.Link + " is " + what + " to a directory owned by " + e.user(e.TargetUID) + "; refusing to follow it"
}

// user names a uid as "uid 1000 (alice)", or "uid 0" for root.
func (e *UnsafePathError) user(uid uint32) string {
	s := "uid " + strconv.FormatUint(uint64(uid), 10)
	if uid != 0 && e.UserName != nil {
		if name := e.UserName(uid); name != "" {
			s += " (" + name + ")"
		}
	}
	return s
}

// Root is a directory that object paths resolve beneath. It holds an
// O_PATH descriptor of the directory, opened once. A Root is safe for
// concurrent use; Close must not run concurrently with other methods.
type Root struct {
	fd   int
	path string
	// dev and ino name the root directory: fixed for the descriptor's
	// life, so read once.
	dev, ino uint64
	// userspace selects the user-space resolver instead of openat2. Open
	// sets it when the kernel lacks openat2; tests set it to run both.
	userspace atomic.Bool
}

// Open opens the directory dir as a Root. dir must exist and be a directory
// (links in dir itself are followed: it is a host path, trusted). The root
// keeps the absolute form of dir as its Path.
func Open(dir string) (*Root, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, &fs.PathError{Op: "open root", Path: dir, Err: err}
	}
	fd, err := unix.Open(abs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open root", Path: abs, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &fs.PathError{Op: "open root", Path: abs, Err: err}
	}
	r := &Root{fd: fd, path: abs, dev: uint64(st.Dev), ino: st.Ino}
	// Probe openat2 once: its absence is a property of the kernel (or of a
	// seccomp filter, which may answer EPERM), not of the tree.
	pfd, err := unix.Openat2(fd, ".", &parentHow)
	switch err {
	case nil:
		unix.Close(pfd)
	case unix.ENOSYS, unix.EPERM:
		r.userspace.Store(true)
	}
	return r, nil
}

// Close closes the root's descriptor. Dirs opened from r that are still in
// use may refer to it, so close them first.
func (r *Root) Close() error {
	if r.fd < 0 {
		return &fs.PathError{Op: "close", Path: r.path, Err: fs.ErrClosed}
	}
	err := unix.Close(r.fd)
	r.fd = -1
	if err != nil {
		return &fs.PathError{Op: "close", Path: r.path, Err: err}
	}
	return nil
}

// ID returns the device and inode of the root directory, which are those
// of its descriptor for as long as the Root is open: what Stat of the
// Dir of "/" says of them, without a system call.
func (r *Root) ID() (dev, ino uint64) { return r.dev, r.ino }

// Path returns the absolute host path of the root.
func (r *Root) Path() string { return r.path }

// HostPath returns the object path p joined to the root's host path, for
// messages and for tools that take plain paths. It is NOT safe for I/O:
// the kernel would follow links in it out of the root. Use the methods of
// Root for I/O.
func (r *Root) HostPath(p string) string { return filepath.Join(r.path, p) }

// TempPath returns the temporary path that CreateTemp writes and CommitTemp
// renames over p: in p's directory, "." + base + ".cairn-tmp", or, when
// that would exceed NAME_MAX (255 bytes), ".cairn-" and 32 hex digits of the
// SHA-256 of base, then ".tmp". It is deterministic so that recovery after a
// crash can remove leftovers (Root.RemoveTemp). p must be an object path.
func TempPath(p string) string {
	i := strings.LastIndexByte(p, '/')
	return p[:i+1] + tempName(p[i+1:])
}

func tempName(name string) string {
	const suffix = ".cairn-tmp"
	if 1+len(name)+len(suffix) <= 255 {
		return "." + name + suffix
	}
	sum := sha256.Sum256([]byte(name))
	return ".cairn-" + hex.EncodeToString(sum[:16]) + ".tmp"
}

// validPath reports whether p is an object path: absolute, clean (no empty,
// "." or ".." component, no trailing "/"), not "/", and without NUL.
func validPath(p string) bool {
	if len(p) < 2 || p[0] != '/' {
		return false
	}
	start := 1
	for i := 1; i <= len(p); i++ {
		if i < len(p) && p[i] != '/' {
			if p[i] == 0 {
				return false
			}
			continue
		}
		switch p[start:i] {
		case "", ".", "..":
			return false
		}
		start = i + 1
	}
	return true
}

// validName reports whether name is exactly one path component.
func validName(name string) bool {
	switch name {
	case "", ".", "..":
		return false
	}
	return strings.IndexByte(name, '/') < 0 && strings.IndexByte(name, 0) < 0
}

// parent resolves the directory holding the object path p and returns it
// with p's last component. Errors name op and p. The caller closes the Dir.
func (r *Root) parent(op, p string) (Dir, string, error) {
	if !validPath(p) {
		return Dir{}, "", &fs.PathError{Op: op, Path: p, Err: ErrInvalidPath}
	}
	i := strings.LastIndexByte(p, '/')
	name := p[i+1:]
	if i == 0 {
		return Dir{fd: r.fd, path: "/"}, name, nil
	}
	fd, owned, err := r.resolve(p[1:i])
	if err != nil {
		return Dir{}, "", &fs.PathError{Op: op, Path: p, Err: err}
	}
	return Dir{fd: fd, owned: owned, path: p[:i]}, name, nil
}

// OpenParent opens the directory that holds the object path p, following
// links in it as spec §8 says, and returns it with p's last component, the
// name to pass to the Dir's methods. The caller must Close the Dir.
func (r *Root) OpenParent(p string) (*Dir, string, error) {
	d, name, err := r.parent("open", p)
	if err != nil {
		return nil, "", err
	}
	return &d, name, nil
}

// OpenDir opens the directory p itself, following links in p (the last
// component included) as OpenParent follows them in the directory it
// opens; "/" is the root. Its errors are those of OpenParent. The caller
// must Close the Dir.
func (r *Root) OpenDir(p string) (*Dir, error) {
	if p == "/" {
		return &Dir{fd: r.fd, path: "/"}, nil
	}
	if !validPath(p) {
		return nil, &fs.PathError{Op: "open", Path: p, Err: ErrInvalidPath}
	}
	fd, owned, err := r.resolve(p[1:])
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: p, Err: err}
	}
	return &Dir{fd: fd, owned: owned, path: p}, nil
}

// Lstat returns the state of the object at p itself; a link there is not
// followed. An absent object gives an error that is fs.ErrNotExist.
func (r *Root) Lstat(p string) (Info, error) {
	d, name, err := r.parent("lstat", p)
	if err != nil {
		return Info{}, err
	}
	defer d.Close()
	return d.Lstat(name)
}

// ReadInfo says what the object at p is, as Lstat does, and if it is a
// regular file writes its content to w, reading with buf: one open, one
// fstat and the reads, for checks that must look at every file of a tree.
// A link at p is never followed (its Info says it is a link).
func (r *Root) ReadInfo(p string, w io.Writer, buf []byte) (Info, error) {
	d, name, err := r.parent("read", p)
	if err != nil {
		return Info{}, err
	}
	defer d.Close()
	return d.ReadInfo(name, w, buf)
}

// OpenFile opens the regular file at p for reading. A link at p is an
// error (ErrSymlink), as is anything but a regular file (ErrNotRegular);
// opening never blocks on a FIFO. The file's Name is p.
func (r *Root) OpenFile(p string) (*os.File, error) {
	d, name, err := r.parent("open", p)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.OpenFile(name)
}

// Readlink returns the target of the link at p, exactly as stored. p that
// is not a link gives EINVAL, as readlink(2) does.
func (r *Root) Readlink(p string) (string, error) {
	d, name, err := r.parent("readlink", p)
	if err != nil {
		return "", err
	}
	defer d.Close()
	return d.Readlink(name)
}

// ReadDirNames returns the sorted names of the entries of the directory p.
// p must be a directory itself: a link there is an error (ErrSymlink).
func (r *Root) ReadDirNames(p string) ([]string, error) {
	d, name, err := r.parent("readdir", p)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.ReadDirNames(name)
}

// Mkdir makes the directory p with exactly the mode bits perm (07777
// allowed), whatever the umask and the parent's setgid bit. p's parent must
// exist; an existing p is an error that is fs.ErrExist.
func (r *Root) Mkdir(p string, perm uint32) error {
	d, name, err := r.parent("mkdir", p)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Mkdir(name, perm)
}

// Chmod sets the mode bits of p to perm (07777 allowed). It never follows
// a link at p; since Linux links have no mode, a link there is an error
// (ErrSymlink). chown(2) of a non-directory clears its setuid and setgid
// bits, so Lchown first and Chmod after.
func (r *Root) Chmod(p string, perm uint32) error {
	d, name, err := r.parent("chmod", p)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Chmod(name, perm)
}

// Lchown sets the numeric owner and group of p; a link at p is changed
// itself, not its target. -1 leaves that id unchanged.
func (r *Root) Lchown(p string, uid, gid int) error {
	d, name, err := r.parent("lchown", p)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Lchown(name, uid, gid)
}

// Remove removes the file or link at p, or the directory p if it is empty
// (a directory with entries gives ENOTEMPTY). As with os.Remove, an absent
// p is an error (fs.ErrNotExist): a caller that wants "make it absent"
// ignores that one.
func (r *Root) Remove(p string) error {
	d, name, err := r.parent("remove", p)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Remove(name)
}

// Rename renames the object at oldp to newp, both object paths, replacing
// whatever non-directory (or empty directory, when oldp is a directory) is
// at newp, as rename(2) does. Links at either end are moved or replaced,
// never followed. Errors are *os.LinkError naming both object paths.
func (r *Root) Rename(oldp, newp string) error {
	od, oname, err := r.parent("rename", oldp)
	if err != nil {
		return &os.LinkError{Op: "rename", Old: oldp, New: newp, Err: errors.Unwrap(err)}
	}
	defer od.Close()
	nd := od
	var nname string
	if i, j := strings.LastIndexByte(oldp, '/'), strings.LastIndexByte(newp, '/'); i == j && oldp[:i] == newp[:j] && validPath(newp) {
		nname = newp[j+1:]
	} else {
		nd, nname, err = r.parent("rename", newp)
		if err != nil {
			return &os.LinkError{Op: "rename", Old: oldp, New: newp, Err: errors.Unwrap(err)}
		}
		defer nd.Close()
	}
	if err := unix.Renameat(od.fd, oname, nd.fd, nname); err != nil {
		return &os.LinkError{Op: "rename", Old: oldp, New: newp, Err: err}
	}
	return nil
}

// Symlink makes p a link to target, stored exactly as given, atomically
// replacing whatever non-directory is at p (a link there is replaced, not
// followed): it creates the link at TempPath(p) and renames it over p. A
// directory at p is an error (EISDIR).
func (r *Root) Symlink(target, p string) error {
	d, name, err := r.parent("symlink", p)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Symlink(target, name)
}

// CreateTemp creates the file TempPath(p) for writing, with exactly the
// mode bits perm (07777 allowed) whatever the umask. A leftover at that
// name (from a crash, or planted: a link, a hard link to another file) is
// removed first and never written through. The caller writes the file,
// sets its owner with SetOwnerMode (not f.Chown alone, which clears setuid
// and setgid), syncs and closes it, then calls CommitTemp, or RemoveTemp to
// give up. The file's Name is TempPath(p).
func (r *Root) CreateTemp(p string, perm uint32) (*os.File, error) {
	d, name, err := r.parent("createtemp", p)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.CreateTemp(name, perm)
}

// CommitTemp renames TempPath(p) over p, atomically replacing whatever
// non-directory is at p (a link there is replaced, not followed). On error
// the temporary file is left for RemoveTemp.
func (r *Root) CommitTemp(p string) error {
	d, name, err := r.parent("committemp", p)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.CommitTemp(name)
}

// RemoveTemp removes TempPath(p) if it is there; absent is not an error,
// even on a read-only file system. Recovery calls it for every object path
// it undoes.
func (r *Root) RemoveTemp(p string) error {
	d, name, err := r.parent("removetemp", p)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.RemoveTemp(name)
}

// SyncDir fsyncs the directory that holds p, making the creation, removal
// or renaming of p durable.
func (r *Root) SyncDir(p string) error {
	d, _, err := r.parent("sync", p)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Syncfs flushes the filesystem that holds the root directory (syncfs(2)),
// making a batch of writes on it durable at once. Filesystems mounted
// beneath the root (a separate /var) are not covered: use Dir.Syncfs on a
// directory there.
func (r *Root) Syncfs() error {
	d := Dir{fd: r.fd, path: "/"}
	return d.Syncfs()
}

// SetOwnerMode gives the open file f the numeric owner and group uid and
// gid (-1 keeps one), then the mode bits perm (07777 allowed): the mode
// after the owner, since chown(2) clears the setuid and setgid bits of a
// non-directory (and f.Chmod takes an fs.FileMode, in which 04000 is not
// setuid). What fstat says is so already is not set again: a file made
// with its owner and mode costs one fstat, not two changes of its inode.
func SetOwnerMode(f *os.File, uid, gid int, perm uint32) error {
	if perm&^0o7777 != 0 {
		return &fs.PathError{Op: "chmod", Path: f.Name(), Err: modeError(perm)}
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return &fs.PathError{Op: "chown", Path: f.Name(), Err: err}
	}
	op := "stat"
	cerr := rc.Control(func(fd uintptr) {
		var st unix.Stat_t
		if err = unix.Fstat(int(fd), &st); err != nil {
			return
		}
		chown := (uid >= 0 && uint32(uid) != st.Uid) || (gid >= 0 && uint32(gid) != st.Gid)
		if chown {
			if op, err = "chown", unix.Fchown(int(fd), uid, gid); err != nil {
				return
			}
		}
		if chown || st.Mode&0o7777 != perm {
			op, err = "chmod", unix.Fchmod(int(fd), perm)
		}
	})
	if err == nil {
		err = cerr
	}
	if err != nil {
		return &fs.PathError{Op: op, Path: f.Name(), Err: err}
	}
	return nil
}

// modeError is the error for a mode with bits beyond 07777.
func modeError(perm uint32) error {
	return fmt.Errorf("invalid mode %#o: only 07777 may be set", perm)
}
