package steps

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/cairn-cm/cairn/journal"
	"github.com/cairn-cm/cairn/rootfs"
	"github.com/cairn-cm/cairn/statedir"
	"golang.org/x/sys/unix"
)

// Options configure an Applier.
type Options struct {
	// Root is where object paths resolve.
	Root *rootfs.Root
	// StateDir is the state directory, a host path; "" is DefaultStateDir
	// beneath the root, resolved there like every object path.
	StateDir string
	// Create makes the state directory if it is missing; without it a missing
	// state directory reads as "nothing applied yet" and cannot be applied to.
	Create bool
	// Wait is how long to wait for another process's lock; 0 fails at once.
	Wait time.Duration
	// Log receives warnings and progress; nil discards them.
	Log *slog.Logger
	// Output receives what EXEC and CHECK commands print.
	Output io.Writer
	// Host holds the drivers of users, packages, units and outside tools.
	Host Host
	// Kill, once closed, kills the move that runs: see Applier.Run. Nil
	// never kills.
	Kill <-chan struct{}
	// Observer is told of every op a move runs or undoes; nil observes
	// nothing.
	Observer Observer
	// RehashEvery makes every Nth drift check hash every file whatever
	// the stat cache says (statcache.go); 1 hashes every file at every
	// check (no cache), 0 is DefaultRehashEvery.
	RehashEvery int
	// SaveStatCache makes Drift write the stat cache back, as the drift
	// check of a move's plan does: the agent's periodic checks then hash
	// only what changed. Commands that only read the state leave it off.
	SaveStatCache bool
}

// Applier moves a host between journals through its state directory. Open
// one per command; it holds the state lock until Close.
type Applier struct {
	early *earlySync // the move's syncfs under way, if any
	env   *Env
	st    *state // nil when the state directory does not exist
	dir   string // as given: "" for DefaultStateDir
	kill  <-chan struct{}
	obs   Observer
	total int // the ops that act in the move that runs (OpEvent.Total)
	// rehash is Options.RehashEvery, the default applied.
	rehash int
	// lastStats is the stat cache of the last drift check (its counts).
	lastStats *statCache
	// saveStats is Options.SaveStatCache.
	saveStats bool
}

// Open opens and locks the state directory, checks that it belongs to this
// root, and undoes a move that a dead process left half done, before
// anything else: that undo is never stopped, not even by ctx.
func Open(ctx context.Context, opts Options) (*Applier, error) {
	env := &Env{Root: opts.Root, Log: opts.Log, Output: opts.Output, Host: opts.Host}
	st, err := openState(opts.Root, opts.StateDir, opts.Create, opts.Wait)
	if err != nil {
		return nil, err
	}
	a := &Applier{env: env, st: st, dir: opts.StateDir, kill: opts.Kill, obs: opts.Observer, rehash: opts.RehashEvery, saveStats: opts.SaveStatCache}
	if a.rehash <= 0 {
		a.rehash = DefaultRehashEvery
	}
	if st != nil {
		env.Blobs = st.blobs
		if err := a.recover(ctx); err != nil {
			a.Close()
			return nil, err
		}
	}
	return a, nil
}

// Close releases the state lock.
func (a *Applier) Close() error {
	a.st.close()
	return nil
}

// Env returns the host environment the applier acts on.
func (a *Applier) Env() *Env { return a.env }

// Applied returns what the state records as applied (an empty journal when
// nothing was).
func (a *Applier) Applied() *Applied {
	if a.st == nil {
		return &Applied{Version: 1, Originals: map[string]Image{}}
	}
	return a.st.applied
}

// Move is a request to move the host to a journal.
type Move struct {
	// Journal names the file the steps came from, for the state's record.
	Journal string
	// Commit is the git commit the journal was compiled from, if any;
	// Branch is the branch it was the tip of, and Group the host group the
	// journal was compiled for. The state records all three.
	Commit string
	Branch string
	Group  string
	// Steps is the new journal, INCLUDEs expanded.
	Steps []journal.Step
	// Source is the tree that COPY SRC paths, and the inputs of
	// KUBECTL-APPLY and PLAYBOOK, are read from: a directory on disk
	// (treefs.OpenDir, which refuses links that lead out of it, FIFOs and
	// devices) or a git commit (agent/gitfs). Nil when no step needs it.
	Source fs.FS
	// SourceName names Source in messages: an input is named
	// SourceName/PATH ("" names it PATH).
	SourceName string
	// Blobs holds the content of COPY - steps, a file named by each
	// sha256: the compiler's blob directory, or another blob store
	// (blobstore.Store.FS). Nil when the compiler wrote that content
	// straight into the state's blob store.
	Blobs fs.FS
	// BlobsName names Blobs in messages, as SourceName names Source.
	BlobsName string
	// Repair also runs forward every unchanged step whose live state drifted.
	Repair bool
	// JournalSum is the sha256 (hex) of the bytes of the journal file that
	// Steps were read from, when they are all from that file (no INCLUDE);
	// else "". A repair with nothing to do then writes the proof that
	// QuickNoop reads. JournalInfo is what stat said of that file before
	// it was read (nil: unknown): a later run that finds the file as it
	// was, and not racy against JournalStamp, need not read it.
	// JournalStamp is the time taken just before that stat (zero: unknown,
	// and every key is racy): a file changed after it, within the clock's
	// tick of the file system, may keep its stat.
	JournalSum   string
	JournalInfo  fs.FileInfo
	JournalStamp time.Time
	// DryRun makes Plan only check the inputs, not keep them: the state
	// directory is left as it is (it need not exist), and the plan cannot
	// run.
	DryRun bool
	// AllowRemoval allows a move to a journal that manages no object from
	// one that manages some: without it, such a move (an empty journal
	// from a compile that failed) is refused.
	AllowRemoval bool
}

// Result says what a move did.
type Result struct {
	Plan     *journal.Plan
	Outcome  Outcome
	Repaired []Drifted // unchanged steps run again because they drifted
	Ran      int       // ops run (notes excluded)
	// Kept is the content, edited by hand after cairn wrote it, that the
	// move replaced or removed and the state now keeps (Applier.OpenKept).
	Kept []Kept
}

// Outcome is what a move that succeeded did to the host.
type Outcome uint8

// The outcomes of a move.
const (
	// OutcomeUnchanged: nothing to do; the applied journal stays, and so
	// does its generation.
	OutcomeUnchanged Outcome = iota
	// OutcomeApplied: the host moved to the new journal (a new generation).
	OutcomeApplied
	// OutcomeRepaired: the journal was already applied; steps that drifted
	// ran again (Move.Repair), as a new generation.
	OutcomeRepaired
)

// String returns "unchanged", "applied" or "repaired".
func (o Outcome) String() string {
	switch o {
	case OutcomeApplied:
		return "applied"
	case OutcomeRepaired:
		return "repaired"
	}
	return "unchanged"
}

