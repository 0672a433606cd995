package cli

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/cairn-cm/cairn/internal/treefs"
	"github.com/cairn-cm/cairn/journal"
	"github.com/cairn-cm/cairn/rootfs"
	"github.com/cairn-cm/cairn/steps"
)

type journalApplyCmd struct {
	stateFlags
	Source string `help:"Where COPY sources are read (default: FILE's directory)." placeholder:"DIR"`
	Blobs  string `help:"Where COPY - content is found by its sha256 (default: --source/.cairn/blobs)." placeholder:"DIR"`
	DryRun bool   `help:"Print the plan and change nothing."`
	Repair bool   `help:"Also run forward every unchanged step whose live state drifted."`
	// RehashEvery bounds how long the stat cache of --repair is trusted.
	RehashEvery int `help:"With --repair, hash every file at every Nth check whatever the state's stat cache says; 1 hashes every file at every check." default:"10" name:"rehash-every" placeholder:"N"`
	// AllowRemoval guards against an empty FILE from a compile that failed.
	AllowRemoval bool `help:"Allow a FILE that manages no object (empty) to remove every object the applied journal manages and run the undo of its commands." name:"allow-removal"`
	// Where FILE came from, for the state's record (journal show).
	Commit string `help:"Record that FILE was compiled from this git commit." placeholder:"HASH"`
	Branch string `help:"Record that the commit was the tip of this branch." placeholder:"NAME"`
	Group  string `help:"Record that FILE was compiled for this host group." placeholder:"NAME"`
	File   string `arg:"" name:"FILE" help:"The journal to move the host to."`
}

// lockWait is how long read-only commands wait for another process's lock.
const lockWait = 30 * time.Second

// Run moves the host to FILE.
func (c *journalApplyCmd) Run(e *env) error {
	root, stateDir, err := c.open()
	if err != nil {
		// A journal that cannot be read is said first, as when it was
		// read before the root was opened.
		if _, jerr := loadJournalData(c.File, nil); jerr != nil {
			return jerr
		}
		return err
	}
	defer root.Close()
	if c.quickNoop(e, root, stateDir) {
		fmt.Fprintf(e.stdout, "%s: nothing to do\n", c.File)
		return nil
	}
	read, err := c.readJournal()
	if err != nil {
		return err
	}
	j, err := loadJournalData(c.File, read.data)
	if err != nil {
		return err
	}
	source := c.Source
	if source == "" {
		source = filepath.Dir(c.File)
	}
	blobs := c.Blobs
	if blobs == "" {
		blobs = filepath.Join(source, ".cairn", "blobs")
	}
	if err := checkRehashEvery(c.RehashEvery); err != nil {
		return err
	}
	// On a terminal, stderr shows the op that runs; what else goes there
	// meanwhile clears that line first.
	prog := newProgress(e.stderr)
	log := newLogger(prog, e.level)
	prog.log = log
	opts := steps.Options{Root: root, StateDir: stateDir, Create: !c.DryRun, Log: log, Output: prog, Host: hostDrivers(root), Kill: e.kill, Observer: prog, RehashEvery: c.RehashEvery}
	if c.DryRun {
		opts.Wait = lockWait
	}
	// Inputs are read through treefs: a link that leads out of the
	// directory, a FIFO or a device is refused.
	src, closeSrc := openInputs(source)
	defer closeSrc()
	blobFS, closeBlobs := openInputs(blobs)
	defer closeBlobs()
	a, err := steps.Open(e.ctx, opts)
	prog.done()
	if err != nil {
		return err
	}
	defer a.Close()
	// A move holds both journals: the applied one's steps are what a move
	// to a small journal removes, with an inverse op and images each.
	defer applyGC(len(j.Steps) + len(a.Applied().Steps))()
	p, err := a.Plan(e.ctx, steps.Move{
		Journal: c.File, Commit: c.Commit, Branch: c.Branch, Group: c.Group, Steps: j.Steps,
		Source: src, SourceName: source, Blobs: blobFS, BlobsName: blobs,
		Repair: c.Repair, DryRun: c.DryRun, AllowRemoval: c.AllowRemoval, JournalSum: read.sum, JournalInfo: read.info, JournalStamp: read.stamp,
	})
	if err != nil {
		return err
	}
	// With --dry-run, stdout is a plan listing, whose notes start with '#'.
	note := ""
	if c.DryRun {
		note = "# "
	}
	for _, d := range p.Drifted {
		fmt.Fprintf(e.stdout, "%srepair: %s: %s\n", note, describe(d.Step), d.Diff)
	}
	if c.DryRun {
		writePlan(e.stdout, p.Plan)
		return nil
	}
	res, err := a.Run(e.ctx, p)
	prog.done()
	if err != nil {
		return err
	}
	if res.Outcome == steps.OutcomeUnchanged {
		fmt.Fprintf(e.stdout, "%s: nothing to do\n", c.File)
	} else { // a repair too is applied, as a new generation
		fmt.Fprintf(e.stdout, "%s: applied, %s run\n", c.File, plural(res.Ran, "op"))
	}
	for _, k := range res.Kept {
		fmt.Fprintf(e.stdout, "kept %s: content edited by hand since cairn wrote it, sha256 %s; `cairn journal kept %s` prints it\n", quotePath(k.Path), k.Sum, quotePath(k.Path))
	}
	return nil
}

