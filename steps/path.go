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
	"time"
	"unicode/utf8"

	"github.com/cairn-cm/cairn/blobstore"
	"github.com/cairn-cm/cairn/journal"
	"github.com/cairn-cm/cairn/rootfs"
	"golang.org/x/sys/unix"
)

// pathFamily is the Imager of every kind whose identity is path:P (MKDIR,
// COPY, SYMLINK, RM): it captures and restores type, mode, owner, content and
// link target, and the extended attributes (ACLs and capabilities included)
// of files and directories and the mtime of files.
type pathFamily struct{}

// Capture records the object at the step's path as it is now, and where it
// lives (its Place), so that the op and its undo act there and nowhere else.
func (pathFamily) Capture(_ context.Context, env *Env, s *journal.Step) (Image, error) {
	return captureIn(env, s, nil)
}

// captureIn is Capture with what the move has seen of the tree (the
// applier's view, nil without one).
func captureIn(env *Env, s *journal.Step, v *view) (Image, error) {
	l, place, err := locateNew(env, s.Object(), verbOf(s.Op), v)
	if err != nil {
		return Image{}, err
	}
	defer l.close()
	img, err := capturePath(env, &l, place)
	if err != nil {
		return Image{}, err
	}
	if err := imageIsText(&img); err != nil {
		return Image{}, err
	}
	img.Place = place
	return img, nil
}

// imageIsText refuses an image that cairn's state could not keep:
// applied.json and the intent log are JSON, whose strings are UTF-8 text,
// and encoding/json writes U+FFFD for every byte that is not, so a link
// target or an attribute's name that is no valid UTF-8 would be restored
// wrong. The op is refused before it acts instead.
func imageIsText(img *Image) error {
	if !utf8.ValidString(img.Target) {
		return fmt.Errorf("refusing to act: the link's target %q is no valid UTF-8, which cairn's state cannot keep to restore it", img.Target)
	}
	for name := range img.Xattrs {
		if !utf8.ValidString(name) {
			return fmt.Errorf("refusing to act: the name of its extended attribute %q is no valid UTF-8, which cairn's state cannot keep to restore it", name)
		}
	}
	return nil
}

// Restore brings the step's path back to img, where img.Place says if it
// has one.
func (pathFamily) Restore(_ context.Context, env *Env, s *journal.Step, img Image) error {
	return restorePlaced(env, s.Object(), img, nil)
}

// pathKind is a kind of the path family: its forward op acts on an object
// whose directory the caller opened, afresh (Forward) or where the op's
// undo image was taken (runPlaced).
type pathKind interface {
	forwardAt(ctx context.Context, env *Env, s *journal.Step, l *loc) error
}

// forwardFresh runs a path op forward on its object located afresh.
func forwardFresh(ctx context.Context, env *Env, k pathKind, s *journal.Step) error {
	l, err := locate(env, s.Object(), verbOf(s.Op))
	if err != nil {
		return err
	}
	defer l.close()
	return k.forwardAt(ctx, env, s, &l)
}

// runPlaced runs a path op (forward, update, rerun, or inverse to orig) in
// the directory its undo image, undo, was taken in (undo.Place), or refuses.
func runPlaced(ctx context.Context, env *Env, k pathKind, s *journal.Step, action journal.Action, undo *Image, orig Image) error {
	verb := verbOf(s.Op)
	if action == journal.Inverse {
		verb = "restore"
	}
	l, err := openPlace(env, s.Object(), undo.Place, nil, verb)
	if err != nil {
		return &untouchedError{err}
	}
	defer l.close()
	l.wasAbsent = undo.Absent
	if action == journal.Inverse {
		return restoreAt(env, &l, orig)
	}
	return k.forwardAt(ctx, env, s, &l)
}

// restorePlaced brings p back to img where img.Place says (afresh without
// one). An undo (u non-nil) first removes the op's temporary file, and
// records a directory it made again in u.
func restorePlaced(env *Env, p string, img Image, u *undoPass) error {
	l, err := openPlace(env, p, img.Place, u, "restore")
	if err != nil {
		return err
	}
	defer l.close()
	if u != nil {
		if err := l.RemoveTemp(); err != nil && !isGone(err) {
			return err
		}
		l.pass, l.place = u, img.Place
	}
	if err := restoreAt(env, &l, img); err != nil {
		return err
	}
	if pl := img.Place; u != nil && img.Type == TypeDir && pl != nil && pl.OIno != 0 {
		if info, err := l.Lstat(); err == nil {
			if was, now := (fileID{pl.ODev, pl.OIno}), (fileID{info.Dev, info.Ino}); !u.same(was, now) {
				u.made[was] = now
			}
		}
	}
	return nil
}