// Planned is a move computed and checked against the host, ready to run:
// Applier.Plan makes it, Applier.Run runs it. Until it runs, nothing has
// changed on the host.
type Planned struct {
	// Plan is the diff from the applied journal to the new one, with a
	// Rerun op for every step that drifted when the move repairs.
	Plan *journal.Plan
	// Drifted are the unchanged steps whose live state drifted, which the
	// plan runs again (Move.Repair only).
	Drifted []Drifted
	// Managed is the number of identities (objects of a family: paths,
	// users, packages, ...) that the applied journal manages; Removed is
	// how many of them the new journal manages no more, whose steps the
	// plan takes back. An agent's blast-radius guard compares the two.
	Managed, Removed int

	a        *Applier
	base     *Applied // the applied journal the plan starts from
	move     Move
	newLines []string // canonical lines of move.Steps
	ran      bool
	// proof is what the drift check of a no-op read, for its proof; stats
	// is that check's stat cache.
	proof *proofRecorder
	stats *statCache
}

// Plan computes the move from the applied journal to m.Steps and checks
// everything that can be checked before the first change: the journal's
// static checks, the drift of unchanged steps (with m.Repair), the removal
// guard (m.AllowRemoval), every input, and the plan against the host
// (preflight). Unless m.DryRun, it keeps COPY content in the blob store.
// Its errors are *InputError (exit 2, nothing changed) or a drift check's.
func (a *Applier) Plan(ctx context.Context, m Move) (*Planned, error) {
	if a.st == nil && !m.DryRun {
		return nil, inputErrorf("state directory %s does not exist", a.stateName())
	}
	if err := a.closed(); err != nil {
		return nil, err
	}
	p, err := a.plan(ctx, m)
	if err != nil && !m.DryRun {
		a.st.discardNew()
	}
	return p, err
}

// closed refuses a move of an Applier whose state directory is closed:
// by Close, or by discardNew, when a failed Plan or Run of a first move
// removed the directory this Applier made, which held nothing yet.
func (a *Applier) closed() error {
	if a.st != nil && a.st.closed {
		return inputErrorf("state directory %s is closed (the applier was closed, or a failed first move removed the directory it made): open it again", a.stateName())
	}
	return nil
}

func (a *Applier) plan(ctx context.Context, m Move) (*Planned, error) {
	in, err := a.planInputs(m)
	if err != nil {
		return nil, err
	}
	base, newLines, oldSteps, plan := in.base, in.newLines, in.oldSteps, in.plan
	p := &Planned{Plan: plan, a: a, base: base, move: m, newLines: newLines}
	p.Managed, p.Removed = removedIdentities(oldSteps, m.Steps, plan.Removed)
	if m.Repair {
		// A proof is of use to the next run unless every run is full.
		proof := m.JournalSum != "" && a.rehash > 1 && isNoop(plan, m, base)
		drifted, recorded, err := a.drift(ctx, m.Steps, plan, in.stats, !m.DryRun, proof)
		if err != nil {
			return nil, err
		}
		p.Drifted = drifted
		if len(drifted) == 0 {
			p.proof, p.stats = recorded, in.stats
		}
		for _, d := range drifted {
			plan.Ops = append(plan.Ops, journal.Op{Action: journal.Rerun, Step: d.Step})
		}
	}
	if err := a.guardRemoval(oldSteps, m); err != nil {
		return nil, err
	}
	if !isNoop(plan, m, base) {
		if err := base.checkImages(); err != nil {
			return nil, err
		}
	}
	if err := a.preflight(plan, m); err != nil {
		return nil, err
	}
	return p, nil
}

// removedIdentities counts the identities that the old steps manage, and
// those of them that the new steps do not. Only a step the plan removes
// can take an identity away, so the new steps are looked at only when
// there is one. Identities are kept as (family, object) pairs, which
// need no string built per step: a plan of 10,000 unchanged steps is
// counted without an allocation per step.
func removedIdentities(oldSteps, newSteps []journal.Step, removedSteps []*journal.Step) (managed, removed int) {
	type identity struct{ family, object string }
	identityOf := func(s *journal.Step) (identity, bool) {
		sig := s.Signature()
		if sig == nil || sig.Family == "" {
			return identity{}, false
		}
		return identity{sig.Family, s.Args[sig.IdentityArg]}, true
	}
	seen := make(map[identity]bool, len(oldSteps))
	for i := range oldSteps {
		if id, ok := identityOf(&oldSteps[i]); ok {
			seen[id] = true
		}
	}
	if len(removedSteps) == 0 {
		return len(seen), 0
	}
	kept := make(map[identity]bool, len(newSteps))
	for i := range newSteps {
		if id, ok := identityOf(&newSteps[i]); ok {
			kept[id] = true
		}
	}
	gone := map[identity]bool{}
	for _, s := range removedSteps {
		if id, ok := identityOf(s); ok && !kept[id] {
			gone[id] = true
		}
	}
	return len(seen), len(gone)
}

// Run runs a move that Plan made on this Applier, exactly as planned, and
// commits it. It refuses (an *InputError, nothing changed) a plan of
// another Applier, of a dry run, one that ran already, one whose state
// directory is closed (Close, or a failed first move that removed it),
// and one whose applied journal is no longer the applied one. Errors: *StepError or
// *MoveError (exit 1, the host is back where it was), *UndoError (exit 3,
// the intent log is kept).
//
// A move is stopped in two ways, which the command line maps to a first and
// a second SIGINT or SIGTERM: ctx stops it between ops, Options.Kill kills
// the op that runs; apt-get, dpkg and every undo run to their end. The
// package doc ("Stopping a move") is the contract.
func (a *Applier) Run(ctx context.Context, p *Planned) (*Result, error) {
	closed := a.closed()
	switch {
	case p == nil || p.a != a:
		return nil, inputErrorf("the plan was made by another applier: refused")
	case p.move.DryRun:
		return nil, inputErrorf("the plan of a dry run does not run")
	case p.ran:
		return nil, inputErrorf("the plan ran already")
	case closed != nil:
		return nil, closed
	case a.st.applied != p.base: // a plan that is no dry run has a state
		return nil, inputErrorf("the applied journal of state directory %s changed since the plan was made: refused", a.stateName())
	}
	p.ran = true
	res, err := a.runPlanned(ctx, p)
	if err != nil && ExitCode(err) != ExitUndoFailed {
		a.st.discardNew()
	}
	return res, err
}

// Apply moves the host from the applied journal to m.Steps: Plan, then Run
// (with m.DryRun, Plan only: the Result has the plan and the drifted steps).
func (a *Applier) Apply(ctx context.Context, m Move) (*Result, error) {
	p, err := a.Plan(ctx, m)
	if err != nil {
		return nil, err
	}
	if m.DryRun {
		return &Result{Plan: p.Plan, Repaired: p.Drifted}, nil
	}
	return a.Run(ctx, p)
}