// journalRead is a journal file as a move with --repair reads it for the
// no-op's proof.
type journalRead struct {
	data  []byte      // the file's bytes; nil when the command reads it itself
	info  fs.FileInfo // what fstat said of the open file before it was read
	stamp time.Time   // taken just before that stat: the racy rule's
	sum   string      // the bytes' sha256; "" when they INCLUDE others
}

// readJournal reads FILE for a move with --repair that may take or use a
// no-op's proof. The bytes' stat, stamp and sha256 are given only when
// they hold no INCLUDE (every step is then of these bytes alone). A move
// without --repair, a dry run and one whose every check is a full one
// take no proof: it reads nothing, and the command reads the file.
func (c *journalApplyCmd) readJournal() (journalRead, error) {
	if !c.mayProve() {
		return journalRead{}, nil
	}
	stamp := time.Now()
	data, info, err := journal.ReadFileInfo(c.File) // read, not mapped: loadJournalData
	if err != nil {
		return journalRead{}, &exitError{code: exitBadInput, err: fileError(err)}
	}
	if bytes.Contains(data, []byte(journal.OpInclude)) {
		return journalRead{data: data}, nil
	}
	h := sha256.Sum256(data)
	return journalRead{data: data, info: info, stamp: stamp, sum: hex.EncodeToString(h[:])}, nil
}

// mayProve reports whether the move may take or use a no-op's proof: a
// repair that is no dry run, and not one of every run a full one.
func (c *journalApplyCmd) mayProve() bool {
	return c.Repair && !c.DryRun && c.RehashEvery > 1
}

// quickNoop runs a move with --repair as a no-op if the state's proof of
// the last no-op holds (steps.QuickNoop), and reports whether it did.
func (c *journalApplyCmd) quickNoop(e *env, root *rootfs.Root, stateDir string) bool {
	if !c.mayProve() {
		return false
	}
	// It keeps what it reads (the proof, a megabyte for 10,000 files) to
	// its end: the collector would only scan it.
	defer gcPercent(-1)()
	opts := steps.Options{Root: root, StateDir: stateDir, Log: newLogger(e.stderr, e.level), RehashEvery: c.RehashEvery}
	return steps.QuickNoop(e.ctx, opts, steps.QuickMove{Journal: c.File, Commit: c.Commit, Branch: c.Branch, Group: c.Group})
}

// The heap a move of n steps may grow to before the collector must run
// (applyGC): applyHeapBase, and applyHeapPerStep a step. A move holds
// about 1.1 KiB a step at its end (the journal, the plan, an undo image
// and an original image a step: bench/run.sh -s cold, 10,000 files), so
// the limit stays above what is live at any size, and the collector is
// never made to run without end.
const (
	applyHeapBase    = 8 << 20
	applyHeapPerStep = 1536
)

// applyGC sets the collector for a move of n steps (those of the new
// journal and of the applied one: a limit from the new alone sat below the
// live heap of a move that removes most steps, and the collector ran
// without end, 1,000 collections for 10,000 removed) and returns the
// function that restores it: the heap may grow by half of what is live
// (GOGC 50, not 100) and is softly bounded by applyHeapBase and
// applyHeapPerStep a step. The garbage of a move is many small pieces of
// work per file while what stays live grows with every step: at the
// default setting, a cold apply of 10,000 files peaked at twice its live
// heap. GOGC or GOMEMLIMIT in the environment is left as the operator set
// it.
func applyGC(n int) (restore func()) {
	limit := int64(-1) // a limit of -1 only reads
	restoreGC := gcPercent(50)
	if os.Getenv("GOMEMLIMIT") == "" && debug.SetMemoryLimit(-1) == math.MaxInt64 {
		limit = debug.SetMemoryLimit(applyHeapBase + int64(n)*applyHeapPerStep)
	}
	return func() {
		restoreGC()
		if limit >= 0 {
			debug.SetMemoryLimit(limit)
		}
	}
}

// openInputs opens the directory of a move's inputs (--source, --blobs) as
// a treefs.Dir, and returns it with the function that closes it. A
// directory that cannot be opened (missing: a journal with no COPY - has no
// blob directory) is a file system whose every open fails that way, so that
// only a step that needs it fails, naming its input.
func openInputs(dir string) (fs.FS, func()) {
	d, err := treefs.OpenDir(dir)
	if err != nil {
		return failingFS{err: err}, func() {}
	}
	return d, func() { d.Close() }
}

// failingFS is a file system that could not be opened: every open fails
// with its error.
type failingFS struct{ err error }

func (f failingFS) Open(name string) (fs.File, error) {
	var pe *fs.PathError
	err := f.err
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return nil, &fs.PathError{Op: "open", Path: name, Err: err}
}

// gcPercent sets the collector's GOGC percentage for a command, unless
// the operator set GOGC, whose setting wins, and returns the function that
// puts it back.
func gcPercent(percent int) (restore func()) {
	if os.Getenv("GOGC") != "" {
		return func() {}
	}
	old := debug.SetGCPercent(percent)
	return func() { debug.SetGCPercent(old) }
}

// checkRehashEvery refuses a drift check's re-hash period under 1 (the
// flag --rehash-every of journal apply and of the agent's commands): 0
// would quietly mean the default.
func checkRehashEvery(n int) error {
	if n < 1 {
		return &exitError{code: exitBadInput, err: fmt.Errorf("--rehash-every %d: must be 1 or more", n)}
	}
	return nil
}