// pathState is what lstat says of an object path.
type pathState struct {
	exists bool
	typ    string // TypeFile, TypeDir, TypeSymlink, or another word for other types
	mode   uint32 // permission bits
	uid    int
	gid    int
	size   int64
	nlink  uint64 // names of the inode: more than 1 for a hard-linked file
	dev    uint64
	ino    uint64
}

func lstatPath(env *Env, p string) (pathState, error) {
	st, err := env.Root.Lstat(p)
	return pathStateOf(env, p, st, err)
}

// pathStateOf is the state of the object at p from its lstat (info, err):
// absent when it is, or is beneath something that is no directory.
func pathStateOf(env *Env, p string, info rootfs.Info, err error) (pathState, error) {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return pathState{}, nil
	}
	if err != nil {
		return pathState{}, pathError(env, "lstat", p, err)
	}
	return stateOf(info), nil
}

// lstatAt is lstatPath for a located object.
func lstatAt(l *loc) (pathState, error) {
	if l.dir == nil && isGone(l.gone) {
		return pathState{}, nil // its directory is gone: no error made to say so (a cold apply's images)
	}
	st, err := l.Lstat()
	if isGone(err) {
		return pathState{}, nil
	}
	if err != nil {
		return pathState{}, err
	}
	return stateOf(st), nil
}

