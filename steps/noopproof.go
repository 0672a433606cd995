package steps

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/cairn-cm/cairn/internal/atomicfile"
	"github.com/cairn-cm/cairn/journal"
	"github.com/cairn-cm/cairn/rootfs"
	"github.com/cairn-cm/cairn/statedir"
)

// The no-op proof. A run of `journal apply --repair` with nothing to do
// (the journal is the applied one, and no step drifted) is most runs, and
// its drift check of COPY and MKDIR steps is a function of a few inputs
// alone: the journal file's bytes, the applied journal, the lstat of every
// managed path (through the stat cache's rule for a file's content), and
// the root's /etc/passwd and /etc/group, which name owners. Such a run
// writes what it saw of each of them to noopProofFile. The next run
// (QuickNoop) lstats every path again and compares: if every input is as
// it was, the check would find what it found, no drift, and the run is a
// no-op without reading, parsing or checking either journal. Anything that
// differs (a path's lstat, a racy entry, the journal's bytes, the applied
// journal, the stat cache's file, the build of cairn) leaves the run to
// the full check, which hashes what it must and finds the drift. The stat
// cache's count of runs is kept as the full check keeps it, so that every
// RehashEvery-th run is a full one as before.
const noopProofFile = "statcache.noop"

// noopProofMagic starts the file; the build of cairn that wrote it follows.
const noopProofMagic = "cairn-noop 2"

// fileKey is what stat says of a file: for a state file that cairn
// replaces whole (applied.json, the stat cache) an unchanged key is
// unchanged bytes; for the journal file, as for a managed file, only when
// the key is not racy (statCache.racy).
type fileKey struct {
	dev, ino     uint64
	size         int64
	mtime, ctime int64
}

func fileKeyOfStat(st *syscall.Stat_t) fileKey {
	return fileKey{dev: st.Dev, ino: st.Ino, size: st.Size, mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano()}
}

// proofEntry is the lstat of one path a no-op's check read; absent for
// an owner database that is not there.
type proofEntry struct {
	path   string
	absent bool
	e      statEntry // sum unused
}

// noopProof is what a no-op's check saw.
type noopProof struct {
	build      string
	journalSum string  // sha256 of the journal file's bytes
	journal    fileKey // what stat said of the journal file before it was read
	// journalStamp is the time taken before that stat: the racy rule's
	// stamp for the journal's key (not start, taken after the journal was
	// read).
	journalStamp int64
	applied      fileKey
	cache        fileKey // the stat cache file after the check
	cacheStamp   int64   // its stamp
	cacheRuns    int     // the count its header holds
	start        int64   // when the check started: the racy rule's stamp
	generation   int64
	source       [3]string // commit, branch, group
	entries      []proofEntry
}

// ownerDBs are the files of the root that name owners (Env.UID, Env.GID).
var ownerDBs = [...]string{"/etc/passwd", "/etc/group"}

// buildID names the build of this binary: a proof written by another
// build (whose checks may differ) is not read. The version the build says
// it is does not name it (a build with -buildvcs=false, or of a dirty
// tree, or with another -ldflags -X, says what others say): the
// executable file does. It is what stat says of the file /proc/self/exe
// leads to, the file this process runs (device, inode, size, mtime,
// ctime: a package upgrade or a `go build -o` over it makes a new file,
// and a file written in place a new mtime and ctime), with the Go version
// and module the build names. "" (when there is no /proc) names none: no
// proof is written or taken. A variable, for tests.
var buildID = sync.OnceValue(func() string { return buildIDOf("/proc/self/exe") })

// buildIDOf is buildID of the executable exe.
func buildIDOf(exe string) string {
	var st syscall.Stat_t
	if err := syscall.Stat(exe, &st); err != nil {
		return ""
	}
	k := fileKeyOfStat(&st)
	id := fmt.Sprintf("exe:%d:%d:%d:%d:%d", k.dev, k.ino, k.size, k.mtime, k.ctime)
	if bi, ok := debug.ReadBuildInfo(); ok {
		id += "," + bi.GoVersion + "," + bi.Main.Path + "@" + bi.Main.Version
	}
	return strings.Map(func(r rune) rune {
		if r <= ' ' {
			return '_'
		}
		return r
	}, id)
}

