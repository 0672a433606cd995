package mirror

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/sideband"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// ErrNoBranch is wrapped by the error of [Mirror.Fetch] when a branch asked
// for is not on the remote.
var ErrNoBranch = errors.New("no such branch on the remote")

// ErrUnknownRevision is wrapped by the error of [Mirror.Resolve] when the
// revision names no commit of the mirror.
var ErrUnknownRevision = errors.New("unknown revision")

// objectCache bounds go-git's cache of decoded objects (delta bases while a
// fetched pack is indexed, mostly); its 96 MiB default is more than the
// agent's whole memory goal.
const objectCache = 16 * cache.MiByte

// DefaultTimeout is how long a server may stay silent, when
// Options.Timeout is zero.
const DefaultTimeout = time.Minute

// remoteName is the name under which the mirror records its remote's URL, as
// a git remote, so that git itself can be pointed at the directory.
const remoteName = "origin"

// maxHaves bounds the commits a fetch tells the server it already has.
const maxHaves = 256

// Options tune a Mirror. The zero value is ready to use.
type Options struct {
	// SSHKey is the private key file for ssh URLs. "" means the first of
	// ~/.ssh/id_ed25519, ~/.ssh/id_ecdsa and ~/.ssh/id_rsa that exists. A
	// key protected by a passphrase is not supported.
	SSHKey string
	// KnownHosts is the known_hosts file that ssh host keys are checked
	// against; "" means ~/.ssh/known_hosts. Host keys are always checked: a
	// host that the file does not name is refused.
	KnownHosts string
	// Timeout is how long a server may stay silent (while connecting, before
	// it answers, or in the middle of a transfer) before a fetch fails; 0
	// means DefaultTimeout. It does not bound a transfer that makes
	// progress: give Fetch a context with a deadline for that.
	Timeout time.Duration
	// Log receives what the mirror does at debug level, and re-pointing and
	// rewritten branches at info level; nil discards.
	Log *slog.Logger
}

// Mirror is a bare git repository that mirrors branches and tags of one
// remote. It is safe for concurrent use; its calls are serialised.
type Mirror struct {
	dir    string
	remote *remote
	opts   Options
	log    *slog.Logger

	mu   sync.Mutex // serialises all use of st and repo
	st   *filesystem.Storage
	repo *git.Repository
}

// Open opens the mirror at dir for the remote at url, creating dir (mode
// 0700) and a bare repository in it when dir is missing or empty. A
// directory that is neither empty nor a git repository is refused.
//
// The mirror records the remote's URL without its credentials. When dir
// holds a mirror of another URL, it is re-pointed to url: its branches and
// tags are deleted, so that nothing of the old remote resolves by name, but
// its objects stay, so the commits fetched before (the one applied last, for
// one) can still be read and compared with IsAncestor. The change is logged
// at info level.
//
// url is a local path, or a file://, git://, http://, https:// or ssh://
// URL, or an scp-like [user@]host:path (ssh). Credentials in an http(s) URL
// (https://user:token@host/repo) are sent with HTTP basic authentication;
// they never appear in errors or logs.
func Open(dir, url string, o Options) (*Mirror, error) {
	r, err := parseRemote(url)
	if err != nil {
		return nil, err
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("mirror of %s: %w", r.shown, err)
	}
	st := filesystem.NewStorageWithOptions(osfs.New(dir, osfs.WithBoundOS()), cache.NewObjectLRU(objectCache),
		filesystem.Options{MaxOpenDescriptors: 32})
	repo, err := git.Open(st, nil)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		ents, rerr := os.ReadDir(dir)
		if rerr != nil {
			return nil, fmt.Errorf("mirror of %s: %w", r.shown, rerr)
		}
		if len(ents) > 0 {
			return nil, fmt.Errorf("mirror of %s: %s is neither empty nor a git repository", r.shown, dir)
		}
		repo, err = git.InitWithOptions(st, nil, git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName("main")})
	}
	if err != nil {
		_ = st.Close()
		return nil, fmt.Errorf("mirror of %s in %s: %w", r.shown, dir, err)
	}
	m := &Mirror{dir: dir, remote: r, opts: o, log: log.With("repo", r.shown), st: st, repo: repo}
	if err := m.point(); err != nil {
		_ = st.Close()
		return nil, fmt.Errorf("mirror of %s in %s: %w", r.shown, dir, err)
	}
	return m, nil
}

