package steps

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"strings"
	"syscall"

	"github.com/cairn-cm/cairn/journal"
	"github.com/cairn-cm/cairn/rootfs"
)

// pathFamily is the Imager of every kind whose identity is path:P (MKDIR,
// COPY, SYMLINK, RM): it captures and restores type, mode, owner, content and
// link target.
type pathFamily struct{}

// Capture records the object at the step's path as it is now.
func (pathFamily) Capture(_ context.Context, env *Env, s *journal.Step) (Image, error) {
	return capturePath(env, s.Object())
}

// Restore brings the step's path back to img.
func (pathFamily) Restore(_ context.Context, env *Env, s *journal.Step, img Image) error {
	return restorePath(env, s.Object(), img)
}

// pathState is what lstat says of an object path.
type pathState struct {
	exists bool
	typ    string // TypeFile, TypeDir, TypeSymlink, or another word for other types
	mode   uint32 // permission bits
	uid    int
	gid    int
	size   int64
}

func lstatPath(env *Env, p string) (pathState, error) {
	st, err := env.Root.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return pathState{}, nil // absent, or beneath something that is no directory
	}
	if err != nil {
		return pathState{}, err
	}
	return stateOf(st), nil
}

// stateOf turns what rootfs says of an existing object into a pathState.
func stateOf(st rootfs.Info) pathState {
	ps := pathState{exists: true, mode: st.Perm(), uid: int(st.UID), gid: int(st.GID), size: st.Size}
	switch st.Mode & syscall.S_IFMT {
	case syscall.S_IFREG:
		ps.typ = TypeFile
	case syscall.S_IFDIR:
		ps.typ = TypeDir
	case syscall.S_IFLNK:
		ps.typ = TypeSymlink
	case syscall.S_IFIFO:
		ps.typ = "fifo"
	case syscall.S_IFSOCK:
		ps.typ = "socket"
	default:
		ps.typ = "device"
	}
	return ps
}

func capturePath(env *Env, p string) (Image, error) {
	st, err := lstatPath(env, p)
	if err != nil {
		return Image{}, err
	}
	switch {
	case !st.exists:
		return Image{Absent: true}, nil
	case st.typ == TypeDir:
		return Image{Type: TypeDir, Mode: st.mode, UID: st.uid, GID: st.gid}, nil
	case st.typ == TypeSymlink:
		target, err := env.Root.Readlink(p)
		if err != nil {
			return Image{}, err
		}
		return Image{Type: TypeSymlink, Target: target, UID: st.uid, GID: st.gid}, nil
	case st.typ == TypeFile:
		sum, err := storeFile(env, p, st.size)
		if err != nil {
			return Image{}, fmt.Errorf("keep the content of %s: %w", p, err)
		}
		return Image{Type: TypeFile, Mode: st.mode, UID: st.uid, GID: st.gid, Size: st.size, Blob: sum}, nil
	}
	return Image{}, fmt.Errorf("%s is a %s: cairn manages only files, directories and links", p, st.typ)
}

// storeFile keeps the content of the file at p in the blob store and returns
// its hash; content already there is only hashed.
func storeFile(env *Env, p string, size int64) (string, error) {
	f, err := env.Root.OpenFile(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if size <= 1<<20 {
		data, err := io.ReadAll(f)
		if err != nil {
			return "", err
		}
		sum := sha256.Sum256(data)
		hexsum := hex.EncodeToString(sum[:])
		if env.Blobs.Has(hexsum) {
			return hexsum, nil
		}
		return env.Blobs.Put(bytes.NewReader(data), hexsum)
	}
	return env.Blobs.Put(f, "")
}

// hashPath says what is at p and, for a regular file, the sha256 of its
// content, with one open: checks and updates look at every file of a tree.
func hashPath(env *Env, p string) (pathState, string, error) {
	h := sha256.New()
	buf := bufPool.Get().(*[]byte)
	defer bufPool.Put(buf)
	info, err := env.Root.ReadInfo(p, h, *buf)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return pathState{}, "", nil
	}
	if err != nil {
		return pathState{}, "", err
	}
	st := stateOf(info)
	if st.typ != TypeFile {
		return st, "", nil
	}
	var sum [sha256.Size]byte
	return st, hex.EncodeToString(h.Sum(sum[:0])), nil
}

func restorePath(env *Env, p string, img Image) error {
	switch {
	case img.Absent:
		return removeOrLeave(env, p)
	case img.Type == TypeDir:
		return ensureDir(env, p, img.Mode, img.UID, img.GID)
	case img.Type == TypeFile:
		return ensureFile(env, p, img.Blob, img.Mode, img.UID, img.GID)
	case img.Type == TypeSymlink:
		return ensureSymlink(env, p, img.Target, img.UID, img.GID)
	}
	return fmt.Errorf("restore %s: image of unknown type %q", p, img.Type)
}

// removeOrLeave makes p absent; a directory that holds entries is left in
// place with a warning naming them (§3, MKDIR's inverse).
func removeOrLeave(env *Env, p string) error {
	st, err := lstatPath(env, p)
	if err != nil || !st.exists {
		return err
	}
	err = env.Root.Remove(p)
	if err != nil && st.typ == TypeDir && errors.Is(err, syscall.ENOTEMPTY) {
		names, _ := env.Root.ReadDirNames(p)
		sort.Strings(names)
		env.logger().Warn("directory left in place: it holds entries no step manages", "path", p, "entries", strings.Join(names, ", "))
		return nil
	}
	return err
}

