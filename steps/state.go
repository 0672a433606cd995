package steps

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cairn-cm/cairn/blobstore"
	"github.com/cairn-cm/cairn/internal/atomicfile"
	"github.com/cairn-cm/cairn/journal"
	"github.com/cairn-cm/cairn/rootfs"
	"github.com/cairn-cm/cairn/statedir"
)

// The files of a state directory (package statedir).
const (
	appliedFile = statedir.AppliedFile // the applied journal and original images: the commit point
	intentFile  = statedir.IntentFile  // the move in progress, if any
	historyFile = statedir.HistoryFile
	blobsDir    = statedir.BlobsDir
	lockFile    = statedir.LockFile
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
	Version    int           `json:"version"`
	Generation int64         `json:"generation"`
	Time       time.Time     `json:"time,omitzero"`
	Journal    string        `json:"journal,omitempty"` // the file it was applied from
	Commit     string        `json:"commit,omitempty"`  // the git commit, when the agent applied it
	Branch     string        `json:"branch,omitempty"`  // the branch the commit was the tip of
	Group      string        `json:"group,omitempty"`   // the host group it was compiled for
	Steps      []AppliedStep `json:"steps"`
	// Originals is the original image of every managed identity. In an
	// Applied read from the state directory or committed by a move it is
	// nil, and the images stay encoded until a move asks for them
	// ([Applied.Images]): at rest, on a large host, they were megabytes of
	// the agent's memory, and at the commit of a cold apply its peak.
	Originals map[string]Image `json:"originals"`
	// Kept is the content that moves replaced after someone edited it by
	// hand, oldest first; its blobs stay in the store.
	Kept []Kept `json:"kept,omitempty"`

	lazy *lazyImages // the encoded originals of an Applied read from disk or committed
	// diskKey is what fstat said of the applied.json it was read from
	// (zero for one not read from disk): a no-op's proof names it.
	diskKey fileKey
}

// lazyImages are original images decoded on first use.
type lazyImages struct {
	mu      sync.Mutex
	name    string          // the file, for errors
	raw     json.RawMessage // nil once decoded into m
	m       map[string]Image
	checked bool  // raw was decoded once, to check it, and dropped
	err     error // what that decode said
}

// Images returns the original image of every managed identity: Originals,
// or for an Applied read from the state directory or committed by a move
// its images, decoded on the first call. A move checks them first (checkImages: Plan does, for
// every move that may read them), so that they decode. The map must not be
// changed.
func (a *Applied) Images() map[string]Image {
	if a.lazy == nil {
		return a.Originals
	}
	l := a.lazy
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		if err := json.Unmarshal(l.raw, &l.m); err != nil {
			// Plan checked the same bytes (checkImages).
			panic(fmt.Sprintf("state: the original images cannot be decoded: %v", err))
		}
		if l.m == nil {
			l.m = map[string]Image{}
		}
		l.raw = nil
	}
	return l.m
}

// checkImages decodes the original images of an Applied read from the
// state directory, to check them, and drops them: a move that only adds
// steps never needs them decoded, and an Applied kept between runs
// (lastApplied) keeps them encoded. Its error is an *InputError naming
// the file; nil once the images decoded.
func (a *Applied) checkImages() error {
	if a.lazy == nil {
		return nil
	}
	l := a.lazy
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil && !l.checked {
		var images map[string]Image
		l.err = json.Unmarshal(l.raw, &images)
		l.checked = true
	}
	if l.err != nil {
		return inputErrorf("state: %s is corrupt: %v", l.name, l.err)
	}
	return nil
}

