package compiler

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"
	"unsafe"

	"github.com/alecthomas/participle/v2/lexer"

	"github.com/cairn-cm/cairn/compiler/syntax"
	"github.com/cairn-cm/cairn/internal/treefs"
	"github.com/cairn-cm/cairn/journal"
)

// Options says for which host to compile, and where rendered content goes.
type Options struct {
	// Host is the host's name; it picks the host group and is fact.hostname.
	Host string
	// Group, when set, is the host's group whatever the hosts block says.
	Group string
	// Facts are the host's facts (release, codename, arch, ...); hostname,
	// group and branch are set from Host and the hosts block.
	Facts map[string]string
	// Blobs, when set, receives the bytes of every COPY - step (inline
	// content, rendered templates, what plugins write) by sha256: a
	// BlobDir, or the agent's blob store. Nil: the content goes nowhere
	// (explain, diff).
	Blobs Blobs
	// Dir is the configuration's directory on disk, where plugins run.
	// When it is set the compiler reads the directory itself, through
	// OpenDir (links that lead out of it refused, regular files only), and
	// fsys is not used. When it is empty (compiling from git objects), a
	// plugin runs in a temporary copy of the configuration.
	Dir string
	// Env is the environment plugins start from (nil: none but cairn's).
	Env []string
	// File, when set, is the one top-level file to compile instead of every
	// *.cairn file at the top of the configuration.
	File string
}

// Result is one host's compiled journal.
type Result struct {
	// Steps are the journal's steps in order. Each one's Pos is the source
	// position of the block it comes from and its Source the chain of
	// positions, outermost first ("site.cairn:4:1 > web/main.cairn:9:3").
	Steps []journal.Step
	// Host, Group and Branch say for whom the journal is: the host, its
	// group, and the branch that group follows ("" when none is set).
	Host, Group, Branch string
	// Facts are every fact the configuration could see.
	Facts map[string]string
	// Groups are the host groups of the hosts block, in source order.
	Groups []HostGroup
	// Warnings are findings that do not stop the compile (EXEC without undo).
	Warnings []string
}

// Journal returns the journal's text: every step in canonical form followed
// by its source positions as a comment.
func (r *Result) Journal() []byte {
	var b bytes.Buffer
	_ = r.WriteJournal(&b) // a bytes.Buffer's Write does not fail
	return b.Bytes()
}

