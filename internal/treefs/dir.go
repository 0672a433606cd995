package treefs

import (
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Dir is a configuration directory on disk, read the way agent/gitfs reads
// a git revision of it. Symbolic links are followed as long as they stay
// inside the directory: a path through a link that is absolute or climbs
// out of it fails with ErrLinkEscapes ("symbolic link leads out of the
// tree"), whatever the link points at, so no byte outside the directory is
// ever read. Open refuses anything but a regular file or a directory with
// ErrNotRegular, without blocking: a FIFO is opened with O_NONBLOCK and
// refused once fstat has said what it is.
//
// Every lookup is one openat2(2) with RESOLVE_BENEATH relative to the
// directory's descriptor, so a link swapped in meanwhile cannot lead out
// either. Where openat2 is missing (Linux before 5.6) the lookup is done in
// user space, one component at a time, with the rules of agent/gitfs: an
// absolute target, or one that climbs above the directory, is refused.
//
// Dir implements fs.FS, fs.ReadFileFS, fs.StatFS, fs.ReadDirFS and
// fs.ReadLinkFS. It is safe for concurrent use.
type Dir struct {
	path string
	fd   int // an O_PATH descriptor of the directory
	// userspace is set once openat2 answered ENOSYS.
	userspace atomic.Bool
}

var (
	_ fs.FS         = (*Dir)(nil)
	_ fs.ReadFileFS = (*Dir)(nil)
	_ fs.StatFS     = (*Dir)(nil)
	_ fs.ReadDirFS  = (*Dir)(nil)
	_ fs.ReadLinkFS = (*Dir)(nil)
)

// OpenDir opens the configuration directory at dir. Close it when done.
func OpenDir(dir string) (*Dir, error) {
	fd, err := ignoringEINTR(func() (int, error) {
		return unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	})
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	return &Dir{path: dir, fd: fd}, nil
}

// Close closes the directory.
func (d *Dir) Close() error { return unix.Close(d.fd) }

// Path returns the directory's path as given to OpenDir.
func (d *Dir) Path() string { return d.path }

// resolveHow asks openat2 for a name beneath the directory, refusing
// absolute links, ".." above it and magic links.
const resolveHow = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS

// eagainRetries bounds the openat2 retries when a rename raced with a ".."
// (the kernel then answers EAGAIN); after them the user-space walk decides.
const eagainRetries = 8

// open opens name (a valid fs path) beneath the directory with flags,
// following links inside it.
func (d *Dir) open(op, name string, flags int) (int, error) {
	if !fs.ValidPath(name) {
		return -1, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	flags |= unix.O_CLOEXEC
	if flags&unix.O_PATH == 0 {
		flags |= unix.O_NOCTTY // openat2 refuses it with O_PATH
	}
	if !d.userspace.Load() {
		how := unix.OpenHow{Flags: uint64(flags), Resolve: resolveHow}
		for range eagainRetries {
			fd, err := openat2(d.fd, name, &how)
			switch err {
			case nil:
				return fd, nil
			case unix.EAGAIN, unix.EINTR:
				continue
			case unix.ENOSYS:
				d.userspace.Store(true)
			case unix.EXDEV:
				return -1, &fs.PathError{Op: op, Path: name, Err: ErrLinkEscapes}
			case unix.ELOOP:
				if flags&unix.O_NOFOLLOW == 0 {
					return -1, &fs.PathError{Op: op, Path: name, Err: ErrLinkLoop}
				}
				return -1, &fs.PathError{Op: op, Path: name, Err: err}
			default:
				return -1, &fs.PathError{Op: op, Path: name, Err: err}
			}
			break
		}
	}
	real, err := d.walk(name, flags&unix.O_NOFOLLOW == 0)
	if err != nil {
		return -1, &fs.PathError{Op: op, Path: name, Err: err}
	}
	afterWalk()
	var fd int
	if d.userspace.Load() {
		fd, err = ignoringEINTR(func() (int, error) { return unix.Openat(d.fd, real, flags|unix.O_NOFOLLOW, 0) })
	} else {
		// openat2 is there but kept answering EAGAIN (renames racing with
		// a ".."): the walk's path holds no ".." and no link, so it opens
		// with no link followed at all. A directory of it swapped for a
		// link since the walk is then an error, not a way out, as it would
		// be with openat(2), which follows links before the last element.
		how := unix.OpenHow{Flags: uint64(flags | unix.O_NOFOLLOW), Resolve: resolveHow | unix.RESOLVE_NO_SYMLINKS}
		fd, err = ignoringEINTR(func() (int, error) { return openat2(d.fd, real, &how) })
		if err == unix.ELOOP && flags&unix.O_NOFOLLOW == 0 {
			err = ErrLinkEscapes
		}
	}
	if err != nil {
		return -1, &fs.PathError{Op: op, Path: name, Err: err}
	}
	return fd, nil
}

// openat2 is unix.Openat2; tests make it answer EAGAIN.
var openat2 = unix.Openat2

// afterWalk runs between the user-space walk and the open; tests change
// the tree there.
var afterWalk = func() {}

// walk resolves name in user space, as agent/gitfs does in a tree: one
// component at a time, a link's target spliced in place of the link, and
// refused when it is absolute or climbs out. It returns the path, free of
// links but maybe for its last element when follow is false.
func (d *Dir) walk(name string, follow bool) (string, error) {
	var rest []string
	if name != "." {
		rest = strings.Split(name, "/")
	}
	cur := "."
	links := 0
	var buf [unix.PathMax]byte
	for i := 0; i < len(rest); i++ {
		p := path.Join(cur, rest[i])
		var st unix.Stat_t
		if err := unix.Fstatat(d.fd, p, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return "", err
		}
		last := i == len(rest)-1
		if st.Mode&unix.S_IFMT == unix.S_IFLNK && (!last || follow) {
			if links++; links > MaxLinks {
				return "", ErrLinkLoop
			}
			n, err := unix.Readlinkat(d.fd, p, buf[:])
			if err != nil {
				return "", err
			}
			target := string(buf[:n])
			if target == "" || path.IsAbs(target) {
				return "", ErrLinkEscapes
			}
			t := path.Join(cur, target)
			if t == ".." || strings.HasPrefix(t, "../") {
				return "", ErrLinkEscapes
			}
			var next []string
			if t != "." {
				next = strings.Split(t, "/")
			}
			rest = append(next, rest[i+1:]...)
			cur, i = ".", -1
			continue
		}
		if last {
			return p, nil
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return "", unix.ENOTDIR
		}
		cur = p
	}
	return ".", nil
}

// Open opens name for reading, following links inside the directory. Only
// a regular file or a directory opens; anything else is ErrNotRegular.
func (d *Dir) Open(name string) (fs.File, error) {
	fd, st, err := d.openStat(name)
	if err != nil {
		return nil, err
	}
	info := statInfo(path.Base(name), &st)
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		unix.Close(fd)
		entries, err := d.ReadDir(name)
		if err != nil {
			return nil, err
		}
		return &dirFile{info: info, entries: entries}, nil
	}
	return &File{fd: fd, path: name, info: info}, nil
}

// openStat opens name and says what it is: a regular file or a directory,
// else ErrNotRegular. The descriptor is non-blocking, which changes nothing
// for either.
func (d *Dir) openStat(name string) (int, unix.Stat_t, error) {
	var st unix.Stat_t
	fd, err := d.open("open", name, unix.O_RDONLY|unix.O_NONBLOCK)
	if errors.Is(err, unix.ENXIO) {
		// A socket, or a device without its driver: no file either way.
		return -1, st, &fs.PathError{Op: "open", Path: name, Err: ErrNotRegular}
	}
	if err != nil {
		return -1, st, err
	}
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, st, &fs.PathError{Op: "stat", Path: name, Err: err}
	}
	if t := st.Mode & unix.S_IFMT; t != unix.S_IFREG && t != unix.S_IFDIR {
		unix.Close(fd)
		return -1, st, &fs.PathError{Op: "open", Path: name, Err: ErrNotRegular}
	}
	return fd, st, nil
}