func (a *Applier) runPlanned(ctx context.Context, p *Planned) (*Result, error) {
	m, plan := p.move, p.Plan
	res := &Result{Plan: plan, Repaired: p.Drifted}
	h := HistoryEntry{Journal: m.Journal, Commit: m.Commit, Branch: m.Branch, Group: m.Group}
	// Nothing to do, and nothing to record: the same steps from the same
	// commit. The same steps from another commit (a revert, a change that
	// is not this host's) is a move all the same, with no op to run: the
	// host is now at that commit, and an agent comparing the applied
	// commit with its target must see it there.
	cur := a.st.applied
	if isNoop(plan, m, cur) {
		if p.proof != nil {
			if err := writeNoopProof(a.st.dir, p.proof, p.stats, m, cur); err != nil {
				if !errors.Is(err, errNoProof) {
					a.env.logger().Warn("the no-op's proof is not written: the next run checks in full", "error", err)
				}
				removeNoopProof(a.st.dir)
			}
		}
		h.Time, h.Generation, h.Result = time.Now().UTC(), cur.Generation, HistoryNoop
		a.st.record(h)
		return res, nil
	}
	start := time.Now()
	next := &Applied{
		Version:    1,
		Generation: a.st.applied.Generation + 1,
		Journal:    m.Journal,
		Commit:     m.Commit,
		Branch:     m.Branch,
		Group:      m.Group,
		Steps:      appliedSteps(m.Steps, p.newLines),
	}
	ran, err := a.run(ctx, plan, next, m.Steps)
	res.Ran = ran
	h.Time, h.Ops, h.Seconds = start.UTC(), ran, time.Since(start).Seconds()
	if err != nil {
		h.Generation, h.Result, h.Error = a.st.applied.Generation, HistoryFailed, err.Error()
		var undo *UndoError
		if errors.As(err, &undo) {
			h.Result = HistoryUndoFailed
		}
		a.st.record(h)
		return res, err
	}
	h.Generation, h.Result = next.Generation, HistoryApplied
	a.st.record(h)
	res.Outcome = OutcomeApplied
	if plan.Empty() && plan.Acts() {
		res.Outcome = OutcomeRepaired
	}
	res.Kept = keptBy(next.Kept, next.Generation)
	a.reportKept(res.Kept)
	return res, nil
}

// isNoop reports whether a move with plan, from cur, has nothing to do and
// nothing to record: no op, and the same source (see runPlanned). Such a
// move reads no original image.
func isNoop(plan *journal.Plan, m Move, cur *Applied) bool {
	sameSource := m.Commit == cur.Commit && m.Branch == cur.Branch && m.Group == cur.Group
	return !plan.Acts() && plan.Empty() && sameSource
}

// static runs the journal's static checks and this build's own: a driver
// for every kind, and no managed path inside the state directory.
func (a *Applier) static(steps []journal.Step) journal.ErrorList {
	errs := journal.Check(steps)
	var out journal.ErrorList
	for _, e := range errs {
		if e.Severity == journal.SevError {
			out = append(out, e)
		} else {
			a.env.logger().Warn(e.Error())
		}
	}
	stateRels := a.stateRels()
	for i := range steps {
		s := &steps[i]
		if LookupKind(s.Op) == nil {
			out = append(out, &journal.Error{Pos: s.Pos, Msg: s.Op + ": this build of cairn has no driver for this kind of step"})
			continue
		}
		if word, bad := notText(s); bad {
			out = append(out, &journal.Error{Pos: s.Pos, Msg: fmt.Sprintf("%s %q: %q is no valid UTF-8, which cairn's state cannot keep", s.Op, s.Object(), word)})
			continue
		}
		if p := s.Path(); p != "" && s.Signature().Family == journal.FamilyPath {
			for _, stateRel := range stateRels {
				if touchesState(s.Op, p, stateRel) {
					out = append(out, &journal.Error{Pos: s.Pos, Msg: fmt.Sprintf("%s %s: the path holds or lies in cairn's state directory %s", s.Op, p, stateRel)})
					break
				}
			}
		}
	}
	out.Sort()
	return out
}

// notText returns the first word of a step that manages an object (one of
// a family) that is no valid UTF-8. applied.json and the intent log are
// JSON, whose encoder writes U+FFFD for each byte of a string that is no
// UTF-8, and the object's name, its images and its records hold the
// step's words: a link's target, a user's home. Such a step could make an
// object that no later move could undo.
func notText(s *journal.Step) (string, bool) {
	if sig := s.Signature(); sig == nil || sig.Family == "" {
		return "", false
	}
	for _, a := range s.Args {
		if !utf8.ValidString(a) {
			return a, true
		}
	}
	for _, a := range s.Attrs {
		if !utf8.ValidString(a.Value) {
			return a.Value, true
		}
	}
	return "", false
}

// StateDir returns the host path of the state directory, where it really
// is, or "" when there is none (opened without Options.Create). The agent
// keeps its mirror of the configuration repository there, under the lock.
func (a *Applier) StateDir() string {
	if a.st == nil {
		return ""
	}
	return a.st.dir
}

// Blobs returns the state's blob store, or nil when there is no state
// (opened without Options.Create). The agent compiles into it (its PutBlob
// is the compiler's blob sink) and moves with its FS as Move.Blobs, so that
// rendered content is stored once and never written to a directory.
func (a *Applier) Blobs() *Blobs {
	if a.st == nil {
		return nil
	}
	return a.st.blobs
}

// stateName names the state directory for messages.
func (a *Applier) stateName() string {
	switch {
	case a.st != nil:
		return a.st.dir
	case a.dir != "":
		return a.dir
	}
	return DefaultStateDir + " beneath the root " + a.env.Root.Path()
}

