package gitfs

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"

	"github.com/cairn-cm/cairn/internal/treefs"
)

// Object is what the Sys method of the file system's fs.FileInfo returns:
// the git object behind the name (a blob, a tree, or for a submodule the
// pinned commit) and its git mode.
type Object struct {
	Hash plumbing.Hash
	Mode filemode.FileMode
}

// maxLinks is how many symbolic links one lookup follows before it gives up.
const maxLinks = treefs.MaxLinks

// The errors of links that lead out of the tree or loop are treefs's, which
// a configuration directory on disk gives too (see package treefs).
var (
	errLinkEscapes = treefs.ErrLinkEscapes
	errLinkLoop    = treefs.ErrLinkLoop
	errIsDir       = errors.New("is a directory")
	errNotDir      = errors.New("not a directory")
)

// mount is one repository's commit placed at a path of the file system: the
// top commit at ".", and each submodule's pinned commit at its path.
type mount struct {
	repo   *Repo
	prefix string // "." for the top
	commit plumbing.Hash
	tree   plumbing.Hash

	once    sync.Once
	modules map[string]string // submodule path (relative to the mount) → name
	modErr  error
}

// dir is a directory of the file system, found by its path.
type dir struct {
	m       *mount // the repository its entries live in
	entries []entry
	err     error // why it can't be read
}

func (d *dir) lookup(name string) (entry, bool) {
	i, ok := slices.BinarySearchFunc(d.entries, name, func(e entry, n string) int { return strings.Compare(e.name, n) })
	if !ok {
		return entry{}, false
	}
	return d.entries[i], true
}

// treeFS is the file system of one commit. See the package documentation.
type treeFS struct {
	top     *mount
	modTime time.Time

	mu   sync.Mutex
	dirs map[string]*dir // by path, with no symbolic link in it
}

var (
	_ fs.FS         = (*treeFS)(nil)
	_ fs.ReadFileFS = (*treeFS)(nil)
	_ fs.ReadDirFS  = (*treeFS)(nil)
	_ fs.StatFS     = (*treeFS)(nil)
	_ fs.ReadLinkFS = (*treeFS)(nil)

	_ fs.ReadDirFile = (*dirFile)(nil)
	_ io.ReaderAt    = (*file)(nil)
	_ io.Seeker      = (*file)(nil)
)

// node is a name found in the tree.
type node struct {
	path string // with no symbolic link in it
	e    entry
	m    *mount // the repository that holds e's object
}

func isDir(mode filemode.FileMode) bool {
	return mode == filemode.Dir || mode == filemode.Submodule
}

// dir returns the directory at p, a path with no symbolic link in it, which
// names a directory (a tree or a submodule).
func (f *treeFS) dir(p string) (*dir, error) {
	f.mu.Lock()
	d, ok := f.dirs[p]
	f.mu.Unlock()
	if ok {
		return d, d.err
	}
	d = f.loadDir(p)
	f.mu.Lock()
	if old, ok := f.dirs[p]; ok {
		d = old
	} else {
		f.dirs[p] = d
	}
	f.mu.Unlock()
	return d, d.err
}

func (f *treeFS) loadDir(p string) *dir {
	if p == "." {
		es, err := f.top.repo.tree(f.top.tree)
		return &dir{m: f.top, entries: es, err: err}
	}
	parent, err := f.dir(path.Dir(p))
	if err != nil {
		return &dir{err: err}
	}
	e, ok := parent.lookup(path.Base(p))
	if !ok || !isDir(e.mode) {
		return &dir{err: fs.ErrNotExist}
	}
	m := parent.m
	tree := e.hash
	if e.mode == filemode.Submodule {
		if m, err = f.mountSubmodule(parent.m, p, e.hash); err != nil {
			return &dir{err: err}
		}
		tree = m.tree
	}
	es, err := m.repo.tree(tree)
	return &dir{m: m, entries: es, err: err}
}

// mountSubmodule finds the commit that the gitlink at p, in owner, pins.
func (f *treeFS) mountSubmodule(owner *mount, p string, commit plumbing.Hash) (*mount, error) {
	rel := p
	if owner.prefix != "." {
		rel = strings.TrimPrefix(p, owner.prefix+"/")
	}
	name, err := owner.submoduleName(rel)
	if err == nil {
		var repo *Repo
		var tree plumbing.Hash
		if repo, tree, err = owner.repo.submodule(name, rel, commit); err == nil {
			return &mount{repo: repo, prefix: p, commit: commit, tree: tree}, nil
		}
	}
	return nil, fmt.Errorf("submodule %s (commit %s): %w", p, commit, err)
}

