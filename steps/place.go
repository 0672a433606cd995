package steps

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"

	"github.com/cairn-cm/cairn/journal"
	"github.com/cairn-cm/cairn/rootfs"
	"golang.org/x/sys/unix"
)

// Place is where a path op's object lives, recorded in its undo image when
// the image is taken (in the intent log; never in an original image): the
// deepest directory on the object's path that existed then, Dir, as an
// object path with its device and inode. The components between Dir and the
// object (absent then, made by MKDIRs of the same move) must be plain
// directories, never links, when the op acts.
//
// The op, its inverse and its undo (in process or in recovery) all find
// the object's directory through the Place: Dir resolved again and checked
// to be the same directory, the rest walked without following links, and
// the object acted on by name in that directory only. Anything else is
// refused, touching nothing (placeError).
type Place struct {
	Dir string `json:"dir"`
	Dev uint64 `json:"dev"`
	Ino uint64 `json:"ino"`
	// ODev and OIno are the device and inode of the object itself when it
	// was a directory, so that an undo that makes it again knows the
	// directory the Places of the objects in it name.
	ODev uint64 `json:"odev,omitempty"`
	OIno uint64 `json:"oino,omitempty"`

	// unsettled: the first component below Dir was a link, so that Dir
	// is not where the object will be once earlier ops of the batch have
	// run (they may make the link's target); the applier runs them and
	// takes the image again.
	unsettled bool
}

// fileID names one inode.
type fileID struct{ dev, ino uint64 }

func (id fileID) String() string {
	return fmt.Sprintf("device %d:%d inode %d", unix.Major(id.dev), unix.Minor(id.dev), id.ino)
}

// undoPass is what one undo of a move (in process, or in recovery) knows
// beyond the Places it reads.
type undoPass struct {
	// made maps the directories that the pass made again (it restored a
	// directory that the move had removed) from their identity before the
	// move to their new one: the Places of the objects in them name the
	// old one.
	made map[fileID]fileID
	// inoOnly: the Places were recorded before a reboot, and device
	// numbers need not survive one (btrfs subvolumes, device-mapper): only
	// inode numbers are compared.
	inoOnly bool
	// left is the directories the pass was to remove but found holding
	// entries, in the order met: finish removes those emptied since.
	left []leftDir
	// madeBy maps each path that was no directory before the move (its
	// op's undo image is absent, a file or a link) to that op's Place.
	// A directory there was made by the move, and undoing that op removes
	// it once empty; so where one of the Places names is such a path, and
	// the path, found through its own Place, holds no directory any more,
	// the undo of that op is done (perhaps by a pass that was killed), and
	// the objects that were in the directory are gone.
	madeBy map[string]*Place
}

func newUndoPass(inoOnly bool) *undoPass {
	return &undoPass{made: map[fileID]fileID{}, inoOnly: inoOnly, madeBy: map[string]*Place{}}
}

// note tells the pass of an op it will undo, before it starts.
func (u *undoPass) note(s *journal.Step, img *Image) {
	if img != nil && img.Place != nil && img.Type != TypeDir && s.Signature().Family == journal.FamilyPath {
		u.madeBy[s.Object()] = img.Place
	}
}

// unmade reports whether the directory path a, which a Place names, was
// made by the move and holds no directory any more: the undo of the op
// that made it is done.
func (u *undoPass) unmade(env *Env, a string) bool {
	if u == nil {
		return false
	}
	pl, ok := u.madeBy[a]
	if !ok {
		return false
	}
	l, err := openPlace(env, a, pl, u, "restore")
	if err != nil {
		return false
	}
	defer l.close()
	st, err := lstatAt(&l)
	return err == nil && (!st.exists || st.typ != TypeDir)
}

// current returns what the directory id is now, after the pass so far.
func (u *undoPass) current(id fileID) fileID {
	for range 8 { // a directory is made again once per move; bound the chain anyway
		next, ok := u.made[id]
		if !ok {
			break
		}
		id = next
	}
	return id
}

// same reports whether the directory found is the one wanted.
func (u *undoPass) same(want, got fileID) bool {
	if u != nil && u.inoOnly {
		return want.ino == got.ino
	}
	return want == got
}

