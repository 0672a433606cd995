// Package rootfs resolves cairn object paths beneath a root directory and
// acts on them without ever leaving it (spec §8). It is Linux only.
//
// An object path (spec §2) is absolute and clean, and never "/". A Root
// resolves it beneath its directory DIR as if DIR were "/":
//
//  1. The directory that holds the object (every component but the last) is
//     opened as if with openat2(2) and RESOLVE_IN_ROOT: symbolic links in it
//     are followed, an absolute link target starts again at DIR, and ".."
//     stops at DIR. Magic links (/proc/PID/fd/N) are refused.
//  2. The last component is never followed: every operation acts on the name
//     itself relative to that directory's descriptor, with
//     AT_SYMLINK_NOFOLLOW or O_NOFOLLOW. A link there is seen by Lstat and
//     Readlink, replaced by Symlink, CommitTemp and Rename, changed by
//     Lchown and Remove, and refused by OpenFile, ReadDirNames and Chmod
//     (Linux links have no mode).
//
// Links that other users could have planted are not followed out of their
// reach (systemd's "unsafe path transition"): a link found in a directory
// owned by a user other than root, or owned by such a user itself, is
// followed only if the directory it leads to belongs to that same user.
// So with /home/alice/.ssh -> /root/.ssh, a path through /home/alice/.ssh
// is refused (UnsafePathError), while alice's links among her own
// directories are followed. A directory of another user beneath hers,
// without a link, is not refused: she cannot have put it there (moving a
// directory to another parent needs write permission on the directory
// itself; directories have no hard links; mounts need root).
//
// The fast path is one openat2 with RESOLVE_IN_ROOT, RESOLVE_NO_SYMLINKS
// and RESOLVE_NO_MAGICLINKS: a path without links costs one system call. A
// path with links (ELOOP), or any path where openat2 is missing (Linux
// before 5.6, or a seccomp filter that answers ENOSYS), is walked in user
// space, one component at a time, with O_PATH|O_NOFOLLOW opens; a link is
// opened itself, so that its owner (fstat) and its target (readlinkat) are
// those of one inode, and checked by the rule above once its target is
// resolved. The walk keeps the descriptors of the directories it walked
// through, so ".." pops one and never climbs above DIR, and it allows 40
// links per resolution like the kernel. It refuses every link on procfs
// (ELOOP), magic or not.
//
// Nothing is cached between calls: every call sees the tree as it is now.
// Each Root method resolves the directory of its path once; to run several
// operations in one directory (write a temporary file, rename it into place,
// fsync the directory) use OpenParent and the methods of Dir, which resolve
// it once for all of them.
//
// Errors are *fs.PathError (*os.LinkError for Rename) that name the operation
// and the object path, never the host path, as in
// "mkdir /etc/foo: file exists"; errors.Is(err, fs.ErrNotExist) and
// errors.Is(err, fs.ErrExist) work as with package os, and the errno is
// there for errors.Is(err, syscall.ENOTDIR) and the like.
package rootfs
