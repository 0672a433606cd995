package gitfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/storage/filesystem"
	"github.com/go-git/go-git/v5/storage/filesystem/dotgit"
)

// ErrUnknownRevision is wrapped by the error of [Repo.Resolve] and [Repo.FS]
// when the revision names no commit.
var ErrUnknownRevision = errors.New("unknown revision")

// ErrSubmoduleUnavailable is wrapped by the error of reading under a
// submodule whose pinned commit is in no repository that could be found.
var ErrSubmoduleUnavailable = errors.New("submodule objects not available")

// maxOpenPacks is how many packfiles a Repo keeps open.
const maxOpenPacks = 32

// objectCache bounds go-git's cache of decoded objects (delta bases, mostly)
// of a Repo. Its default, 96 MiB, let a compile that reads every blob of a
// large configuration keep tens of MiB of contents that are not read again
// (sums are kept by Sum256, trees by the Repo); 16 MiB holds the delta
// bases that the reads of one commit share.
const objectCache = 16 * cache.MiByte

// maxCached bounds each cache of a Repo; a full cache is emptied and refilled.
const maxCached = 1 << 16

// Repo is a git repository opened for reading commits. It is safe for
// concurrent use.
type Repo struct {
	dir       string // as given to Open, for messages
	gitDir    string // absolute path of the git directory
	commonDir string // the common git directory of a linked work tree, else gitDir
	workTree  string // absolute path of the work tree, "" for a bare repository

	mu    sync.Mutex // serialises all use of repo and guards trees and sizes
	repo  *git.Repository
	trees map[plumbing.Hash][]entry
	sizes map[plumbing.Hash]int64

	subMu sync.Mutex // guards subs
	subs  map[string]*subRepo
}

// subRepo is the outcome of opening one candidate repository of a submodule.
type subRepo struct {
	repo *Repo
	err  error
}

// entry is one entry of a git tree.
type entry struct {
	name string
	mode filemode.FileMode
	hash plumbing.Hash
}

// Open opens the git repository at dir, which is the top of a work tree
// (holding a .git directory or a .git file) or a bare repository. It does
// not look in parent directories.
func Open(dir string) (*Repo, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return open(abs, dir)
}

func open(abs, label string) (*Repo, error) {
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("%s: open repository: %w", label, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s: not a directory", label)
	}
	gitDir, workTree, err := locate(abs)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", label, err)
	}
	common := gitDir
	if b, err := os.ReadFile(filepath.Join(gitDir, "commondir")); err == nil {
		c := strings.TrimSpace(string(b))
		if !filepath.IsAbs(c) {
			c = filepath.Join(gitDir, c)
		}
		common = filepath.Clean(c)
	}
	var dot billy.Filesystem = osfs.New(gitDir, osfs.WithBoundOS())
	if common != gitDir {
		dot = dotgit.NewRepositoryFilesystem(dot, osfs.New(common, osfs.WithBoundOS()))
	}
	// Packfiles stay open between reads (until Close) rather than being
	// reopened for every object.
	st := filesystem.NewStorageWithOptions(dot, cache.NewObjectLRU(objectCache),
		filesystem.Options{MaxOpenDescriptors: maxOpenPacks})
	// No work tree: nothing here reads or writes one.
	g, err := git.Open(st, nil)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		return nil, fmt.Errorf("%s: not a git repository", label)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: open repository: %w", label, err)
	}
	return &Repo{
		dir:       label,
		gitDir:    gitDir,
		commonDir: common,
		workTree:  workTree,
		repo:      g,
		trees:     map[plumbing.Hash][]entry{},
		sizes:     map[plumbing.Hash]int64{},
		subs:      map[string]*subRepo{},
	}, nil
}

// locate finds the git directory and the work tree of the repository at the
// absolute path abs, the way git does without searching parents.
func locate(abs string) (gitDir, workTree string, err error) {
	dotGit := filepath.Join(abs, ".git")
	fi, err := os.Stat(dotGit)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return abs, "", nil
	case err != nil:
		return "", "", err
	case fi.IsDir():
		return dotGit, abs, nil
	}
	b, err := os.ReadFile(dotGit)
	if err != nil {
		return "", "", err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	target, ok := strings.CutPrefix(strings.TrimSpace(line), "gitdir:")
	if !ok {
		return "", "", fmt.Errorf("%s: no gitdir line", dotGit)
	}
	target = strings.TrimSpace(target)
	if !filepath.IsAbs(target) {
		target = filepath.Join(abs, target)
	}
	return filepath.Clean(target), abs, nil
}

