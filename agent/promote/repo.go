package promote

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/cairn-cm/cairn/agent/gitfs"
	"github.com/cairn-cm/cairn/agent/mirror"
	"github.com/cairn-cm/cairn/compiler"
	"github.com/cairn-cm/cairn/journal"
	"github.com/cairn-cm/cairn/statedir"
)

// ErrBadInput is wrapped by the errors that mean the request cannot be
// carried out as given: an unknown group, two groups on one branch, a --to
// branch that is not an ancestor of --from's, a bad URL. The command line
// exits 2 on them.
var ErrBadInput = errors.New("bad input")

// badInput makes an error that wraps ErrBadInput, with the message alone.
func badInput(format string, args ...any) error {
	return &inputError{fmt.Errorf(format, args...)}
}

type inputError struct{ err error }

func (e *inputError) Error() string        { return e.err.Error() }
func (e *inputError) Unwrap() []error      { return []error{e.err, ErrBadInput} }
func (e *inputError) Is(target error) bool { return target == ErrBadInput }

// Conn says how to reach the configuration repository.
type Conn struct {
	// Repo is the repository's URL (agent/mirror's forms).
	Repo string
	// Branch is the control branch; "" means "main".
	Branch string
	// SSHKey and KnownHosts are for ssh URLs (agent/mirror's Options).
	SSHKey, KnownHosts string
	// Timeout bounds the server's silence; 0 means mirror.DefaultTimeout.
	Timeout time.Duration
	// Cache is a directory that keeps the mirror of the repository from one
	// run to the next, so that a run fetches only what is new; "" means a
	// temporary mirror that holds the whole history and is removed at the
	// end. Runs that share a cache take turns (a lock file in it); one that
	// waits longer than a minute for another fails.
	Cache string
	// Log receives what is done at debug level; nil discards.
	Log *slog.Logger
}

func (c *Conn) control() string {
	if c.Branch == "" {
		return "main"
	}
	return c.Branch
}

func (c *Conn) log() *slog.Logger {
	if c.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Log
}

// cacheWait is how long a run waits for another that holds its cache.
var cacheWait = time.Minute

// repo is a mirror of the repository with what the control branch's tip
// says.
type repo struct {
	conn    *Conn
	release func() // removes the temporary mirror, or unlocks the cache
	m       *mirror.Mirror
	control plumbing.Hash
	groups  []compiler.HostGroup
	locks   map[string]Lock
}

