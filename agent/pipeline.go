package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/cairn-cm/cairn/agent/gitfs"
	"github.com/cairn-cm/cairn/agent/mirror"
	"github.com/cairn-cm/cairn/agent/status"
	"github.com/cairn-cm/cairn/agent/trust"
	"github.com/cairn-cm/cairn/compiler"
	"github.com/cairn-cm/cairn/journal"
	"github.com/cairn-cm/cairn/steps"
)

// Mode says what a run is for.
type Mode int

// The modes of a run.
const (
	// Follow is the agent's run: move to the target branch's tip, unless
	// held.
	Follow Mode = iota
	// Plan fetches, verifies and compiles, and returns the plan and the
	// drift; it changes nothing on the host.
	Plan
	// Apply moves to the target (or Request.To) now, even a held host
	// (which stays held).
	Apply
	// Rollback moves to Request.To (default: the commit applied before
	// the current one) and pins the host there.
	Rollback
)

// Request is what one run is asked to do.
type Request struct {
	Mode Mode
	// To is a revision to move to instead of the target branch's tip: a
	// branch, tag or commit of the repository. An explicit move is not held
	// to the descendant rule, but still to the signature rule.
	To string
	// AllowRemoval lets one move past the blast-radius guard (§5).
	AllowRemoval bool
	// Reason is recorded with a rollback's pin.
	Reason string
}

// Report is what a run did: its record, and what it saw.
type Report struct {
	Run Run
	// Group and Branch are the host's group and the branch it follows.
	Group, Branch string
	// Target is the tip last fetched (nil when the fetch failed).
	Target *Target
	// Plan is the plan of the move (nil when there was none to make).
	Plan *journal.Plan
	// Drift is the drifted steps of the journal the host ends at.
	Drift []steps.Drifted
	// Err is why the run failed or was refused: a *Refusal, a steps error,
	// a fetch error.
	Err error
	// Status is the status document as the run left the state (nil for a
	// plan, or when the state could not be opened).
	Status *status.Document
}

// ExitCode maps the report to the exit codes of spec agent.md §8: 0 the
// host is at what was asked, 1 a step or CHECK failed and the host was put
// back (or a fetch failed), 2 a refusal or bad input, 3 not put back. A
// plan run is 0 when there is nothing to do and 1 when there is.
func (r *Report) ExitCode(mode Mode) int {
	switch r.Run.Result {
	case ResultRefused:
		return steps.ExitBadInput
	case ResultBroken:
		return steps.ExitUndoFailed
	case ResultFailed:
		// Bad input (--to REV that is no commit, a held host) is 2; a
		// fetch, a step or a CHECK that failed is 1.
		var input *steps.InputError
		if errors.As(r.Err, &input) {
			return steps.ExitBadInput
		}
		return steps.ExitFailed
	}
	if mode == Plan && r.Plan != nil && (r.Plan.Acts() || len(r.Drift) > 0) {
		return steps.ExitFailed
	}
	return steps.ExitOK
}

// Refusal is a target the pipeline would not apply: nothing changed.
type Refusal struct {
	Reason Reason
	Commit string
	Err    error
}

func (r *Refusal) Error() string {
	return fmt.Sprintf("commit %s refused (%s): %v", short(r.Commit), r.Reason, r.Err)
}

func (r *Refusal) Unwrap() error { return r.Err }

// blobsName names the state's blob store in messages. Moves carry no
// Move.Blobs: the compiler wrote rendered content into the applier's own
// store (Applier.Blobs), where the move finds it; a second reader of that
// store would be a second store on the same files.
const blobsName = "the state's blob store"

// short abbreviates a commit hash for messages.
func short(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	return commit
}

// Observer hears of a run's progress: every transition of the lifecycle
// and every fetch. The daemon feeds its metrics, status and sd_notify from
// it; nil hears nothing.
type Observer interface {
	Enter(s State, at time.Time)
	Fetched(ok bool, at time.Time)
}

// MoveObserver is an Observer that also hears of a move once it holds
// (applied, and confirmed when there are CHECKs), before the run's drift
// check, which on a large journal takes longer than the move: the daemon
// shows the new applied commit in its metrics at once.
type MoveObserver interface {
	Observer
	Moved(commit, branch, group string, committed time.Time, steps int)
}