// Close releases the files the repository and its submodules hold open. The
// file systems it returned must not be used afterwards.
func (r *Repo) Close() error {
	r.subMu.Lock()
	subs := slices.Collect(maps.Values(r.subs))
	r.subMu.Unlock()
	var errs []error
	for _, s := range subs {
		if s.repo != nil {
			errs = append(errs, s.repo.Close())
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.repo.Storer.(io.Closer); ok {
		if err := c.Close(); err != nil {
			errs = append(errs, fmt.Errorf("%s: close: %w", r.dir, err))
		}
	}
	return errors.Join(errs...)
}

// Resolve returns the commit that rev names: a branch, a tag (annotated tags
// are peeled), a remote-tracking branch, a full or abbreviated (at least 4
// digits) hash, HEAD, or any of these followed by ~N and ^N, as git
// rev-parse reads them. A plain name is looked up as a reference before it
// is tried as an abbreviated hash, as git does.
func (r *Repo) Resolve(rev string) (plumbing.Hash, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	h, err := r.resolve(rev)
	if err == nil {
		return h, nil
	}
	if errors.Is(err, ErrUnknownRevision) || errors.Is(err, plumbing.ErrReferenceNotFound) ||
		errors.Is(err, plumbing.ErrObjectNotFound) || errors.Is(err, io.EOF) {
		return plumbing.ZeroHash, fmt.Errorf("%s: %w %q", r.dir, ErrUnknownRevision, rev)
	}
	return plumbing.ZeroHash, fmt.Errorf("%s: %w %q: %w", r.dir, ErrUnknownRevision, rev, err)
}

// resolve does the work of Resolve; r.mu is held.
func (r *Repo) resolve(rev string) (plumbing.Hash, error) {
	if rev == "" || strings.Contains(rev, "..") || strings.HasPrefix(rev, "/") ||
		strings.ContainsAny(rev, "\\\x00") {
		return plumbing.ZeroHash, ErrUnknownRevision
	}
	if strings.Contains(rev, ":") || strings.Contains(rev, "@{") {
		// go-git would resolve these to the commit and drop the path or
		// the reflog selector; only commits are wanted here.
		return plumbing.ZeroHash, errors.New("paths and reflog selectors are not supported")
	}
	if !strings.ContainsAny(rev, "~^:@{ ") {
		if h, ok := r.lookupRef(rev); ok {
			return r.peel(h)
		}
		if isHex(rev) && len(rev) < 4 {
			return plumbing.ZeroHash, ErrUnknownRevision
		}
	}
	h, err := r.repo.ResolveRevision(plumbing.Revision(rev))
	if err != nil {
		return plumbing.ZeroHash, err
	}
	return *h, nil
}

// lookupRef expands name by git's rules (NAME for HEAD-like names and
// refs/..., then refs/NAME, refs/tags/NAME, refs/heads/NAME, ...).
func (r *Repo) lookupRef(name string) (plumbing.Hash, bool) {
	for _, rule := range plumbing.RefRevParseRules {
		if rule == "%s" && !strings.HasPrefix(name, "refs/") && !isPseudoRef(name) {
			continue
		}
		ref, err := storer.ResolveReference(r.repo.Storer, plumbing.ReferenceName(fmt.Sprintf(rule, name)))
		if err == nil && ref.Type() == plumbing.HashReference {
			return ref.Hash(), true
		}
	}
	return plumbing.ZeroHash, false
}

// isPseudoRef reports whether name looks like HEAD, FETCH_HEAD, ORIG_HEAD.
func isPseudoRef(name string) bool {
	for _, c := range name {
		if (c < 'A' || c > 'Z') && c != '_' {
			return false
		}
	}
	return name != ""
}

func isHex(s string) bool {
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') && (c < 'A' || c > 'F') {
			return false
		}
	}
	return true
}

// peel follows annotated tags from h to a commit; r.mu is held.
func (r *Repo) peel(h plumbing.Hash) (plumbing.Hash, error) {
	for range 10 {
		if _, err := r.repo.CommitObject(h); err == nil {
			return h, nil
		}
		t, err := r.repo.TagObject(h)
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("%s is not a commit: %w", h, ErrUnknownRevision)
		}
		h = t.Target
	}
	return plumbing.ZeroHash, fmt.Errorf("tag chain too long: %w", ErrUnknownRevision)
}

// FS resolves rev (see [Repo.Resolve]) and returns the tree of that commit
// as a read-only file system, with the commit's hash. The file system
// implements fs.FS, fs.ReadFileFS, fs.ReadDirFS, fs.StatFS and
// fs.ReadLinkFS; the package documentation says what it shows. It is safe
// for concurrent use.
func (r *Repo) FS(rev string) (fs.FS, plumbing.Hash, error) {
	h, err := r.Resolve(rev)
	if err != nil {
		return nil, plumbing.ZeroHash, err
	}
	tree, when, err := r.commitTree(h)
	if err != nil {
		return nil, plumbing.ZeroHash, fmt.Errorf("%s: revision %q: %w", r.dir, rev, err)
	}
	top := &mount{repo: r, prefix: ".", commit: h, tree: tree}
	return &treeFS{top: top, modTime: when, dirs: map[string]*dir{}}, h, nil
}