// stateRels returns the object paths at which the state directory lies
// beneath the root: the default one, and where it really is (through the
// root's links, or as the host path given).
func (a *Applier) stateRels() []string {
	var out []string
	if a.dir == "" {
		out = append(out, DefaultStateDir)
	}
	var dirs []string
	if a.dir != "" {
		dirs = append(dirs, a.dir)
		if real, err := filepath.EvalSymlinks(a.dir); err == nil {
			dirs = append(dirs, real)
		}
	}
	if a.st != nil {
		dirs = append(dirs, a.st.dir)
	}
	roots := []string{a.env.Root.Path()}
	if real, err := a.env.Root.RealPath(); err == nil {
		roots = append(roots, real)
	}
	for _, d := range dirs {
		for _, r := range roots {
			rel, err := filepath.Rel(r, d)
			if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
				continue
			}
			if p := "/" + filepath.ToSlash(rel); !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	return out
}

// touchesState reports whether a step on path p would manage cairn's state
// directory stateRel, or a path inside it, or replace a directory that holds
// it with something else (a MKDIR of a parent only sets its mode and owner).
func touchesState(op, p, stateRel string) bool {
	if p == stateRel || strings.HasPrefix(p, stateRel+"/") {
		return true
	}
	return strings.HasPrefix(stateRel, p+"/") && op != journal.OpMkdir
}

// guardRemoval refuses a move that would undo what the applied journal did
// (remove every object it manages, run the undo of every EXEC that has
// one) to a journal that manages no object, unless m allows it.
func (a *Applier) guardRemoval(oldSteps []journal.Step, m Move) error {
	if m.AllowRemoval {
		return nil
	}
	// The new journal manages something (the first step, as a rule): that
	// is all there is to know, and the old steps are not counted.
	for i := range m.Steps {
		if m.Steps[i].Identity() != "" {
			return nil
		}
	}
	managed, undos := 0, 0
	for i := range oldSteps {
		s := &oldSteps[i]
		if s.Identity() != "" {
			managed++
		} else if _, ok := s.Lookup("undo"); ok && s.Op == journal.OpExec {
			undos++
		}
	}
	if managed+undos == 0 {
		return nil
	}
	name := m.Journal
	if name == "" {
		name = "the journal"
	}
	if undos == 0 {
		return inputErrorf("%s manages no object: the move would remove every object the applied journal manages (%s); %w", name, plural(managed, "object"), ErrRemoval)
	}
	what := "the undo of " + plural(undos, "command")
	if managed > 0 {
		what = plural(managed, "object") + " and " + what
	}
	return inputErrorf("%s manages no object: the move would undo what the applied journal did (%s); %w", name, what, ErrRemoval)
}

// preflight checks, before anything changes, everything the plan needs
// that the run would otherwise find missing halfway: every input, and the
// plan against the host (hostCheck). It keeps COPY content in the blob
// store so that no later inverse or rollback needs the source again; a dry
// run only checks it.
func (a *Applier) preflight(plan *journal.Plan, m Move) error {
	errs := a.hostCheck(plan)
	sink := a.sink(m.DryRun)
	copies := 0 // the most inputs to read: a cold apply's slice and map are then not grown 14 times
	for _, op := range plan.Ops {
		if op.Step.Op == journal.OpCopy && op.Action != journal.Inverse {
			copies++
		}
	}
	work := make([]blobJob, 0, copies)
	queued := make(map[string]bool, copies)
	packagesChecked := false
	predicting := true // no op before this one may have changed anything
	for _, op := range plan.Ops {
		s := op.Step
		if s.Op == journal.OpAptInstall && !op.Noop && !packagesChecked && predicting {
			// Refuse a plan with packages where none can be managed (a
			// --root without a Debian system) before anything changes,
			// unless a command before may make that system.
			packagesChecked = true
			if a.env.Packages == nil {
				errs = append(errs, &journal.Error{Pos: s.Pos, Msg: s.Op + ": no package driver on this host"})
			} else if err := a.env.Packages.Usable(); err != nil {
				errs = append(errs, &journal.Error{Pos: s.Pos, Msg: s.Op + " " + s.Object() + ": " + err.Error()})
			}
		}
		if !op.Noop && mayChangeAnything(s) {
			predicting = false
		}
		if isToolOp(s.Op) { // KUBECTL-APPLY, PLAYBOOK: tools.go
			errs = append(errs, a.toolInputs(op, m.Source, m.SourceName, queued, sink)...)
			continue
		}
		switch op.Action {
		case journal.Inverse:
			if _, ok := LookupKind(s.Op).(Imager); ok {
				if _, ok := a.Applied().Images()[s.Identity()]; !ok {
					errs = append(errs, &journal.Error{Pos: s.Pos, Msg: "state: no original image of " + s.Identity() + " to restore"})
				}
			}
		case journal.Forward, journal.Update, journal.Rerun:
			if s.Op != journal.OpCopy {
				continue
			}
			sum := s.Get("sha256")
			if queued[sum] || sink.Has(sum) {
				continue
			}
			queued[sum] = true
			j := blobJob{step: s, fsys: m.Blobs, name: sum, dir: m.BlobsName, sum: sum}
			if src := s.Args[0]; src != "-" {
				j.fsys, j.name, j.dir = m.Source, path.Clean(src), m.SourceName
			}
			work = append(work, j)
		}
	}
	errs = append(errs, a.ingest(work, sink)...)
	if len(errs) > 0 {
		errs.Sort()
		return &InputError{Err: errs}
	}
	return nil
}

// blobJob is a COPY input to keep: the file name of fsys, named in
// messages by its path in dir (the directory fsys is, as the move names
// it).
type blobJob struct {
	step *journal.Step
	fsys fs.FS
	name string
	dir  string
	sum  string
}

// source names the input in messages, its path joined only when one
// needs it: a cold apply of 10,000 files held 0.5 MB of such names at the
// largest live heap of its move.
func (j *blobJob) source() sourceName { return sourceName{j.dir, j.name} }

// ingest copies COPY sources into the blob store, checking their sha256,
// several at a time.
func (a *Applier) ingest(work []blobJob, sink blobSink) journal.ErrorList {
	if r, ok := sink.(interface{ Reserve(n int) }); ok {
		r.Reserve(len(work))
	}
	errs := make([]error, len(work))
	parallel(len(work), func(i int) {
		j := work[i]
		if _, err := putInput(sink, j.fsys, j.name, j.source(), j.sum); err != nil {
			errs[i] = err
		}
	})
	store := a.stateName() + "/" + blobsDir
	var out journal.ErrorList
	for i, err := range errs {
		if err != nil {
			s := work[i].step
			out = append(out, &journal.Error{Pos: s.Pos, Msg: fmt.Sprintf("COPY %s: %s", s.Args[0], blame(err, work[i].source().String(), store))})
		}
	}
	return out
}

// blame says which side of a copy into the blob store failed: "source
// FILE: ..." for reading the source (or content that does not match its
// sha256), "storing in the blob store DIR: ..." for writing the store (a
// full disk).
func blame(err error, file, store string) string {
	var pe *os.PathError
	var mismatch *HashMismatchError
	switch {
	case errors.As(err, &mismatch):
		return "source " + file + ": " + mismatch.Error()
	case errors.As(err, &pe) && pe.Path == file:
		return "source " + file + ": " + pe.Err.Error()
	case errors.As(err, &pe) && (pe.Path == store || strings.HasPrefix(pe.Path, store+"/")),
		errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT), errors.Is(err, syscall.EROFS):
		if pe != nil && !errors.Is(err, statedir.ErrNotCairns) { // that one names its file
			err = pe.Err
		}
		return "storing in the blob store " + store + ": " + strings.TrimPrefix(err.Error(), "blob store: ")
	}
	return "source " + file + ": " + err.Error()
}