// leftDir is a directory an undo pass has not removed yet.
type leftDir struct {
	p     string
	place *Place
}

// finish ends the pass: a directory it was to remove is removed if the
// undos after it emptied it, else left in place with a warning naming its
// entries. It returns the undos it could not finish.
func (u *undoPass) finish(env *Env) []error {
	var errs []error
	for _, ld := range u.left {
		l, err := openPlace(env, ld.p, ld.place, u, "remove")
		if err == nil {
			err = removeOrLeave(env, &l)
			l.close()
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("undo: %w", err))
		}
	}
	u.left = nil
	return errs
}

// bootID returns the kernel's boot ID, "" if unknown: device numbers are
// compared only within one boot.
func bootID() string {
	data, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}

// placeError is a path op that refused to act because the directory its
// object lives in is not the one its undo image was taken in. It touched
// nothing.
type placeError struct {
	verb string // what the op was to do: write, mkdir, symlink, remove, restore
	path string // the object path
	dir  string // the directory on the way that is not as expected
	now  string // what it is now
	then string // what it was: "but ..."
}

func (e *placeError) Error() string {
	return fmt.Sprintf("%s %s: refusing to act: %s is %s, but %s; nothing was touched",
		e.verb, e.path, e.dir, e.now, e.then)
}

// imageThen is placeError's then for a directory that is not the one a
// Place names.
func imageThen(want fileID) string {
	return "the undo image was taken in the directory " + want.String()
}

// nowDir is placeError's now for a directory found instead of another.
func nowDir(got fileID) string {
	return "now the directory " + got.String() + " (replaced, or reached through a link that was not there)"
}

// untouchedError is an op that failed before it touched anything: its
// directory could not be found where its undo image was taken (a
// placeError), or not safely (an unsafe link). It needs no undo.
type untouchedError struct{ err error }

func (e *untouchedError) Error() string { return e.err.Error() }
func (e *untouchedError) Unwrap() error { return e.err }

// touchedNothing reports whether err is an op's failure that changed
// nothing, so that the op needs no undo.
func touchedNothing(err error) bool {
	var ue *untouchedError
	return errors.As(err, &ue)
}

// verbOf names what a path op does, for messages.
func verbOf(op string) string {
	switch op {
	case "COPY":
		return "write"
	case "MKDIR":
		return "mkdir"
	case "SYMLINK":
		return "symlink"
	case "RM":
		return "remove"
	}
	return "restore"
}

// loc is where a path op acts: the directory that holds its object, opened
// once, and the object's name in it. dir is nil when that directory does
// not exist: the object is absent, and gone says why (ENOENT, ENOTDIR).
// Its methods are those of rootfs.Root for the object path p, acting
// through dir only.
type loc struct {
	p    string
	dir  *rootfs.Dir
	name string
	gone error
	// In an undo: the pass, and the Place the object was found by.
	pass  *undoPass
	place *Place
	// wasAbsent: the op acting here has an undo image, in the intent log,
	// that says nothing was at the object. A file it makes may then be
	// written without a name and linked there (putFile), with no
	// temporary name for the undo to remove: its undo removes the file.
	wasAbsent bool
}

func (l *loc) close() {
	if l.dir != nil {
		l.dir.Close()
	}
}

// missing is the error of an operation on an object whose directory does
// not exist.
func (l *loc) missing(op string) error {
	return &fs.PathError{Op: op, Path: l.p, Err: l.gone}
}

func (l *loc) Lstat() (rootfs.Info, error) {
	if l.dir == nil {
		return rootfs.Info{}, l.missing("lstat")
	}
	return l.dir.Lstat(l.name)
}

func (l *loc) ReadInfo(w io.Writer, buf []byte) (rootfs.Info, error) {
	if l.dir == nil {
		return rootfs.Info{}, l.missing("read")
	}
	return l.dir.ReadInfo(l.name, w, buf)
}

func (l *loc) OpenFile() (*os.File, error) {
	if l.dir == nil {
		return nil, l.missing("open")
	}
	return l.dir.OpenFile(l.name)
}

