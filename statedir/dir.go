package statedir

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cairn-cm/cairn/internal/atomicfile"
	"github.com/cairn-cm/cairn/rootfs"
)

// Default is where the state directory is when none is given: this object
// path beneath the root, resolved there like every object path.
const Default = "/var/lib/cairn"

// The entries of a state directory that the package knows by name. The
// applied journal, the intent log and the blob store are their users'
// (package steps) to read and write; their names tell a state that holds
// something from an empty one.
const (
	AppliedFile = "applied.json" // the applied journal: the commit point of a move
	IntentFile  = "intent.log"   // the move in progress, if any
	BlobsDir    = "blobs"        // the blob store
	RecordsDir  = "agent"        // the records of Dir.WriteRecord
	HistoryFile = "history.jsonl"
	RootFile    = "root" // the root the state was applied under (written by the first Open with create)
	LockFile    = "lock" // flock(2) held by the process that owns the state
)

// Dir is an open, locked state directory.
type Dir struct {
	path    string   // its host path, where it really is
	created []string // directories this process made for the state, outermost first
	lock    *os.File // nil on a read-only file system that holds no lock file
	lockRW  bool     // the lock file is open for writing: it holds our pid
	closed  bool
	// rootRecorded: the state holds the record of its root (RootFile),
	// found or written by Open.
	rootRecorded bool
}

// ErrLocked says that another process holds the state directory.
var ErrLocked = errors.New("held by another cairn process")