// executed is an op that ran (or may have run) and how to undo it.
type executed struct {
	step   *journal.Step
	action journal.Action
	undo   *Image
	kept   *Kept // content edited by hand that the op replaces
	index  int   // its place among the ops that act, from 1 (OpEvent)
}

// maxBatch bounds the ops whose undo images one fsync of the intent log
// makes durable. A variable only for the tests, which run moves of a few
// ops in many batches (SetMaxBatch).
var maxBatch = 1024

// run records and runs the ops of a plan, then commits next as applied. On
// failure it undoes what ran.
//
// Ops run in batches: the undo images of a batch are taken and logged with
// one fsync before any op of the batch runs. An image is taken just before
// its op joins the batch, so it must not be changed by an earlier op of the
// same batch; a batch therefore ends after an op that is not a path op (a
// command may change anything), and before a path beneath one that an op of
// the batch turns from or into a link (the image would be taken through the
// old link).
func (a *Applier) run(ctx context.Context, plan *journal.Plan, next *Applied, steps []journal.Step) (int, error) {
	log := newIntent(a.st.dir)
	defer log.close()
	log.add(&intentRecord{T: "plan", From: a.st.applied.Generation, To: a.st.applied.Generation + 1, Boot: bootID()})
	c := newCancellation(ctx, a.kill)
	defer c.release()
	a.early = new(earlySync)
	defer a.early.wait() // the root stays open until it is done
	a.total = plan.Acting()
	b := batch{a: a, log: log, c: c, view: newView(), done: make([]executed, 0, a.total)}
	defer b.view.forgetMissing() // closes the directory it may hold
	defer b.land()               // (every return but a panic has landed)
	index := 0
	for i := range plan.Ops {
		op := &plan.Ops[i]
		if op.Noop {
			continue
		}
		index++
		kind := LookupKind(op.Step.Op)
		im, hasImage := kind.(Imager)
		pathOp := hasImage && op.Step.Signature().Family == journal.FamilyPath
		joins := isBatchForward(op.Step, op.Action)
		if len(b.pending) == maxBatch || (pathOp && b.beneathRelinked(op.Step.Object())) || b.endsRun(op.Step, joins) {
			if err := b.execute(ctx); err != nil {
				return b.ran, err
			}
		}
		ex := executed{step: op.Step, action: op.Action, index: index}
		if hasImage {
			// Taking the image is part of the op: the first signal lets it
			// end (the batch then stops before the op), a kill ends it.
			capture := func() (Image, error) {
				if pathOp {
					return captureIn(a.env, op.Step, b.view)
				}
				return im.Capture(c.opContext(op.Step, doImage), a.env, op.Step)
			}
			img, err := capture()
			if err != nil && b.flight != nil {
				// The image failed while ops ran: look again once they
				// landed, the pending ones not run, as without a flight.
				if ferr := b.land(); ferr != nil {
					return b.ran, a.fail(ctx, log, b.done, ferr)
				}
				img, err = capture()
			}
			if err == nil && pathOp && img.Place != nil && img.Place.unsettled && (len(b.pending) > 0 || b.flight != nil) {
				// The object's directory lies beyond a link that the
				// pending ops, or those in flight, may give a target: run
				// them, then look again.
				if err := b.drain(ctx); err != nil {
					return b.ran, err
				}
				img, err = capture()
			}
			if err != nil {
				err = &StepError{Step: op.Step, Action: op.Action, Err: fmt.Errorf("before-image: %w", err)}
				a.observe(b.event(ex), func() error { return err })
				return b.ran, a.fail(ctx, log, b.done, err)
			}
			ex.undo = b.keepUndo(img)
			ex.kept = a.keptBefore(op, ex.undo)
		}
		log.add(&intentRecord{T: "op", I: b.recorded, Action: op.Action.String(), Step: op.Step.Canonical(), At: op.Step.Pos.String(), Undo: ex.undo})
		b.recorded++
		b.pending = append(b.pending, ex)
		if !pathOp && !joins {
			if err := b.execute(ctx); err != nil {
				return b.ran, err
			}
			continue
		}
		if a.relinks(ex) {
			b.relinked.Set(op.Step.Object(), true)
		}
	}
	if err := b.drain(ctx); err != nil {
		return b.ran, err
	}
	log.release()
	// A stop that came while the last ops ran stops the move as one that
	// came earlier does: it is undone, not committed.
	if err := c.stopped(); err != nil && len(b.done) > 0 {
		return b.ran, a.fail(ctx, log, b.done, fmt.Errorf("stopped before the move was committed: %w", err))
	}
	// The commit point: everything durable, then the new applied journal.
	if err := a.syncAll(); err != nil {
		return b.ran, a.fail(ctx, log, b.done, err)
	}
	next.Time = time.Now().UTC()
	originals, err := a.nextOriginals(b.done, steps)
	if err != nil {
		return b.ran, a.fail(ctx, log, b.done, fmt.Errorf("state: encoding the original images: %w", err))
	}
	// As in an Applied read from the state directory, the images stay
	// encoded; this move encoded them, so they need no check that they
	// decode (checked).
	next.lazy = &lazyImages{name: filepath.Join(a.st.dir, appliedFile), raw: originals, checked: true}
	next.Kept = a.nextKept(b.done, next)
	if err := a.st.commit(next); err != nil {
		return b.ran, a.fail(ctx, log, b.done, err)
	}
	if err := removeIntent(a.st.dir); err != nil {
		a.env.logger().Warn("move committed, but the intent log stays; the next run drops it", "err", err)
	}
	return b.ran, nil
}

// endsRun reports whether the pending ops must run before op joins them: a
// run of batched forward ops (a BatchForwarder's) is pending alone, its ops
// all of one kind, since their images are taken before any of them runs.
func (b *batch) endsRun(s *journal.Step, joins bool) bool {
	if len(b.pending) == 0 {
		return false
	}
	last := b.pending[len(b.pending)-1]
	inRun := isBatchForward(last.step, last.action)
	if !inRun && !joins {
		return false
	}
	return !inRun || !joins || last.step.Op != s.Op
}

// relinks reports whether an op's path is a link before it runs or will be
// one after: paths beneath it resolve differently then.
func (a *Applier) relinks(ex executed) bool {
	if ex.undo != nil && ex.undo.Type == TypeSymlink {
		return true
	}
	if ex.action == journal.Inverse {
		return a.st.applied.Images()[ex.step.Identity()].Type == TypeSymlink
	}
	return ex.step.Op == journal.OpSymlink
}