// proofKind reports whether the check of op reads only what a proof
// records: the lstat of its object, the content of a file (through the
// stat cache's rule), and the owner databases.
func proofKind(op string) bool {
	switch LookupKind(op).(type) {
	case copyKind, *copyKind, mkdirKind, *mkdirKind:
		return true
	}
	return false
}

// proofRecorder collects what a drift check that may end in a proof
// reads: the lstat of every path, in check order.
type proofRecorder struct {
	mu     sync.Mutex
	infos  map[string]rootfs.Info
	paths  []string // the objects of the checked steps, in check order
	owners []proofEntry
	broken bool // a path was seen twice, and not the same
}

// newProofRecorder returns a recorder for the checks of steps, or nil when
// a kind's check reads more than a proof records. It lstats the owner
// databases first: the check reads them after.
func newProofRecorder(r *rootfs.Root, steps []*journal.Step) *proofRecorder {
	for _, s := range steps {
		if !proofKind(s.Op) {
			return nil
		}
	}
	pr := &proofRecorder{infos: make(map[string]rootfs.Info, len(steps)), paths: make([]string, len(steps))}
	for k, s := range steps {
		pr.paths[k] = s.Object()
	}
	for _, db := range ownerDBs {
		info, err := r.Lstat(db)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			pr.owners = append(pr.owners, proofEntry{path: db, absent: true})
		case err != nil || !info.IsRegular():
			return nil
		default:
			pr.owners = append(pr.owners, proofEntry{path: db, e: entryOf(info, "")})
		}
	}
	return pr
}

// record notes that a check saw info at p.
func (pr *proofRecorder) record(p string, info rootfs.Info) {
	if pr == nil {
		return
	}
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if old, ok := pr.infos[p]; ok && old != info {
		pr.broken = true
	}
	pr.infos[p] = info
}

// complete reports whether every check recorded what it saw.
func (pr *proofRecorder) complete() bool {
	if pr == nil || pr.broken {
		return false
	}
	for _, p := range pr.paths {
		if _, ok := pr.infos[p]; !ok {
			return false
		}
	}
	return true
}

// errNoProof is writeNoopProof's answer for a no-op that no proof can
// state: the caller removes the old one, as for any failure, quietly.
var errNoProof = errors.New("no proof can state this no-op")

// writeNoopProof writes the proof of a no-op whose check pr recorded, with
// the stat cache c that it saved, to the state directory dir. The proof
// is not synced: a lost or torn one (its checksum line) only costs the
// next run the full check.
func writeNoopProof(dir string, pr *proofRecorder, c *statCache, m Move, cur *Applied) error {
	cacheInfo, err := statedirLstat(filepath.Join(dir, statCacheFile))
	if err != nil {
		return err
	}
	build := buildID()
	if build == "" {
		return errNoProof // no build to name
	}
	b := make([]byte, 0, 100*len(pr.paths)+1024)
	b = fmt.Appendf(b, "%s %s\n", noopProofMagic, build)
	var journalKey fileKey // zero: never found again
	if m.JournalInfo != nil {
		if st, ok := m.JournalInfo.Sys().(*syscall.Stat_t); ok {
			journalKey = fileKeyOfStat(st)
		}
	}
	b = appendKey(fmt.Appendf(b, "journal %s", m.JournalSum), journalKey)
	b = appendKey(append(b, "applied"...), cur.diskKey)
	b = appendKey(append(b, "statcache"...), fileKeyOfStat(cacheInfo))
	var journalStamp int64 // zero: every key is racy
	if !m.JournalStamp.IsZero() {
		journalStamp = m.JournalStamp.UnixNano()
	}
	b = fmt.Appendf(b, "cache %d %d\njournal-stamp %d\nstart %d\ngeneration %d\n", c.stampSaved, c.headerRuns, journalStamp, c.start, cur.Generation)
	b = fmt.Appendf(b, "source %s %s %s\n", strconv.Quote(cur.Commit), strconv.Quote(cur.Branch), strconv.Quote(cur.Group))
	for _, e := range pr.owners {
		b = appendProofEntry(b, e)
	}
	for _, p := range pr.paths {
		if strings.IndexByte(p, '\n') >= 0 {
			return errNoProof // a path a line cannot hold
		}
		b = appendProofEntry(b, proofEntry{path: p, e: entryOf(pr.infos[p], "")})
	}
	return atomicfile.Replace(filepath.Join(dir, noopProofFile), appendEndLine(b), 0o600)
}