// submoduleName returns the name .gitmodules gives the submodule at rel, or
// rel when it gives none.
func (m *mount) submoduleName(rel string) (string, error) {
	m.once.Do(func() { m.modules, m.modErr = m.readModules() })
	if m.modErr != nil {
		return "", m.modErr
	}
	name, ok := m.modules[rel]
	if !ok {
		return rel, nil
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == "" || seg == "." || seg == ".." || strings.ContainsAny(seg, "\\\x00") {
			return "", fmt.Errorf(".gitmodules: bad submodule name %q", name)
		}
	}
	return name, nil
}

func (m *mount) readModules() (map[string]string, error) {
	es, err := m.repo.tree(m.tree)
	if err != nil {
		return nil, err
	}
	d := dir{entries: es}
	e, ok := d.lookup(".gitmodules")
	if !ok || isDir(e.mode) || e.mode == filemode.Symlink {
		return nil, nil
	}
	b, err := m.repo.blob(e.hash)
	if err != nil {
		return nil, fmt.Errorf(".gitmodules: %w", err)
	}
	mods := config.NewModules()
	if err := mods.Unmarshal(b); err != nil {
		return nil, fmt.Errorf(".gitmodules: %w", err)
	}
	names := map[string]string{}
	for name, s := range mods.Submodules {
		if s.Path != "" {
			names[path.Clean(s.Path)] = name
		}
	}
	return names, nil
}

// walk finds name. It follows symbolic links in the path, and at its end
// when follow is set.
func (f *treeFS) walk(op, name string, follow bool) (node, error) {
	if !fs.ValidPath(name) {
		return node{}, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	fail := func(err error) (node, error) {
		return node{}, &fs.PathError{Op: op, Path: name, Err: err}
	}
	if n, ok := f.walkCached(name, follow); ok {
		return n, nil
	}
	var rest []string
	if name != "." {
		rest = strings.Split(name, "/")
	}
	cur := "."
	links := 0
	for i := 0; i < len(rest); i++ {
		d, err := f.dir(cur)
		if err != nil {
			return fail(err)
		}
		e, ok := d.lookup(rest[i])
		if !ok {
			return fail(fs.ErrNotExist)
		}
		last := i == len(rest)-1
		if e.mode == filemode.Symlink && (!last || follow) {
			if links++; links > maxLinks {
				return fail(errLinkLoop)
			}
			b, err := d.m.repo.blob(e.hash)
			if err != nil {
				return fail(err)
			}
			target := string(b)
			if target == "" || path.IsAbs(target) {
				return fail(errLinkEscapes)
			}
			t := path.Join(cur, target)
			if t == ".." || strings.HasPrefix(t, "../") {
				return fail(errLinkEscapes)
			}
			var next []string
			if t != "." {
				next = strings.Split(t, "/")
			}
			rest = append(next, rest[i+1:]...)
			cur, i = ".", -1
			continue
		}
		p := path.Join(cur, rest[i])
		if last {
			return node{path: p, e: e, m: d.m}, nil
		}
		if !isDir(e.mode) {
			return fail(fs.ErrNotExist)
		}
		cur = p
	}
	// Only the root gets here: every other name returns inside the loop.
	return node{path: ".", e: entry{name: ".", mode: filemode.Dir, hash: f.top.tree}, m: f.top}, nil
}

// walkCached finds name in the directory that holds it, when that
// directory is cached already and the name is no symbolic link to follow:
// the compiler asks for the sums of thousands of files in a few hundred
// directories, and walking each path from the top split and joined it
// again. A directory is cached under the path walk reached it by, every
// element a directory (not a link), so the entry found is the one walk
// would find.
func (f *treeFS) walkCached(name string, follow bool) (node, bool) {
	i := strings.LastIndexByte(name, '/')
	if i < 0 {
		return node{}, false
	}
	f.mu.Lock()
	d, ok := f.dirs[name[:i]]
	f.mu.Unlock()
	if !ok || d.err != nil {
		return node{}, false
	}
	e, ok := d.lookup(name[i+1:])
	if !ok || (e.mode == filemode.Symlink && follow) {
		return node{}, false
	}
	return node{path: name, e: e, m: d.m}, true
}

// info describes n under the name base.
func (f *treeFS) info(base string, n node) (*info, error) {
	i := &info{name: base, e: n.e, modTime: f.modTime}
	if !isDir(n.e.mode) {
		size, err := n.m.repo.size(n.e.hash)
		if err != nil {
			return nil, err
		}
		i.size = size
	}
	return i, nil
}

// Open opens name for reading, following symbolic links.
func (f *treeFS) Open(name string) (fs.File, error) {
	n, err := f.walk("open", name, true)
	if err != nil {
		return nil, err
	}
	if isDir(n.e.mode) {
		d, err := f.dir(n.path)
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
		return &dirFile{
			info:    &info{name: path.Base(name), e: n.e, modTime: f.modTime},
			f:       f,
			m:       d.m,
			entries: d.entries,
		}, nil
	}
	data, err := n.m.repo.blob(n.e.hash)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return &file{
		info: &info{name: path.Base(name), e: n.e, modTime: f.modTime, size: int64(len(data))},
		r:    bytes.NewReader(data),
	}, nil
}

// ReadFile returns the content of name, following symbolic links.
func (f *treeFS) ReadFile(name string) ([]byte, error) {
	n, err := f.walk("open", name, true)
	if err != nil {
		return nil, err
	}
	if isDir(n.e.mode) {
		return nil, &fs.PathError{Op: "read", Path: name, Err: errIsDir}
	}
	data, err := n.m.repo.blob(n.e.hash)
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: name, Err: err}
	}
	return data, nil
}