// stateOf turns what rootfs says of an existing object into a pathState.
func stateOf(st rootfs.Info) pathState {
	ps := pathState{exists: true, mode: st.Perm(), uid: int(st.UID), gid: int(st.GID), size: st.Size, nlink: st.Nlink, dev: st.Dev, ino: st.Ino}
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

// capturePath records the located object; the identity of a directory
// goes into its place.
func capturePath(env *Env, l *loc, place *Place) (Image, error) {
	p := l.p
	st, err := lstatAt(l)
	if err != nil {
		return Image{}, err
	}
	switch {
	case !st.exists:
		return Image{Absent: true}, nil
	case st.typ == TypeDir:
		if place != nil {
			place.ODev, place.OIno = st.dev, st.ino
		}
		xattrs, err := l.Xattrs()
		if err != nil {
			return Image{}, err
		}
		return Image{Type: TypeDir, Mode: st.mode, UID: st.uid, GID: st.gid, Xattrs: recorded(xattrs)}, nil
	case st.typ == TypeSymlink:
		target, err := l.Readlink()
		if err != nil {
			return Image{}, err
		}
		return Image{Type: TypeSymlink, Target: target, UID: st.uid, GID: st.gid}, nil
	case st.typ == TypeFile:
		img, err := captureFile(env, l)
		if err != nil {
			return Image{}, fmt.Errorf("keep the content of %s: %w", p, err)
		}
		return img, nil
	}
	return Image{}, fmt.Errorf("%s is a %s: cairn manages only files, directories and links", p, st.typ)
}

// recorded marks attributes as recorded: an image with nil Xattrs is one
// from before cairn kept them, whose restore leaves them as they are.
func recorded(xattrs map[string][]byte) map[string][]byte {
	if xattrs == nil {
		return map[string][]byte{}
	}
	return xattrs
}

// captureFile records the located regular file through one descriptor, so
// that its content (kept in the blob store), mode, owner, extended
// attributes and mtime are those of one inode. It only reads: a file whose
// inode other names share is left as it is.
func captureFile(env *Env, l *loc) (Image, error) {
	p := l.p
	f, err := l.OpenFile()
	if err != nil {
		return Image{}, err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return Image{}, &fs.PathError{Op: "fstat", Path: p, Err: err}
	}
	xattrs, err := rootfs.FileXattrs(f)
	if err != nil {
		return Image{}, err
	}
	sum, err := storeFile(env, f, st.Size)
	if err != nil {
		return Image{}, err
	}
	return Image{
		Type: TypeFile, Mode: st.Mode & 0o7777, UID: int(st.Uid), GID: int(st.Gid), Size: st.Size, Blob: sum,
		Mtime: imageMtime(int64(st.Mtim.Sec), int64(st.Mtim.Nsec)), Xattrs: recorded(xattrs),
	}, nil
}

// storeFile keeps the content of the open file f in the blob store and
// returns its hash; content already there is only hashed.
func storeFile(env *Env, f *os.File, size int64) (string, error) {
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
// read is Root.ReadInfo of p (the drift check's goes through the
// directories its stat cache holds); info is what fstat said of the file
// before it was read (the stat cache keeps it).
func hashPath(env *Env, p string, read func(w io.Writer, buf []byte) (rootfs.Info, error)) (st pathState, sum string, info rootfs.Info, err error) {
	st, sum, err = hashWith(func(w io.Writer, buf []byte) (rootfs.Info, error) {
		var err error
		info, err = read(w, buf)
		return info, err
	})
	if err != nil {
		return pathState{}, "", info, pathError(env, "read", p, err)
	}
	return st, sum, info, nil
}

// hashWith is hashPath's work, with read doing ReadInfo.
func hashWith(read func(w io.Writer, buf []byte) (rootfs.Info, error)) (pathState, string, error) {
	h := sha256.New()
	buf := bufPool.Get().(*[]byte)
	defer bufPool.Put(buf)
	info, err := read(h, *buf)
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

// restoreAt brings the located object back to img.
func restoreAt(env *Env, l *loc, img Image) error {
	switch {
	case img.Absent:
		return removeOrLeave(env, l)
	case img.Type == TypeDir:
		if err := ensureDir(env, l, img.Mode, img.UID, img.GID); err != nil || img.Xattrs == nil {
			return err
		}
		// After the mode: an access ACL sets the group bits.
		return xattrsLeftOut(env, l.p, l.SetXattrs(img.Xattrs))
	case img.Type == TypeFile:
		return putFile(env, l, img)
	case img.Type == TypeSymlink:
		return ensureSymlink(env, l, img.Target, img.UID, img.GID)
	}
	return fmt.Errorf("restore %s: image of unknown type %q", l.p, img.Type)
}

// removeOrLeave makes the object absent; a directory that holds entries is
// left in place with a warning naming them (§3, MKDIR's inverse).
func removeOrLeave(env *Env, l *loc) error {
	p := l.p
	st, err := lstatAt(l)
	if err != nil || !st.exists {
		return err
	}
	err = l.Remove()
	if err != nil && st.typ == TypeDir && errors.Is(err, syscall.ENOTEMPTY) {
		if l.pass != nil {
			// An undo: the entries may be objects whose undo failed in
			// this pass and succeeds in the next; decide at the end.
			l.pass.left = append(l.pass.left, leftDir{p: p, place: l.place})
			return nil
		}
		names, _ := l.ReadDirNames()
		sort.Strings(names)
		env.logger().Warn("directory left in place: it holds entries no step manages", "path", p, "entries", strings.Join(names, ", "))
		return nil
	}
	return err
}

// clearForNonDir removes an empty directory at the object so that a file
// or link can take its place; a directory with entries is an error.
func clearForNonDir(l *loc, st pathState) error {
	if !st.exists || st.typ != TypeDir {
		return nil
	}
	if err := l.Remove(); err != nil {
		if errors.Is(err, syscall.ENOTEMPTY) {
			names, _ := l.ReadDirNames()
			sort.Strings(names)
			return fmt.Errorf("%s is a directory that holds entries (%s)", l.p, strings.Join(names, ", "))
		}
		return err
	}
	return nil
}

// ensureDir makes the object a directory with that mode and owner.
func ensureDir(env *Env, l *loc, mode uint32, uid, gid int) error {
	p := l.p
	st, err := lstatAt(l)
	if err != nil {
		return err
	}
	if st.exists && st.typ != TypeDir {
		if err := l.Remove(); err != nil {
			return err
		}
		st.exists = false
	}
	if !st.exists {
		if err := l.Mkdir(mode); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("mkdir %s: parent directory does not exist", p)
			}
			return err
		}
		// A new directory takes the group of a set-group-ID parent.
		if st, err = lstatAt(l); err != nil {
			return err
		}
	}
	return fixOwnerMode(l, st, mode, uid, gid, true)
}

// fixOwnerMode sets owner then mode (chown clears set-id bits) where they
// differ.
func fixOwnerMode(l *loc, st pathState, mode uint32, uid, gid int, setMode bool) error {
	if st.uid != uid || st.gid != gid {
		if err := l.Lchown(uid, gid); err != nil {
			return err
		}
		st.mode = ^uint32(0) // re-apply the mode after a chown
	}
	if setMode && st.mode != mode {
		return l.Chmod(mode)
	}
	return nil
}

// ensureFile makes the object a regular file holding blob sum with that
// mode and owner, replacing whatever is there atomically.
func ensureFile(env *Env, l *loc, sum string, mode uint32, uid, gid int) error {
	return putFile(env, l, Image{Type: TypeFile, Blob: sum, Mode: mode, UID: uid, GID: gid})
}

// putFile makes the object the regular file of img: its content (blob),
// mode and owner, then its extended attributes (exactly img.Xattrs, unless
// that is nil) and last its mtime (unless zero). A file already there with
// that content is fixed in place, unless other names link to its inode (a
// hard link, perhaps to a file outside the root or another user's): then,
// as for any other content, a new file is written to a temporary name and
// renamed over it, and the other names keep their inode untouched; where
// the op's undo image says nothing was there (l.wasAbsent), the file is
// written without a name and linked there instead (createFile). Runs of
// zero blocks become holes.
func putFile(env *Env, l *loc, img Image) error {
	if l.wasAbsent && createFile(env, l, img) {
		return nil
	}
	p := l.p
	st, err := lstatAt(l)
	if err != nil {
		return err
	}
	if st.exists && st.typ == TypeFile {
		if done, err := fixFile(env, l, img); err != nil || done {
			return err
		}
	}
	src, err := env.Blobs.Open(img.Blob)
	if err != nil {
		return err
	}
	defer src.Close()
	// The temporary file is the writer's alone (0600) until it is whole and
	// has its owner: in a set-group-ID directory it would take the
	// directory's group, and with the image's mode that group could read
	// content meant for another while it is written.
	tmp, err := l.CreateTemp(0o600)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("write %s: parent directory does not exist", p)
		}
		return err
	}
	err = fillFile(env, p, tmp, src, img)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = clearForNonDir(l, st)
	}
	if err == nil {
		err = l.CommitTemp()
	}
	if err != nil {
		l.RemoveTemp()
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}