// appendProofEntry appends the line of e.
func appendProofEntry(b []byte, e proofEntry) []byte {
	if e.absent {
		b = append(b, "absent "...)
	} else {
		b = appendStatNums(append(b, "path"...), e.e)
	}
	b = append(b, e.path...)
	return append(b, '\n')
}

func appendKey(b []byte, k fileKey) []byte {
	return fmt.Appendf(b, " %d %d %d %d %d\n", int64(k.dev), int64(k.ino), k.size, k.mtime, k.ctime)
}

// statedirLstat is the lstat of a state file, as a Stat_t.
func statedirLstat(name string) (*syscall.Stat_t, error) {
	var st syscall.Stat_t
	if err := syscall.Lstat(name, &st); err != nil {
		return nil, &fs.PathError{Op: "lstat", Path: name, Err: err}
	}
	return &st, nil
}

// removeNoopProof removes the proof of the state directory dir, if any:
// a run that cannot write a new one leaves none.
func removeNoopProof(dir string) {
	_ = syscall.Unlink(filepath.Join(dir, noopProofFile))
}

// parseNoopProof reads what writeNoopProof wrote; anything else is an
// error. QuickNoop reads the same in parts (splitNoopProof), the entries
// as it lstats them.
func parseNoopProof(data []byte) (*noopProof, error) {
	body, sumOK, err := splitNoopProof(data)
	if err != nil {
		return nil, err
	}
	if !sumOK() {
		return nil, fmt.Errorf("no-op proof: %w: checksum mismatch", errCorrupt)
	}
	pf, text, err := parseProofHeader(body)
	if err != nil {
		return nil, err
	}
	for text != "" {
		var l string
		l, text, _ = strings.Cut(text, "\n")
		e, ok := parseProofEntry(l)
		if !ok {
			return nil, fmt.Errorf("no-op proof: %w: entry %q", errCorrupt, l)
		}
		pf.entries = append(pf.entries, e)
	}
	return pf, nil
}

// splitNoopProof cuts the proof's end line off data (splitEndLine):
// QuickNoop runs the check of its sha256 beside its lstats.
func splitNoopProof(data []byte) (body []byte, sumOK func() bool, err error) {
	body, sumOK, ok := splitEndLine(data)
	if !ok {
		return nil, nil, fmt.Errorf("no-op proof: %w: no end line", errCorrupt)
	}
	return body, sumOK, nil
}

// parseProofHeader parses the lines of the proof before its entries, and
// returns them and the text of the entries, which shares body's bytes.
func parseProofHeader(body []byte) (*noopProof, string, error) {
	text := unsafe.String(unsafe.SliceData(body), len(body))
	line := func() string {
		l, rest, _ := strings.Cut(text, "\n")
		text = rest
		return l
	}
	bad := func(what string) (*noopProof, string, error) {
		return nil, "", fmt.Errorf("no-op proof: %w: %s", errCorrupt, what)
	}
	pf := &noopProof{}
	var ok bool
	if pf.build, ok = strings.CutPrefix(line(), noopProofMagic+" "); !ok {
		return bad("header")
	}
	f, ok := strings.CutPrefix(line(), "journal ")
	var keyText string
	var ok2, ok3 bool
	var n []int64
	pf.journalSum, keyText, ok2 = strings.Cut(f, " ")
	if pf.journal, ok3 = parseFileKey(keyText); !ok || !ok2 || !ok3 {
		return bad("journal")
	}
	if f, ok = strings.CutPrefix(line(), "applied "); ok {
		pf.applied, ok = parseFileKey(f)
	}
	if !ok {
		return bad("applied")
	}
	if f, ok = strings.CutPrefix(line(), "statcache "); ok {
		pf.cache, ok = parseFileKey(f)
	}
	if !ok {
		return bad("statcache")
	}
	f, ok = strings.CutPrefix(line(), "cache ")
	n, ok2 = decimals(f, 2)
	if !ok || !ok2 || n[1] < 0 || n[1] > 1<<31-1 {
		return bad("cache")
	}
	pf.cacheStamp, pf.cacheRuns = n[0], int(n[1])
	for _, v := range []struct {
		name string
		n    *int64
	}{{"journal-stamp ", &pf.journalStamp}, {"start ", &pf.start}, {"generation ", &pf.generation}} {
		f, ok := strings.CutPrefix(line(), v.name)
		n, ok2 := decimals(f, 1)
		if !ok || !ok2 {
			return bad(v.name)
		}
		*v.n = n[0]
	}
	if f, ok = strings.CutPrefix(line(), "source "); !ok {
		return bad("source")
	}
	for i := range pf.source {
		q, err := strconv.QuotedPrefix(f)
		if err != nil {
			return bad("source")
		}
		pf.source[i], _ = strconv.Unquote(q)
		f = strings.TrimPrefix(f[len(q):], " ")
	}
	return pf, text, nil
}