// Open opens (creating it when create is set) and locks the state
// directory: dir, a host path, or "" for Default beneath root. wait is how
// long to wait for the lock; 0 fails at once. A state directory that does
// not exist (and is not to be created) gives nil, nil: nothing was applied
// yet; so does one that holds no applied journal, intent log or records,
// when it is opened only to be read, and it is left untouched.
//
// The directory must be cairn's own before any file in it is opened: a
// directory (not a link, for an explicit one; beneath the root, for the
// default one), owned by the effective uid, writable by nobody else.
// Anything else is refused untouched. The state records the root it was
// first opened under, and refuses another.
func Open(root *rootfs.Root, dir string, create bool, wait time.Duration) (*Dir, error) {
	var created []string
	var err error
	if dir == "" {
		dir, created, err = locateDefault(root, create)
	} else {
		dir, created, err = locateExplicit(dir, create)
	}
	if err != nil || dir == "" {
		return nil, err
	}
	if !create && !holdsState(dir) {
		// Nothing applied, nothing to recover: a command that only reads
		// leaves the directory as it is (it may be a mistyped --state).
		return nil, nil
	}
	lock, lockRW, err := lockDir(dir, wait)
	if err != nil {
		return nil, err
	}
	d := &Dir{path: dir, lock: lock, lockRW: lockRW, created: created}
	if err := d.checkRoot(root.Path(), create); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// Path returns the host path of the state directory, where it really is.
func (d *Dir) Path() string { return d.path }

// Close releases the lock.
func (d *Dir) Close() {
	if d == nil || d.closed {
		return
	}
	d.closed = true
	if d.lock != nil {
		if d.lockRW {
			d.lock.Truncate(0)
		}
		d.lock.Close() // releases the flock
		d.lock = nil
	}
}

// Discardable reports whether this process made the state directory and
// it holds neither an applied journal, nor an intent log, nor records: a
// move that failed before its commit may then remove it (RemoveMade).
func (d *Dir) Discardable() bool {
	if d == nil || len(d.created) == 0 {
		return false
	}
	return !holdsState(d.path)
}

// RemoveMade closes the state directory and removes it, with the parents
// this process made for it (those still empty).
func (d *Dir) RemoveMade() {
	d.Close()
	os.RemoveAll(d.path)
	for i := len(d.created) - 1; i >= 0; i-- {
		if d.created[i] != d.path {
			os.Remove(d.created[i]) // only if still empty
		}
	}
	d.created = nil
}

// locateExplicit checks the state directory given as a host path, and
// makes it (with its missing parents) when create is set. A link there is
// refused: the state must be named where it is.
func locateExplicit(dir string, create bool) (string, []string, error) {
	var created []string
	if err := checkExplicitWay(dir); err != nil {
		return "", nil, err
	}
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if !create {
			return "", nil, nil
		}
		if created, err = mkdirs(dir); err != nil {
			return "", nil, fmt.Errorf("state directory %s: %w", dir, err)
		}
		fi, err = os.Lstat(dir)
	}
	if err != nil {
		return "", nil, fmt.Errorf("state directory %s: %w", dir, err)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		target, _ := os.Readlink(dir)
		return "", nil, fmt.Errorf("state directory %s is a symbolic link (to %s): refused; give the directory itself", dir, target)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if err := checkStateOwner(dir, fi.IsDir(), st.Uid, uint32(st.Mode)); err != nil {
		return "", nil, err
	}
	return dir, created, nil
}

// checkStateOwner refuses a state directory that is no directory, or that
// another user than the effective one owns or may write: whoever can write
// in it can make cairn undo whatever the intent log they write says.
func checkStateOwner(dir string, isDir bool, uid, mode uint32) error {
	switch {
	case !isDir:
		return fmt.Errorf("state directory %s is not a directory", dir)
	case int(uid) != os.Geteuid():
		return fmt.Errorf("state directory %s is owned by uid %d, not by uid %d that runs cairn: refused", dir, uid, os.Geteuid())
	case mode&0o022 != 0:
		return fmt.Errorf("state directory %s is writable by its group or others (mode %04o): refused; chmod go-w it", dir, mode&0o7777)
	}
	return nil
}

// wayChecker checks the directories on the way to a state directory:
// whoever may write one may swap the state for theirs (rename it away, put
// a link there) between cairn's checks and its use of the state's host
// path. Each must belong to root or to the effective user, and be writable
// by no one else unless it is sticky (as /tmp: others cannot rename what
// they do not own). It checks each directory once.
type wayChecker struct {
	state string // the state directory, for messages
	seen  map[string]bool
}

// dir checks the directory d (a host path, links followed) and every
// directory on its real path up to /. A directory that does not exist yet
// (cairn will make it) is left out.
func (w *wayChecker) dir(d string) error {
	real, err := filepath.EvalSymlinks(d)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("state directory %s: %w", w.state, err)
	}
	for ; !w.seen[real]; real = filepath.Dir(real) {
		w.seen[real] = true
		var st syscall.Stat_t
		if err := syscall.Lstat(real, &st); err != nil {
			return fmt.Errorf("state directory %s: %s: %w", w.state, real, err)
		}
		switch {
		case st.Uid != 0 && int(st.Uid) != os.Geteuid():
			return fmt.Errorf("state directory %s: the directory %s on the way to it is owned by uid %d: refused (whoever may write there may swap the state for theirs)", w.state, real, st.Uid)
		case st.Mode&0o022 != 0 && st.Mode&syscall.S_ISVTX == 0:
			return fmt.Errorf("state directory %s: the directory %s on the way to it is writable by its group or others (mode %04o) and not sticky: refused (whoever may write there may swap the state for theirs)", w.state, real, st.Mode&0o7777)
		}
		if real == "/" {
			break
		}
	}
	return nil
}

// checkExplicitWay checks the way to the state directory dir, a host path:
// the directory that holds each component of dir as written, and those on
// the path dir really resolves to.
func checkExplicitWay(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("state directory %s: %w", dir, err)
	}
	w := &wayChecker{state: dir, seen: map[string]bool{}}
	for d := abs; d != "/"; d = filepath.Dir(d) {
		if err := w.dir(filepath.Dir(d)); err != nil {
			return err
		}
	}
	return nil
}