// point records the remote's URL, re-pointing a mirror of another URL.
func (m *Mirror) point() error {
	cfg, err := m.repo.Config()
	if err != nil {
		return err
	}
	old, ok := cfg.Remotes[remoteName]
	if ok && len(old.URLs) == 1 && old.URLs[0] == m.remote.id {
		return nil
	}
	if ok {
		m.log.Info("mirror re-pointed to another repository; its branches and tags are dropped",
			"dir", m.dir, "old", old.URLs)
		if err := m.dropRefs(func(plumbing.ReferenceName) bool { return true }); err != nil {
			return err
		}
	}
	cfg.Remotes[remoteName] = &config.RemoteConfig{
		Name:  remoteName,
		URLs:  []string{m.remote.id},
		Fetch: []config.RefSpec{"+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"},
	}
	return m.repo.SetConfig(cfg)
}

// dropRefs deletes the branches and tags for which drop is true.
func (m *Mirror) dropRefs(drop func(plumbing.ReferenceName) bool) error {
	refs, err := m.localRefs()
	if err != nil {
		return err
	}
	for name := range refs {
		if drop(name) {
			if err := m.st.RemoveReference(name); err != nil {
				return err
			}
		}
	}
	return nil
}

// localRefs returns the mirror's branches and tags.
func (m *Mirror) localRefs() (map[plumbing.ReferenceName]plumbing.Hash, error) {
	iter, err := m.st.IterReferences()
	if err != nil {
		return nil, err
	}
	refs := map[plumbing.ReferenceName]plumbing.Hash{}
	err = iter.ForEach(func(r *plumbing.Reference) error {
		if r.Type() == plumbing.HashReference && (r.Name().IsBranch() || r.Name().IsTag()) {
			refs[r.Name()] = r.Hash()
		}
		return nil
	})
	return refs, err
}

// Dir returns the directory of the bare repository, as given to Open; open
// it with agent/gitfs to read the files of a fetched commit.
func (m *Mirror) Dir() string { return m.dir }

// Close releases the repository's open files.
func (m *Mirror) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.st.Close()
}