// commitTree returns the root tree and the committer time of commit h.
func (r *Repo) commitTree(h plumbing.Hash) (plumbing.Hash, time.Time, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.repo.CommitObject(h)
	if err != nil {
		return plumbing.ZeroHash, time.Time{}, fmt.Errorf("commit %s: %w", h, err)
	}
	return c.TreeHash, c.Committer.When, nil
}

// tree returns the entries of tree h, sorted by name.
func (r *Repo) tree(h plumbing.Hash) ([]entry, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if es, ok := r.trees[h]; ok {
		return es, nil
	}
	t, err := r.repo.TreeObject(h)
	if err != nil {
		return nil, fmt.Errorf("tree %s: %w", h, err)
	}
	es := make([]entry, 0, len(t.Entries))
	for _, e := range t.Entries {
		if e.Name == "" || e.Name == "." || e.Name == ".." || strings.ContainsAny(e.Name, "/\x00") {
			continue
		}
		es = append(es, entry{name: e.Name, mode: e.Mode, hash: e.Hash})
	}
	// Git sorts a directory as if its name ended in a slash; fs wants names.
	slices.SortFunc(es, func(a, b entry) int { return strings.Compare(a.name, b.name) })
	if len(r.trees) >= maxCached {
		clear(r.trees)
	}
	r.trees[h] = es
	return es, nil
}

// blob returns the content of blob h.
func (r *Repo) blob(h plumbing.Hash) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, err := r.repo.BlobObject(h)
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", h, err)
	}
	rd, err := b.Reader()
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", h, err)
	}
	defer rd.Close()
	data, err := io.ReadAll(rd)
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", h, err)
	}
	return data, nil
}

// size returns the size of blob h without reading its content where the
// storage allows.
func (r *Repo) size(h plumbing.Hash) (int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n, ok := r.sizes[h]; ok {
		return n, nil
	}
	n, err := r.repo.Storer.EncodedObjectSize(h)
	if err != nil {
		b, berr := r.repo.BlobObject(h)
		if berr != nil {
			return 0, fmt.Errorf("blob %s: %w", h, berr)
		}
		n = b.Size
	}
	if len(r.sizes) >= maxCached {
		clear(r.sizes)
	}
	r.sizes[h] = n
	return n, nil
}

// candidate is a place where a submodule's repository may be.
type candidate struct {
	path     string // a git directory, or a submodule work tree
	worktree bool   // path is a work tree holding .git
}

// submodule finds the repository of the submodule called name at path rel
// (relative to r's top) that holds commit, and returns it with the root
// tree of that commit.
func (r *Repo) submodule(name, rel string, commit plumbing.Hash) (*Repo, plumbing.Hash, error) {
	cands := []candidate{{path: filepath.Join(r.gitDir, "modules", filepath.FromSlash(name))}}
	if r.commonDir != r.gitDir {
		cands = append(cands, candidate{path: filepath.Join(r.commonDir, "modules", filepath.FromSlash(name))})
	}
	if r.workTree != "" {
		cands = append(cands, candidate{path: filepath.Join(r.workTree, filepath.FromSlash(rel)), worktree: true})
	}
	var tried []string
	for _, c := range cands {
		sub, err := r.openSub(c, rel)
		if errors.Is(err, errNoRepo) {
			tried = append(tried, "no repository at "+c.path)
			continue
		}
		if err != nil {
			return nil, plumbing.ZeroHash, err
		}
		tree, _, err := sub.commitTree(commit)
		if err == nil {
			return sub, tree, nil
		}
		if !errors.Is(err, plumbing.ErrObjectNotFound) {
			return nil, plumbing.ZeroHash, err
		}
		tried = append(tried, "commit missing from "+c.path)
	}
	return nil, plumbing.ZeroHash, fmt.Errorf("%w (%s)", ErrSubmoduleUnavailable, strings.Join(tried, "; "))
}

var errNoRepo = errors.New("no repository")

// openSub opens, once, the repository at candidate c of the submodule at rel.
func (r *Repo) openSub(c candidate, rel string) (*Repo, error) {
	key := c.path + "\x00" + rel
	r.subMu.Lock()
	defer r.subMu.Unlock()
	if s, ok := r.subs[key]; ok {
		return s.repo, s.err
	}
	s := &subRepo{}
	marker := filepath.Join(c.path, "HEAD")
	if c.worktree {
		marker = filepath.Join(c.path, ".git")
	}
	if _, err := os.Stat(marker); err != nil {
		s.err = errNoRepo
	} else {
		s.repo, s.err = open(c.path, c.path)
		if s.err == nil && s.repo.workTree == "" && r.workTree != "" {
			// A submodule's own submodules are checked out under its path.
			s.repo.workTree = filepath.Join(r.workTree, filepath.FromSlash(rel))
		}
	}
	r.subs[key] = s
	return s.repo, s.err
}