// Sum256 returns the SHA-256 of the content of the regular file name,
// following symbolic links as Open does (compiler.SumFS). A blob's sum is
// kept by its object id and repository (see sumCache), across revisions
// and Repos of that repository, so that a file unchanged since an earlier
// commit is not read again. A name that is not a regular file gives an
// error wrapping treefs.ErrNotRegular.
func (f *treeFS) Sum256(name string) ([sha256.Size]byte, error) {
	n, err := f.walk("open", name, true)
	if err != nil {
		return [sha256.Size]byte{}, err
	}
	if isDir(n.e.mode) {
		// As Open: a submodule whose objects are missing says so.
		if _, err := f.dir(n.path); err != nil {
			return [sha256.Size]byte{}, &fs.PathError{Op: "open", Path: name, Err: err}
		}
	}
	if !modeOf(n.e.mode).IsRegular() {
		return [sha256.Size]byte{}, &fs.PathError{Op: "open", Path: name, Err: treefs.ErrNotRegular}
	}
	key := sumKey{n.m.repo.commonDir, n.e.hash}
	if sum, ok := blobSums.get(key); ok {
		return sum, nil
	}
	data, err := n.m.repo.blob(n.e.hash)
	if err != nil {
		return [sha256.Size]byte{}, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	sum := sha256.Sum256(data)
	blobSums.put(key, sum)
	return sum, nil
}

// blobSums are the SHA-256 sums of the blobs that Sum256 has read, by
// object store and object id. go-git does not check that what it reads
// hashes to the id it was asked for, so a damaged object, or one of a
// repository someone else controls (a submodule's work tree), gives its
// sum to the blobs of its own store only.
var blobSums sumCache

// sumKey is a blob of one object store (a Repo's common git directory).
type sumKey struct {
	store string
	id    plumbing.Hash
}

// sumCache maps blobs to sums, in two generations: a sum is looked up in
// both and moved to the current one when found in the old one, and when
// the current one holds sumGeneration sums it becomes the old one, and the
// old one is dropped. The blobs that the compiles of a configuration keep
// asking for stay (up to sumGeneration of them), those of files long
// changed go, and the memory stays bounded: some 3 MiB at the most, where
// the 10,000-resource configuration's 7,500 blobs take under 1 MiB.
type sumCache struct {
	mu       sync.Mutex
	cur, old map[sumKey][sha256.Size]byte
}

// sumGeneration is how many sums a generation of sumCache holds.
const sumGeneration = 1 << 14

func (c *sumCache) get(h sumKey) ([sha256.Size]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if sum, ok := c.cur[h]; ok {
		return sum, true
	}
	sum, ok := c.old[h]
	if ok {
		c.add(h, sum)
	}
	return sum, ok
}

func (c *sumCache) put(h sumKey, sum [sha256.Size]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.add(h, sum)
}

// add puts a sum in the current generation; c.mu is held.
func (c *sumCache) add(h sumKey, sum [sha256.Size]byte) {
	if c.cur == nil || len(c.cur) >= sumGeneration {
		c.old, c.cur = c.cur, make(map[sumKey][sha256.Size]byte, min(2*len(c.cur), sumGeneration))
	}
	c.cur[h] = sum
}

// ReadDir returns the entries of directory name sorted by name, following
// symbolic links to reach it.
func (f *treeFS) ReadDir(name string) ([]fs.DirEntry, error) {
	n, err := f.walk("readdir", name, true)
	if err != nil {
		return nil, err
	}
	if !isDir(n.e.mode) {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errNotDir}
	}
	d, err := f.dir(n.path)
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: err}
	}
	return f.dirEntries(d.m, d.entries), nil
}

func (f *treeFS) dirEntries(m *mount, es []entry) []fs.DirEntry {
	out := make([]fs.DirEntry, len(es))
	for i, e := range es {
		out[i] = &dirEntry{f: f, m: m, e: e}
	}
	return out
}

// Stat describes name, following symbolic links.
func (f *treeFS) Stat(name string) (fs.FileInfo, error) {
	return f.stat("stat", name, true)
}