// Fetch fetches the named branches from the remote over one connection and
// one reference advertisement, and returns their tips. Each branch is
// force-updated to the remote's tip (a rewritten branch is followed, and the
// commits it left stay in the mirror). When every tip is already in the
// mirror, the fetch costs the advertisement alone: no pack is asked for.
//
// A branch missing on the remote fails the whole fetch, before anything is
// transferred or changed, with an error that names it and wraps ErrNoBranch.
func (m *Mirror) Fetch(ctx context.Context, branches ...string) (map[string]plumbing.Hash, error) {
	if len(branches) == 0 {
		return nil, fmt.Errorf("fetch %s: no branch named", m.remote.shown)
	}
	for _, b := range branches {
		if err := plumbing.NewBranchReferenceName(b).Validate(); err != nil || strings.HasPrefix(b, "refs/") {
			return nil, fmt.Errorf("fetch %s: %q is not a branch name", m.remote.shown, b)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	tips := map[string]plumbing.Hash{}
	err := m.transfer(ctx, func(remote map[plumbing.ReferenceName]plumbing.Hash) (map[plumbing.ReferenceName]plumbing.Hash, error) {
		want := map[plumbing.ReferenceName]plumbing.Hash{}
		var missing []string
		for _, b := range branches {
			name := plumbing.NewBranchReferenceName(b)
			h, ok := remote[name]
			if !ok {
				missing = append(missing, fmt.Sprintf("%q", b))
				continue
			}
			want[name] = h
			tips[b] = h
		}
		if len(missing) > 0 {
			return nil, fmt.Errorf("branch %s: %w", strings.Join(missing, ", "), ErrNoBranch)
		}
		return want, nil
	}, nil)
	if err != nil {
		return nil, err
	}
	return tips, nil
}

// FetchAll fetches every branch and tag of the remote, over one connection,
// and deletes the mirror's branches and tags that the remote no longer has
// (their commits stay). It serves moving to any revision by name.
func (m *Mirror) FetchAll(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.transfer(ctx, func(remote map[plumbing.ReferenceName]plumbing.Hash) (map[plumbing.ReferenceName]plumbing.Hash, error) {
		want := map[plumbing.ReferenceName]plumbing.Hash{}
		for name, h := range remote {
			if name.IsBranch() || name.IsTag() {
				want[name] = h
			}
		}
		if len(want) == 0 {
			// Rather than drop every branch and tag of the mirror.
			return nil, errors.New("the remote has no branches and no tags")
		}
		return want, nil
	}, func(name plumbing.ReferenceName, remote map[plumbing.ReferenceName]plumbing.Hash) bool {
		_, ok := remote[name]
		return !ok
	})
}

// transfer runs one fetch: it reads the remote's advertisement, asks pick
// which references to set to which hashes, fetches in one pack the objects
// of those hashes the mirror lacks, then sets the references and deletes
// the branches and tags for which prune (if not nil) is true.
//
// A server that drops the connection or says it is overloaded is tried
// again, up to Attempts times (retry).
func (m *Mirror) transfer(ctx context.Context,
	pick func(remote map[plumbing.ReferenceName]plumbing.Hash) (map[plumbing.ReferenceName]plumbing.Hash, error),
	prune func(local plumbing.ReferenceName, remote map[plumbing.ReferenceName]plumbing.Hash) bool,
) error {
	return retry(ctx, func() error { return m.transferOnce(ctx, pick, prune) },
		func(attempt int, d time.Duration, err error) {
			m.log.Info("the git server dropped the connection; trying again", "attempt", attempt, "wait", d.Round(time.Millisecond), "err", err)
		})
}

// transferOnce is one attempt of transfer.
func (m *Mirror) transferOnce(ctx context.Context,
	pick func(remote map[plumbing.ReferenceName]plumbing.Hash) (map[plumbing.ReferenceName]plumbing.Hash, error),
	prune func(local plumbing.ReferenceName, remote map[plumbing.ReferenceName]plumbing.Hash) bool,
) (err error) {
	start := time.Now()
	defer func() {
		if err != nil {
			err = m.wrapErr(err)
		}
	}()
	if err := ctx.Err(); err != nil {
		return err
	}
	d := &dialer{idle: m.opts.Timeout}
	defer d.close()
	defer func() {
		if err != nil && d.timedOut.Load() && ctx.Err() == nil {
			err = fmt.Errorf("server silent for %s: %w", m.opts.Timeout, os.ErrDeadlineExceeded)
		}
	}()
	sess, err := d.open(ctx, m.remote, &m.opts, func(h plumbing.Hash) bool { return m.st.HasEncodedObject(h) == nil })
	if err != nil {
		return err
	}
	defer func() {
		if cerr := sess.Close(); cerr != nil && err == nil && ctx.Err() == nil {
			err = cerr
		}
	}()
	ar, err := sess.AdvertisedReferencesContext(ctx)
	if errors.Is(err, transport.ErrEmptyRemoteRepository) {
		ar, err = packp.NewAdvRefs(), nil // no branches: pick decides
	}
	if err != nil {
		return err
	}
	remote := make(map[plumbing.ReferenceName]plumbing.Hash, len(ar.References))
	for name, h := range ar.References {
		remote[plumbing.ReferenceName(name)] = h
	}
	want, err := pick(remote)
	if err != nil {
		return err
	}
	var wants []plumbing.Hash
	asked := map[plumbing.Hash]bool{}
	for _, h := range want {
		if !asked[h] && m.st.HasEncodedObject(h) != nil {
			asked[h] = true
			wants = append(wants, h)
		}
	}
	if len(wants) > 0 {
		if err := m.fetchPack(ctx, sess, ar, wants, remote); err != nil {
			return err
		}
		for _, h := range wants {
			if err := m.st.HasEncodedObject(h); err != nil {
				return fmt.Errorf("the server sent no object %s", h)
			}
		}
	}
	changed, err := m.setRefs(want)
	if err != nil {
		return err
	}
	if prune != nil {
		if err := m.dropRefs(func(n plumbing.ReferenceName) bool { return prune(n, remote) }); err != nil {
			return err
		}
	}
	m.log.Debug("fetched", "refs", len(want), "changed", changed, "objects", len(wants) > 0,
		"duration", time.Since(start))
	return nil
}

// wrapErr says what failed and where, with the remote's credentials
// removed from the message.
func (m *Mirror) wrapErr(err error) error {
	msg := strings.TrimRight(fmt.Sprintf("fetch %s: %v", m.remote.shown, err), ": ") // go-git leaves "reason: " empty at times
	return &fetchError{msg: m.remote.redact(msg), err: err}
}

// fetchError is an error whose message is scrubbed of credentials; it
// unwraps to the cause, for errors.Is.
type fetchError struct {
	msg string
	err error
}

func (e *fetchError) Error() string { return e.msg }
func (e *fetchError) Unwrap() error { return e.err }

// fetchPack asks for wants, telling the server which commits the mirror
// has, and stores the pack it sends.
func (m *Mirror) fetchPack(ctx context.Context, sess transport.UploadPackSession, ar *packp.AdvRefs,
	wants []plumbing.Hash, remote map[plumbing.ReferenceName]plumbing.Hash) (err error) {
	// Progress messages are not asked away: they are dropped, but they keep
	// a server that works from looking silent (Options.Timeout).
	req := packp.NewUploadPackRequestFromCapabilities(ar.Capabilities)
	req.Wants = wants
	if req.Haves, err = m.haves(remote); err != nil {
		return err
	}
	res, err := sess.UploadPack(ctx, req)
	if errors.Is(err, transport.ErrEmptyUploadPackRequest) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("asking for a pack: %w", err)
	}
	defer func() {
		if cerr := res.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	var r io.Reader = res
	switch {
	case req.Capabilities.Supports(capability.Sideband64k):
		r = sideband.NewDemuxer(sideband.Sideband64k, res)
	case req.Capabilities.Supports(capability.Sideband):
		r = sideband.NewDemuxer(sideband.Sideband, res)
	}
	if err := packfile.UpdateObjectStorage(m.st, r); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("receiving the pack: %w", err)
	}
	return nil
}

// haves lists commits the mirror has: the tips of its branches and tags and
// some of their ancestors, stopping at commits the remote advertises.
func (m *Mirror) haves(remote map[plumbing.ReferenceName]plumbing.Hash) ([]plumbing.Hash, error) {
	refs, err := m.localRefs()
	if err != nil {
		return nil, err
	}
	atRemote := map[plumbing.Hash]bool{}
	for _, h := range remote {
		atRemote[h] = true
	}
	seen := map[plumbing.Hash]bool{}
	var haves []plumbing.Hash
	add := func(h plumbing.Hash) bool {
		if seen[h] || len(haves) >= maxHaves {
			return false
		}
		seen[h] = true
		haves = append(haves, h)
		return true
	}
	// Tips first, so that they are in even when the bound cuts ancestors off.
	names := slices.Sorted(func(yield func(plumbing.ReferenceName) bool) {
		for n := range refs {
			if !yield(n) {
				return
			}
		}
	})
	for _, n := range names {
		add(refs[n])
	}
	for _, n := range names {
		c, err := m.peel(refs[n])
		if err != nil {
			continue // not a commit, or a tag of something else
		}
		add(c.Hash)
		for i := 0; i < 16 && !atRemote[c.Hash] && c.NumParents() > 0; i++ {
			p, err := c.Parent(0)
			if err != nil || !add(p.Hash) {
				break
			}
			c = p
		}
	}
	return haves, nil
}

// peel returns the commit h names, through annotated tags.
func (m *Mirror) peel(h plumbing.Hash) (*object.Commit, error) {
	for range 10 {
		o, err := m.st.EncodedObject(plumbing.AnyObject, h)
		if err != nil {
			return nil, err
		}
		if o.Type() != plumbing.TagObject {
			return object.GetCommit(m.st, h)
		}
		t, err := object.DecodeTag(m.st, o)
		if err != nil {
			return nil, err
		}
		h = t.Target
	}
	return nil, fmt.Errorf("tag chain too long at %s", h)
}

// setRefs sets each reference to its hash and returns how many changed.
func (m *Mirror) setRefs(want map[plumbing.ReferenceName]plumbing.Hash) (int, error) {
	changed := 0
	names := slices.Sorted(func(yield func(plumbing.ReferenceName) bool) {
		for n := range want {
			if !yield(n) {
				return
			}
		}
	})
	for _, name := range names {
		h := want[name]
		old := plumbing.ZeroHash
		if r, err := m.st.Reference(name); err == nil {
			old = r.Hash()
		}
		if old == h {
			continue
		}
		if err := m.st.SetReference(plumbing.NewHashReference(name, h)); err != nil {
			return changed, fmt.Errorf("update %s: %w", name, err)
		}
		changed++
		if name.IsBranch() && !old.IsZero() {
			if ff, err := m.isAncestor(old, h); err == nil && !ff {
				m.log.Info("remote branch rewritten: its new tip does not descend from the old one",
					"branch", name.Short(), "old", old.String(), "new", h.String())
				continue
			}
		}
		m.log.Debug("reference updated", "ref", name.String(), "old", old.String(), "new", h.String())
	}
	return changed, nil
}

// Resolve returns the commit that rev names in the mirror: a branch, a tag
// (annotated tags are peeled), a full or abbreviated hash, or any revision
// go-git understands (main~2, v1^). An error wraps ErrUnknownRevision when
// rev names nothing.
func (m *Mirror) Resolve(rev string) (plumbing.Hash, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	h, err := m.repo.ResolveRevision(plumbing.Revision(rev))
	if err != nil || h == nil || h.IsZero() {
		if err == nil || errors.Is(err, plumbing.ErrReferenceNotFound) || errors.Is(err, plumbing.ErrObjectNotFound) {
			err = ErrUnknownRevision
		} else {
			err = fmt.Errorf("%w: %v", ErrUnknownRevision, err)
		}
		return plumbing.ZeroHash, fmt.Errorf("mirror of %s: revision %q: %w", m.remote.shown, rev, err)
	}
	return *h, nil
}

// Commit returns the commit h from the mirror.
func (m *Mirror) Commit(h plumbing.Hash) (*object.Commit, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, err := object.GetCommit(m.st, h)
	if err != nil {
		return nil, fmt.Errorf("mirror of %s: commit %s: %w", m.remote.shown, h, err)
	}
	return c, nil
}

// IsAncestor reports whether ancestor is commit or one of its ancestors:
// whether commit descends from ancestor. Both must be commits of the
// mirror.
//
// It walks back from commit, newest committer time first, visiting each
// commit at most once and stopping at ancestor; so a commit a few commits
// ahead costs a few reads, and an answer of false costs one walk of the
// history of commit.
func (m *Mirror) IsAncestor(ancestor, commit plumbing.Hash) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ok, err := m.isAncestor(ancestor, commit)
	if err != nil {
		return false, fmt.Errorf("mirror of %s: is %s an ancestor of %s: %w", m.remote.shown, ancestor, commit, err)
	}
	return ok, nil
}