// openRepo fetches the control branch into the mirror (the cache, or a
// temporary one) and reads its hosts block and locks.
func openRepo(ctx context.Context, c *Conn) (*repo, error) {
	if c.Repo == "" {
		return nil, badInput("no repository: give --repo")
	}
	dir, release, err := c.mirrorDir(ctx)
	if err != nil {
		return nil, err
	}
	m, err := mirror.Open(dir, c.Repo, mirror.Options{SSHKey: c.SSHKey, KnownHosts: c.KnownHosts, Timeout: c.Timeout, Log: c.log()})
	if err != nil {
		release()
		if errors.Is(err, mirror.ErrUnsupportedURL) {
			return nil, &inputError{err}
		}
		return nil, err
	}
	r := &repo{conn: c, release: release, m: m}
	if err := r.refresh(ctx); err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

// refresh fetches the control branch and reads its tip again.
func (r *repo) refresh(ctx context.Context) error {
	control := r.conn.control()
	tips, err := r.m.Fetch(ctx, control)
	if err != nil {
		if errors.Is(err, mirror.ErrNoBranch) {
			return &inputError{fmt.Errorf("the control branch: %w", err)}
		}
		return err
	}
	r.control = tips[control]
	g, err := gitfs.Open(r.m.Dir())
	if err != nil {
		return err
	}
	defer g.Close()
	fsys, _, err := g.FS(r.control.String())
	if err != nil {
		return err
	}
	if r.groups, err = compiler.Hosts(fsys); err != nil {
		return fmt.Errorf("the hosts block at the tip of %s (%s): %w", control, short(r.control), err)
	}
	if r.locks, err = readLocks(fsys); err != nil {
		return fmt.Errorf("the locks at the tip of %s (%s): %w", control, short(r.control), err)
	}
	return nil
}

func (r *repo) close() {
	r.m.Close()
	r.release()
}

// mirrorDir returns the directory of the mirror and what releases it: a
// new temporary directory that release removes, or Cache/mirror with
// Cache/lock held until release.
func (c *Conn) mirrorDir(ctx context.Context) (dir string, release func(), err error) {
	if c.Cache == "" {
		tmp, err := os.MkdirTemp("", "cairn-promote-")
		if err != nil {
			return "", nil, err
		}
		return filepath.Join(tmp, "mirror"), func() { os.RemoveAll(tmp) }, nil
	}
	if err := os.MkdirAll(c.Cache, 0o700); err != nil {
		return "", nil, fmt.Errorf("cache: %w", err)
	}
	lock, err := statedir.Lock(ctx, filepath.Join(c.Cache, "lock"), cacheWait)
	if errors.Is(err, statedir.ErrLocked) {
		return "", nil, fmt.Errorf("cache %s: in use by another run: %w", c.Cache, err)
	}
	if err != nil {
		return "", nil, fmt.Errorf("cache %s: %w", c.Cache, err)
	}
	return filepath.Join(c.Cache, "mirror"), func() { lock.Close() }, nil
}

// locksDir is where locks are kept on the control branch.
const locksDir = ".cairn/locks"

// readLocks reads every lock file.
func readLocks(fsys fs.FS) (map[string]Lock, error) {
	locks := map[string]Lock{}
	ents, err := fs.ReadDir(fsys, locksDir)
	if errors.Is(err, fs.ErrNotExist) {
		return locks, nil
	}
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		b, err := fs.ReadFile(fsys, path.Join(locksDir, e.Name()))
		if err != nil {
			return nil, err
		}
		locks[e.Name()] = ParseLock(e.Name(), b)
	}
	return locks, nil
}

// group returns the named group, or a bad input error with a suggestion.
func (r *repo) group(flag, name string) (compiler.HostGroup, error) {
	var names []string
	for _, g := range r.groups {
		if g.Name == name {
			return g, nil
		}
		names = append(names, g.Name)
	}
	if name == "" {
		return compiler.HostGroup{}, badInput("%s: no group given", flag)
	}
	msg := fmt.Sprintf("%s %s: no such group in the hosts block at the tip of %s", flag, name, r.conn.control())
	if s := journal.Suggest(name, names); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	} else if len(names) > 0 {
		msg += " (groups: " + strings.Join(names, ", ") + ")"
	}
	return compiler.HostGroup{}, badInput("%s", msg)
}

// branchOf is the branch a group follows.
func (r *repo) branchOf(g compiler.HostGroup) string {
	if g.Branch != "" {
		return g.Branch
	}
	return r.conn.control()
}

// groupsOn lists the groups that follow branch, in the hosts block's order.
func (r *repo) groupsOn(branch string) []string {
	var out []string
	for _, g := range r.groups {
		if r.branchOf(g) == branch {
			out = append(out, g.Name)
		}
	}
	return out
}