// locateDefault resolves Default beneath the root, links followed
// as for every object path (an absolute target starts at the root, ".."
// stops there), and makes its missing components when create is set: 0755
// for the parents, 0700 for the state directory, whatever the umask. It
// returns the host path where the directory really is, verified to lie
// beneath the root, and the directories it made, outermost first.
func locateDefault(root *rootfs.Root, create bool) (string, []string, error) {
	refuse := func(format string, args ...any) error {
		return fmt.Errorf("state directory %s beneath the root %s: %s", Default, root.Path(), fmt.Sprintf(format, args...))
	}
	var links []string // "P (a link to T)" met on the way, to explain a failure
	explain := func(err error) error {
		if errors.Is(err, fs.ErrNotExist) && len(links) > 0 {
			return refuse("%s does not resolve to a directory beneath the root (links there resolve as if the root were /): refused", strings.Join(links, ", "))
		}
		return refuse("%v", err)
	}
	// The way to it: the root and every directory of the path that is
	// there, where it really is, before anything is made; what cairn
	// makes is its own.
	w := &wayChecker{state: Default + " beneath the root " + root.Path(), seen: map[string]bool{}}
	rootReal, err := root.RealPath()
	if err != nil {
		return "", nil, refuse("%v", err)
	}
	if err := w.dir(rootReal); err != nil {
		return "", nil, err
	}
	way := func(p string) error {
		if p == Default {
			return nil // checkStateOwner, below
		}
		real, _, err := root.RealDir(p)
		if err != nil {
			return nil // refused below, if it matters
		}
		return w.dir(real)
	}
	made := 0
	for i := 1; i <= len(Default); i++ {
		if i < len(Default) && Default[i] != '/' {
			continue
		}
		p := Default[:i]
		info, err := root.Lstat(p)
		switch {
		case err == nil && info.IsDir():
			if err := way(p); err != nil {
				return "", nil, err
			}
			continue
		case err == nil && info.IsSymlink():
			target, _ := root.Readlink(p)
			links = append(links, fmt.Sprintf("%s (a link to %s)", p, target))
			if err := way(p); err != nil {
				return "", nil, err
			}
			continue
		case err == nil:
			return "", nil, refuse("%s is not a directory", p)
		case !errors.Is(err, fs.ErrNotExist):
			return "", nil, explain(err)
		case !create:
			return "", nil, nil // nothing applied yet
		}
		perm := uint32(0o755)
		if p == Default {
			perm = 0o700
		}
		if err := root.Mkdir(p, perm); err != nil {
			return "", nil, explain(err)
		}
		made++
	}
	real, info, err := root.RealDir(Default)
	if errors.Is(err, fs.ErrNotExist) && !create {
		return "", nil, nil
	}
	if err != nil {
		return "", nil, explain(err)
	}
	if err := checkStateOwner(real, info.IsDir(), info.UID, info.Mode); err != nil {
		return "", nil, err
	}
	// What this process made is a tail of the real path: below the first
	// missing component, everything is a directory it made.
	created := make([]string, made)
	for i, d := made-1, real; i >= 0; i, d = i-1, filepath.Dir(d) {
		created[i] = d
	}
	return real, created, nil
}

// mkdirs makes dir (mode 0700) and its missing parents (0755, as a system
// has them), whatever the umask, and returns the directories it made,
// outermost first.
func mkdirs(dir string) ([]string, error) {
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		missing = append(missing, d)
		if d == filepath.Dir(d) {
			break
		}
	}
	var made []string
	for i := len(missing) - 1; i >= 0; i-- {
		perm := os.FileMode(0o755)
		if i == 0 {
			perm = 0o700
		}
		if err := os.Mkdir(missing[i], perm); err != nil {
			if errors.Is(err, fs.ErrExist) {
				continue // made meanwhile, by another: not ours
			}
			return made, err
		}
		made = append(made, missing[i])
		if err := os.Chmod(missing[i], perm); err != nil { // mkdir(2) applies the umask
			return made, err
		}
	}
	return made, nil
}

// lockDir takes the lock of the state directory dir: flock(2) on its lock
// file, which then holds our pid. The lock file is opened without
// following a link and must be cairn's (a regular file of the effective
// uid, with one link) before anything is written to it, and nothing is
// written before the lock is held. On a read-only file system the lock
// file is opened for reading (flock works there too) and left as it is;
// if there is none, no process can write the state and nil is returned.
func lockDir(dir string, wait time.Duration) (*os.File, bool, error) {
	name := filepath.Join(dir, LockFile)
	rw := true
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if errors.Is(err, syscall.EROFS) {
		rw = false
		f, err = os.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, false, nil
		}
	}
	if errors.Is(err, syscall.ELOOP) {
		return nil, false, fmt.Errorf("lock %s is a symbolic link: refused", name)
	}
	if err != nil {
		return nil, false, fmt.Errorf("state directory %s: %w", dir, err)
	}
	if err := lockHeld(context.Background(), f, name, wait, rw); err != nil {
		f.Close()
		if errors.Is(err, ErrLocked) {
			return nil, false, fmt.Errorf("state directory %s is %w", dir, err)
		}
		return nil, false, err
	}
	return f, rw, nil
}