func (m *Mirror) isAncestor(ancestor, commit plumbing.Hash) (bool, error) {
	if _, err := object.GetCommit(m.st, ancestor); err != nil {
		return false, fmt.Errorf("commit %s: %w", ancestor, err)
	}
	c, err := object.GetCommit(m.st, commit)
	if err != nil {
		return false, fmt.Errorf("commit %s: %w", commit, err)
	}
	q := &commitQueue{c}
	seen := map[plumbing.Hash]bool{commit: true}
	for q.Len() > 0 {
		c := heap.Pop(q).(*object.Commit)
		if c.Hash == ancestor {
			return true, nil
		}
		for _, p := range c.ParentHashes {
			if seen[p] {
				continue
			}
			seen[p] = true
			pc, err := object.GetCommit(m.st, p)
			if err != nil {
				return false, fmt.Errorf("parent %s of %s: %w", p, c.Hash, err)
			}
			heap.Push(q, pc)
		}
	}
	return false, nil
}

// commitQueue is a heap of commits, newest committer time first.
type commitQueue []*object.Commit

func (q commitQueue) Len() int { return len(q) }
func (q commitQueue) Less(i, j int) bool {
	return q[i].Committer.When.After(q[j].Committer.When)
}
func (q commitQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *commitQueue) Push(x any)   { *q = append(*q, x.(*object.Commit)) }
func (q *commitQueue) Pop() any {
	old := *q
	c := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return c
}
