package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
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

// loadKeys reads the trust file: every run reads it again, so that keys
// added or removed take effect at the next run, without a restart. It
// returns the keys (nil without a trust file) and the sha256 of the file,
// which a bad move refused for its signature records: once the trust file
// changes, the same move is tried again.
func (p *Pipeline) loadKeys() (*trust.Keys, string, error) {
	if p.cfg.Trust == "" {
		return nil, "", nil
	}
	data, err := os.ReadFile(p.cfg.Trust)
	if err != nil {
		return nil, "", fmt.Errorf("trust file: %w", err)
	}
	keys, err := trust.Parse(p.cfg.Trust, data)
	if err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(data)
	return keys, hex.EncodeToString(sum[:]), nil
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
	// keysSum is the sha256 of the trust file the run verified with.
	keysSum string
	rest    State // idle or held
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

// fetched tells the observer how a fetch ended.
func (r *run) fetched(ok bool) {
	if r.obs != nil {
		r.obs.Fetched(ok, time.Now().UTC())
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
		// The state is shown from this record by cairn status; a write
		// that fails costs the display, not the run. A plan is no run of
		// the agent's: it leaves the lifecycle and the runs as they are.
		if err := r.a.WriteRecord(recordLifecycle, Lifecycle{State: s, Since: now}); err != nil {
			r.p.log().Warn("cannot record the lifecycle state", "state", s, "err", err)
		}
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

// announce tells a MoveObserver of the move just made.
func (r *run) announce() {
	mo, ok := r.obs.(MoveObserver)
	if !ok {
		return
	}
	ap := r.a.Applied()
	var committed time.Time
	if c, err := r.m.Commit(plumbing.NewHash(ap.Commit)); err == nil {
		committed = c.Committer.When.UTC()
	}
	mo.Moved(ap.Commit, ap.Branch, ap.Group, committed, len(ap.Steps))
}

// fetch fetches what the run needs and returns the commit it is to move
// to. It sets the report's group, branch and target.
func (r *run) fetch(ctx context.Context, from string) (string, error) {
	cfg := &r.p.cfg
	m, err := mirror.Open(filepath.Join(r.a.StateDir(), mirrorDir), cfg.Repo, mirror.Options{SSHKey: cfg.SSHKey, KnownHosts: cfg.KnownHosts, Log: cfg.Log})
	if err != nil {
		return "", err
	}
	r.m = m
	var last Target
	r.p.readRecord(r.a, recordTarget, &last)
	branches := []string{cfg.Branch}
	if last.Branch != "" && last.Branch != cfg.Branch {
		// One ref advertisement for both when nothing changed.
		branches = append(branches, last.Branch)
	}
	tips, err := m.Fetch(ctx, branches...)
	if err != nil && len(branches) > 1 && errors.Is(err, mirror.ErrNoBranch) {
		// The group's old branch may be gone; the control branch says
		// which one to follow now.
		tips, err = m.Fetch(ctx, cfg.Branch)
	}
	if err != nil {
		r.fetched(false)
		return "", fmt.Errorf("fetch %s: %w", cfg.Branch, err)
	}
	// The run's fetch is told once, when this returns: a success even if
	// what it brought is refused (a hosts block that does not compile),
	// unless the fetch of the group's branch fails.
	fetchOK := true
	defer func() { r.fetched(fetchOK) }()
	git, err := gitfs.Open(m.Dir())
	if err != nil {
		return "", err
	}
	r.git = git
	group, branch, err := r.resolveGroup(tips[cfg.Branch])
	var rf *Refusal
	if errors.As(err, &rf) && (r.req.To != "" || r.req.Mode == Rollback) {
		// An explicit move is the way out of a bad control tip: it keeps
		// the group and branch the host is at.
		r.p.log().Warn("the control branch's tip is refused; the explicit move keeps the host's group", "err", err)
		applied := r.a.Applied()
		group, branch, err = applied.Group, applied.Branch, nil
		if cfg.Group != "" {
			group = cfg.Group
		}
		if branch == "" {
			branch = cfg.Branch
		}
	}
	if rf != nil && err != nil {
		// The refused tip is the tip last fetched: a host left where it
		// was is not converged with it.
		r.target(tips[cfg.Branch], cfg.Branch, last.Group)
	}
	if err != nil {
		return "", err
	}
	if _, ok := tips[branch]; !ok {
		more, err := m.Fetch(ctx, branch)
		if err != nil {
			fetchOK = false
			if errors.Is(err, mirror.ErrNoBranch) {
				// The hosts block names a branch the server lacks: the
				// host cannot follow it, and must not look converged.
				lost := Target{Branch: branch, Group: group, Fetched: time.Now().UTC()}
				if werr := r.a.WriteRecord(recordTarget, lost); werr != nil {
					r.p.log().Warn("cannot record the target", "err", werr)
				}
			}
			return "", fmt.Errorf("fetch %s (the branch of group %s): %w", branch, group, err)
		}
		tips[branch] = more[branch]
		// The repository was read before this fetch brought its pack.
		if err := r.reopen(); err != nil {
			return "", err
		}
	}
	tip := tips[branch]
	r.rep.Group, r.rep.Branch = group, branch
	if err := r.target(tip, branch, group); err != nil {
		return "", err
	}
	switch {
	case r.req.To != "":
		h, err := m.Resolve(r.req.To)
		if err != nil {
			if err := m.FetchAll(ctx); err != nil {
				return "", err
			}
			if err := r.reopen(); err != nil {
				return "", err
			}
			if h, err = m.Resolve(r.req.To); err != nil {
				return "", &steps.InputError{Err: fmt.Errorf("--to %s: %w", r.req.To, err)}
			}
		}
		return h.String(), nil
	case r.req.Mode == Rollback:
		prev, err := r.previous(from)
		if err != nil {
			return "", err
		}
		return prev, nil
	}
	return tip.String(), nil
}

// target records tip, of branch, as the tip last fetched.
func (r *run) target(tip plumbing.Hash, branch, group string) error {
	c, err := r.m.Commit(tip)
	if err != nil {
		return err
	}
	r.rep.Target = &Target{Commit: tip.String(), Branch: branch, Group: group, Time: c.Committer.When.UTC(), Fetched: time.Now().UTC()}
	return r.a.WriteRecord(recordTarget, r.rep.Target)
}

// reopen opens the mirror's objects again, after a fetch that brought
// more.
func (r *run) reopen() error {
	r.git.Close()
	git, err := gitfs.Open(r.m.Dir())
	r.git = git
	return err
}

// resolveGroup reads the hosts block at the control branch's tip: the
// host's group (or --group) and the branch it follows.
func (r *run) resolveGroup(control plumbing.Hash) (group, branch string, err error) {
	cfg := &r.p.cfg
	// The hosts block decides the branch, and so which signed commits
	// reach the host: it is read only from a tip that is signed too.
	if err := r.signed(control); err != nil {
		var rf *Refusal
		if errors.As(err, &rf) {
			rf.Err = fmt.Errorf("the tip of the control branch %s, whose hosts block says what this host follows: %w", cfg.Branch, rf.Err)
		}
		return "", "", err
	}
	groups, err := r.p.hostGroups(r.git, control)
	if err != nil {
		return "", "", err
	}
	var g compiler.HostGroup
	var ok bool
	if cfg.Group != "" {
		for _, c := range groups {
			if c.Name == cfg.Group {
				g, ok = c, true
			}
		}
		if !ok {
			g, ok = compiler.HostGroup{Name: cfg.Group}, true
		}
	} else {
		g, ok = compiler.GroupOf(groups, cfg.Host)
	}
	branch = cfg.Branch
	if ok && g.Branch != "" {
		branch = g.Branch
	}
	return g.Name, branch, nil
}

// hostGroups returns the groups of the hosts block at the control
// branch's tip. The last tip's are kept: a run that finds the tip where it
// was does not parse the configuration's top files again.
func (p *Pipeline) hostGroups(git *gitfs.Repo, control plumbing.Hash) ([]compiler.HostGroup, error) {
	p.hosts.Lock()
	defer p.hosts.Unlock()
	if p.hosts.commit == control && p.hosts.groups != nil {
		return p.hosts.groups, nil
	}
	fsys, _, err := git.FS(control.String())
	if err != nil {
		return nil, err
	}
	groups, err := compiler.Hosts(fsys)
	if err != nil {
		// The control branch's tip does not say where the host belongs:
		// a bad commit like any that does not compile.
		return nil, &Refusal{Reason: CompileError, Commit: control.String(),
			Err: fmt.Errorf("the hosts block at the tip of %s: %w", p.cfg.Branch, err)}
	}
	// Only what a lookup needs: a group also holds the syntax trees of
	// the files it was read from.
	kept := make([]compiler.HostGroup, len(groups))
	for i, g := range groups {
		kept[i] = compiler.HostGroup{Name: g.Name, Match: g.Match, Branch: g.Branch, Pos: g.Pos}
	}
	p.hosts.commit, p.hosts.groups = control, kept
	return kept, nil
}

// previous returns the commit applied before from, from the state's
// history: the default target of a rollback.
func (r *run) previous(from string) (string, error) {
	hist, err := steps.History(r.a.StateDir())
	if err != nil {
		return "", err
	}
	for i := len(hist) - 1; i >= 0; i-- {
		h := hist[i]
		// A move that failed its confirmation is in the history as
		// applied (its undo is a move too): never the one to go back to.
		if h.Result == "applied" && h.Commit != "" && h.Commit != from && !r.isBad(from, h.Commit) {
			return h.Commit, nil
		}
	}
	return "", &steps.InputError{Err: errors.New("rollback: the history holds no commit applied before this one; name one with --to")}
}

// verify applies the trust rules of §4 to the commit want.
func (r *run) verify(want, from string) error {
	h := plumbing.NewHash(want)
	if err := r.signed(h); err != nil {
		return err
	}
	if r.req.To != "" || r.req.Mode == Rollback || from == "" {
		// An explicit move, or the first: no history to descend from.
		return nil
	}
	ok, err := r.m.IsAncestor(plumbing.NewHash(from), h)
	if err != nil && !errors.Is(err, plumbing.ErrObjectNotFound) {
		return err
	}
	if !ok {
		return &Refusal{Reason: NotDescendant, Commit: want, Err: fmt.Errorf("it does not descend from %s, the commit applied (a force-push? cairn rollback and cairn apply --to move elsewhere on purpose)", short(from))}
	}
	return nil
}

// signed applies the signature rule of §4 to commit h, with the trust
// file as it is now.
func (r *run) signed(h plumbing.Hash) error {
	c, err := r.m.Commit(h)
	if err != nil {
		return err
	}
	keys, sum, err := r.p.loadKeys()
	if err != nil {
		return err
	}
	r.keysSum = sum
	if keys != nil {
		if _, err := keys.VerifyCommit(c); err != nil {
			var tr *trust.Refusal
			if errors.As(err, &tr) {
				return &Refusal{Reason: Reason(tr.Reason), Commit: h.String(), Err: err}
			}
			return err
		}
	} else if !r.p.cfg.AllowUnsigned {
		// A plan says what apply would do: refuse it.
		return &Refusal{Reason: Unsigned, Commit: h.String(), Err: errors.New("no --trust file to check its signature against (--allow-unsigned applies any)")}
	}
	return nil
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

// guard is the blast-radius guard of §5.
func (r *run) guard(planned *steps.Planned) error {
	if r.req.AllowRemoval {
		return nil
	}
	managed, removed := planned.Managed, planned.Removed
	limit := r.p.cfg.MaxRemoval
	if removed > 10 && float64(removed)*100 > limit*float64(managed) {
		return &Refusal{Reason: BlastRadius, Commit: r.rep.Run.Commit,
			Err: fmt.Errorf("the plan removes %d of the %d managed objects, more than --max-removal %v%%; --allow-removal lets this move through", removed, managed, limit)}
	}
	return nil
}

// refuse ends a run whose target was refused.
func (r *run) refuse(want string, err error) {
	var rf *Refusal
	if errors.As(err, &rf) {
		r.rep.Run.Reason = rf.Reason
		if r.req.Mode == Follow {
			r.markBad(r.rep.Run.From, want, string(rf.Reason))
		}
		r.end(ResultRefused, err)
		return
	}
	r.end(ResultFailed, err)
}

// isBad reports whether the move from → to is known to be bad.
func (r *run) isBad(from, to string) bool {
	var bad []BadMove
	if _, err := r.a.ReadRecord(recordBad, &bad); err != nil {
		return false
	}
	_, sum, err := r.p.loadKeys()
	if err != nil {
		// Let the run go on to verify, which reports the trust file.
		return false
	}
	for _, b := range bad {
		if b.From == from && b.To == to && (b.Keys == "" || b.Keys == sum) {
			return true
		}
	}
	return false
}

// markBad records the move from → to as bad, so that it is not tried again.
func (r *run) markBad(from, to, reason string) {
	var bad []BadMove
	if _, err := r.a.ReadRecord(recordBad, &bad); err != nil {
		r.p.log().Warn("cannot read the bad moves", "err", err)
	}
	b := BadMove{From: from, To: to, Reason: reason, At: time.Now().UTC()}
	switch Reason(reason) {
	case Unsigned, BadSignature, UnknownKey:
		b.Keys = r.keysSum
	}
	bad = append(bad, b)
	if len(bad) > keepBad {
		bad = bad[len(bad)-keepBad:]
	}
	if err := r.a.WriteRecord(recordBad, bad); err != nil {
		r.p.log().Warn("cannot record a bad move", "err", err)
	}
}

// moved updates the pin after a move to commit: a rollback pins the host
// there; an explicit move of a held host keeps it held, where it now is.
func (r *run) moved(commit string) {
	var pin Pin
	switch {
	case r.req.Mode == Rollback:
		r.pin(commit)
	case r.rest == Held && r.p.readRecord(r.a, recordPin, &pin):
		pin.Commit = commit
		if err := r.a.WriteRecord(recordPin, pin); err != nil {
			r.rep.Err = err
		}
	}
}

// readPin reads the pin (an empty Commit: not held). A pin that cannot be
// read holds the host where it is: a rollback's hold must not be lost to
// a disk error; cairn resume lifts it.
func (p *Pipeline) readPin(a *steps.Applier) Pin {
	var pin Pin
	if _, err := a.ReadRecord(recordPin, &pin); err != nil {
		p.log().Warn("cannot read the pin; the host is held where it is", "err", err)
		return Pin{Commit: a.Applied().Commit, Reason: "the pin cannot be read (cairn resume lifts it): " + err.Error()}
	}
	return pin
}

// pin holds the host at commit until cairn resume.
func (r *run) pin(commit string) {
	reason := r.req.Reason
	if reason == "" {
		reason = "cairn rollback"
	}
	if err := r.a.WriteRecord(recordPin, Pin{Commit: commit, Reason: reason, Since: time.Now().UTC()}); err != nil {
		r.rep.Err = err
	}
	r.rest = Held
}

// checkDrift checks the live state of the journal the host is at, repairs
// it with --drift repair, and ends the run with result.
func (r *run) checkDrift(ctx context.Context, applied *steps.Applied, result Result) {
	r.enter(CheckingDrift)
	drifted, err := r.a.Drift(ctx)
	if err != nil && ctx.Err() != nil {
		// Stopped (SIGTERM): the drift is left unchecked, and what the run
		// did (a move it keeps) stands.
		r.end(result, nil)
		return
	}
	if err != nil {
		r.end(ResultFailed, err)
		return
	}
	if len(drifted) > 0 && r.p.cfg.Drift == DriftRepair && r.req.Mode != Plan {
		if err := r.repair(ctx, applied); err != nil {
			if steps.ExitCode(err) == steps.ExitUndoFailed {
				r.end(ResultBroken, err)
				return
			}
			r.end(ResultFailed, err)
			return
		}
		result = ResultApplied
		if drifted, err = r.a.Drift(ctx); err != nil {
			r.end(ResultFailed, err)
			return
		}
	}
	r.rep.Drift = drifted
	if err := r.a.WriteRecord(recordDrift, driftRecord(drifted)); err != nil {
		r.p.log().Warn("cannot record the drift", "err", err)
	}
	r.end(result, nil)
}

// repair runs the drifted steps of the applied journal forward again.
func (r *run) repair(ctx context.Context, applied *steps.Applied) error {
	js, err := r.a.Journal()
	if err != nil {
		return err
	}
	move := steps.Move{Journal: applied.Journal, Commit: applied.Commit, Branch: applied.Branch, Group: applied.Group, Steps: js, BlobsName: blobsName, Repair: true}
	if applied.Commit != "" {
		if fsys, _, err := r.git.FS(applied.Commit); err == nil {
			move.Source, move.SourceName = fsys, short(applied.Commit)
		}
	}
	out, err := r.a.Apply(ctx, move)
	if out != nil {
		r.rep.Run.Ops += out.Ran
	}
	return err
}

// undoMove moves the host back to the journal it was at before this run's
// move: the confirmation failed.
func (r *run) undoMove(ctx context.Context, prev *steps.Applied) error {
	js, err := prev.JournalSteps()
	if err != nil {
		return err
	}
	move := steps.Move{Journal: prev.Journal, Commit: prev.Commit, Branch: prev.Branch, Group: prev.Group, Steps: js, BlobsName: blobsName, AllowRemoval: true}
	if prev.Commit != "" {
		if fsys, _, err := r.git.FS(prev.Commit); err == nil {
			move.Source, move.SourceName = fsys, short(prev.Commit)
		}
	}
	// The way back is not stopped by a SIGTERM: the host must not stay at
	// a commit that failed its confirmation.
	out, err := r.a.Apply(context.WithoutCancel(ctx), move)
	if out != nil {
		r.rep.Run.Ops += out.Ran
	}
	if err != nil {
		return fmt.Errorf("undo the move after its confirmation failed: %w", err)
	}
	return nil
}

// stuck records that the way back from commit, which failed its
// confirmation with err, to the journal prev failed too: the next runs
// retry it (wayBack).
func (r *run) stuck(prev *steps.Applied, commit string, err error) {
	back := *prev
	back.Originals, back.Kept = nil, nil
	if werr := r.a.WriteRecord(recordWayBack, WayBack{Back: &back, Stuck: commit, Error: err.Error()}); werr != nil {
		r.p.log().Warn("cannot record the way back", "err", werr)
	}
}

// wayBack retries the way back recorded by stuck, first thing in a run, as
// a broken host's runs retry its recovery (§3); it reports whether it
// ended the run.
func (r *run) wayBack(ctx context.Context, applied *steps.Applied) bool {
	var wb WayBack
	if !r.p.readRecord(r.a, recordWayBack, &wb) || wb.Back == nil {
		return false
	}
	if applied.Commit != wb.Stuck {
		// The host was moved since (cairn apply --to, cairn rollback).
		if err := r.a.WriteRecord(recordWayBack, WayBack{}); err != nil {
			r.p.log().Warn("cannot clear the way back", "err", err)
		}
		return false
	}
	r.rep.Run.Commit = wb.Back.Commit
	r.enter(Applying)
	if err := r.undoMove(ctx, wb.Back); err != nil {
		r.end(ResultBroken, err)
		return true
	}
	if err := r.a.WriteRecord(recordWayBack, WayBack{}); err != nil {
		r.p.log().Warn("cannot clear the way back", "err", err)
	}
	r.end(ResultFailed, fmt.Errorf("%s: the host is back at %s", wb.Error, short(wb.Back.Commit)))
	return true
}

// hasChecks reports whether a journal has CHECK steps.
func hasChecks(js []journal.Step) bool {
	for i := range js {
		if js[i].Op == journal.OpCheck {
			return true
		}
	}
	return false
}

// persist writes the run's record at its end.
func (r *run) persist() {
	var runs []Run
	if _, err := r.a.ReadRecord(recordRuns, &runs); err != nil {
		r.p.log().Warn("cannot read the runs record", "err", err)
	}
	runs = append(runs, r.rep.Run)
	if len(runs) > keepRuns {
		runs = runs[len(runs)-keepRuns:]
	}
	if err := r.a.WriteRecord(recordRuns, runs); err != nil {
		r.p.log().Warn("cannot record the run", "err", err)
	}
}

// Resume lifts a rollback's pin (cairn resume): the next run moves the
// host to its target as usual. It reports whether there was a pin.
func (p *Pipeline) Resume(ctx context.Context) (bool, error) {
	a, err := p.open(ctx, steps.Options{Root: p.cfg.Root, StateDir: p.cfg.StateDir, Log: p.cfg.Log, Host: p.cfg.Drivers})
	if err != nil {
		return false, err
	}
	defer a.Close()
	if pin := p.readPin(a); pin.Commit == "" {
		return false, nil
	}
	if err := a.WriteRecord(recordPin, Pin{}); err != nil {
		return false, err
	}
	if err := a.WriteRecord(recordLifecycle, Lifecycle{State: Idle, Since: time.Now().UTC()}); err != nil {
		return false, err
	}
	p.log().Info("pin lifted")
	return true, nil
}