// createFile makes the located object the regular file of img where the
// op's undo image says nothing was (l.wasAbsent): an unnamed file made in
// its directory (O_TMPFILE) is written, given its owner, mode (once) and
// attributes, and then its name (linkat), with no temporary name and no
// rename (a cold apply of 10,000 files spent a fifth of its time in them).
// The file appears at its name whole, as a renamed one does: readers that
// scan a directory (sudoers.d, cron.d) never see it partly written, and a
// file cut short before its link is freed by the kernel, leaving nothing.
// It reports whether it did: if something is at the name now (made since
// the image was taken), the file system has no O_TMPFILE, or anything
// fails, the name is as it was and putFile takes its usual way, which
// replaces what is there, or fails with its usual error.
func createFile(env *Env, l *loc, img Image) bool {
	if l.dir == nil {
		return false
	}
	// The unnamed file first: a file system without O_TMPFILE costs one
	// failed open a file, not a blob opened twice.
	f, err := l.dir.CreateUnnamed(l.name, img.Mode&0o777)
	if err != nil {
		return false
	}
	defer f.Close() // frees the file if it was not linked
	src, err := env.Blobs.Open(img.Blob)
	if err != nil {
		return false
	}
	defer src.Close()
	if err := fillFile(env, l.p, f, src, img); err != nil {
		return false
	}
	return l.dir.Link(f, l.name) == nil
}

// fillFile writes src, the content of img, to the new file f for the
// object p, its hash checked as it is read and runs of zero blocks left as
// holes, then makes its owner and then its mode img's, whatever it was
// made with (a new file takes the group of a set-group-ID directory, and
// chown clears set-id bits; SetOwnerMode changes only what fstat says
// differs), then its attributes and its mtime.
func fillFile(env *Env, p string, f *os.File, src io.Reader, img Image) error {
	if _, err := blobstore.CopySparse(f, src, nil); err != nil {
		return err
	}
	if err := rootfs.SetOwnerMode(f, img.UID, img.GID, img.Mode); err != nil {
		return err
	}
	return setAttrsMtime(env, p, f, img)
}

