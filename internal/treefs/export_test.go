package treefs

import "golang.org/x/sys/unix"

// UserSpace makes d resolve paths in user space, as where openat2 is
// missing.
func UserSpace(d *Dir) { d.userspace.Store(true) }

// RacingRenames makes openat2 answer EAGAIN to every lookup that may follow
// links, as when renames keep racing with a "..", and runs swap between the
// user-space walk and the open that follows it. It returns a function that
// undoes both.
func RacingRenames(swap func()) (undo func()) {
	real := openat2
	openat2 = func(dirfd int, path string, how *unix.OpenHow) (int, error) {
		if how.Resolve&unix.RESOLVE_NO_SYMLINKS == 0 {
			return -1, unix.EAGAIN
		}
		return real(dirfd, path, how)
	}
	afterWalk = swap
	return func() { openat2, afterWalk = real, func() {} }
}