func (l *loc) Readlink() (string, error) {
	if l.dir == nil {
		return "", l.missing("readlink")
	}
	return l.dir.Readlink(l.name)
}

func (l *loc) ReadDirNames() ([]string, error) {
	if l.dir == nil {
		return nil, l.missing("readdir")
	}
	return l.dir.ReadDirNames(l.name)
}

func (l *loc) Mkdir(perm uint32) error {
	if l.dir == nil {
		return l.missing("mkdir")
	}
	return l.dir.Mkdir(l.name, perm)
}

func (l *loc) Chmod(perm uint32) error {
	if l.dir == nil {
		return l.missing("chmod")
	}
	return l.dir.Chmod(l.name, perm)
}

func (l *loc) Lchown(uid, gid int) error {
	if l.dir == nil {
		return l.missing("lchown")
	}
	return l.dir.Lchown(l.name, uid, gid)
}

func (l *loc) Remove() error {
	if l.dir == nil {
		return l.missing("remove")
	}
	return l.dir.Remove(l.name)
}

func (l *loc) Symlink(target string) error {
	if l.dir == nil {
		return l.missing("symlink")
	}
	return l.dir.Symlink(target, l.name)
}

func (l *loc) CreateTemp(perm uint32) (*os.File, error) {
	if l.dir == nil {
		return nil, l.missing("createtemp")
	}
	return l.dir.CreateTemp(l.name, perm)
}

func (l *loc) CommitTemp() error {
	if l.dir == nil {
		return l.missing("committemp")
	}
	return l.dir.CommitTemp(l.name)
}

// Xattrs returns the extended attributes of the object (a regular file or
// a directory; a link is an error, never followed).
func (l *loc) Xattrs() (map[string][]byte, error) {
	if l.dir == nil {
		return nil, l.missing("listxattr")
	}
	return l.dir.Xattrs(l.name)
}

// SetXattrs makes the extended attributes of the object exactly want.
func (l *loc) SetXattrs(want map[string][]byte) error {
	if l.dir == nil {
		return l.missing("setxattr")
	}
	return l.dir.SetXattrs(l.name, want)
}

// RemoveTemp removes the object's temporary file; with no directory there
// is none.
func (l *loc) RemoveTemp() error {
	if l.dir == nil {
		return nil
	}
	return l.dir.RemoveTemp(l.name)
}