// OpenFile opens the regular file name for reading; anything else is
// ErrNotRegular.
func (d *Dir) OpenFile(name string) (*File, error) {
	fd, st, err := d.openStat(name)
	if err != nil {
		return nil, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, &fs.PathError{Op: "open", Path: name, Err: ErrNotRegular}
	}
	return &File{fd: fd, path: name, info: statInfo(path.Base(name), &st)}, nil
}

// ReadFile reads the regular file name.
func (d *Dir) ReadFile(name string) ([]byte, error) {
	f, err := d.OpenFile(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadAll(f, f.info.Size())
}

// SumFile returns the SHA-256 of the content of the regular file name,
// read through buf (any length; 32 KiB serves). It is OpenFile, a read to
// the end and Close, with the errors they give, in fewer system calls and
// no allocation for a file that fits in buf: a read that stops short at
// the size fstat gave is taken as the end, which saves the read that would
// say so (a file grown meanwhile reads on to its end; one that a file
// system returns in short pieces too).
func (d *Dir) SumFile(name string, buf []byte) ([sha256.Size]byte, error) {
	fd, st, err := d.openStat(name)
	if err != nil {
		return [sha256.Size]byte{}, err
	}
	defer unix.Close(fd)
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return [sha256.Size]byte{}, &fs.PathError{Op: "open", Path: name, Err: ErrNotRegular}
	}
	if len(buf) == 0 {
		// A read into no room says nothing of the end: the loops below
		// would hash nothing, whatever the file holds.
		buf = make([]byte, 32<<10)
	}
	f := File{fd: fd, path: name}
	n := 0
	for n < len(buf) {
		k, err := f.Read(buf[n:])
		if err == io.EOF {
			return sha256.Sum256(buf[:n]), nil
		}
		if err != nil {
			return [sha256.Size]byte{}, err
		}
		if n += k; int64(n) == st.Size && n < len(buf) {
			return sha256.Sum256(buf[:n]), nil
		}
	}
	h := sha256.New() // larger than buf: hashed as it is read
	for n > 0 {
		h.Write(buf[:n])
		if n, err = f.Read(buf); err == io.EOF {
			break
		} else if err != nil {
			return [sha256.Size]byte{}, err
		}
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum, nil
}

// ReadAll reads r to its end, size bytes expected.
func ReadAll(r io.Reader, size int64) ([]byte, error) {
	buf := make([]byte, 0, int(size)+1)
	for {
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, 4096)
		}
	}
}