// fixFile brings the located regular file to img in place, through one
// descriptor, if it holds img's content: done reports that it did, or had
// nothing to do. A file that needs a change and whose inode has other names
// is not changed (done is false): the caller replaces it.
func fixFile(env *Env, l *loc, img Image) (done bool, err error) {
	p := l.p
	f, err := l.OpenFile()
	if err != nil {
		return false, nil // not a regular file any more: replace it
	}
	defer f.Close()
	fd := int(f.Fd())
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || (img.Size > 0 && st.Size != img.Size) {
		return false, nil
	}
	h := sha256.New()
	if _, err := blobstore.CopyBuffer(h, f); err != nil {
		return false, nil
	}
	var sum [sha256.Size]byte
	if hex.EncodeToString(h.Sum(sum[:0])) != img.Blob {
		return false, nil
	}
	chown := int(st.Uid) != img.UID || int(st.Gid) != img.GID
	chmod := chown || st.Mode&0o7777 != img.Mode
	var xattrs map[string][]byte
	if img.Xattrs != nil {
		if xattrs, err = rootfs.FileXattrs(f); err != nil {
			return false, err
		}
	}
	setXattrs := img.Xattrs != nil && !sameXattrs(xattrs, img.Xattrs)
	mtime := !img.Mtime.IsZero() && !img.Mtime.Equal(time.Unix(int64(st.Mtim.Sec), int64(st.Mtim.Nsec)))
	if !chown && !chmod && !setXattrs && !mtime {
		return true, nil
	}
	if st.Nlink > 1 {
		return false, nil // never change an inode that other names share
	}
	// chown(2) clears set-id bits and security.capability: owner, then
	// mode, then attributes, then the mtime, which nothing after changes.
	if chown {
		if err := unix.Fchown(fd, img.UID, img.GID); err != nil {
			return false, &fs.PathError{Op: "chown", Path: p, Err: err}
		}
	}
	if chmod {
		if err := unix.Fchmod(fd, img.Mode); err != nil {
			return false, &fs.PathError{Op: "chmod", Path: p, Err: err}
		}
	}
	return true, setAttrsMtime(env, p, f, img)
}

// setAttrsMtime gives the open file f (at p) the extended attributes of
// img (unless it recorded none) and its mtime (unless zero), in that order.
func setAttrsMtime(env *Env, p string, f *os.File, img Image) error {
	if img.Xattrs != nil {
		if err := xattrsLeftOut(env, p, rootfs.SetFileXattrs(f, img.Xattrs)); err != nil {
			return err
		}
	}
	if !img.Mtime.IsZero() {
		return rootfs.SetFileMtime(f, img.Mtime)
	}
	return nil
}

// sameXattrs reports whether two sets of extended attributes are equal.
func sameXattrs(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for name, v := range a {
		if w, ok := b[name]; !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}

// ensureSymlink makes the object a link to target owned by uid:gid.
func ensureSymlink(_ *Env, l *loc, target string, uid, gid int) error {
	p := l.p
	st, err := lstatAt(l)
	if err != nil {
		return err
	}
	// A link whose inode other names share is replaced, not chowned.
	if st.exists && st.typ == TypeSymlink && (st.nlink == 1 || (st.uid == uid && st.gid == gid)) {
		if have, err := l.Readlink(); err == nil && have == target {
			return fixOwnerMode(l, st, 0, uid, gid, false)
		}
	}
	if err := clearForNonDir(l, st); err != nil {
		return err
	}
	if err := l.Symlink(target); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("symlink %s: parent directory does not exist", p)
		}
		return err
	}
	// Always: a new link takes the group of a set-group-ID directory.
	return l.Lchown(uid, gid)
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

// xattrsLeftOut turns err, when it says that the file system at p keeps no
// attribute of some kinds an image holds (rootfs.UnsupportedXattrsError: the
// image was taken on another file system, since mounted there), into a
// warning naming them: no file there can have them, so failing would fail
// every later try too. Every other attribute was set.
func xattrsLeftOut(env *Env, p string, err error) error {
	var ue *rootfs.UnsupportedXattrsError
	if !errors.As(err, &ue) {
		return err
	}
	env.logger().Warn("extended attributes not restored: the file system keeps none of their kind", "path", p, "attributes", strings.Join(ue.Names, ", "))
	return nil
}

// imageMtime is the modification time an image keeps of a file: its mtime,
// or none (zero: restored, the file has the time of its writing) when that
// lies outside the years 0 to 9999, which applied.json and the intent log
// cannot write (RFC 3339). tmpfs and btrfs keep such times, and a file's
// owner can give it one: kept, it made every move over the file fail.
func imageMtime(sec, nsec int64) time.Time {
	t := time.Unix(sec, nsec).UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return time.Time{}
	}
	return t
}