// Lock takes flock(2) on the lock file name, made (0600) if missing,
// as lockDir takes a state directory's: opened without following a link,
// refused unless it is the caller's (a regular file of the effective uid,
// with one link), waiting up to wait for a process that holds it (ctx
// ends the wait sooner), then holding the caller's pid. Closing the file
// lets the lock go. A lock still held after wait is an error that is
// ErrLocked, with the holder's pid.
func Lock(ctx context.Context, name string, wait time.Duration) (*os.File, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if errors.Is(err, syscall.ELOOP) {
		return nil, fmt.Errorf("lock %s is a symbolic link: refused", name)
	}
	if err != nil {
		return nil, err
	}
	if err := lockHeld(ctx, f, name, wait, true); err != nil {
		f.Close()
		if errors.Is(err, ErrLocked) {
			return nil, fmt.Errorf("lock %s is %w", name, err)
		}
		return nil, err
	}
	return f, nil
}

// lockHeld checks the open lock file f (name) and takes flock(2) on it,
// trying again for up to wait (ctx ends the wait), then writes the
// caller's pid into it if writable. A lock still held is ErrLocked, with
// the holder's pid and the wait: the caller says what is locked.
func lockHeld(ctx context.Context, f *os.File, name string, wait time.Duration, writable bool) error {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return fmt.Errorf("lock %s: %w", name, err)
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG || int(st.Uid) != os.Geteuid() || st.Nlink != 1 {
		return fmt.Errorf("lock %s is not cairn's (a regular file of uid %d with one link): refused", name, os.Geteuid())
	}
	deadline := time.Now().Add(wait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("lock %s: %w", name, err)
		}
		if time.Now().After(deadline) {
			// The holder's pid, read through the descriptor just checked:
			// the name may meanwhile be a link or a FIFO.
			var holder [32]byte
			n, _ := f.ReadAt(holder[:], 0)
			msg := ""
			if pid := strings.TrimSpace(string(holder[:n])); pid != "" {
				msg += " (pid " + pid + ")"
			}
			if wait > 0 {
				msg += fmt.Sprintf("; gave up after %s", wait)
			}
			return fmt.Errorf("%w%s", ErrLocked, msg)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	if writable {
		f.Truncate(0)
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return nil
}

// holdsState reports whether dir holds an applied journal, an intent log
// or records, as entries of any kind.
func holdsState(dir string) bool {
	for _, name := range []string{AppliedFile, IntentFile, RecordsDir} {
		if _, err := os.Lstat(filepath.Join(dir, name)); !errors.Is(err, fs.ErrNotExist) {
			return true
		}
	}
	return false
}

// checkRoot compares the root recorded in the state with rootPath, and
// records it in a new state.
func (d *Dir) checkRoot(rootPath string, create bool) error {
	name := filepath.Join(d.path, RootFile)
	data, err := ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		if !create {
			return nil
		}
		if err := atomicfile.WriteFile(name, []byte(rootPath+"\n"), 0o600); err != nil {
			return err
		}
		d.rootRecorded = true
		return nil
	}
	if err != nil {
		return fmt.Errorf("state directory %s: %w", d.path, err)
	}
	if rec := strings.TrimSpace(string(data)); rec != rootPath {
		return fmt.Errorf("state directory %s was applied under root %s, not %s (use --root %s, or another --state)", d.path, rec, rootPath, rec)
	}
	d.rootRecorded = true
	return nil
}

// RootRecorded reports whether the state holds the record of the root it
// was applied under (RootFile): one Open found, or wrote. A read-only
// Open of a state without it leaves it to the next run that may write.
func (d *Dir) RootRecorded() bool { return d.rootRecorded }
