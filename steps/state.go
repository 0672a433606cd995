package steps

import (
	"encoding/json"
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
	"github.com/cairn-cm/cairn/journal"
	"github.com/cairn-cm/cairn/rootfs"
)

// The files of a state directory.
const (
	appliedFile = "applied.json" // the applied journal and original images: the commit point
	intentFile  = "intent.log"   // the move in progress, if any
	rootFile    = "root"         // the root the state was applied under
	lockFile    = "lock"         // flock(2) held by the process that owns the state
	historyFile = "history.jsonl"
	blobsDir    = "blobs"
)

// AppliedStep is one step of the applied journal with both its positions.
type AppliedStep struct {
	Step   string `json:"step"`          // canonical form
	At     string `json:"at"`            // journal position FILE:LINE:COL
	Source string `json:"src,omitempty"` // source positions, outermost first
}

// Applied is what the state records as applied: the journal, INCLUDEs
// expanded, the original image of every managed identity, and the content
// kept from files edited by hand.
type Applied struct {
	Version    int              `json:"version"`
	Generation int64            `json:"generation"`
	Time       time.Time        `json:"time,omitzero"`
	Journal    string           `json:"journal,omitempty"` // the file it was applied from
	Commit     string           `json:"commit,omitempty"`  // the git commit, when the agent applied it
	Branch     string           `json:"branch,omitempty"`  // the branch the commit was the tip of
	Group      string           `json:"group,omitempty"`   // the host group it was compiled for
	Steps      []AppliedStep    `json:"steps"`
	Originals  map[string]Image `json:"originals"`
	// Kept is the content that moves replaced after someone edited it by
	// hand, oldest first; its blobs stay in the store.
	Kept []Kept `json:"kept,omitempty"`
}

// JournalSteps parses the applied steps back, with their positions.
func (a *Applied) JournalSteps() ([]journal.Step, error) {
	lines := make([]string, len(a.Steps))
	for i := range a.Steps {
		lines[i] = a.Steps[i].Step
	}
	out, err := journal.ParseSteps("applied journal", lines)
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	for i := range out {
		out[i].Pos = parsePos(a.Steps[i].At)
		out[i].Source = a.Steps[i].Source
	}
	return out, nil
}

// parsePos parses FILE:LINE:COL; a file name may itself hold colons.
func parsePos(s string) journal.Pos {
	var p journal.Pos
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return journal.Pos{File: s}
	}
	p.Col, _ = strconv.Atoi(s[i+1:])
	s = s[:i]
	i = strings.LastIndexByte(s, ':')
	if i < 0 {
		return journal.Pos{File: s, Col: p.Col}
	}
	p.Line, _ = strconv.Atoi(s[i+1:])
	p.File = s[:i]
	return p
}

func appliedSteps(steps []journal.Step, lines []string) []AppliedStep {
	out := make([]AppliedStep, len(steps))
	for i := range steps {
		out[i] = AppliedStep{Step: lines[i], At: steps[i].Pos.String(), Source: steps[i].Source}
	}
	return out
}

// DefaultStateDir is where the state directory is when none is given: this
// object path beneath the root, resolved there like every object path.
const DefaultStateDir = "/var/lib/cairn"

// state is an open, locked state directory.
type state struct {
	dir     string   // its host path, where it really is
	created []string // directories this process made for the state, outermost first
	lock    *os.File // nil on a read-only file system that holds no lock file
	lockRW  bool     // the lock file is open for writing: it holds our pid
	closed  bool
	blobs   *Blobs
	applied *Applied
}

// ErrLocked says that another process holds the state directory.
var ErrLocked = errors.New("held by another cairn process")