// WriteJournal writes the journal's text, Journal's bytes, to w a step at a
// time through a buffer, so that the whole text is never held in memory
// (17 MB for 100,000 steps). Each line is made in the buffer's free space,
// without a string of its own.
func (r *Result) WriteJournal(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	for i := range r.Steps {
		line := append(r.Steps[i].AppendString(bw.AvailableBuffer()), '\n')
		if _, err := bw.Write(line); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// compiler is the state of one compile.
type compiler struct {
	ctx  context.Context
	fsys fs.FS
	// dir is the configuration directory when it is one on disk; fsys is
	// then dir too.
	dir   *treefs.Dir
	opts  Options
	facts map[string]Value
	// groupVars are the values the host's group gives top-level variables.
	groupVars map[string]Value
	group     HostGroup
	errs      syntax.ErrorList

	files map[string]*syntax.File // parsed files by path, shared by module calls
	// dropped are the files whose trees dropTrees dropped: parse parses
	// them again from their text.
	dropped map[string]bool
	nodes   []*node

	mu     sync.Mutex
	hashes map[string]string // repository path -> sha256 of its content

	// rank numbers the files in the order the walk first reads them, the
	// order their errors are reported in.
	rank map[string]int
	// templates are the templates parsed so far, by path.
	templates map[string]parsedTemplate
	// ahead parses the files ahead of the walk (ahead.go).
	ahead *aheadQueue
	// wanted feeds source paths to the hashing workers (ahead.go).
	wanted  chan []string
	pending []string
	hashers sync.WaitGroup

	// tmpDir is a copy of the configuration on disk, made when a plugin
	// must run and the configuration is no directory (a git revision).
	tmpDir string
	// tmpBlobs is where plugins put content when Blobs is no BlobDir: it
	// is collected into Blobs after each plugin (collectPluginBlobs).
	tmpBlobs string

	// What the compile has spent of its limits (limits.go): the
	// evaluation budget (and whether its error was reported), template
	// steps and the depth of template calls, module calls, blocks walked
	// and the journal's size.
	work         int64
	workSpent    bool
	tsteps       int
	tdepth       int
	moduleCalls  int
	blocks       int
	journalBytes int64
	// halted is set once an expansion limit is passed: the walk stops.
	halted bool
	// goMaps and goValues are template data converted so far (template.go).
	goMaps   map[unsafe.Pointer]goMapEntry
	goValues map[goKey]goValueEntry
}

// Compile compiles the configuration at the top of fsys (or, when
// opts.Dir is set, of that directory) for one host. Its error is a
// syntax.ErrorList of every finding, each naming FILE:LINE:COL with the
// source line, or an error of the file system or context.
func Compile(ctx context.Context, fsys fs.FS, opts Options) (*Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c := &compiler{ctx: ctx, fsys: fsys, opts: opts, files: map[string]*syntax.File{}, dropped: map[string]bool{}, hashes: map[string]string{}}
	if opts.Dir != "" {
		d, err := treefs.OpenDir(opts.Dir)
		if err != nil {
			return nil, err
		}
		defer d.Close()
		c.dir, c.fsys = d, d
	}
	defer c.cleanup()
	c.parseAhead()
	defer c.stopParsing()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.hashAhead()
	defer c.stopHashing()
	root := &unit{dir: ".", vars: map[string]Value{}, children: map[string]*unit{}, addrs: map[string]*node{}}
	var err error
	var files []*syntax.File
	if opts.File != "" {
		if f := c.parse(opts.File); f != nil {
			files = append(files, f)
		} else {
			return nil, c.findings()
		}
	} else if files, err = c.topFiles("."); err != nil {
		return nil, err
	}
	if len(files) == 0 {
		if len(c.errs) > 0 {
			return nil, c.findings() // every top-level file failed to parse
		}
		return nil, fmt.Errorf("no *.cairn file in the configuration directory")
	}
	hosts := c.hostsOf(files)
	res, err := c.settleHost(hosts)
	if err != nil {
		return nil, err
	}
	if len(c.errs) == 0 {
		c.walkUnit(root, files)
	}
	c.shed(root)
	c.checkObjects()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// Hashing runs even when other errors were found, so that missing
	// source files are reported with them.
	if err := c.hashAll(); err != nil {
		return nil, err
	}
	if len(c.errs) == 0 {
		c.resolve()
	}
	var ordered []*node
	if len(c.errs) == 0 {
		ordered = c.order()
	}
	if len(c.errs) > 0 {
		return nil, c.findings()
	}
	steps := 0
	for _, n := range ordered {
		steps += len(n.steps)
	}
	res.Steps = slices.Grow(res.Steps, steps)
	for _, n := range ordered {
		for i := range n.steps {
			n.steps[i].Pos = journal.Pos{File: n.pos.Filename, Line: n.pos.Line, Col: n.pos.Column}
			n.steps[i].Source = n.chain
			res.Steps = append(res.Steps, n.steps[i])
		}
	}
	c.staticCheck(res)
	if len(c.errs) > 0 {
		return nil, c.findings()
	}
	return res, nil
}

// shed drops the syntax trees of the root unit and of whatever is left
// once every block is evaluated (dropTrees), with the parsed templates and
// converted template data, which are garbage from here on.
func (c *compiler) shed(root *unit) {
	c.dropTrees(root)
	for name := range c.files {
		c.dropFile(name) // and those no unit says it read
	}
	c.stopParsing()
	c.templates, c.goMaps, c.goValues = nil, nil, nil
}

// dropTrees drops the syntax trees of unit u and the units it calls, whose
// blocks are all evaluated: each deferred block lets go of its tree (it
// keeps its position, type and label, which the phases after the walk
// read; node.block parses the file's text again for an error that names an
// attribute), and each file it read keeps its text, for the source lines of
// errors, but not its items. The trees were more than half of the live heap
// at the end of a compile (25 of 42 MiB for 10,000 resources); dropping a
// module's as soon as its call is compiled keeps no more than a module's
// worth of them live with the nodes compiled so far. Nothing is changed in
// a tree, which blocks of other units may share (a file both included at
// the top and read by a module).
func (c *compiler) dropTrees(u *unit) {
	for _, d := range u.deferred {
		d.b = nil
	}
	u.declared, u.callBlock = nil, nil
	for _, ch := range u.children {
		c.dropTrees(ch)
	}
	for name := range u.read {
		c.dropFile(name)
	}
}

// dropFile drops the items of file name, keeping its text (dropTrees).
func (c *compiler) dropFile(name string) {
	if f := c.files[name]; f != nil {
		f.Items, f.Comments = nil, nil
		c.dropped[name] = true
	}
}

// findings returns the errors found, each once (a module called twice
// finds the same error in its files twice), in order of position: errors
// are found in phases (a missing source file only when hashing), but are
// read from the top of a file down.
func (c *compiler) findings() syntax.ErrorList {
	seen := map[string]bool{}
	out := make(syntax.ErrorList, 0, len(c.errs))
	for _, e := range c.errs {
		if text := e.Error(); !seen[text] {
			seen[text] = true
			out = append(out, e)
		}
	}
	rank := func(file string) int {
		if r, ok := c.rank[file]; ok {
			return r
		}
		return len(c.rank)
	}
	slices.SortStableFunc(out, func(a, b *syntax.Error) int {
		return cmp.Or(cmp.Compare(rank(a.Pos.Filename), rank(b.Pos.Filename)), cmp.Compare(a.Pos.Line, b.Pos.Line), cmp.Compare(a.Pos.Column, b.Pos.Column))
	})
	return out
}

// checkObjects reports every object that two blocks manage, at the later
// block, naming the first with its chain of positions: the journal's
// duplicate identities, said in the configuration's words and found even
// when other errors stop the compile before the order.
func (c *compiler) checkObjects() {
	first := map[string]*node{}
	for _, n := range c.nodes {
		for i := range n.steps {
			id := n.steps[i].Identity()
			if id == "" {
				continue
			}
			f, ok := first[id]
			if !ok {
				first[id] = n
				continue
			}
			if f == n {
				continue // one block twice (a plugin's output): the journal's check names the line
			}
			what := n.what()
			if n.chain != posString(n.pos) {
				what += " (" + n.chain + ")"
			}
			typ, _, _ := strings.Cut(f.addr, ".")
			c.errs = append(c.errs, n.scope.errorf(n.pos, "%s: already managed by %s at %s", what, typ, f.chain))
			break // one finding a block
		}
	}
}

// staticCheck runs the journal's §4 checks over the result, so that a
// compiled journal is one the applier accepts; findings name the blocks.
func (c *compiler) staticCheck(res *Result) {
	for _, e := range journal.Check(res.Steps) {
		if e.Severity == journal.SevWarning {
			res.Warnings = append(res.Warnings, e.Error())
			continue
		}
		pos := lexer.Position{Filename: e.Pos.File, Line: e.Pos.Line, Column: e.Pos.Col}
		c.errs = append(c.errs, errorAt(c.files[e.Pos.File], pos, "%s", e.Msg))
	}
}

// topFiles parses every *.cairn file at the top of dir, in lexical order.
func (c *compiler) topFiles(dir string) ([]*syntax.File, error) {
	entries, err := fs.ReadDir(c.fsys, dir)
	if err != nil {
		return nil, err
	}
	var out []*syntax.File
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".cairn") {
			continue
		}
		if f := c.parse(path.Join(dir, e.Name())); f != nil {
			out = append(out, f)
		}
	}
	return out, nil
}