// Lstat describes name; when name is a symbolic link, it describes the link.
func (f *treeFS) Lstat(name string) (fs.FileInfo, error) {
	return f.stat("lstat", name, false)
}

func (f *treeFS) stat(op, name string, follow bool) (fs.FileInfo, error) {
	n, err := f.walk(op, name, follow)
	if err != nil {
		return nil, err
	}
	i, err := f.info(path.Base(name), n)
	if err != nil {
		return nil, &fs.PathError{Op: op, Path: name, Err: err}
	}
	return i, nil
}

// ReadLink returns the target of the symbolic link name, as stored.
func (f *treeFS) ReadLink(name string) (string, error) {
	n, err := f.walk("readlink", name, false)
	if err != nil {
		return "", err
	}
	if n.e.mode != filemode.Symlink {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
	}
	b, err := n.m.repo.blob(n.e.hash)
	if err != nil {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: err}
	}
	return string(b), nil
}

// info is the fs.FileInfo of a tree entry.
type info struct {
	name    string
	e       entry
	size    int64
	modTime time.Time
}

func (i *info) Name() string       { return i.name }
func (i *info) Size() int64        { return i.size }
func (i *info) Mode() fs.FileMode  { return modeOf(i.e.mode) }
func (i *info) ModTime() time.Time { return i.modTime }
func (i *info) IsDir() bool        { return isDir(i.e.mode) }
func (i *info) Sys() any           { return &Object{Hash: i.e.hash, Mode: i.e.mode} }

func modeOf(m filemode.FileMode) fs.FileMode {
	switch m {
	case filemode.Dir, filemode.Submodule:
		return fs.ModeDir | 0o755
	case filemode.Regular, filemode.Deprecated:
		return 0o644
	case filemode.Executable:
		return 0o755
	case filemode.Symlink:
		return fs.ModeSymlink | 0o777
	}
	return fs.ModeIrregular
}

// dirEntry is an fs.DirEntry of a tree entry; Info reads the size lazily.
type dirEntry struct {
	f *treeFS
	m *mount
	e entry
}

func (d *dirEntry) Name() string      { return d.e.name }
func (d *dirEntry) IsDir() bool       { return isDir(d.e.mode) }
func (d *dirEntry) Type() fs.FileMode { return modeOf(d.e.mode).Type() }
func (d *dirEntry) String() string    { return fs.FormatDirEntry(d) }

func (d *dirEntry) Info() (fs.FileInfo, error) {
	i, err := d.f.info(d.e.name, node{e: d.e, m: d.m})
	if err != nil {
		return nil, &fs.PathError{Op: "stat", Path: d.e.name, Err: err}
	}
	return i, nil
}

// file is an open regular file (or the target of a symbolic link).
type file struct {
	info   *info
	r      *bytes.Reader
	closed bool
}

func (f *file) Stat() (fs.FileInfo, error) { return f.info, nil }

func (f *file) Read(p []byte) (int, error) {
	if f.closed {
		return 0, &fs.PathError{Op: "read", Path: f.info.name, Err: fs.ErrClosed}
	}
	return f.r.Read(p)
}

func (f *file) ReadAt(p []byte, off int64) (int, error) {
	if f.closed {
		return 0, &fs.PathError{Op: "read", Path: f.info.name, Err: fs.ErrClosed}
	}
	return f.r.ReadAt(p, off)
}

func (f *file) Seek(off int64, whence int) (int64, error) {
	if f.closed {
		return 0, &fs.PathError{Op: "seek", Path: f.info.name, Err: fs.ErrClosed}
	}
	return f.r.Seek(off, whence)
}

func (f *file) Close() error {
	if f.closed {
		return &fs.PathError{Op: "close", Path: f.info.name, Err: fs.ErrClosed}
	}
	f.closed = true
	return nil
}

// dirFile is an open directory.
type dirFile struct {
	info    *info
	f       *treeFS
	m       *mount
	entries []entry
	off     int
	closed  bool
}

func (d *dirFile) Stat() (fs.FileInfo, error) { return d.info, nil }

func (d *dirFile) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.info.name, Err: errIsDir}
}

func (d *dirFile) Close() error {
	if d.closed {
		return &fs.PathError{Op: "close", Path: d.info.name, Err: fs.ErrClosed}
	}
	d.closed = true
	return nil
}

// ReadDir returns the next n entries (all remaining ones when n <= 0), in
// name order.
func (d *dirFile) ReadDir(n int) ([]fs.DirEntry, error) {
	if d.closed {
		return nil, &fs.PathError{Op: "readdir", Path: d.info.name, Err: fs.ErrClosed}
	}
	rest := d.entries[d.off:]
	if n > 0 {
		if len(rest) == 0 {
			return nil, io.EOF
		}
		rest = rest[:min(n, len(rest))]
	}
	d.off += len(rest)
	return d.f.dirEntries(d.m, rest), nil
}