// Stat describes name, following links inside the directory.
func (d *Dir) Stat(name string) (fs.FileInfo, error) {
	fd, err := d.open("stat", name, unix.O_PATH)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: err}
	}
	return statInfo(path.Base(name), &st), nil
}

// Lstat describes name without following a link at its end.
func (d *Dir) Lstat(name string) (fs.FileInfo, error) {
	fd, err := d.open("lstat", name, unix.O_PATH|unix.O_NOFOLLOW)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, &fs.PathError{Op: "lstat", Path: name, Err: err}
	}
	return statInfo(path.Base(name), &st), nil
}

// ReadLink returns the target of the link name.
func (d *Dir) ReadLink(name string) (string, error) {
	fd, err := d.open("readlink", name, unix.O_PATH|unix.O_NOFOLLOW)
	if err != nil {
		return "", err
	}
	defer unix.Close(fd)
	var buf [unix.PathMax]byte
	n, err := unix.Readlinkat(fd, "", buf[:])
	if err != nil {
		if err == unix.ENOENT || err == unix.EINVAL { // no link
			err = fs.ErrInvalid
		}
		return "", &fs.PathError{Op: "readlink", Path: name, Err: err}
	}
	return string(buf[:n]), nil
}

// ReadDir lists the directory name, sorted by name. Entries are not
// followed: a link is reported as a link.
func (d *Dir) ReadDir(name string) ([]fs.DirEntry, error) {
	fd, err := d.open("open", name, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	list, err := f.ReadDir(-1)
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: unwrapPath(err)}
	}
	out := make([]fs.DirEntry, len(list))
	for i, e := range list {
		out[i] = &dirEntry{d: d, path: path.Join(name, e.Name()), name: e.Name(), typ: e.Type()}
	}
	slices.SortFunc(out, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return out, nil
}