// Pipeline is the one way cairn moves a host to what git says: resolve →
// fetch → verify → compile → plan → guard → apply → confirm → drift. The
// daemon and every host command (plan, apply, rollback, status) run it.
type Pipeline struct {
	cfg Config
	// hosts are the host groups read at the control branch's last tip.
	hosts struct {
		sync.Mutex
		commit plumbing.Hash
		groups []compiler.HostGroup
	}
}

// New checks the configuration and loads the trust file.
func New(cfg Config) (*Pipeline, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	p := &Pipeline{cfg: cfg}
	if _, _, err := p.loadKeys(); err != nil {
		return nil, err
	}
	return p, nil
}

// run is the state of one run.
type run struct {
	p     *Pipeline
	req   Request
	rep   *Report
	obs   Observer
	a     *steps.Applier
	m     *mirror.Mirror
	git   *gitfs.Repo
	state State
	rest  State // idle or held
	// trustFile is the trust file as this run read it, once (run.keys), and
	// trusted the commits whose signatures it checked and found good.
	trustFile struct {
		loaded bool
		keys   *trust.Keys
		sum    string // the file's sha256
		err    error
	}
	trusted map[plumbing.Hash]bool
	life    lifeWriter
}

// lifeWriter writes the lifecycle record (the state a run is in, for cairn
// status) off the run's path: each write fsyncs the file and its directory
// (7 ms each on the benchmark's ext4, more when the disk is busy), and a
// push waited for five of them before its move showed. The first write of
// a run is made at once (it may create the records directory, which a
// second writer must not race); later ones go to one goroutine, which
// writes the latest state entered and skips those already passed. flush
// waits for it: the run's end, which reads the record back, calls it.
type lifeWriter struct {
	mu      sync.Mutex
	next    *Lifecycle // to write; nil when written
	started bool       // the first write was made
	busy    bool       // the goroutine runs
	done    sync.WaitGroup
}

// put records l, at once for the first of a run, else in the background.
func (w *lifeWriter) put(r *run, l Lifecycle) {
	w.mu.Lock()
	if !w.started {
		w.started = true
		w.mu.Unlock()
		r.writeLife(l)
		return
	}
	w.next = &l
	if w.busy {
		w.mu.Unlock()
		return
	}
	w.busy = true
	w.done.Add(1)
	w.mu.Unlock()
	go func() {
		defer w.done.Done()
		for {
			w.mu.Lock()
			l := w.next
			w.next = nil
			if l == nil {
				w.busy = false
				w.mu.Unlock()
				return
			}
			w.mu.Unlock()
			r.writeLife(*l)
		}
	}()
}

// flush waits until the last state put is written.
func (w *lifeWriter) flush() { w.done.Wait() }

// writeLife writes the lifecycle record. The state is shown from it by
// cairn status; a write that fails costs the display, not the run.
func (r *run) writeLife(l Lifecycle) {
	if err := r.a.WriteRecord(recordLifecycle, l); err != nil {
		r.p.log().Warn("cannot record the lifecycle state", "state", l.State, "err", err)
	}
}

// Run runs the pipeline once. It returns a report whatever happened; the
// report's Err says what failed. The state lock is held for the whole run.
func (p *Pipeline) Run(ctx context.Context, req Request, obs Observer) *Report {
	r := &run{p: p, req: req, obs: obs, rep: &Report{Run: Run{Started: time.Now().UTC()}}, rest: Idle}
	r.exec(ctx)
	if r.rep.Run.Result == "" {
		// Every way out of exec sets a result; a run without one is a
		// bug, reported as a failure rather than as a label no one knows.
		r.rep.Run.Result = ResultFailed
		r.rep.Err = errors.Join(r.rep.Err, errors.New("agent bug: the run ended without a result"))
	}
	r.rep.Run.Finished = time.Now().UTC()
	if r.rep.Err != nil {
		r.rep.Run.Error = r.rep.Err.Error()
	}
	if r.a != nil {
		r.life.flush()
		if req.Mode != Plan {
			r.persist()
			// The status as the run leaves it, read while the state is
			// open: the daemon need not open it again (and decode the
			// applied journal a second time) to show it.
			if doc, err := p.status(r.a, p.emptyStatus()); err == nil {
				r.rep.Status = &doc
			}
		}
		r.a.Close()
	}
	if r.git != nil {
		r.git.Close()
	}
	if r.m != nil {
		r.m.Close()
	}
	return r.rep
}