// isGone reports whether err says that a directory on the way does not
// exist (or is no directory): there is no object there.
func isGone(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// splitObject returns the directory and the name of an object path.
func splitObject(p string) (dir, name string) {
	i := strings.LastIndexByte(p, '/')
	if i == 0 {
		return "/", p[1:]
	}
	return p[:i], p[i+1:]
}

// locate opens the directory of the object path p afresh, following links
// as spec §8 says (with rootfs's rule of unsafe links): for checks, and for
// ops run without a Place.
func locate(env *Env, p, verb string) (loc, error) {
	dir, name := splitObject(p)
	l := loc{p: p, name: name}
	d, err := env.Root.OpenDir(dir)
	switch {
	case err == nil:
		l.dir = d
	case isGone(err):
		l.gone = errors.Unwrap(err)
	default:
		return loc{}, pathError(env, verb, p, err)
	}
	return l, nil
}

// view is what a run of path ops has seen of the tree: the directory each
// directory path led to when an undo image was taken. Within a move,
// between commands (which may change anything) and ops that turn a path
// from or into a link, a path keeps leading to the same directory: one that
// leads elsewhere was changed under the move by another process, and the
// op is refused before its image is taken. Without it, a link swapped in
// between two images would send the later ops, and their undos, into the
// link's target.
//
// missing is the directory of objects that the last lookup found not to
// exist, kept until ops run: the deepest directory there is on the way,
// held open, and the first component below it that was missing. Another
// image of an object in that directory asks the held directory whether
// that component is missing still (one fstatat, where the lookup took
// four system calls: a cold apply's 10,000 images took a tenth of its
// time), and is taken afresh if something is there now.
type view struct {
	dirs    map[string]fileID
	missing *missingDir
}

// missingDir is a directory of objects found absent: dir, whose lookup
// stopped at base, where first was missing; the Place of their images,
// and the error of the lookup (ENOENT, ENOTDIR).
type missingDir struct {
	dir   string
	base  *rootfs.Dir
	first string
	place Place
	gone  error
}

func newView() *view { return &view{dirs: map[string]fileID{}} }

func (v *view) reset() {
	clear(v.dirs)
	v.forgetMissing()
}

// forgetMissing forgets the missing directory and closes the one it held:
// when ops ran (they may have made it), when another lookup is needed,
// and at the move's end.
func (v *view) forgetMissing() {
	if v.missing != nil {
		v.missing.base.Close()
		v.missing = nil
	}
}

// nearest returns the deepest directory seen at or above dir, not "/".
func (v *view) nearest(dir string) (string, fileID, bool) {
	for a := dir; a != "/"; a = path.Dir(a) {
		if id, ok := v.dirs[a]; ok {
			return a, id, true
		}
	}
	return "", fileID{}, false
}

// changed is the refusal of a directory that leads elsewhere than earlier
// in the move.
func changed(verb, p, dir, now string, was fileID) error {
	return &placeError{verb: verb, path: p, dir: dir, now: now,
		then: "this move found the directory " + was.String() + " there before (another process is changing the tree)"}
}

// locateNew opens the directory of the object path p for the op about to
// run, and returns the Place to record with its undo image: the deepest
// existing directory on the way and its identity. With a view (the
// applier's), a directory the move has seen must still be the same, and
// the walk goes down from it without following links where it can; an
// object in the directory the last lookup found missing gets that
// lookup's Place while one fstatat says it is missing still (view.missing).
func locateNew(env *Env, p, verb string, v *view) (loc, *Place, error) {
	if v == nil {
		return locateFresh(env, p, verb, nil)
	}
	dir, name := splitObject(p)
	if m := v.missing; m != nil && m.dir == dir {
		if _, err := m.base.Lstat(m.first); isGone(err) {
			place := m.place
			return loc{p: p, name: name, gone: m.gone}, &place, nil
		}
	}
	v.forgetMissing()
	var m missingDir
	l, place, err := locateSeen(env, p, verb, v, &m)
	if m.base != nil {
		if err != nil || l.dir != nil || place.unsettled {
			m.base.Close()
		} else {
			m.dir, m.place, m.gone = dir, *place, l.gone
			v.missing = &m
		}
	}
	return l, place, err
}

// locateSeen is locateNew's lookup: from the deepest directory the view
// has seen on the way, else afresh.
func locateSeen(env *Env, p, verb string, v *view, keep *missingDir) (loc, *Place, error) {
	dir, _ := splitObject(p)
	if b, was, ok := v.nearest(dir); ok {
		l, place, err, walked := locateBelow(env, p, verb, v, b, was, keep)
		if walked {
			return l, place, err
		}
		// A link below b: resolve afresh, then check b again.
		l, place, err = locateFresh(env, p, verb, keep)
		if err != nil {
			return l, place, err
		}
		if err := checkSeen(env, p, verb, b, was); err != nil {
			l.close()
			return loc{}, nil, err
		}
		v.dirs[place.Dir] = fileID{place.Dev, place.Ino}
		return l, place, nil
	}
	l, place, err := locateFresh(env, p, verb, keep)
	if err == nil {
		v.dirs[place.Dir] = fileID{place.Dev, place.Ino}
	}
	return l, place, err
}

// checkSeen checks that the directory path b still leads to was.
func checkSeen(env *Env, p, verb, b string, was fileID) error {
	d, err := env.Root.OpenDir(b)
	if err != nil {
		if isGone(err) {
			return changed(verb, p, b, "gone", was)
		}
		return pathError(env, verb, p, err)
	}
	defer d.Close()
	st, err := d.Stat()
	if err != nil {
		return err
	}
	if got := (fileID{st.Dev, st.Ino}); got != was {
		return changed(verb, p, b, nowDir(got), was)
	}
	return nil
}

// locateBelow is locateNew from b, a directory the view has seen (was):
// b resolved and checked, then the rest walked without following links.
// walked is false if a link lies on the rest of the way.
func locateBelow(env *Env, p, verb string, v *view, b string, was fileID, keep *missingDir) (l loc, place *Place, err error, walked bool) {
	dir, name := splitObject(p)
	d, err := env.Root.OpenDir(b)
	if err != nil {
		if isGone(err) {
			return loc{}, nil, changed(verb, p, b, "gone", was), true
		}
		return loc{}, nil, pathError(env, verb, p, err), true
	}
	st, err := d.Stat()
	if err != nil {
		d.Close()
		return loc{}, nil, err, true
	}
	if got := (fileID{st.Dev, st.Ino}); got != was {
		d.Close()
		return loc{}, nil, changed(verb, p, b, nowDir(got), was), true
	}
	l = loc{p: p, name: name}
	id := was
	for rest := strings.TrimPrefix(dir[len(b):], "/"); rest != ""; {
		var comp string
		comp, rest, _ = strings.Cut(rest, "/")
		sub, err := d.OpenDir(comp)
		if err != nil {
			if errors.Is(err, rootfs.ErrSymlink) {
				d.Close()
				return loc{}, nil, nil, false
			}
			if isGone(err) {
				// d is the deepest directory there is.
				l.gone = errors.Unwrap(err)
				place := &Place{Dir: d.Path(), Dev: id.dev, Ino: id.ino}
				if keep != nil {
					keep.base, keep.first = d, comp
				} else {
					d.Close()
				}
				return l, place, nil, true
			}
			d.Close()
			return loc{}, nil, pathError(env, verb, p, err), true
		}
		d.Close()
		d = sub
		st, err := d.Stat()
		if err != nil {
			d.Close()
			return loc{}, nil, err, true
		}
		id = fileID{st.Dev, st.Ino}
		v.dirs[d.Path()] = id
	}
	l.dir = d
	return l, &Place{Dir: dir, Dev: id.dev, Ino: id.ino}, nil, true
}

// locateFresh is locateNew without a view: the directory of p resolved
// afresh, or, if it does not exist, the deepest one on the way.
func locateFresh(env *Env, p, verb string, keep *missingDir) (loc, *Place, error) {
	dir, name := splitObject(p)
	l := loc{p: p, name: name}
	for a := dir; ; a = path.Dir(a) {
		d, err := env.Root.OpenDir(a)
		if err != nil {
			if isGone(err) && a != "/" {
				if a == dir {
					l.gone = errors.Unwrap(err)
				}
				continue
			}
			return loc{}, nil, pathError(env, verb, p, err)
		}
		st, err := d.Stat()
		if err != nil {
			d.Close()
			return loc{}, nil, pathError(env, verb, p, err)
		}
		place := &Place{Dir: a, Dev: st.Dev, Ino: st.Ino}
		if a == dir {
			l.dir = d
			return l, place, nil
		}
		// The directory of p does not exist (yet). If the first
		// component below a is a link, its target may be made by an
		// earlier op of the batch: the applier takes the image again
		// once they ran.
		first, _, _ := strings.Cut(strings.TrimPrefix(dir[len(a):], "/"), "/")
		if info, err := d.Lstat(first); err == nil && info.IsSymlink() {
			place.unsettled = true
		}
		if keep != nil {
			keep.base, keep.first = d, first
		} else {
			d.Close()
		}
		return l, place, nil
	}
}

// openPlace opens the directory of the object path p where pl says it is,
// for an op or an undo: pl.Dir resolved again and checked to be the same
// directory (after what the undo pass u made again; u is nil outside an
// undo), then the components below it walked without following links. A
// directory that is not the one recorded, something else in its place, or
// a link below it that leads somewhere, is a placeError. Nothing at all at
// pl.Dir (an undo removed it), or below it (a MKDIR of the move did not
// run), is a loc without a directory: the object is absent. A nil pl (an
// intent log of an older cairn) locates p afresh.
func openPlace(env *Env, p string, pl *Place, u *undoPass, verb string) (loc, error) {
	if pl == nil {
		return locate(env, p, verb)
	}
	dir, name := splitObject(p)
	l := loc{p: p, name: name}
	var below string
	switch {
	case pl.Dir == dir:
	case pl.Dir == "/":
		below = dir[1:]
	case strings.HasPrefix(dir, pl.Dir+"/"):
		below = dir[len(pl.Dir)+1:]
	default:
		return loc{}, fmt.Errorf("%s %s: the undo image's place %s is not on the object's path", verb, p, pl.Dir)
	}
	want := fileID{pl.Dev, pl.Ino}
	if u != nil {
		want = u.current(want)
	}
	d, err := env.Root.OpenDir(pl.Dir)
	if err != nil && u.unmade(env, pl.Dir) {
		l.gone = syscall.ENOENT
		return l, nil
	}
	if err != nil {
		if isGone(err) {
			// Nothing there at all: removed (by an undo, say), and the
			// object with it. Something else in its place (a link, a
			// file) means it was moved away, with what the op made.
			info, lerr := env.Root.Lstat(pl.Dir)
			if isGone(lerr) {
				l.gone = syscall.ENOENT
				return l, nil
			}
			now := "no directory now"
			if lerr == nil && info.IsSymlink() {
				now = "a link that leads nowhere now"
			}
			return loc{}, &placeError{verb: verb, path: p, dir: pl.Dir, now: now, then: imageThen(want)}
		}
		return loc{}, pathError(env, verb, p, err)
	}
	var got fileID
	if pl.Dir == "/" {
		got.dev, got.ino = env.Root.ID()
	} else {
		st, err := d.Stat()
		if err != nil {
			d.Close()
			return loc{}, pathError(env, verb, p, err)
		}
		got = fileID{st.Dev, st.Ino}
	}
	if !u.same(want, got) {
		d.Close()
		if u.unmade(env, pl.Dir) {
			l.gone = syscall.ENOENT
			return l, nil
		}
		return loc{}, &placeError{verb: verb, path: p, dir: pl.Dir, now: nowDir(got), then: imageThen(want)}
	}
	if below != "" {
		// The usual case, the whole way in one lookup; the walk below
		// says what is wrong if that fails.
		if sub, ok := d.OpenDirFast(below); ok {
			d.Close()
			d, below = sub, ""
		}
	}
	for below != "" {
		var comp string
		comp, below, _ = strings.Cut(below, "/")
		sub, err := d.OpenDir(comp)
		if err != nil {
			if errors.Is(err, rootfs.ErrSymlink) {
				// A link where the image saw no directory. If it leads
				// nowhere the object is absent there; otherwise it is a
				// way elsewhere, and refused.
				linkPath := d.Path() + "/" + comp
				if d.Path() == "/" {
					linkPath = "/" + comp
				}
				to, err := env.Root.OpenDir(linkPath)
				d.Close()
				if err == nil {
					to.Close()
				}
				if isGone(err) || u.unmade(env, linkPath) {
					l.gone = syscall.ENOENT
					return l, nil
				}
				return loc{}, &placeError{verb: verb, path: p, dir: linkPath, now: "a link",
					then: "when the undo image was taken it was no directory (one for a MKDIR of the move to make)"}
			}
			d.Close()
			if isGone(err) {
				l.gone = errors.Unwrap(err)
				return l, nil
			}
			return loc{}, pathError(env, verb, p, err)
		}
		d.Close()
		d = sub
	}
	l.dir = d
	return l, nil
}

// pathError is the error of a path op whose directory could not be
// opened: an unsafe link names its users.
func pathError(env *Env, verb, p string, err error) error {
	var unsafe *rootfs.UnsafePathError
	if errors.As(err, &unsafe) {
		unsafe.UserName = env.userName
		return fmt.Errorf("%s %s: %w", verb, p, unsafe)
	}
	return err
}

// userName returns the name of uid in the root's /etc/passwd, or "".
func (e *Env) userName(uid uint32) string {
	m, err := e.readIDs("/etc/passwd")
	if err != nil {
		return ""
	}
	found := ""
	for name, id := range m {
		if id == int(uid) && (found == "" || name < found) {
			found = name
		}
	}
	return found
}