// onlyIn lists the commits reachable from a that b does not reach, newest
// first, at most max of them, and how many there are in all.
func (r *repo) onlyIn(a, b plumbing.Hash, max int) ([]*object.Commit, int, error) {
	st := r.m.Objects()
	inB := map[plumbing.Hash]bool{}
	stack := []plumbing.Hash{b}
	for len(stack) > 0 {
		h := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if inB[h] {
			continue
		}
		inB[h] = true
		c, err := object.GetCommit(st, h)
		if err != nil {
			return nil, 0, fmt.Errorf("commit %s: %w", h, err)
		}
		stack = append(stack, c.ParentHashes...)
	}
	var out []*object.Commit
	seen := map[plumbing.Hash]bool{}
	n := 0
	stack = []plumbing.Hash{a}
	for len(stack) > 0 {
		h := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if inB[h] || seen[h] {
			continue
		}
		seen[h] = true
		c, err := object.GetCommit(st, h)
		if err != nil {
			return nil, 0, fmt.Errorf("commit %s: %w", h, err)
		}
		n++
		out = append(out, c)
		stack = append(stack, c.ParentHashes...)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Committer.When.After(out[j].Committer.When) })
	if len(out) > max {
		out = out[:max]
	}
	return out, n, nil
}

// putBlob stores data as a blob and returns its hash.
func (r *repo) putBlob(data []byte) (plumbing.Hash, error) {
	st := r.m.Objects()
	o := st.NewEncodedObject()
	o.SetType(plumbing.BlobObject)
	w, err := o.Writer()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if _, err := w.Write(data); err != nil {
		return plumbing.ZeroHash, err
	}
	if err := w.Close(); err != nil {
		return plumbing.ZeroHash, err
	}
	return st.SetEncodedObject(o)
}

// setPath returns the hash of the tree root (zero: an empty tree) with the
// file at p (slash-separated) set to the blob (or removed when blob is
// zero), writing the trees that change.
func (r *repo) setPath(root plumbing.Hash, p string, blob plumbing.Hash) (plumbing.Hash, error) {
	st := r.m.Objects()
	var entries []object.TreeEntry
	if !root.IsZero() {
		t, err := object.GetTree(st, root)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		entries = slices.Clone(t.Entries)
	}
	first, rest, deeper := strings.Cut(p, "/")
	i := slices.IndexFunc(entries, func(e object.TreeEntry) bool { return e.Name == first })
	switch {
	case deeper:
		sub := plumbing.ZeroHash
		if i >= 0 && entries[i].Mode == filemode.Dir {
			sub = entries[i].Hash
		}
		h, err := r.setPath(sub, rest, blob)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		if i >= 0 {
			entries = slices.Delete(entries, i, i+1)
		}
		if !h.IsZero() {
			entries = append(entries, object.TreeEntry{Name: first, Mode: filemode.Dir, Hash: h})
		}
	default:
		if i >= 0 {
			entries = slices.Delete(entries, i, i+1)
		}
		if !blob.IsZero() {
			entries = append(entries, object.TreeEntry{Name: first, Mode: filemode.Regular, Hash: blob})
		}
	}
	if len(entries) == 0 && !root.IsZero() {
		// An emptied directory goes (but the top tree stays, empty).
		return plumbing.ZeroHash, nil
	}
	// git's order: names compared as if directories ended in "/".
	key := func(e object.TreeEntry) string {
		if e.Mode == filemode.Dir {
			return e.Name + "/"
		}
		return e.Name
	}
	sort.Slice(entries, func(i, j int) bool { return key(entries[i]) < key(entries[j]) })
	t := &object.Tree{Entries: entries}
	o := st.NewEncodedObject()
	if err := t.Encode(o); err != nil {
		return plumbing.ZeroHash, err
	}
	return st.SetEncodedObject(o)
}

// emptyTree writes the empty tree.
func (r *repo) emptyTree() (plumbing.Hash, error) {
	o := r.m.Objects().NewEncodedObject()
	if err := (&object.Tree{}).Encode(o); err != nil {
		return plumbing.ZeroHash, err
	}
	return r.m.Objects().SetEncodedObject(o)
}

// short is a commit's abbreviated hash.
func short(h plumbing.Hash) string { return h.String()[:10] }

// subject is the first line of a commit's message.
func subject(c *object.Commit) string {
	s, _, _ := strings.Cut(strings.TrimSpace(c.Message), "\n")
	return s
}
