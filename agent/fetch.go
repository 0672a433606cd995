package agent

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/cairn-cm/cairn/agent/gitfs"
	"github.com/cairn-cm/cairn/agent/mirror"
	"github.com/cairn-cm/cairn/compiler"
	"github.com/cairn-cm/cairn/steps"
)

// fetched tells the observer how a fetch ended.
func (r *run) fetched(ok bool) {
	if r.obs != nil {
		r.obs.Fetched(ok, time.Now().UTC())
	}
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