// parseFileKey parses "DEV INO SIZE MTIME CTIME".
func parseFileKey(s string) (fileKey, bool) {
	n, ok := decimals(s, 5)
	if !ok {
		return fileKey{}, false
	}
	return fileKey{dev: uint64(n[0]), ino: uint64(n[1]), size: n[2], mtime: n[3], ctime: n[4]}, true
}

// parseProofEntry parses "path DEV INO SIZE MTIME CTIME MODE UID GID PATH"
// or "absent PATH".
func parseProofEntry(l string) (proofEntry, bool) {
	if p, ok := strings.CutPrefix(l, "absent "); ok {
		return proofEntry{path: p, absent: true}, p != "" && p[0] == '/'
	}
	l, ok := strings.CutPrefix(l, "path ")
	if !ok {
		return proofEntry{}, false
	}
	e, p, ok := parseStatNums(l)
	return proofEntry{path: p, e: e}, ok
}

// decimals parses n decimals separated by single spaces.
func decimals(s string, n int) ([]int64, bool) {
	f := strings.Split(s, " ")
	if len(f) != n {
		return nil, false
	}
	out := make([]int64, n)
	for i := range f {
		var ok bool
		if out[i], ok = parseDecimal(f[i]); !ok {
			return nil, false
		}
	}
	return out, true
}

// QuickMove is a move that QuickNoop may prove to be a no-op: the journal
// file, and the source the move records.
type QuickMove struct {
	Journal               string
	Commit, Branch, Group string
}

// QuickNoop runs a `journal apply --repair` of m as a no-op if the state's
// no-op proof shows that it is one (see noopProofFile): it then records
// the run in the history, counts it in the stat cache, and returns true.
// False means nothing was changed: run the move (Open, Plan, Run), which
// checks everything. opts is as Open's; nothing is created, and a state
// directory that is missing or locked is left to Open to report. A
// temporary file that a killed process left in the state directory stays
// until the next full run (Open removes them).
func QuickNoop(ctx context.Context, opts Options, m QuickMove) bool {
	every := opts.RehashEvery
	if every <= 0 {
		every = DefaultRehashEvery
	}
	if opts.Root == nil || every <= 1 { // every run is a full one
		return false
	}
	d, err := statedir.Open(opts.Root, opts.StateDir, false, 0)
	if err != nil || d == nil {
		return false
	}
	defer d.Close()
	dir := d.Path()
	if !d.RootRecorded() {
		return false // a full run writes the record of the root
	}
	pf, text, sumOK, runs, ok := readNoopProof(dir, m, every)
	if !ok || ctx.Err() != nil {
		return false
	}
	var checked bool
	var wg sync.WaitGroup
	wg.Go(func() { checked = sumOK() })
	holds, n := pf.holds(opts.Root, text)
	wg.Wait()
	if !checked || !holds || ctx.Err() != nil {
		return false
	}
	if err := writeStatRuns(dir, pf.cacheStamp, runs); err != nil {
		return false
	}
	if opts.Log != nil {
		opts.Log.Debug("drift check: every path as the last no-op saw it", "paths", n)
	}
	d.Record(HistoryEntry{Time: time.Now().UTC(), Generation: pf.generation, Result: HistoryNoop, Journal: m.Journal, Commit: m.Commit, Branch: m.Branch, Group: m.Group})
	return true
}