// open opens the state as steps.Open does, waiting up to LockWait for
// another process's lock (a host command's move), but only as long as ctx
// lives: a SIGTERM while waiting ends the run at once.
func (p *Pipeline) open(ctx context.Context, opts steps.Options) (*steps.Applier, error) {
	deadline := time.Now().Add(p.cfg.LockWait)
	for {
		a, err := steps.Open(ctx, opts)
		if err == nil || !errors.Is(err, steps.ErrLocked) || !time.Now().Before(deadline) {
			return a, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %w", context.Cause(ctx), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// log returns the pipeline's logger.
func (p *Pipeline) log() *slog.Logger {
	if p.cfg.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.cfg.Log
}

// enter moves the run to state s.
func (r *run) enter(s State) {
	now := time.Now().UTC()
	if err := checkTransition(r.state, s); err != nil {
		r.p.log().Error("agent bug", "err", err)
	}
	r.state = s
	r.rep.Run.States = append(r.rep.Run.States, s)
	if r.a != nil && r.req.Mode != Plan {
		// A plan is no run of the agent's: it leaves the lifecycle and
		// the runs as they are.
		r.life.put(r, Lifecycle{State: s, Since: now})
	}
	r.p.log().Info("agent state", "state", string(s))
	if r.obs != nil {
		r.obs.Enter(s, now)
	}
}

// end ends the run with a result, in the state s (failed or broken go on
// to rest), and err as its reason.
func (r *run) end(res Result, err error) {
	r.rep.Run.Result = res
	r.rep.Err = err
	switch res {
	case ResultFailed:
		r.enter(Failed)
	case ResultBroken:
		r.enter(Broken)
	}
	r.enter(r.rest)
}

func (r *run) exec(ctx context.Context) {
	cfg := &r.p.cfg
	a, err := r.p.open(ctx, steps.Options{
		Root: cfg.Root, StateDir: cfg.StateDir, Create: true,
		Log: cfg.Log, Output: cfg.Output, Host: cfg.Drivers, Kill: cfg.Kill, Observer: cfg.Ops,
		RehashEvery: cfg.RehashEvery, SaveStatCache: r.req.Mode != Plan,
	})
	if err != nil {
		r.rep.Run.Result = ResultFailed
		if steps.ExitCode(err) == steps.ExitUndoFailed {
			r.rep.Run.Result = ResultBroken
		}
		r.rep.Err = err
		return
	}
	r.a = a
	applied := a.Applied()
	r.rep.Run.From = applied.Commit
	pin := r.p.readPin(a)
	held := pin.Commit != ""
	if held {
		r.rest = Held
	}

	r.state = r.rest
	r.enter(Fetching)
	want, err := r.fetch(ctx, applied.Commit)
	var rf *Refusal
	switch {
	case errors.As(err, &rf) && r.req.Mode == Follow && r.isBad(applied.Commit, rf.Commit):
		// Refused before, from where the host stands: once is enough.
		r.rep.Run.Commit = rf.Commit
		r.checkDrift(ctx, applied, ResultUnchanged)
		return
	case errors.As(err, &rf):
		r.rep.Run.Commit = rf.Commit
		r.refuse(rf.Commit, err)
		return
	case err != nil:
		r.end(ResultFailed, err)
		return
	}
	r.rep.Run.Commit = want
	if r.req.Mode == Follow && r.wayBack(ctx, applied) {
		return
	}
	switch {
	case r.req.Mode == Follow && held:
		r.checkDrift(ctx, applied, ResultUnchanged)
		return
	case r.req.Mode == Apply && held && r.req.To == "":
		r.end(ResultFailed, &steps.InputError{Err: fmt.Errorf("the host is held at %s by a rollback (%s) since %s: cairn resume lets it follow its branch; cairn apply --to REV moves it on purpose",
			short(pin.Commit), pin.Reason, pin.Since.Format(time.RFC3339))})
		return
	case want == applied.Commit && r.rep.Group == applied.Group && r.req.Mode != Plan:
		if r.req.Mode == Rollback {
			r.pin(want)
		}
		r.checkDrift(ctx, applied, ResultUnchanged)
		return
	case r.req.Mode == Follow && r.isBad(applied.Commit, want):
		r.checkDrift(ctx, applied, ResultUnchanged)
		return
	}

	r.enter(Verifying)
	if err := r.verify(want, applied.Commit); err != nil {
		r.refuse(want, err)
		return
	}

	r.enter(Compiling)
	fsys, res, err := r.compile(ctx, want)
	if err != nil {
		if ctx.Err() != nil {
			r.end(ResultFailed, err)
			return
		}
		r.refuse(want, &Refusal{Reason: CompileError, Commit: want, Err: err})
		return
	}

	r.enter(Planning)
	move := steps.Move{
		Journal: "git:" + want, Commit: want, Branch: r.rep.Branch, Group: r.rep.Group,
		Steps: res.Steps, Source: fsys, SourceName: short(want), BlobsName: blobsName,
		// A plan shows the drift of the steps the move leaves unchanged,
		// whatever --drift says (a dry run repairs nothing).
		Repair:       cfg.Drift == DriftRepair || r.req.Mode == Plan,
		DryRun:       r.req.Mode == Plan,
		AllowRemoval: r.req.AllowRemoval,
	}
	planned, err := a.Plan(ctx, move)
	if err != nil {
		// Only the commit's own fault makes it bad: a stop (SIGTERM) or an
		// error of no class (a drift check) is a failed run.
		var bad *steps.InputError
		switch {
		case ctx.Err() != nil:
			r.end(ResultFailed, err)
			return
		case errors.Is(err, steps.ErrRemoval):
			err = &Refusal{Reason: BlastRadius, Commit: want, Err: err}
		case errors.As(err, &bad):
			err = &Refusal{Reason: CompileError, Commit: want, Err: err}
		}
		r.refuse(want, err)
		return
	}
	r.rep.Plan = planned.Plan
	if err := r.guard(planned); err != nil {
		r.refuse(want, err)
		return
	}
	if r.req.Mode == Plan {
		if cfg.Drift == DriftReport {
			// Reported, not run again.
			planned.Plan.Ops = slices.DeleteFunc(planned.Plan.Ops, func(op journal.Op) bool { return op.Action == journal.Rerun })
		}
		r.rep.Drift = planned.Drifted
		r.rep.Run.Result = ResultUnchanged
		r.enter(r.rest)
		return
	}

	r.enter(Applying)
	prev := applied
	out, err := a.Run(ctx, planned)
	if out != nil {
		r.rep.Run.Ops = out.Ran
	}
	if err != nil {
		if steps.ExitCode(err) == steps.ExitUndoFailed {
			r.end(ResultBroken, err)
			return
		}
		if ctx.Err() == nil {
			r.markBad(applied.Commit, want, "failed")
		}
		r.end(ResultFailed, err)
		return
	}
	if ctx.Err() != nil {
		// Stopped as the move committed: it stays; the next start checks
		// the drift (the run passes through checking-drift without it, as
		// the lifecycle goes).
		r.moved(want)
		r.announce()
		r.enter(CheckingDrift)
		r.end(ResultApplied, nil)
		return
	}
	if cfg.Confirm > 0 && hasChecks(res.Steps) {
		r.enter(Confirming)
		if err := r.confirm(ctx, res.Steps); err != nil {
			r.rep.Err = err
			r.markBad(applied.Commit, want, "confirm")
			if uerr := r.undoMove(ctx, prev); uerr != nil {
				r.stuck(prev, want, err)
				r.end(ResultBroken, uerr)
				return
			}
			r.end(ResultFailed, err)
			return
		}
	}
	// Pinned once the move holds: a rollback undone by its confirmation
	// leaves the host, and any pin, where they were.
	r.moved(want)
	r.announce()
	r.checkDrift(ctx, a.Applied(), ResultApplied)
}

// compile compiles the configuration at commit want, straight from the git
// objects, writing rendered content into the state's blob store.
func (r *run) compile(ctx context.Context, want string) (fs.FS, *compiler.Result, error) {
	cfg := &r.p.cfg
	fsys, _, err := r.git.FS(want)
	if err != nil {
		return nil, nil, err
	}
	res, err := compiler.Compile(ctx, fsys, compiler.Options{
		Host: cfg.Host, Group: r.rep.Group, Facts: cfg.Facts, Blobs: r.a.Blobs(),
		// Plugins start from cairn's environment, as with cairn compile.
		Env: os.Environ(),
	})
	if err != nil {
		return nil, nil, err
	}
	for _, w := range res.Warnings {
		r.p.log().Warn(w, "commit", want)
	}
	return fsys, res, nil
}
