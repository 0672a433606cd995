package steps

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"path/filepath"
	"syscall"

	"github.com/cairn-cm/cairn/journal"
)

// The preflight runs before anything changes, for a move and for its dry
// run alike, so that --dry-run refuses what the move would refuse: the
// inputs (preflight in apply.go) and, here, the plan against the host as it
// is. A dry run reads the inputs without keeping them (hashSink).

// blobSink is where the preflight puts the inputs it reads: the state's
// blob store, or for a dry run a hashSink.
type blobSink interface {
	Has(sum string) bool
	Put(r io.Reader, want string) (string, error)
}

var (
	_ blobSink = (*Blobs)(nil)
	_ blobSink = hashSink{}
)

// hashSink checks inputs against their sha256 and keeps nothing; Has asks
// the state's store, if there is one.
type hashSink struct{ store *Blobs }

func (h hashSink) Has(sum string) bool { return h.store != nil && h.store.Has(sum) }

func (hashSink) Put(r io.Reader, want string) (string, error) {
	sum, err := HashReader(r)
	if err != nil {
		return "", err
	}
	if want != "" && sum != want {
		return sum, &HashMismatchError{Got: sum, Want: want}
	}
	return sum, nil
}

// putInput reads the input name of fsys into sink, checked against want
// if not empty (nothing is read if sink holds want already). The rules are
// the blob store's PutFile: only a regular file, found by a stat before it
// is opened (a FIFO, a device, a socket is ErrNotRegular, never opened, so
// nothing waits and no device acts on an open) and by one of the open
// file, of at most MaxSourceSize bytes; one that grows meanwhile is read
// as far as it was, and want catches the change. An error of the input
// itself (missing, refused, unreadable) is an *fs.PathError naming it
// display, so that blame names the source.
func putInput(sink blobSink, fsys fs.FS, name string, display sourceName, want string) (string, error) {
	if want != "" && sink.Has(want) {
		return want, nil
	}
	fail := func(op string, err error) (string, error) {
		return "", &fs.PathError{Op: op, Path: display.String(), Err: errnoOf(err)}
	}
	if fsys == nil {
		return fail("open", errors.New("not in the state's blob store, and no source to read it from"))
	}
	if fi, err := fs.Stat(fsys, name); err != nil {
		return fail("stat", err)
	} else if !fi.Mode().IsRegular() {
		return fail("open", ErrNotRegular)
	}
	f, err := fsys.Open(name)
	if err != nil {
		return fail("open", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	switch {
	case err != nil:
		return fail("stat", err)
	case !fi.Mode().IsRegular():
		return fail("open", ErrNotRegular)
	case fi.Size() > MaxSourceSize:
		return fail("read", fmt.Errorf("%d bytes, more than the %d GiB a source may hold", fi.Size(), MaxSourceSize>>30))
	}
	r := &inputReader{r: f, left: fi.Size()}
	sum, err := sink.Put(r, want)
	if r.err != nil {
		return fail("read", r.err)
	}
	return sum, err
}

// sourceName names an input in messages: the path name (slash-separated)
// beneath the directory dir, joined only when a message needs it, not for
// each of a cold apply's 10,000 inputs.
type sourceName struct{ dir, name string }

func (n sourceName) String() string { return filepath.Join(n.dir, filepath.FromSlash(n.name)) }

// inputReader reads an input up to the size fstat gave (one that grows
// meanwhile is read as far as it was), and keeps the error of reading it,
// which the sink would report as its own.
type inputReader struct {
	r    io.Reader
	left int64
	err  error
}

func (r *inputReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.r.Read(p)
	r.left -= int64(n)
	if err != nil && err != io.EOF {
		r.err = err
	}
	return n, err
}

// sink returns where the preflight puts inputs.
func (a *Applier) sink(dryRun bool) blobSink {
	if dryRun || a.st == nil {
		return hashSink{store: a.env.Blobs}
	}
	return a.st.blobs
}

// pathFate is what the ops of a plan that ran so far make of a path, as far
// as the preflight can tell.
type pathFate uint8

const (
	fateHost   pathFate = iota // untouched: as it is on the host
	fateDir                    // a directory that was there
	fateNewDir                 // a directory the plan makes: nothing beneath it yet
	fateGone                   // absent, or no directory
	fateAny                    // a link, or anything: not checked
)

// hostCheck follows the plan's ops on the host as it is and refuses, before
// anything changes, what the run would fail at: a forward op whose parent
// directory is not there when it runs (absent on the host and not made by
// an earlier op, or removed by one), and an owner or group that neither
// the root's passwd and group files nor an earlier USERADD or GROUPADD of
// the plan provides (or that an earlier inverse deletes). Once an op that
// may change anything has run (EXEC, a package, a unit, a tool), nothing
// later is predicted.
func (a *Applier) hostCheck(plan *journal.Plan) journal.ErrorList {
	errs := a.accountsUsable(plan)
	fates := map[string]pathFate{}
	users, groups := map[string]bool{}, map[string]bool{}
	for _, op := range plan.Ops {
		s := op.Step
		if op.Noop || op.Action == journal.Recheck || s.Op == journal.OpCheck {
			continue
		}
		fail := func(format string, args ...any) {
			errs = append(errs, &journal.Error{Pos: s.Pos, Msg: s.Op + " " + s.Object() + ": " + fmt.Sprintf(format, args...)})
		}
		forward := op.Action != journal.Inverse
		var orig Image // only an inverse op restores one: a forward plan leaves them encoded
		if !forward {
			orig = a.Applied().Images()[s.Identity()]
		}
		switch s.Op {
		case journal.OpMkdir, journal.OpCopy, journal.OpSymlink, journal.OpRm:
			p := s.Object()
			if !forward {
				fates[p] = a.restoredFate(p, orig, fates)
				continue
			}
			if s.Op != journal.OpRm {
				if msg := a.parentMissing(p, fates); msg != "" {
					fail("%s", msg)
				}
			}
			if s.Op == journal.OpMkdir || s.Op == journal.OpCopy {
				for _, who := range []struct{ attr, db string }{{"owner", "/etc/passwd"}, {"group", "/etc/group"}} {
					known := users
					if who.attr == "group" {
						known = groups
					}
					if msg := a.nameMissing(s.Get(who.attr), who.db, known); msg != "" {
						fail("%s %s", who.attr, msg)
					}
				}
			}
			switch s.Op {
			case journal.OpMkdir:
				fates[p] = a.madeDirFate(p, fates)
			case journal.OpCopy, journal.OpRm:
				fates[p] = fateGone
			default:
				fates[p] = fateAny
			}
		case journal.OpUseradd:
			name := s.Object()
			if forward {
				users[name] = true
				if _, ok := s.Lookup("gid"); !ok {
					groups[name] = true // useradd makes the user's own group
				}
			} else if orig.Absent {
				users[name] = false // the inverse deletes a user cairn made
				if _, ok := s.Lookup("gid"); !ok && !hadNameGroup(orig) {
					groups[name] = false // and the user group useradd made
				}
			}
			home := s.Get("home")
			if home == "" {
				home = path.Join("/home", name)
			}
			fates[home] = fateAny
		case journal.OpGroupadd:
			if forward {
				groups[s.Object()] = true
			} else if orig.Absent {
				groups[s.Object()] = false
			}
		default:
			return errs // a command may change anything from here on
		}
	}
	return errs
}

// accountsUsable refuses a plan with users or groups where none can be
// managed (no driver, a root without /etc/passwd), as the preflight does
// for packages: the run would find out only when the first of them runs.
// After an op that may change anything (an EXEC may bootstrap the root),
// nothing is predicted.
func (a *Applier) accountsUsable(plan *journal.Plan) journal.ErrorList {
	for _, op := range plan.Ops {
		s := op.Step
		if op.Noop {
			continue
		}
		if s.Op != journal.OpUseradd && s.Op != journal.OpGroupadd {
			if mayChangeAnything(s) {
				return nil
			}
			continue
		}
		acc, err := accounts(a.env, s)
		if err == nil {
			_, err = acc.User(s.Object()) // reads /etc/passwd, as the op's image does
			if err == nil {
				return nil
			}
			err = fmt.Errorf("%s %s: %w", s.Op, s.Object(), err)
		}
		return journal.ErrorList{&journal.Error{Pos: s.Pos, Msg: err.Error()}}
	}
	return nil
}

// mayChangeAnything reports whether an op may change what the preflight
// predicts from the host as it is (a command, a package, a unit, a tool):
// after it, nothing more is predicted, and the run finds out.
func mayChangeAnything(s *journal.Step) bool {
	switch s.Op {
	case journal.OpMkdir, journal.OpCopy, journal.OpSymlink, journal.OpRm, journal.OpUseradd, journal.OpGroupadd, journal.OpCheck:
		return false
	}
	return true
}

// hadNameGroup reports whether a user's image records a group of its name
// from before cairn made the user: the user's inverse leaves that one.
func hadNameGroup(img Image) bool {
	var rec userRecord
	return json.Unmarshal(img.Data, &rec) == nil && rec.NameGroup != nil
}

// fateOf returns what the plan so far makes of p, looking at the planned
// ancestors: nothing is beneath a directory the plan makes, nor beneath
// what it removes; fateHost if the plan leaves p to the host.
func fateOf(p string, fates map[string]pathFate) pathFate {
	if f, ok := fates[p]; ok {
		return f
	}
	for anc := path.Dir(p); anc != "/"; anc = path.Dir(anc) {
		switch fates[anc] {
		case fateNewDir, fateGone:
			return fateGone
		case fateAny:
			return fateAny
		}
	}
	return fateHost
}

// parentMissing says why the directory that holds p is not there when an op
// on p runs, or "".
func (a *Applier) parentMissing(p string, fates map[string]pathFate) string {
	dir := path.Dir(p)
	if dir == "/" {
		return ""
	}
	switch fateOf(dir, fates) {
	case fateDir, fateNewDir, fateAny:
		return ""
	case fateGone:
		return "its parent directory " + dir + " is not there when it runs: an earlier op of the plan removes it or never makes it"
	}
	d, _, err := a.env.Root.OpenParent(p) // links followed, as the op will
	if err == nil {
		d.Close()
		return ""
	}
	// Through a link, the parent may be what an earlier op makes under
	// another name: that is not followed here.
	for anc := dir; anc != "/"; anc = path.Dir(anc) {
		if info, err := a.env.Root.Lstat(anc); err == nil && info.IsSymlink() {
			return ""
		}
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "its parent directory " + dir + " does not exist on this host, and no earlier step makes it"
	case errors.Is(err, syscall.ENOTDIR):
		return "its parent " + dir + " is not a directory on this host"
	}
	return "its parent directory " + dir + ": " + errors.Unwrap(err).Error()
}

// nameMissing says why the owner or group name is not there when the op
// runs, or "".
func (a *Applier) nameMissing(name, db string, planned map[string]bool) string {
	if made, ok := planned[name]; ok {
		if made {
			return ""
		}
		return name + ": an earlier op of the plan deletes it"
	}
	var err error
	if db == "/etc/passwd" {
		_, err = a.env.UID(name)
	} else {
		_, err = a.env.GID(name)
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

// madeDirFate is the fate of p after a MKDIR: a directory, new unless one
// was there.
func (a *Applier) madeDirFate(p string, fates map[string]pathFate) pathFate {
	switch fateOf(p, fates) {
	case fateDir, fateNewDir:
		return fateDir
	case fateHost:
		if st, err := lstatPath(a.env, p); err == nil && st.exists && st.typ == TypeDir {
			return fateDir
		}
	}
	return fateNewDir
}

// restoredFate is the fate of p after an inverse restores orig there. A
// directory cairn made is removed only if it is empty by then.
func (a *Applier) restoredFate(p string, orig Image, fates map[string]pathFate) pathFate {
	switch {
	case orig.Type == TypeDir:
		return fateDir
	case orig.Type == TypeSymlink:
		return fateAny
	case !orig.Absent:
		return fateGone
	}
	if f := fateOf(p, fates); f != fateHost && f != fateDir {
		return fateGone
	}
	names, err := a.env.Root.ReadDirNames(p)
	if err != nil {
		return fateGone // not a directory, or gone
	}
	for _, n := range names {
		if fates[path.Join(p, n)] != fateGone {
			return fateDir // left in place with its entries (MKDIR's inverse)
		}
	}
	return fateGone
}