// readNoopProof reads the proof of the state directory dir and checks
// every input of the run but the paths' lstats and the proof's checksum:
// the build, the journal, the source, the state files, no move in
// progress, a blob store that the full run would open, the record of the
// root, the clock, and that this run is not a full one. It returns the
// proof's header, the text of its entries, the check of its checksum and
// the count this run writes.
func readNoopProof(dir string, m QuickMove, every int) (pf *noopProof, text string, sumOK func() bool, runs int, ok bool) {
	if _, err := statedirLstat(filepath.Join(dir, intentFile)); !errors.Is(err, fs.ErrNotExist) {
		return nil, "", nil, 0, false // a move to recover, or an unreadable state
	}
	// The state as openState opens it: what it refuses (a blob store that
	// is a link) the full run says.
	blobs, err := openBlobs(dir, false)
	if err != nil {
		return nil, "", nil, 0, false
	}
	blobs.Close()
	data, err := statedir.ReadFile(filepath.Join(dir, noopProofFile))
	if err != nil {
		return nil, "", nil, 0, false
	}
	body, sumOK, err := splitNoopProof(data)
	if err != nil {
		return nil, "", nil, 0, false
	}
	pf, text, err = parseProofHeader(body)
	if err != nil || pf.build == "" || pf.build != buildID() || pf.source != [3]string{m.Commit, m.Branch, m.Group} || !pf.sameJournal(m.Journal) {
		return nil, "", nil, 0, false
	}
	for _, k := range []struct {
		name string
		key  fileKey
	}{{appliedFile, pf.applied}, {statCacheFile, pf.cache}} {
		st, err := statedirLstat(filepath.Join(dir, k.name))
		if err != nil || fileKeyOfStat(st) != k.key {
			return nil, "", nil, 0, false
		}
	}
	now := time.Now().UnixNano()
	if pf.cacheStamp > now || pf.start > now {
		return nil, "", nil, 0, false
	}
	runs = pf.cacheRuns
	if n, ok := readStatRuns(dir, pf.cacheStamp); ok {
		runs = n
	}
	runs++
	if every <= 1 || runs >= every {
		return nil, "", nil, 0, false
	}
	return pf, text, sumOK, runs, true
}

// sameJournal reports whether the journal file name holds the bytes that
// the proof's run read: it is the file as stat saw it then, and that was
// not racy (as for the stat cache's entries) against the time taken before
// that stat, or its bytes have the proof's sha256.
func (pf *noopProof) sameJournal(name string) bool {
	var st syscall.Stat_t
	if err := syscall.Stat(name, &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return false
	}
	k := fileKeyOfStat(&st)
	if k == pf.journal && !racyAt(pf.journalStamp, statEntry{mtime: k.mtime, ctime: k.ctime}) {
		return true
	}
	data, err := journal.ReadFile(name)
	if err != nil {
		return false
	}
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:]) == pf.journalSum
}

// holds lstats every path of the entries' text, a part of the lines on
// each core, and reports whether each is as the proof saw it and not
// racy, and how many there were.
func (pf *noopProof) holds(r *rootfs.Root, text string) (bool, int) {
	parts := splitLines(text, runtime.GOMAXPROCS(0))
	var n atomic.Int64
	var failed atomic.Bool
	var wg sync.WaitGroup
	for _, part := range parts {
		wg.Go(func() {
			k, ok := pf.holdsLines(r, part, &failed)
			n.Add(int64(k))
			if !ok {
				failed.Store(true)
			}
		})
	}
	wg.Wait()
	return !failed.Load(), int(n.Load())
}

// holdsLines is holds for one part of the lines, through a few parent
// directories held open (dirCache), so that each lstat is one
// fstatat(2). It stops when another part failed.
func (pf *noopProof) holdsLines(r *rootfs.Root, text string, failed *atomic.Bool) (int, bool) {
	var dirs dirCache
	defer dirs.close()
	n := 0
	for text != "" {
		if failed.Load() {
			return n, false
		}
		var l string
		l, text, _ = strings.Cut(text, "\n")
		e, ok := parseProofEntry(l)
		if !ok {
			return n, false
		}
		n++
		info, err := dirs.lstat(r, e.path)
		if e.absent {
			if !errors.Is(err, fs.ErrNotExist) {
				return n, false
			}
			continue
		}
		if err != nil || entryOf(info, "") != e.e || racyAt(pf.start, e.e) {
			return n, false
		}
	}
	return n, true
}

// splitLines cuts text, whole lines, into at most n parts of about the
// same size.
func splitLines(text string, n int) []string {
	var parts []string
	for n > 1 && text != "" {
		i := len(text) / n
		j := strings.IndexByte(text[i:], '\n')
		if j < 0 {
			break
		}
		parts = append(parts, text[:i+j+1])
		text = text[i+j+1:]
		n--
	}
	if text != "" {
		parts = append(parts, text)
	}
	return parts
}