// batch is the ops whose undo images are logged but not yet durable.
type batch struct {
	a        *Applier
	c        *cancellation // the contexts ops run with (stop.go)
	log      *intentLog
	pending  []executed
	relinked journal.PathTree[bool] // paths an op of the batch turns from or into a link
	view     *view                  // the directories the run of path ops has seen
	done     []executed             // every op that ran or may have run, in order
	ran      int
	recorded int // the ops in the intent log: done, in flight and pending
	// flight is the batch running on a goroutine of its own while the
	// next one's images are taken (execute): its failure comes on it once
	// it has landed, and until then b.done and b.ran are its.
	flight   chan error
	lastUndo *Image // the undo image keepUndo kept last
}

// keepUndo returns the undo image to keep for img, the image an op just
// took: the one kept for the op before when both only say that the object
// is absent, from one Place (so the new objects of a directory share one
// image, where a cold apply of 10,000 files kept 10,000 of them, 2 MB to
// the end of the move), else img, its Place shared with that image's when
// they are equal. An image is never changed once taken: several ops may
// point to one.
func (b *batch) keepUndo(img Image) *Image {
	last := b.lastUndo
	if last != nil && img.Place != nil && last.Place != nil && *img.Place == *last.Place {
		img.Place = last.Place
		if img.absentOnly() && last.absentOnly() {
			return last
		}
	}
	kept := new(Image) // not &img, which would move every img to the heap
	*kept = img
	b.lastUndo = kept
	return kept
}

// event describes an op of the move for the observer.
func (b *batch) event(ex executed) OpEvent {
	return opEvent(ex.index, b.a.total, ex.step, ex.action, false)
}

// observeGroup runs the ops of a group (all at once, or one by one) and
// tells the observer: every op started, in order, then every op done, in
// order, with its own duration and error (durations[i], errs[i], which run
// fills in).
func (b *batch) observeGroup(group []executed, run func(durations []time.Duration, errs []error)) []error {
	durations := make([]time.Duration, len(group))
	errs := make([]error, len(group))
	obs := b.a.obs
	var events []OpEvent
	if obs != nil {
		events = make([]OpEvent, len(group))
		for i, ex := range group {
			events[i] = b.event(ex)
			obs.OpStarted(events[i])
		}
	}
	run(durations, errs)
	for i := range events {
		events[i].Duration, events[i].Err = durations[i], errs[i]
		obs.OpDone(events[i])
	}
	return errs
}

func (b *batch) beneathRelinked(p string) bool {
	for _, relinked := range b.relinked.Ancestors(p) {
		if relinked {
			return true
		}
	}
	return false
}

// execute makes the pending undo images durable, then runs their ops:
// consecutive COPYs and MKDIRs several at a time (parallelAfter: an op
// starts once the MKDIRs before it are done, since a journal makes a
// directory before what is in it; no two COPYs can depend on each other:
// a path beneath a COPY is a static error), a run of a BatchForwarder's
// forward ops in one call, the rest one by one. On failure it undoes
// everything that ran.
//
// A batch of path ops none of which makes or replaces a link runs on a
// goroutine of its own (a flight) while the loop of run takes the images of
// the next batch and writes them to the intent log; the next execute waits
// for it (land) before its own ops run. Those images find their objects
// as they would were both one batch, which the split at maxBatch only
// bounds: the ops in flight touch only their own objects and make
// directories (never links), and an image whose directory lies beyond a
// link, or that fails, is taken again once they landed. Only an image's
// Place may differ: a directory that the flight made meanwhile is its Dir,
// as it is for an image of a later batch. A cold apply of 10,000 files
// spent an eighth of its time in the images and the intent log's writes
// with the workers idle.
func (b *batch) execute(ctx context.Context) error {
	a := b.a
	pending := b.pending
	b.pending = b.pending[:0:0]
	// What the move has seen of the tree holds until a command (which may
	// change anything) or an op that makes or replaces a link runs.
	reset := b.relinked.Len() > 0
	for _, ex := range pending {
		if _, ok := LookupKind(ex.step.Op).(pathKind); !ok {
			reset = true
		}
	}
	if reset {
		b.view.reset()
	} else {
		b.view.forgetMissing()
	}
	b.relinked.Clear()
	var err error
	if len(pending) > 0 && undoNeedsBlobs(pending) {
		err = a.syncBlobs()
	}
	if err == nil && len(pending) > 0 {
		err = b.log.flush()
	}
	// The batch in flight failed first, if it did: its error is the move's.
	if ferr := b.land(); ferr != nil {
		err = ferr
	}
	if err != nil {
		return a.fail(ctx, b.log, b.done, err)
	}
	if len(pending) == 0 {
		return nil
	}
	if !reset {
		f := make(chan error, 1)
		b.flight = f
		go func() { f <- b.runOps(pending) }()
		return nil
	}
	if err := b.runOps(pending); err != nil {
		return a.fail(ctx, b.log, b.done, err)
	}
	return nil
}

// land waits for the batch in flight, if any, and returns its failure
// (the op that failed, or the stop before one), for fail.
func (b *batch) land() error {
	if b.flight == nil {
		return nil
	}
	err := <-b.flight
	b.flight = nil
	return err
}

// drain runs the pending ops and waits for them: nothing is in flight
// after it.
func (b *batch) drain(ctx context.Context) error {
	if err := b.execute(ctx); err != nil {
		return err
	}
	if err := b.land(); err != nil {
		return b.a.fail(ctx, b.log, b.done, err)
	}
	return nil
}

