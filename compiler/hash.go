package compiler

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"

	"github.com/cairn-cm/cairn/internal/treefs"
	"github.com/cairn-cm/cairn/journal"
)

// hashAll hashes every repository file and directory the nodes copy or
// apply, in parallel, and fills in the steps' sha256 (and on=) attributes.
func (c *compiler) hashAll() error {
	c.stopHashing()
	type job struct {
		path string
		dir  bool
	}
	index := map[job]int{} // where each job is in jobs
	var jobs []job
	for _, n := range c.nodes {
		for _, f := range n.fills {
			j := job{f.path, f.dir}
			if _, ok := index[j]; !ok {
				index[j] = len(jobs)
				jobs = append(jobs, j)
			}
		}
	}
	sums := make([]string, len(jobs))
	errs := make([]error, len(jobs))
	var left []int // the jobs the workers of hashAhead did not do
	c.mu.Lock()
	for i, j := range jobs {
		if sum, ok := c.hashes[j.path]; ok && !j.dir {
			sums[i] = sum
		} else {
			left = append(left, i)
		}
	}
	c.mu.Unlock()
	bufs := make([][]byte, workers(len(left))) // one read buffer a worker
	parallel(len(left), func(w, k int) {
		if c.ctx.Err() != nil {
			return
		}
		if bufs[w] == nil {
			bufs[w] = make([]byte, 32<<10)
		}
		if i := left[k]; jobs[i].dir {
			sums[i], errs[i] = c.hashDir(jobs[i].path, bufs[w])
		} else {
			sums[i], errs[i] = c.hashFileBuf(jobs[i].path, bufs[w])
		}
	})
	if err := c.ctx.Err(); err != nil {
		return err
	}
	for _, n := range c.nodes {
		for _, f := range n.fills {
			i := index[job{f.path, f.dir}]
			if errs[i] != nil {
				c.reportUnreadable(n, f, errs[i])
				continue
			}
			key := f.key
			if key == "" {
				key = "sha256"
			}
			value := sums[i]
			if f.unitPath != "" {
				value = reloadHash(f.unitPath, value)
			}
			setAttr(&n.steps[f.step], key, value)
		}
	}
	return nil
}

// reportUnreadable reports a repository file that could not be hashed at
// the place its block names it.
func (c *compiler) reportUnreadable(n *node, f fill, err error) {
	msg := fmt.Sprintf("%s: %v", f.path, unwrapPath(err)) // a link that leads out, a loop, a file that cannot be read
	switch {
	case errors.Is(err, treefs.ErrLinkEscapes), errors.Is(err, treefs.ErrLinkLoop):
		// said as any other fault of the file, before the cases below
	case f.dir:
		msg = err.Error()
	case missing(err):
		msg = fmt.Sprintf("missing %s %s", f.noun, f.path)
	case errors.Is(err, treefs.ErrNotRegular):
		msg = fmt.Sprintf("%s is not a regular file", f.path)
	}
	c.errs = append(c.errs, n.scope.errorf(f.pos, "%s: %s", n.what(), msg))
}

// setAttr sets attribute key of a step built by the compiler.
func setAttr(st *journal.Step, key, value string) {
	for i := range st.Attrs {
		if st.Attrs[i].Key == key {
			st.Attrs[i].Value = value
			return
		}
	}
	st.Attrs = append(st.Attrs, journal.Attr{Key: key, Value: value})
	sort.Slice(st.Attrs, func(i, j int) bool { return st.Attrs[i].Key < st.Attrs[j].Key })
}

// SumFS is a file system that gives the SHA-256 of a file's content
// without the compiler reading it. agent/gitfs is one: it keeps the sums of
// the git blobs it has hashed by object id, so that compiling the next
// commit reads only the files that changed. The compiler uses it for the
// files that COPY and KUBECTL-APPLY steps name, unless fsys is a directory
// on disk.
type SumFS interface {
	fs.FS
	// Sum256 returns the SHA-256 of the content of the regular file
	// name, following symbolic links as Open does. A name that is not a
	// regular file gives an error wrapping treefs.ErrNotRegular, as
	// opening it would.
	Sum256(name string) ([sha256.Size]byte, error)
}

// hashFileBuf returns the sha256 of a repository file, once per compile,
// read through buf.
func (c *compiler) hashFileBuf(p string, buf []byte) (string, error) {
	c.mu.Lock()
	sum, ok := c.hashes[p]
	c.mu.Unlock()
	if ok {
		return sum, nil
	}
	raw, err := c.sum256(p, buf)
	if err != nil {
		return "", namePath(p, err)
	}
	sum = hex.EncodeToString(raw[:])
	c.mu.Lock()
	c.hashes[p] = sum
	c.mu.Unlock()
	return sum, nil
}

// namePath returns err naming the repository file p once: a path error
// of the file system names it already (open p: ...), any other error is
// given p in front.
func namePath(p string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Path == p {
		return err
	}
	return fmt.Errorf("%s: %w", p, err)
}

// sum256 returns the sha256 of a repository file's content, read through
// buf: from a directory on disk in as few system calls as it takes, from a
// SumFS as it keeps them, else read through fs.FS.
func (c *compiler) sum256(p string, buf []byte) ([sha256.Size]byte, error) {
	if c.dir != nil {
		return c.dir.SumFile(p, buf)
	}
	if s, ok := c.fsys.(SumFS); ok {
		return s.Sum256(p)
	}
	var sum [sha256.Size]byte
	f, _, err := c.openSource(p)
	if err != nil {
		return sum, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyBuffer(h, f, buf); err != nil {
		return sum, err
	}
	h.Sum(sum[:0])
	return sum, nil
}

// hashDir returns the sha256 of a directory's files: for each regular
// file beneath it, in lexical order, its path relative to the directory, a
// NUL, its sha256 and a newline. A renamed, added, removed or changed file
// changes it.
func (c *compiler) hashDir(dir string, buf []byte) (string, error) {
	h := sha256.New()
	err := fs.WalkDir(c.fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := c.ctx.Err(); err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		sum, err := c.hashFileBuf(p, buf)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%s\n", strings.TrimPrefix(p, dir+"/"), sum)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("hash %s: %w", dir, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