// openState opens (creating it when create is set) and locks the state
// directory: dir, a host path, or "" for DefaultStateDir beneath root. wait
// is how long to wait for the lock; 0 fails at once. A state directory that
// does not exist (and is not to be created) gives nil, nil: nothing was
// applied yet; so does one that holds neither an applied journal nor an
// intent log, when it is opened only to be read, and it is left untouched.
//
// The directory must be cairn's own before any file in it is opened: a
// directory (not a link, for an explicit one; beneath the root, for the
// default one), owned by the effective uid, writable by nobody else.
// Anything else is refused (exit 2) untouched.
func openState(root *rootfs.Root, dir string, create bool, wait time.Duration) (*state, error) {
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
	st := &state{dir: dir, lock: lock, lockRW: lockRW, created: created}
	fail := func(err error) (*state, error) { st.close(); return nil, err }
	if err := st.checkRoot(root.Path(), create); err != nil {
		return fail(err)
	}
	if st.blobs, err = openBlobs(filepath.Join(dir, blobsDir), create); err != nil {
		return fail(&InputError{err})
	}
	if st.applied, err = st.loadApplied(); err != nil {
		return fail(err)
	}
	return st, nil
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
			return "", nil, inputErrorf("state directory %s: %w", dir, err)
		}
		fi, err = os.Lstat(dir)
	}
	if err != nil {
		return "", nil, inputErrorf("state directory %s: %w", dir, err)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		target, _ := os.Readlink(dir)
		return "", nil, inputErrorf("state directory %s is a symbolic link (to %s): refused; give the directory itself", dir, target)
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
		return inputErrorf("state directory %s is not a directory", dir)
	case int(uid) != os.Geteuid():
		return inputErrorf("state directory %s is owned by uid %d, not by uid %d that runs cairn: refused", dir, uid, os.Geteuid())
	case mode&0o022 != 0:
		return inputErrorf("state directory %s is writable by its group or others (mode %04o): refused; chmod go-w it", dir, mode&0o7777)
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
		return inputErrorf("state directory %s: %w", w.state, err)
	}
	for ; !w.seen[real]; real = filepath.Dir(real) {
		w.seen[real] = true
		var st syscall.Stat_t
		if err := syscall.Lstat(real, &st); err != nil {
			return inputErrorf("state directory %s: %s: %w", w.state, real, err)
		}
		switch {
		case st.Uid != 0 && int(st.Uid) != os.Geteuid():
			return inputErrorf("state directory %s: the directory %s on the way to it is owned by uid %d: refused (whoever may write there may swap the state for theirs)", w.state, real, st.Uid)
		case st.Mode&0o022 != 0 && st.Mode&syscall.S_ISVTX == 0:
			return inputErrorf("state directory %s: the directory %s on the way to it is writable by its group or others (mode %04o) and not sticky: refused (whoever may write there may swap the state for theirs)", w.state, real, st.Mode&0o7777)
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
		return inputErrorf("state directory %s: %w", dir, err)
	}
	w := &wayChecker{state: dir, seen: map[string]bool{}}
	for d := abs; d != "/"; d = filepath.Dir(d) {
		if err := w.dir(filepath.Dir(d)); err != nil {
			return err
		}
	}
	return nil
}