// runOps runs the ops of a batch whose images are durable, in groups
// (execute), appending each group to b.done before it runs. It returns the
// failure for fail to undo: the op that failed (b.done then keeps, of its
// group, the ops that may have touched something), or the stop that came
// before a group. Once all ran, a syncfs starts (earlySync).
func (b *batch) runOps(pending []executed) error {
	a := b.a
	for len(pending) > 0 {
		n := 1
		for n < len(pending) && isParallelPathOp(pending[0]) && isParallelPathOp(pending[n]) {
			n++
		}
		for n < len(pending) && isBatchForward(pending[0].step, pending[0].action) && pending[n].step.Op == pending[0].step.Op && isBatchForward(pending[n].step, pending[n].action) {
			n++
		}
		group := pending[:n]
		pending = pending[n:]
		if err := b.c.stopped(); err != nil {
			return &StepError{Step: group[0].step, Action: group[0].action, Err: fmt.Errorf("interrupted before this step: %w", err)}
		}
		b.done = append(b.done, group...)
		if bf, ok := LookupKind(group[0].step.Op).(BatchForwarder); ok && n > 1 && isBatchForward(group[0].step, group[0].action) {
			batch := make([]*journal.Step, n)
			for i, ex := range group {
				batch[i] = ex.step
			}
			// Like every op, a batch once started runs to its end:
			// cancellation is checked between ops, and a package manager
			// killed half way leaves dpkg for the undo to repair.
			var err error
			b.observeGroup(group, func(durations []time.Duration, errs []error) {
				start := time.Now()
				err = bf.ForwardBatch(b.c.opContext(group[0].step, doRun), a.env, batch)
				for i := range durations {
					durations[i] = time.Since(start)
				}
				if err != nil {
					errs[batchIndex(err, n)] = err
				}
			})
			if err != nil {
				ex := group[batchIndex(err, n)]
				return &StepError{Step: ex.step, Action: ex.action, Err: err}
			}
			b.ran += n
			continue
		}
		errs := b.observeGroup(group, func(durations []time.Duration, errs []error) {
			parallelAfter(len(group), func(i int) bool { return group[i].step.Op == journal.OpMkdir }, func(i int) {
				start := time.Now()
				errs[i] = a.runOp(b.c.opContext(group[i].step, doRun), group[i].step, group[i].action, group[i].undo)
				durations[i] = time.Since(start)
			})
		})
		for i, err := range errs {
			if err != nil {
				// An op that refused to act (its directory is not where
				// its image was taken) touched nothing: no undo for it.
				kept := b.done[:len(b.done)-len(group)]
				for j, ex := range group {
					if !touchedNothing(errs[j]) {
						kept = append(kept, ex)
					}
				}
				b.done = kept
				return &StepError{Step: group[i].step, Action: group[i].action, Err: err}
			}
		}
		b.ran += len(group)
	}
	a.early.start(a.env.Root.Syncfs)
	return nil
}

// isParallelPathOp reports whether an op runs with its neighbours in a
// group (execute): a COPY or a MKDIR forward, but not a MKDIR that replaces
// something (a link, a file). The ops before a MKDIR in a group do not wait
// for it, and one that replaces a link changes where their paths lead: the
// journal may write through the link /a (COPY /a/b/f: only a parent made by
// a later MKDIR is an error) before it makes /a a directory.
func isParallelPathOp(ex executed) bool {
	switch {
	case ex.action == journal.Inverse:
		return false
	case ex.step.Op == journal.OpCopy:
		return true
	case ex.step.Op == journal.OpMkdir:
		return ex.undo == nil || ex.undo.Absent || ex.undo.Type == TypeDir
	}
	return false
}

// BatchForwarder is a kind whose consecutive forward ops run as one call
// (APT-INSTALL: one apt-get for many packages). Each op still has its own
// undo image, taken before the batch runs; a failure undoes them all.
type BatchForwarder interface {
	// ForwardBatch runs the steps forward; an error that is a *BatchError
	// names the step that failed, else the first is blamed.
	ForwardBatch(ctx context.Context, env *Env, steps []*journal.Step) error
}

// BatchError is the failure of one step of a batch run by a BatchForwarder:
// Index is the step's place in the batch.
type BatchError struct {
	Index int
	Err   error
}

func (e *BatchError) Error() string { return e.Err.Error() }
func (e *BatchError) Unwrap() error { return e.Err }

// batchIndex returns the step of a batch that an error names, 0 if none.
func batchIndex(err error, n int) int {
	var be *BatchError
	if errors.As(err, &be) && be.Index >= 0 && be.Index < n {
		return be.Index
	}
	return 0
}

// isBatchForward reports whether an op runs forward and its kind batches.
func isBatchForward(s *journal.Step, action journal.Action) bool {
	if action == journal.Inverse {
		return false
	}
	_, ok := LookupKind(s.Op).(BatchForwarder)
	return ok
}

// runOp runs one op forward. A path op acts where its undo image was taken
// (undo.Place), or refuses.
func (a *Applier) runOp(ctx context.Context, s *journal.Step, action journal.Action, undo *Image) error {
	kind := LookupKind(s.Op)
	if pk, ok := kind.(pathKind); ok && undo != nil && undo.Place != nil {
		return runPlaced(ctx, a.env, pk, s, action, undo, a.original(s))
	}
	if action == journal.Inverse {
		if im, ok := kind.(Imager); ok {
			return im.Restore(ctx, a.env, s, a.original(s))
		}
		if inv, ok := kind.(Inverter); ok {
			return inv.Inverse(ctx, a.env, s)
		}
		return nil
	}
	return kind.Forward(ctx, a.env, s)
}

// original returns the applied journal's original image of s's identity,
// looked up without a string made for it (an op of a cold apply made one).
func (a *Applier) original(s *journal.Step) Image {
	var buf [128]byte
	return a.st.applied.Images()[string(s.AppendIdentity(buf[:0]))]
}

// undoNeedsBlobs reports whether the undo of ops may read the blob store,
// whose content must then be durable before they run, as the intent log
// is: unless every op is a path op whose undo image keeps no content (a
// file it overwrites), since a tool's undo reads the inputs the preflight
// stored (KUBECTL-APPLY's manifests, a PLAYBOOK) and other kinds may keep
// theirs there too. What the ops write (a COPY's content) need not be
// durable before the commit point (syncAll): an undo never reads it, and
// a cold apply's first batch waited 10 ms for its 10,000 sources.
func undoNeedsBlobs(ops []executed) bool {
	for _, ex := range ops {
		if _, ok := LookupKind(ex.step.Op).(pathKind); !ok || (ex.undo != nil && ex.undo.Blob != "") {
			return true
		}
	}
	return false
}

// undoOp undoes one op that ran, or may have run: it restores the undo image,
// or runs the opposite action of a kind without images. A path op's undo
// acts where its image was taken (u: what this undo pass knows), or
// refuses.
func (a *Applier) undoOp(ctx context.Context, s *journal.Step, action journal.Action, undo *Image, u *undoPass) error {
	kind := LookupKind(s.Op)
	if im, ok := kind.(Imager); ok && undo != nil {
		if s.Signature().Family == journal.FamilyPath {
			return restorePlaced(a.env, s.Object(), *undo, u)
		}
		return im.Restore(ctx, a.env, s, *undo)
	}
	inv, ok := kind.(Inverter)
	if !ok {
		return nil
	}
	switch action {
	case journal.Forward, journal.Update, journal.Rerun:
		return inv.Inverse(ctx, a.env, s)
	case journal.Inverse:
		return kind.Forward(ctx, a.env, s)
	}
	return nil // a CHECK changed nothing
}