// parse reads and parses one file of the repository, once per compile.
// Errors are collected; nil means it could not be used.
//
// A file whose tree was dropped (dropTrees: a module's files once the
// module's blocks are evaluated) is parsed again from the text it kept, for
// a second call of that module: the same text gives the same tree.
func (c *compiler) parse(name string) *syntax.File {
	f, ok := c.files[name]
	if ok && !c.dropped[name] {
		return f
	}
	if c.rank == nil {
		c.rank = map[string]int{}
	}
	if _, ranked := c.rank[name]; !ranked {
		c.rank[name] = len(c.rank)
	}
	var r parsed
	if ok { // dropped
		delete(c.dropped, name)
		r.f, r.err = syntax.Parse(name, f.Src)
	} else if ahead, isAhead := c.ahead.take(name); isAhead {
		r = ahead // the compile holds it in files from here on
	} else {
		r.f, r.err = c.parseFile(name)
	}
	if r.err != nil {
		var se *syntax.Error
		if errors.As(r.err, &se) {
			c.errs = append(c.errs, se)
		} else {
			c.errs = append(c.errs, &syntax.Error{Pos: lexer.Position{Filename: name, Line: 1, Column: 1}, Msg: r.err.Error()})
		}
		c.files[name] = nil
		return nil
	}
	c.files[name] = r.f
	return r.f
}

// unwrapPath drops the *fs.PathError's own path, which the message names.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// repoPath resolves name, written in file f, to a path of the repository:
// relative to f's directory, clean, and inside the repository.
func (c *compiler) repoPath(f *syntax.File, name string) (string, error) {
	if name == "" {
		return "", errors.New("empty path")
	}
	if path.IsAbs(name) {
		return "", fmt.Errorf("%q is absolute: repository paths are relative to the file that names them", name)
	}
	p := path.Join(path.Dir(f.Name), name)
	if p == ".." || strings.HasPrefix(p, "../") {
		return "", fmt.Errorf("%q climbs out of the configuration directory", name)
	}
	if p == "." {
		return "", fmt.Errorf("%q names the configuration directory itself", name)
	}
	return p, nil
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