// locateDefault resolves DefaultStateDir beneath the root, links followed
// as for every object path (an absolute target starts at the root, ".."
// stops there), and makes its missing components when create is set: 0755
// for the parents, 0700 for the state directory, whatever the umask. It
// returns the host path where the directory really is, verified to lie
// beneath the root, and the directories it made, outermost first.
func locateDefault(root *rootfs.Root, create bool) (string, []string, error) {
	refuse := func(format string, args ...any) error {
		return inputErrorf("state directory %s beneath the root %s: %s", DefaultStateDir, root.Path(), fmt.Sprintf(format, args...))
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
	w := &wayChecker{state: DefaultStateDir + " beneath the root " + root.Path(), seen: map[string]bool{}}
	rootReal, err := root.RealPath()
	if err != nil {
		return "", nil, refuse("%v", err)
	}
	if err := w.dir(rootReal); err != nil {
		return "", nil, err
	}
	way := func(p string) error {
		if p == DefaultStateDir {
			return nil // checkStateOwner, below
		}
		real, _, err := root.RealDir(p)
		if err != nil {
			return nil // refused below, if it matters
		}
		return w.dir(real)
	}
	made := 0
	for i := 1; i <= len(DefaultStateDir); i++ {
		if i < len(DefaultStateDir) && DefaultStateDir[i] != '/' {
			continue
		}
		p := DefaultStateDir[:i]
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
		if p == DefaultStateDir {
			perm = 0o700
		}
		if err := root.Mkdir(p, perm); err != nil {
			return "", nil, explain(err)
		}
		made++
	}
	real, info, err := root.RealDir(DefaultStateDir)
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

// discardNew removes a state directory that this process made and that
// holds neither an applied journal nor a record, with the parents it made:
// a move that failed before its commit leaves no trace in the root.
func (st *state) discardNew() {
	if st == nil || len(st.created) == 0 || st.applied.Generation != 0 {
		return
	}
	if _, err := os.Lstat(filepath.Join(st.dir, intentFile)); err == nil {
		return // an undo failed: the intent must stay
	}
	if _, err := os.Lstat(filepath.Join(st.dir, recordsDir)); err == nil {
		return // the agent keeps records there
	}
	st.close()
	os.RemoveAll(st.dir)
	for i := len(st.created) - 1; i >= 0; i-- {
		if st.created[i] != st.dir {
			os.Remove(st.created[i]) // only if still empty
		}
	}
	st.created = nil
}

// lockDir takes the lock of the state directory dir: flock(2) on its lock
// file, which then holds our pid. The lock file is opened without
// following a link and must be cairn's (a regular file of the effective
// uid, with one link) before anything is written to it, and nothing is
// written before the lock is held. On a read-only file system the lock
// file is opened for reading (flock works there too) and left as it is;
// if there is none, no process can write the state and nil is returned.
func lockDir(dir string, wait time.Duration) (*os.File, bool, error) {
	name := filepath.Join(dir, lockFile)
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
		return nil, false, inputErrorf("lock %s is a symbolic link: refused", name)
	}
	if err != nil {
		return nil, false, inputErrorf("state directory %s: %w", dir, err)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, false, inputErrorf("lock %s: %w", name, err)
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG || int(st.Uid) != os.Geteuid() || st.Nlink != 1 {
		f.Close()
		return nil, false, inputErrorf("lock %s is not cairn's (a regular file of uid %d with one link): refused", name, os.Geteuid())
	}
	deadline := time.Now().Add(wait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, false, inputErrorf("lock %s: %w", name, err)
		}
		if time.Now().After(deadline) {
			// The holder's pid, read through the descriptor just checked:
			// the name may meanwhile be a link or a FIFO.
			var holder [32]byte
			n, _ := f.ReadAt(holder[:], 0)
			f.Close()
			msg := ""
			if pid := strings.TrimSpace(string(holder[:n])); pid != "" {
				msg += " (pid " + pid + ")"
			}
			if wait > 0 {
				msg += fmt.Sprintf("; gave up after %s", wait)
			}
			return nil, false, &InputError{Err: fmt.Errorf("state directory %s is %w%s", dir, ErrLocked, msg)}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if rw {
		f.Truncate(0)
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, rw, nil
}

// holdsState reports whether dir holds an applied journal, an intent log
// or records, as entries of any kind.
func holdsState(dir string) bool {
	for _, name := range []string{appliedFile, intentFile, recordsDir} {
		if _, err := os.Lstat(filepath.Join(dir, name)); !errors.Is(err, fs.ErrNotExist) {
			return true
		}
	}
	return false
}

func (st *state) close() {
	if st == nil || st.closed {
		return
	}
	st.closed = true
	if st.blobs != nil {
		st.blobs.Close()
	}
	if st.lock != nil {
		if st.lockRW {
			st.lock.Truncate(0)
		}
		st.lock.Close() // releases the flock
		st.lock = nil
	}
}

// checkRoot compares the root recorded in the state with rootPath, and
// records it in a new state.
func (st *state) checkRoot(rootPath string, create bool) error {
	name := filepath.Join(st.dir, rootFile)
	data, err := readStateFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		if !create {
			return nil
		}
		return atomicfile.WriteFile(name, []byte(rootPath+"\n"), 0o600)
	}
	if err != nil {
		return inputErrorf("state directory %s: %w", st.dir, err)
	}
	if rec := strings.TrimSpace(string(data)); rec != rootPath {
		return inputErrorf("state directory %s was applied under root %s, not %s (use --root %s, or another --state)", st.dir, rec, rootPath, rec)
	}
	return nil
}

func (st *state) loadApplied() (*Applied, error) {
	name := filepath.Join(st.dir, appliedFile)
	data, err := readStateFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return &Applied{Version: 1, Originals: map[string]Image{}}, nil
	}
	if err != nil {
		return nil, inputErrorf("state: %w", err)
	}
	var a Applied
	if err := json.Unmarshal(data, &a); err != nil {
		return nil, inputErrorf("state: %s is corrupt: %v", name, err)
	}
	if a.Version != 1 {
		return nil, inputErrorf("state: %s has format version %d; this cairn reads version 1", name, a.Version)
	}
	if a.Originals == nil {
		a.Originals = map[string]Image{}
	}
	return &a, nil
}

// commit makes a the applied journal: the commit point of a move.
func (st *state) commit(a *Applied) error {
	data, err := json.Marshal(a)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(st.dir, appliedFile), data, 0o600); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	st.applied = a
	return nil
}

// HistoryEntry is one run in the state's short history.
type HistoryEntry struct {
	Time       time.Time     `json:"time"`
	Generation int64         `json:"generation"`
	Journal    string        `json:"journal,omitempty"`
	Commit     string        `json:"commit,omitempty"`
	Branch     string        `json:"branch,omitempty"`
	Group      string        `json:"group,omitempty"`
	Result     HistoryResult `json:"result"`
	Ops        int           `json:"ops"`
	Error      string        `json:"error,omitempty"`
	Seconds    float64       `json:"seconds"`
}

// HistoryResult is how a run recorded in the history ended. Its values are
// the strings history.jsonl holds.
type HistoryResult string

// The results of a run.
const (
	HistoryApplied    HistoryResult = "applied"     // the move ran and committed
	HistoryNoop       HistoryResult = "no-op"       // nothing to do: the host stays at its generation
	HistoryFailed     HistoryResult = "failed"      // the move failed and was undone
	HistoryUndoFailed HistoryResult = "undo-failed" // the move failed and its undo too: the intent log stays
	HistoryRecovered  HistoryResult = "recovered"   // an interrupted move was undone when the state was opened
)

const historyKeep = 100

// record appends a run to the history, keeping the newest entries. A
// history that is not cairn's own file (openStateFile) is replaced, with
// what could be read of it.
func (st *state) record(h HistoryEntry) {
	name := filepath.Join(st.dir, historyFile)
	line, _ := json.Marshal(h)
	data, _ := readStateFile(name)
	var lines []string
	if len(data) > 0 {
		lines = strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	}
	if len(lines) < 2*historyKeep {
		f, err := openStateFile(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err == nil {
			f.Write(append(line, '\n'))
			f.Close()
			return
		}
		if !errors.Is(err, errNotCairns) {
			return
		}
	}
	kept := append(lines[len(lines)-min(len(lines), historyKeep-1):], string(line))
	atomicfile.WriteFile(name, []byte(strings.Join(kept, "\n")+"\n"), 0o600)
}

// History returns the runs recorded in the state directory dir, oldest first.
func History(dir string) ([]HistoryEntry, error) {
	data, err := readStateFile(filepath.Join(dir, historyFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []HistoryEntry
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var h HistoryEntry
		if json.Unmarshal([]byte(line), &h) == nil {
			out = append(out, h)
		}
	}
	return out, nil
}
