package cli

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"path"
	"unsafe"

	"github.com/cairn-cm/cairn/agent/gitfs"
	"github.com/cairn-cm/cairn/compiler"
	"github.com/cairn-cm/cairn/journal"
	"golang.org/x/sys/unix"
)

type journalDiffCmd struct {
	Plan bool   `help:"Print only the ops of the plan, one a line."`
	JSON bool   `name:"json" help:"Print the changes and the plan as JSON."`
	Repo string `help:"Compile OLD and NEW as revisions of the git repository in DIR (no checkout)." placeholder:"DIR"`
	Dir  string `help:"With --repo: the configuration's directory inside the repository." default:"." placeholder:"PATH"`
	hostFlags
	Old string `arg:"" name:"OLD" help:"The journal the host has (with --repo: a revision)."`
	New string `arg:"" name:"NEW" help:"The journal to move to (with --repo: a revision)."`
}

// Run prints the changes and the plan; exit 1 when the journals differ.
func (c *journalDiffCmd) Run(e *env) error {
	if c.Repo != "" {
		return c.runRepo(e)
	}
	defer diffGC()()
	if p, ok := planPair(c.Old, c.New); ok {
		return c.printPlan(e, c.Old, c.New, p)
	}
	// The two files parse on two cores.
	var oldJ *journal.Journal
	var oldErr error
	parsed := make(chan struct{})
	go func() {
		defer close(parsed)
		oldJ, oldErr = loadJournal(c.Old)
	}()
	newJ, err := loadJournal(c.New)
	<-parsed
	if oldErr != nil {
		return oldErr
	}
	if err != nil {
		return err
	}
	return c.print(e, c.Old, c.New, oldJ.Steps, newJ.Steps)
}

// diffGC sets the collector for a diff of two files, and returns the
// function that puts it back: most of what the diff allocates stays live
// until the plan is printed, so collecting often would only scan it again
// and again (a profile of the full parse of 100k-step journals showed most
// of the time in the collector; PlanPair ran 7% more instructions at the
// default GOGC=100 than at 400). GOGC in the environment wins, as in
// journal apply (applyGC).
func diffGC() (restore func()) { return gcPercent(400) }

// runRepo compiles the configuration at two revisions straight from the
// repository's objects and diffs the two journals.
func (c *journalDiffCmd) runRepo(e *env) error {
	repo, err := gitfs.Open(c.Repo)
	if err != nil {
		return &exitError{code: exitBadInput, err: err}
	}
	defer repo.Close()
	opts, err := c.hostFlags.options()
	if err != nil {
		return err
	}
	opts.Env = os.Environ() // plugins see what they see under cairn compile
	var journals [2][]journal.Step
	for i, rev := range []string{c.Old, c.New} {
		fsys, commit, err := repo.FS(rev)
		if err != nil {
			return &exitError{code: exitBadInput, err: err}
		}
		if c.Dir != "." {
			if fsys, err = fs.Sub(fsys, path.Clean(c.Dir)); err != nil {
				return &exitError{code: exitBadInput, err: err}
			}
		}
		res, err := compiler.Compile(e.ctx, fsys, opts)
		if err != nil {
			return &exitError{code: exitBadInput, err: fmt.Errorf("%s (%s):\n%w", rev, abbrev(12, commit.String()), err)}
		}
		journals[i] = res.Steps
	}
	return c.print(e, c.Old, c.New, journals[0], journals[1])
}

// print renders the changes and the plan between two step lists.
func (c *journalDiffCmd) print(e *env, oldName, newName string, oldSteps, newSteps []journal.Step) error {
	return c.printPlan(e, oldName, newName, journal.MakePlan(oldSteps, newSteps))
}

// printPlan renders the changes and a plan.
func (c *journalDiffCmd) printPlan(e *env, oldName, newName string, p *journal.Plan) error {
	var err error
	w := bufio.NewWriterSize(e.stdout, 64<<10)
	switch {
	case c.JSON:
		err = writeJSON(w, oldName, newName, p)
	case c.Plan:
		writePlan(w, p)
	default:
		writeChanges(w, p)
		if !p.Empty() {
			fmt.Fprintf(w, "\n# plan: %s\n", plural(p.Acting(), "op"))
			writePlan(w, p)
		}
	}
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		return err
	}
	if !p.Empty() {
		return exitCode(exitDiffers)
	}
	return nil
}

// planPair reads OLD and NEW and makes the plan with journal.PlanPair,
// which parses only the lines that are not in both files. ok is false when
// a file cannot be read, has an error on such a line or an INCLUDE: then the
// caller loads them one by one, which says what is wrong (in both files) or
// expands the INCLUDEs.
func planPair(oldName, newName string) (p *journal.Plan, ok bool) {
	oldData, oldMapped, err := mapJournal(oldName, 0)
	if err != nil {
		return nil, false
	}
	newData, newMapped, err := mapJournal(newName, 0)
	if err != nil {
		unmap(oldData, oldMapped)
		return nil, false
	}
	// PlanPair reads each file through once or twice in order, then only
	// the lines that changed: the pages it is done with are dropped, so
	// that the files need not be in memory whole.
	var release func(string)
	if oldMapped && newMapped {
		release = dropPages
	}
	// The buffers are ours and never change: the steps may keep substrings.
	p, ok = journal.PlanPair(oldName, unsafe.String(unsafe.SliceData(oldData), len(oldData)),
		newName, unsafe.String(unsafe.SliceData(newData), len(newData)), release)
	if !ok { // no plan keeps a substring: the caller loads the files anew
		unmap(oldData, oldMapped)
		unmap(newData, newMapped)
	}
	return p, ok
}

// unmap gives back a journal mapJournal mapped (mapped), and nothing else.
func unmap(data []byte, mapped bool) {
	if mapped {
		_ = unix.Munmap(data)
	}
}