// clearForNonDir removes an empty directory at p so that a file or link can
// take its place; a directory with entries is an error.
func clearForNonDir(env *Env, p string, st pathState) error {
	if !st.exists || st.typ != TypeDir {
		return nil
	}
	if err := env.Root.Remove(p); err != nil {
		if errors.Is(err, syscall.ENOTEMPTY) {
			names, _ := env.Root.ReadDirNames(p)
			sort.Strings(names)
			return fmt.Errorf("%s is a directory that holds entries (%s)", p, strings.Join(names, ", "))
		}
		return err
	}
	return nil
}

// ensureDir makes p a directory with that mode and owner.
func ensureDir(env *Env, p string, mode uint32, uid, gid int) error {
	st, err := lstatPath(env, p)
	if err != nil {
		return err
	}
	if st.exists && st.typ != TypeDir {
		if err := env.Root.Remove(p); err != nil {
			return err
		}
		st.exists = false
	}
	if !st.exists {
		if err := env.Root.Mkdir(p, mode); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("mkdir %s: parent directory does not exist", p)
			}
			return err
		}
		// A new directory takes the group of a set-group-ID parent.
		if st, err = lstatPath(env, p); err != nil {
			return err
		}
	}
	return fixOwnerMode(env, p, st, mode, uid, gid, true)
}

// fixOwnerMode sets owner then mode (chown clears set-id bits) where they
// differ.
func fixOwnerMode(env *Env, p string, st pathState, mode uint32, uid, gid int, setMode bool) error {
	if st.uid != uid || st.gid != gid {
		if err := env.Root.Lchown(p, uid, gid); err != nil {
			return err
		}
		st.mode = ^uint32(0) // re-apply the mode after a chown
	}
	if setMode && st.mode != mode {
		return env.Root.Chmod(p, mode)
	}
	return nil
}

// ensureFile makes p a regular file holding blob sum with that mode and
// owner, replacing whatever is there atomically.
func ensureFile(env *Env, p, sum string, mode uint32, uid, gid int) error {
	st, err := lstatPath(env, p)
	if err != nil {
		return err
	}
	if st.exists && st.typ == TypeFile {
		if now, have, err := hashPath(env, p); err == nil && now.typ == TypeFile && have == sum {
			return fixOwnerMode(env, p, now, mode, uid, gid, true)
		}
	}
	src, err := env.Blobs.Open(sum)
	if err != nil {
		return err
	}
	defer src.Close()
	tmp, err := env.Root.CreateTemp(p, mode)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("write %s: parent directory does not exist", p)
		}
		return err
	}
	_, err = copyBuffer(tmp, src)
	if err == nil { // always: a new file takes the group of a set-group-ID directory
		if err = tmp.Chown(uid, gid); err == nil {
			err = tmp.Chmod(os.FileMode(mode&0o777) | modeBits(mode))
		}
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = clearForNonDir(env, p, st)
	}
	if err == nil {
		err = env.Root.CommitTemp(p)
	}
	if err != nil {
		env.Root.RemoveTemp(p)
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}

// modeBits converts the set-id and sticky bits of a Unix mode to Go's.
func modeBits(mode uint32) os.FileMode {
	var m os.FileMode
	if mode&syscall.S_ISUID != 0 {
		m |= os.ModeSetuid
	}
	if mode&syscall.S_ISGID != 0 {
		m |= os.ModeSetgid
	}
	if mode&syscall.S_ISVTX != 0 {
		m |= os.ModeSticky
	}
	return m
}

// ensureSymlink makes p a link to target owned by uid:gid.
func ensureSymlink(env *Env, p, target string, uid, gid int) error {
	st, err := lstatPath(env, p)
	if err != nil {
		return err
	}
	if st.exists && st.typ == TypeSymlink {
		if have, err := env.Root.Readlink(p); err == nil && have == target {
			return fixOwnerMode(env, p, st, 0, uid, gid, false)
		}
	}
	if err := clearForNonDir(env, p, st); err != nil {
		return err
	}
	if err := env.Root.Symlink(target, p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("symlink %s: parent directory does not exist", p)
		}
		return err
	}
	// Always: a new link takes the group of a set-group-ID directory.
	return env.Root.Lchown(p, uid, gid)
}

// ownerOf resolves a step's owner and group attributes.
func ownerOf(env *Env, s *journal.Step) (uid, gid int, err error) {
	if uid, err = env.UID(s.Get("owner")); err != nil {
		return 0, 0, fmt.Errorf("owner %w", err)
	}
	if gid, err = env.GID(s.Get("group")); err != nil {
		return 0, 0, fmt.Errorf("group %w", err)
	}
	return uid, gid, nil
}

// describeOwnerMode says how st differs from the wanted mode and owner, or "".
func describeOwnerMode(st pathState, mode uint32, uid, gid int, withMode bool) string {
	var d []string
	if withMode && st.mode != mode {
		d = append(d, fmt.Sprintf("mode %04o, want %04o", st.mode, mode))
	}
	if st.uid != uid || st.gid != gid {
		d = append(d, fmt.Sprintf("owner %d:%d, want %d:%d", st.uid, st.gid, uid, gid))
	}
	return strings.Join(d, "; ")
}
