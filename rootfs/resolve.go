package rootfs

import (
	"strings"

	"golang.org/x/sys/unix"
)

// parentHow asks openat2 for a directory beneath the root with no link on
// the way: the fast path. A path through links fails with ELOOP and is
// walked in user space, where the rule of unsafe links (UnsafePathError)
// is applied to every link. Only the kernel reads it.
var parentHow = unix.OpenHow{
	Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
	Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_SYMLINKS,
}

// maxSymlinks is the kernel's MAXSYMLINKS: links one resolution may follow.
const maxSymlinks = 40

// eagainRetries bounds the openat2 retries when a rename or mount raced
// with the walk (RESOLVE_IN_ROOT then answers EAGAIN); after them the
// user-space resolver, which keeps its own stack of directories, takes
// over.
const eagainRetries = 8

// procSuperMagic is the f_type of procfs, whose links (/proc/PID/fd/N,
// /proc/PID/root, ...) are never followed.
const procSuperMagic = 0x9fa0

// resolve opens the directory rel (relative, non-empty) beneath the root,
// following every link in it. owned is false when the result is the root's
// own descriptor, which the caller must not close.
func (r *Root) resolve(rel string) (fd int, owned bool, err error) {
	if !r.userspace.Load() {
		for range eagainRetries {
			fd, err = unix.Openat2(r.fd, rel, &parentHow)
			switch err {
			case nil:
				return fd, true, nil
			case unix.EAGAIN, unix.EINTR:
				continue
			case unix.ELOOP:
				// A link on the way: walk it in user space, where each
				// link is checked before it is followed.
			case unix.ENOSYS:
				r.userspace.Store(true)
			default:
				return -1, false, err
			}
			break
		}
	}
	return r.resolveUser(rel)
}

// linkCheck is a link followed whose target must lead to a directory of
// the user who could have planted it: checked once the walk has consumed
// the target, when the remaining path is restLen bytes long again.
type linkCheck struct {
	restLen int
	link    string // object path of the link, its directory resolved
	dirUID  uint32 // owner of the directory that holds the link
	linkUID uint32 // owner of the link
}

// resolveUser is resolve without openat2: one component at a time, each
// opened with O_PATH|O_NOFOLLOW relative to the directory before it, so the
// kernel never follows anything itself. stack holds the descriptors of the
// directories walked through below the root, names their names; ".." pops
// one and stops at the root; an absolute link target empties them.
//
// A link found in a directory owned by a user other than root, or owned by
// such a user itself, is followed only to a directory of that same user
// (UnsafePathError); a link on procfs is not followed at all (ELOOP), as
// openat2's RESOLVE_NO_MAGICLINKS refuses magic links.
func (r *Root) resolveUser(rel string) (int, bool, error) {
	var stackBuf [16]int
	var namesBuf [16]string
	stack, names := stackBuf[:0], namesBuf[:0]
	closeAll := func() {
		for _, fd := range stack {
			unix.Close(fd)
		}
		stack, names = stack[:0], names[:0]
	}
	top := func() int {
		if len(stack) == 0 {
			return r.fd
		}
		return stack[len(stack)-1]
	}
	var checks []linkCheck
	var linkBuf [unix.PathMax]byte
	links := 0
	for rest := rel; ; {
		for n := len(checks); n > 0 && len(rest) <= checks[n-1].restLen; n = len(checks) {
			if err := checkLinkTarget(top(), checks[n-1]); err != nil {
				closeAll()
				return -1, false, err
			}
			checks = checks[:n-1]
		}
		if rest == "" {
			break
		}
		var comp string
		comp, rest, _ = strings.Cut(rest, "/")
		switch comp {
		case "", ".":
			continue
		case "..":
			if n := len(stack); n > 0 {
				unix.Close(stack[n-1])
				stack, names = stack[:n-1], names[:n-1]
			}
			continue
		}
		fd, err := unix.Openat(top(), comp, unix.O_PATH|unix.O_NOFOLLOW|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err == nil {
			stack, names = append(stack, fd), append(names, comp)
			continue
		}
		if err != unix.ENOTDIR && err != unix.ELOOP {
			closeAll()
			return -1, false, err
		}
		// A link, or something that is no directory.
		target, linkUID, err := readLinkAt(top(), comp, linkBuf[:])
		if err == nil {
			if links++; links > maxSymlinks {
				err = unix.ELOOP
			}
		}
		var dirUID uint32
		if err == nil {
			var st unix.Stat_t
			if err = unix.Fstat(top(), &st); err == nil {
				dirUID = st.Uid
			}
		}
		if err != nil {
			closeAll()
			return -1, false, err
		}
		if dirUID != 0 || linkUID != 0 {
			checks = append(checks, linkCheck{restLen: len(rest), link: objectPath(names, comp), dirUID: dirUID, linkUID: linkUID})
		}
		if target[0] == '/' {
			closeAll()
		}
		if rest != "" {
			rest = target + "/" + rest
		} else {
			rest = target
		}
	}
	if len(stack) == 0 {
		return r.fd, false, nil
	}
	fd := stack[len(stack)-1]
	stack = stack[:len(stack)-1]
	closeAll()
	return fd, true, nil
}

// readLinkAt reads the link name in dirfd through a descriptor of the link
// itself, so that its owner and its target are those of one inode: a link
// swapped between the two reads cannot pair one link's owner with another's
// target. Anything but a link is ENOTDIR; a link on procfs is ELOOP.
func readLinkAt(dirfd int, name string, buf []byte) (target string, uid uint32, err error) {
	fd, err := unix.Openat(dirfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", 0, err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return "", 0, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		return "", 0, unix.ENOTDIR
	}
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fd, &sfs); err != nil {
		return "", 0, err
	}
	if sfs.Type == procSuperMagic {
		return "", 0, unix.ELOOP
	}
	n, err := unix.Readlinkat(fd, "", buf)
	switch {
	case err != nil:
		return "", 0, err
	case n == 0:
		return "", 0, unix.ENOENT
	case n == len(buf):
		return "", 0, unix.ENAMETOOLONG
	}
	return string(buf[:n]), st.Uid, nil
}

// checkLinkTarget checks that the directory dirfd, which the link of c led
// to, belongs to the user who could have planted that link.
func checkLinkTarget(dirfd int, c linkCheck) error {
	var st unix.Stat_t
	if err := unix.Fstat(dirfd, &st); err != nil {
		return err
	}
	if (c.dirUID == 0 || st.Uid == c.dirUID) && (c.linkUID == 0 || st.Uid == c.linkUID) {
		return nil
	}
	return &UnsafePathError{Link: c.link, DirUID: c.dirUID, LinkUID: c.linkUID, TargetUID: st.Uid}
}

// objectPath joins the names of the directories walked through and name
// into an object path.
func objectPath(names []string, name string) string {
	var b strings.Builder
	for _, n := range names {
		b.WriteByte('/')
		b.WriteString(n)
	}
	b.WriteByte('/')
	b.WriteString(name)
	return b.String()
}