// fail undoes the ops that ran, in reverse order, and drops the intent log;
// if an undo fails, the log stays for the next run to retry. A cause that is
// not a step's (the intent log, a sync or the commit failed) becomes a
// *MoveError: the move failed, whatever ran is undone.
func (a *Applier) fail(ctx context.Context, log *intentLog, done []executed, cause error) error {
	if se := (*StepError)(nil); !errors.As(cause, &se) {
		cause = &MoveError{Err: cause, Undone: len(done)}
	}
	c := newCancellation(ctx, nil)
	defer c.release()
	u := newUndoPass(false)
	for _, ex := range done {
		u.note(ex.step, ex.undo)
	}
	errs := undoReverse(len(done), func(i int) error {
		ex := done[i]
		ev := opEvent(ex.index, a.total, ex.step, ex.action, true)
		if err := a.observe(ev, func() error { return a.undoOp(c.opContext(ex.step, doUndo), ex.step, ex.action, ex.undo, u) }); err != nil {
			return fmt.Errorf("%s: undo: %w", describeStep(ex.step), err)
		}
		return nil
	})
	errs = append(errs, u.finish(a.env)...)
	if log != nil {
		log.close()
	}
	if len(errs) > 0 {
		return &UndoError{Cause: cause, Errs: errs}
	}
	if err := a.syncAll(); err != nil {
		return &UndoError{Cause: cause, Errs: []error{err}}
	}
	if err := removeIntent(a.st.dir); err != nil {
		return &UndoError{Cause: cause, Errs: []error{err}}
	}
	return cause
}

// syncBlobs makes the blobs written for undo images durable before the ops
// that overwrite their originals run.
func (a *Applier) syncBlobs() error {
	return a.st.blobs.Sync()
}

// earlySync is a syncfs(2) of the root's file system started once a batch
// of ops has run, while the next one runs, so that the syncfs of the
// commit point has less left to write (a cold apply of 10,000 files spent
// 60 to 80 ms there, the workers idle). Its error is the commit's: a
// write-back error is reported once, to the first syncfs after it, so the
// later one would not see it again.
type earlySync struct {
	wg   sync.WaitGroup
	busy atomic.Bool
	mu   sync.Mutex
	err  error
}

// start runs syncfs (the root's Syncfs) unless one is under way.
func (e *earlySync) start(syncfs func() error) {
	if !e.busy.CompareAndSwap(false, true) {
		return
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer e.busy.Store(false)
		if err := syncfs(); err != nil {
			e.mu.Lock()
			if e.err == nil {
				e.err = err
			}
			e.mu.Unlock()
		}
	}()
}

// wait waits for the syncfs under way, if any, and returns the first error
// one had, once: the commit's syncAll fails with it, and the undo's syncAll
// after that sees only what its own syncfs says, as before the early ones.
// A nil earlySync has none.
func (e *earlySync) wait() error {
	if e == nil {
		return nil
	}
	e.wg.Wait()
	e.mu.Lock()
	defer e.mu.Unlock()
	err := e.err
	e.err = nil
	return err
}

// syncAll makes every change of the move durable: one syncfs(2) of the
// root's file system (and of the state's, if that is another) stands in for
// an fsync of every file and directory written, once the early one under
// way is done (its error is syncAll's); then the blob store records the
// blobs it packed since its last sync (Blobs.Sync).
func (a *Applier) syncAll() error {
	if err := a.early.wait(); err != nil {
		return err
	}
	if err := a.env.Root.Syncfs(); err != nil {
		return err
	}
	if !sameDevice(a.env.Root.Path(), a.st.dir) {
		if err := statedir.SyncFS(a.st.dir); err != nil {
			return err
		}
	}
	return a.st.blobs.Sync()
}

// nextOriginals returns the original images of the next applied journal,
// encoded as json.Marshal encodes the map of them: the original image of
// every identity still managed, and the undo image of every identity this
// move managed for the first time (its state before cairn touched it).
// The images are not copied into a map first: at the commit of a cold
// apply of 10,000 files, its peak of memory, that map was 2.4 MB, and the
// images encoded are a fifth of it; they stay as the committed journal's
// (Applied.Images decodes them if a later move of this Applier reads them).
func (a *Applier) nextOriginals(done []executed, steps []journal.Step) (json.RawMessage, error) {
	// An original to write: the applied journal's image of id, or the
	// undo image of this move's first op on id; none yet, nothing.
	type original struct {
		id      string
		undo    *Image
		applied bool
	}
	originals := make([]original, 0, len(steps))
	index := make(map[string]int, len(steps)) // id → its place in originals
	for i := range steps {
		id := steps[i].Identity()
		if _, ok := index[id]; id != "" && !ok {
			index[id] = len(originals)
			originals = append(originals, original{id: id})
		}
	}
	old := a.st.applied.Images()
	for id := range old {
		if i, ok := index[id]; ok {
			originals[i].applied = true
		}
	}
	var key []byte
	for _, ex := range done {
		if ex.undo == nil || ex.action == journal.Inverse {
			continue
		}
		key = ex.step.AppendIdentity(key[:0])
		if i, ok := index[string(key)]; ok && !originals[i].applied && originals[i].undo == nil {
			originals[i].undo = ex.undo
		}
	}
	index = nil
	originals = slices.DeleteFunc(originals, func(o original) bool { return !o.applied && o.undo == nil })
	slices.SortFunc(originals, func(x, y original) int { return strings.Compare(x.id, y.id) })
	size := 2
	for _, o := range originals {
		size += len(o.id) + len(`"":{"absent":true},`)
	}
	var buf bytes.Buffer
	buf.Grow(size) // room for images of absent objects, as a cold apply's are, and ids with no escape
	ew := &errWriter{w: &buf}
	ew.originals(len(originals), func(i int) (string, Image) {
		o := originals[i]
		if o.applied {
			return o.id, old[o.id]
		}
		img := *o.undo
		img.Place = nil // where the object lived during this move only
		return o.id, img
	})
	return buf.Bytes(), ew.err
}

// sameDevice reports whether two paths lie on one file system.
func sameDevice(a, b string) bool {
	var sa, sb unix.Stat_t
	if unix.Stat(a, &sa) != nil || unix.Stat(b, &sb) != nil {
		return false
	}
	return sa.Dev == sb.Dev
}

// undoReverse runs undo(n-1) ... undo(0). An undo that fails is tried again
// after the rest, for as long as a pass makes progress: undoing one op may
// wait on undoing a later one (apt will not remove a package that another
// package installed by the same move still needs, and the journal may list
// the dependency first). It returns the errors of the undos that never
// succeeded, in reverse order.
func undoReverse(n int, undo func(i int) error) []error {
	pending := make([]int, 0, n)
	for i := n - 1; i >= 0; i-- {
		pending = append(pending, i)
	}
	var errs []error
	for len(pending) > 0 {
		var failed []int
		errs = errs[:0]
		for _, i := range pending {
			if err := undo(i); err != nil {
				failed = append(failed, i)
				errs = append(errs, err)
			}
		}
		if len(failed) == len(pending) {
			break // no progress: these undos fail for good
		}
		pending = failed
	}
	if len(pending) == 0 {
		return nil
	}
	return errs
}