// dirEntry is an entry of ReadDir; Info is an Lstat beneath the directory.
type dirEntry struct {
	d          *Dir
	path, name string
	typ        fs.FileMode
}

func (e *dirEntry) Name() string               { return e.name }
func (e *dirEntry) IsDir() bool                { return e.typ.IsDir() }
func (e *dirEntry) Type() fs.FileMode          { return e.typ }
func (e *dirEntry) Info() (fs.FileInfo, error) { return e.d.Lstat(e.path) }
func (e *dirEntry) String() string             { return fs.FormatDirEntry(e) }

// dirFile is a directory opened with Open.
type dirFile struct {
	info    fs.FileInfo
	entries []fs.DirEntry
}

func (f *dirFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *dirFile) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: f.info.Name(), Err: errors.New("is a directory")}
}
func (f *dirFile) Close() error { return nil }

// ReadDir returns the next n entries (all that are left when n <= 0).
func (f *dirFile) ReadDir(n int) ([]fs.DirEntry, error) {
	if n <= 0 {
		out := f.entries
		f.entries = nil
		return out, nil
	}
	if len(f.entries) == 0 {
		return nil, io.EOF
	}
	n = min(n, len(f.entries))
	out := f.entries[:n]
	f.entries = f.entries[n:]
	return out, nil
}

// fileInfo describes a file from its stat.
type fileInfo struct {
	name string
	st   unix.Stat_t
}

func statInfo(name string, st *unix.Stat_t) *fileInfo { return &fileInfo{name: name, st: *st} }

func (i *fileInfo) Name() string       { return i.name }
func (i *fileInfo) Size() int64        { return i.st.Size }
func (i *fileInfo) ModTime() time.Time { return time.Unix(i.st.Mtim.Unix()) }
func (i *fileInfo) IsDir() bool        { return i.Mode().IsDir() }
func (i *fileInfo) Sys() any           { return &i.st }

func (i *fileInfo) Mode() fs.FileMode {
	m := fs.FileMode(i.st.Mode & 0o777)
	switch i.st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		m |= fs.ModeDir
	case unix.S_IFLNK:
		m |= fs.ModeSymlink
	case unix.S_IFIFO:
		m |= fs.ModeNamedPipe
	case unix.S_IFSOCK:
		m |= fs.ModeSocket
	case unix.S_IFCHR:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		m |= fs.ModeDevice
	}
	if i.st.Mode&unix.S_ISUID != 0 {
		m |= fs.ModeSetuid
	}
	if i.st.Mode&unix.S_ISGID != 0 {
		m |= fs.ModeSetgid
	}
	if i.st.Mode&unix.S_ISVTX != 0 {
		m |= fs.ModeSticky
	}
	return m
}

func ignoringEINTR(fn func() (int, error)) (int, error) {
	for {
		n, err := fn()
		if err != unix.EINTR {
			return n, err
		}
	}
}

// File is a regular file of a Dir, read through its descriptor with plain
// system calls: os.Open would register every file with the runtime's
// poller (four fcntl and a failing epoll_ctl each), which for thousands of
// small source files costs more than reading them.
type File struct {
	fd   int
	path string
	info *fileInfo
}

// Read reads from the file, blocking, as regular files do anyway.
func (f *File) Read(b []byte) (int, error) {
	for {
		n, err := unix.Read(f.fd, b)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return 0, &fs.PathError{Op: "read", Path: f.path, Err: err}
		case n == 0 && len(b) > 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

// Stat describes the file as it was opened.
func (f *File) Stat() (fs.FileInfo, error) { return f.info, nil }

// Size is the file's size when it was opened.
func (f *File) Size() int64 { return f.info.Size() }

// Close closes the file.
func (f *File) Close() error { return unix.Close(f.fd) }

// unwrapPath drops an *fs.PathError's own path.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
