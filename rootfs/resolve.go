package rootfs

import (
	"strings"

	"golang.org/x/sys/unix"
)

// parentHow asks openat2 for a directory beneath the root, links followed
// as if the root were "/". Only the kernel reads it.
var parentHow = unix.OpenHow{
	Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
	Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
}

// maxSymlinks is the kernel's MAXSYMLINKS: links one resolution may follow.
const maxSymlinks = 40

// eagainRetries bounds the openat2 retries when a rename or mount raced with
// a ".." (RESOLVE_IN_ROOT then answers EAGAIN); after them the user-space
// resolver, which keeps its own stack of directories, takes over.
const eagainRetries = 8

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

// resolveUser is resolve without openat2: one component at a time, each
// opened with O_PATH|O_NOFOLLOW relative to the directory before it, so the
// kernel never follows anything itself. stack holds the descriptors of the
// directories walked through below the root; ".." pops one and stops at the
// root; an absolute link target empties it.
func (r *Root) resolveUser(rel string) (int, bool, error) {
	var stackBuf [16]int
	stack := stackBuf[:0]
	closeAll := func() {
		for _, fd := range stack {
			unix.Close(fd)
		}
		stack = stack[:0]
	}
	top := func() int {
		if len(stack) == 0 {
			return r.fd
		}
		return stack[len(stack)-1]
	}
	var linkBuf [unix.PathMax]byte
	links := 0
	for rest := rel; rest != ""; {
		var comp string
		comp, rest, _ = strings.Cut(rest, "/")
		switch comp {
		case "", ".":
			continue
		case "..":
			if n := len(stack); n > 0 {
				unix.Close(stack[n-1])
				stack = stack[:n-1]
			}
			continue
		}
		fd, err := unix.Openat(top(), comp, unix.O_PATH|unix.O_NOFOLLOW|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err == nil {
			stack = append(stack, fd)
			continue
		}
		if err != unix.ENOTDIR && err != unix.ELOOP {
			closeAll()
			return -1, false, err
		}
		// A link, or something that is no directory.
		n, err := unix.Readlinkat(top(), comp, linkBuf[:])
		switch {
		case err == unix.EINVAL:
			err = unix.ENOTDIR
		case err == nil && n == 0:
			err = unix.ENOENT
		case err == nil && n == len(linkBuf):
			err = unix.ENAMETOOLONG
		}
		if err == nil {
			if links++; links > maxSymlinks {
				err = unix.ELOOP
			}
		}
		if err != nil {
			closeAll()
			return -1, false, err
		}
		target := string(linkBuf[:n])
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