// appliedOnDisk is Applied as it is read, its original images left encoded.
type appliedOnDisk struct {
	Applied
	Originals json.RawMessage `json:"originals"`
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
const DefaultStateDir = statedir.Default

// state is an open, locked state directory with what a move keeps there.
type state struct {
	d       *statedir.Dir
	dir     string // its host path, where it really is
	closed  bool
	blobs   *Blobs
	applied *Applied
}

// ErrLocked says that another process holds the state directory.
var ErrLocked = statedir.ErrLocked

// openState opens and locks the state directory (statedir.Open: nil, nil
// when there is none to read), its blob store and its applied journal.
// Whatever is refused is an *InputError (exit 2), and nothing is changed.
func openState(root *rootfs.Root, dir string, create bool, wait time.Duration) (*state, error) {
	d, err := statedir.Open(root, dir, create, wait)
	if err != nil {
		return nil, &InputError{Err: err}
	}
	if d == nil {
		return nil, nil
	}
	st := &state{d: d, dir: d.Path()}
	fail := func(err error) (*state, error) { st.close(); return nil, err }
	if st.blobs, err = openBlobs(st.dir, create); err != nil {
		return fail(&InputError{err})
	}
	if st.applied, err = st.loadApplied(); err != nil {
		return fail(err)
	}
	return st, nil
}

// openBlobs opens the blob store of the state directory dir: a missing
// store is empty, and made only with create; one that is not a directory
// (a link is not followed) is refused. QuickNoop checks it as this does.
func openBlobs(dir string, create bool) (*Blobs, error) {
	if create {
		return blobstore.Open(filepath.Join(dir, blobsDir))
	}
	return blobstore.OpenExisting(filepath.Join(dir, blobsDir))
}

// discardNew removes a state directory that this process made and that
// holds neither an applied journal nor a record, with the parents it made:
// a move that failed before its commit leaves no trace in the root.
func (st *state) discardNew() {
	if st == nil || st.closed || !st.d.Discardable() {
		return
	}
	st.close()
	st.d.RemoveMade()
}

func (st *state) close() {
	if st == nil || st.closed {
		return
	}
	st.closed = true
	if st.blobs != nil {
		st.blobs.Close()
	}
	st.d.Close()
}

func (st *state) loadApplied() (*Applied, error) {
	name := filepath.Join(st.dir, appliedFile)
	f, err := statedir.OpenFile(name, os.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return &Applied{Version: 1, Originals: map[string]Image{}}, nil
	}
	if err != nil {
		return nil, inputErrorf("state: %w", err)
	}
	defer f.Close()
	var stat syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &stat); err != nil {
		return nil, inputErrorf("state: %s: %w", name, err)
	}
	key := keyOf(name, &stat)
	if a := lastApplied.get(key); a != nil {
		return a, nil
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, inputErrorf("state: %s: %w", name, err)
	}
	var disk appliedOnDisk
	if err := decodeApplied(data, &disk); err != nil {
		return nil, inputErrorf("state: %s is corrupt: %v", name, err)
	}
	a := disk.Applied
	a.diskKey = fileKeyOfStat(&stat)
	if a.Version != 1 {
		return nil, inputErrorf("state: %s has format version %d; this cairn reads version 1", name, a.Version)
	}
	// The images stay encoded, a quarter of their decoded size, and are
	// not even decoded to be checked: a run with nothing to do never reads
	// them, and a move checks them before it reads them (checkImages).
	// Their JSON is valid: decodeApplied read it.
	switch raw := bytes.TrimSpace(disk.Originals); {
	case len(raw) == 0 || string(raw) == "null" || string(raw) == "{}":
		a.Originals = map[string]Image{}
	default:
		a.lazy = &lazyImages{name: name, raw: disk.Originals}
	}
	lastApplied.put(key, &a)
	return &a, nil
}

// appliedKey names one version of an applied.json: its path and what
// fstat says of the file. cairn replaces the file (a new inode) at every
// commit and never writes it in place, and any write to it changes its
// ctime, so a file whose key is unchanged holds the same bytes.
type appliedKey struct {
	name     string
	dev, ino uint64
	size     int64
	mtime    syscall.Timespec
	ctime    syscall.Timespec
}

// keyOf is the key of the applied.json name whose fstat is stat.
func keyOf(name string, stat *syscall.Stat_t) appliedKey {
	return appliedKey{name: name, dev: stat.Dev, ino: stat.Ino, size: stat.Size, mtime: stat.Mtim, ctime: stat.Ctim}
}

// lastApplied keeps the applied journal a process last read, decoded: a
// long-running process (the agent) that opens the state run after run
// decodes applied.json again only when it changed. Decoding is most of
// the cost of a run that finds nothing to do on a large journal (10,000
// steps: 2.7 MB, some 60 ms of CPU); an fstat is nothing. The decoded
// Applied is never changed in place (a move makes a new one), so sharing
// it between Appliers is safe; it costs the memory of one journal.
var lastApplied appliedCache

type appliedCache struct {
	mu  sync.Mutex
	key appliedKey
	a   *Applied
}

func (c *appliedCache) get(k appliedKey) *Applied {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.a != nil && c.key == k {
		return c.a
	}
	return nil
}

func (c *appliedCache) forget() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.key, c.a = appliedKey{}, nil
}

func (c *appliedCache) put(k appliedKey, a *Applied) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.key, c.a = k, a
}

// commit makes a the applied journal: the commit point of a move.
func (st *state) commit(a *Applied) error {
	name := filepath.Join(st.dir, appliedFile)
	if err := atomicfile.Write(name, 0o600, func(w io.Writer) error { return encodeApplied(w, a) }); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	st.applied = a
	// The journal this move replaced is stale, and a is left out: built
	// during the move, it lies scattered among the move's garbage, which
	// would keep megabytes of the heap's pages resident at rest. The
	// next open decodes it afresh (once, some 60 ms for 10,000 steps)
	// into a compact heap.
	lastApplied.forget()
	return nil
}

// HistoryEntry is one run in the state's short history (statedir).
type HistoryEntry = statedir.HistoryEntry

// HistoryResult is how a run recorded in the history ended.
type HistoryResult = statedir.HistoryResult

// The results of a run (statedir).
const (
	HistoryApplied    = statedir.HistoryApplied
	HistoryNoop       = statedir.HistoryNoop
	HistoryFailed     = statedir.HistoryFailed
	HistoryUndoFailed = statedir.HistoryUndoFailed
	HistoryRecovered  = statedir.HistoryRecovered
)

// record appends a run to the history.
func (st *state) record(h HistoryEntry) { st.d.Record(h) }

// History returns the runs recorded in the state directory dir, oldest first.
func History(dir string) ([]HistoryEntry, error) { return statedir.History(dir) }
