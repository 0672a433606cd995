package compiler

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"

	"github.com/alecthomas/participle/v2/lexer"

	"github.com/cairn-cm/cairn/compiler/syntax"
	"github.com/cairn-cm/cairn/internal/treefs"
)

// unit is one compiled body of configuration: the root, or one module call.
// Its files share variables; its addresses are its own.
type unit struct {
	name string // the module call's label; "" for the root
	dir  string // its directory in the repository
	// call is the chain of module call positions leading here, outermost
	// first; empty for the root.
	call []lexer.Position
	// inputs are the module call's attributes, evaluated in the caller.
	inputs    map[string]Value
	callBlock *block
	callScope *scope

	vars     map[string]Value
	declared map[string]*block
	// unset are the variables declared without a value, whose error is
	// already on the list: a reference to one adds no second error.
	unset map[string]bool
	// deferred holds the blocks to evaluate once every variable is known.
	deferred []*deferredBlock
	children map[string]*unit
	addrs    map[string]*node
	nodes    []*node // every node of this unit and its modules, for module.NAME
	// parent is the unit that calls this one; nil for the root.
	parent *unit
	// read are the files read into the unit so far, top-level or included.
	read map[string]bool
}

type deferredBlock struct {
	b     *block // nil once its unit is compiled (dropTrees)
	scope *scope
	// What the phases after the walk read of the block, kept when its tree
	// is dropped: its position, type, and first label when that is a
	// literal (literal false: it is interpolated).
	pos     lexer.Position
	typ     string
	label   string
	literal bool
}

// deferBlock makes the deferred block of b, read in scope s.
func deferBlock(b *block, s *scope) *deferredBlock {
	d := &deferredBlock{b: b, scope: s, pos: b.item.Pos, typ: b.spec.typ}
	if len(b.item.Labels) > 0 {
		d.label, d.literal = b.item.Labels[0].Template.Literal()
	}
	return d
}

// walkUnit reads the unit's files in order: variables are declared as they
// come, includes expanded in place, and every other block deferred; then
// the deferred blocks are evaluated in source order.
func (c *compiler) walkUnit(u *unit, files []*syntax.File) {
	u.declared = map[string]*block{}
	u.unset = map[string]bool{}
	u.read = map[string]bool{}
	for _, f := range files {
		u.read[f.Name] = true
	}
	for _, f := range files {
		c.walkFile(u, f, []string{f.Name})
	}
	if u.callBlock == nil {
		c.checkGroupVars(u)
	}
	if u.callBlock != nil {
		for _, it := range u.callBlock.inputs {
			if name := it.Name; u.declared[name] == nil {
				c.errs = append(c.errs, u.callScope.errorf(it.Pos, "module %q has no variable %q%s", u.name, name, didYouMean(name, sortedKeys(u.declared))))
			}
		}
	}
	for _, d := range u.deferred {
		if err := c.ctx.Err(); err != nil || c.halted {
			return
		}
		c.evalBlock(u, d)
	}
}

// walkFile handles the items of one file of unit u. stack holds the files
// being included, for cycle errors.
func (c *compiler) walkFile(u *unit, f *syntax.File, stack []string) {
	s := &scope{c: c, file: f, vars: u.vars, unset: u.unset, facts: c.facts}
	if u.callBlock != nil {
		s.within = fmt.Sprintf(" (module %q called at %s)", u.name, chain(u.parent, u.call[len(u.call)-1]))
	}
	for _, it := range f.Items {
		if c.halted {
			return
		}
		if c.blocks++; c.blocks > MaxBlocks {
			c.halted = true
			c.errs = append(c.errs, s.errorf(it.Pos, "more than %d blocks in one compile, a module's counted once for each call of it: the compile stops here", MaxBlocks))
			return
		}
		if it.Name == "hosts" && it.IsBlock() {
			if u.callBlock != nil || len(stack) > 1 {
				c.errs = append(c.errs, s.errorf(it.Pos, "a hosts block belongs in a top-level file of the configuration, not in a module or an included file"))
			}
			continue // read before the walk, by hostsOf
		}
		b := checkBlock(f, it, nil, &c.errs)
		if b == nil {
			continue
		}
		switch b.spec.typ {
		case "variable":
			c.declare(u, s, b)
		case "include":
			c.include(u, s, b, stack)
		default:
			if b.spec.typ == "module" {
				if dir, ok := c.moduleDir(s, b); ok {
					c.ahead.want(dir) // parsed while the blocks before the call are compiled
				}
			}
			u.deferred = append(u.deferred, deferBlock(b, s))
		}
	}
}

// declare gives a variable its value: the module call's input, else the
// host group's value (top-level variables), else its default.
func (c *compiler) declare(u *unit, s *scope, b *block) {
	name, ok := c.label(s, b, 0)
	if !ok {
		return
	}
	if first := u.declared[name]; first != nil {
		c.errs = append(c.errs, s.errorf(b.item.Pos, "variable %q is declared twice (first at %s)", name, first.item.Pos))
		return
	}
	u.declared[name] = b
	if v, ok := u.inputs[name]; ok {
		u.vars[name] = v
		return
	}
	if u.callBlock == nil {
		if v, ok := c.groupVars[name]; ok {
			u.vars[name] = v
			return
		}
	}
	if v, present := c.value(s, b, "default", tAny); present {
		u.vars[name] = v
		return
	}
	u.unset[name] = true
	if b.attrs["default"] != nil {
		return // its error is on the list
	}
	if u.callBlock != nil {
		c.errs = append(c.errs, u.callScope.errorf(u.callBlock.item.Pos, "module %q: variable %q has no default and the call does not set it (declared at %s)", u.name, name, b.item.Pos))
		return
	}
	c.errs = append(c.errs, s.errorf(b.item.Pos, "variable %q has no default and the host group gives it no value", name))
}

// include splices the files an include block names, in lexical order.
func (c *compiler) include(u *unit, s *scope, b *block, stack []string) {
	if !c.when(s, b) {
		return
	}
	pattern, ok := c.label(s, b, 0)
	if !ok {
		return
	}
	p, err := c.repoPath(s.file, pattern)
	if err != nil {
		c.errs = append(c.errs, s.errorf(b.item.Labels[0].Pos, "include: %v", err))
		return
	}
	gfs := &globFS{fsys: c.fsys}
	matches, err := fs.Glob(gfs, p)
	if err == nil && gfs.err != nil {
		// A directory on the pattern's way is a link out of the
		// configuration (or a loop): refused, never passed over, or the
		// files the pattern matched through it would drop out of the
		// journal without a word.
		err = gfs.err
	}
	if err != nil {
		c.errs = append(c.errs, s.errorf(b.item.Labels[0].Pos, "include %q: %v", pattern, err))
		return
	}
	var names []string
	for _, m := range matches {
		info, err := fs.Stat(c.fsys, m)
		switch {
		case err == nil && !info.IsDir():
			names = append(names, m)
		case err != nil && !missing(err):
			// A link out of the configuration, or a loop: refused, never
			// passed over.
			c.errs = append(c.errs, s.errorf(b.item.Labels[0].Pos, "include %q: %s: %v", pattern, m, unwrapPath(err)))
			return
		}
	}
	if len(names) == 0 {
		// fs.Glob passes over what it cannot read: say so when that is a
		// link out of the configuration (or a loop) on the pattern's way.
		fixed := p
		if i := strings.IndexAny(p, `*?[\`); i >= 0 {
			fixed = path.Dir(p[:i+1])
		}
		if _, err := fs.Stat(c.fsys, fixed); errors.Is(err, treefs.ErrLinkEscapes) || errors.Is(err, treefs.ErrLinkLoop) {
			c.errs = append(c.errs, s.errorf(b.item.Labels[0].Pos, "include %q: %s: %v", pattern, fixed, unwrapPath(err)))
			return
		}
		c.errs = append(c.errs, s.errorf(b.item.Labels[0].Pos, "include %q: no file matches %s", pattern, p))
		return
	}
	for _, name := range names {
		for i, open := range stack {
			if open == name {
				chain := append(append([]string{}, stack[i:]...), name)
				c.errs = append(c.errs, s.errorf(b.item.Pos, "include cycle: %s", strings.Join(chain, " → ")))
				return
			}
		}
		if u.read[name] {
			c.errs = append(c.errs, s.errorf(b.item.Labels[0].Pos, "include %q: %s is already part of this configuration (a top-level file, or included before)", pattern, name))
			continue
		}
		u.read[name] = true
		f := c.parse(name)
		if f == nil {
			continue
		}
		c.walkFile(u, f, append(stack, name))
	}
}

// when evaluates a block's condition; a block without one is kept.
func (c *compiler) when(s *scope, b *block) bool {
	v, present := c.value(s, b, "when", tBool)
	if !present {
		return b.attrs["when"] == nil
	}
	return v.Bool
}

// module compiles a module call: a new unit for the module's directory,
// with the call's other attributes as inputs.
func (c *compiler) module(u *unit, s *scope, b *block) {
	name, ok := c.label(s, b, 0)
	if !ok {
		return
	}
	if u.children[name] != nil {
		c.errs = append(c.errs, s.errorf(b.item.Pos, "module %q is called twice in this configuration: give each call its own name", name))
		return
	}
	src, _, ok := c.str(s, b, "source")
	if !ok {
		return
	}
	dir, err := c.repoPath(s.file, src)
	if err != nil {
		c.errs = append(c.errs, s.errorf(b.attrs["source"].Value.Pos, "module %q: %v", name, err))
		return
	}
	if depth := len(u.call); depth >= 32 {
		c.errs = append(c.errs, s.errorf(b.item.Pos, "module %q: modules nest more than 32 deep (a module that calls itself?)", name))
		return
	}
	if c.moduleCalls++; c.moduleCalls > MaxModuleCalls {
		c.halted = true
		c.errs = append(c.errs, s.errorf(b.item.Pos, "module %q: more than %d module calls in one compile (a module called from a module called twice counts twice): the compile stops here", name, MaxModuleCalls))
		return
	}
	info, err := fs.Stat(c.fsys, dir)
	if err != nil && (errors.Is(err, treefs.ErrLinkEscapes) || errors.Is(err, treefs.ErrLinkLoop)) {
		c.errs = append(c.errs, s.errorf(b.attrs["source"].Value.Pos, "module %q: %s: %v", name, dir, unwrapPath(err)))
		return
	}
	if err != nil || !info.IsDir() {
		c.errs = append(c.errs, s.errorf(b.attrs["source"].Value.Pos, "module %q: %s is not a directory of the configuration", name, dir))
		return
	}
	for p := u; p != nil; p = p.parent {
		if p.dir == dir {
			c.errs = append(c.errs, s.errorf(b.attrs["source"].Value.Pos, "module %q: %s calls itself (through %s)", name, dir, chain(u, b.item.Pos)))
			return
		}
	}
	child := &unit{
		parent: u, name: name, dir: dir, call: append(append([]lexer.Position{}, u.call...), b.item.Pos),
		inputs: map[string]Value{}, callBlock: b, callScope: s,
		vars: map[string]Value{}, children: map[string]*unit{}, addrs: map[string]*node{},
	}
	for _, in := range b.inputs {
		v, err := s.eval(in.Value)
		if err != nil {
			c.fail(err)
			continue
		}
		child.inputs[in.Name] = v
	}
	u.children[name] = child
	files, err := c.topFiles(dir)
	if err != nil {
		c.errs = append(c.errs, s.errorf(b.attrs["source"].Value.Pos, "module %q: %v", name, err))
		return
	}
	if len(files) == 0 {
		c.errs = append(c.errs, s.errorf(b.attrs["source"].Value.Pos, "module %q: no *.cairn file in %s", name, dir))
		return
	}
	first := len(c.nodes)
	c.walkUnit(child, files)
	after, _ := c.strings(s, b, "after")
	for _, n := range c.nodes[first:] {
		u.nodes = append(u.nodes, n)
		for _, a := range after {
			n.after = append(n.after, afterRef{addr: a, unit: u, scope: s, pos: b.attrs["after"].Value.Pos})
		}
	}
	c.dropTrees(child) // every block of the call is evaluated
}

// evalBlock evaluates a deferred block of unit u.
func (c *compiler) evalBlock(u *unit, d *deferredBlock) {
	s, b := d.scope, d.b
	if !c.when(s, b) {
		if b.spec.typ == "module" {
			if dir, ok := c.moduleDir(s, b); ok {
				c.ahead.forget(dir)
			}
		}
		return
	}
	switch b.spec.typ {
	case "module":
		c.module(u, s, b)
	case "plugin":
		c.plugin(u, s, b)
	default:
		c.resource(u, s, b)
	}
}

// chain renders the source positions of a block of unit u: each module
// call, then the block.
func chain(u *unit, pos lexer.Position) string {
	if len(u.call) == 0 {
		return posString(pos)
	}
	parts := make([]string, 0, len(u.call)+1)
	for _, p := range u.call {
		parts = append(parts, posString(p))
	}
	return strings.Join(append(parts, posString(pos)), " > ")
}

func posString(p lexer.Position) string {
	return p.Filename + ":" + strconv.Itoa(p.Line) + ":" + strconv.Itoa(p.Column)
}

// checkGroupVars reports a value the host's group gives a variable that no
// top-level file declares: a typo there would otherwise go unnoticed.
func (c *compiler) checkGroupVars(root *unit) {
	for _, name := range sortedKeys(c.groupVars) {
		if root.declared[name] == nil {
			c.errs = append(c.errs, errorAt(c.group.file, c.group.varsPos, "host group %q sets vars.%s, but no top-level variable %q is declared%s", c.group.Name, name, name, didYouMean(name, sortedKeys(root.declared))))
		}
	}
}

// globFS is the configuration as fs.Glob reads it, which passes over a
// directory it cannot list: it keeps the first error that says a directory
// on the way is a link out of the tree or a loop, as "P: reason".
type globFS struct {
	fsys fs.FS
	err  error
}

func (g *globFS) Open(name string) (fs.File, error) { return g.fsys.Open(name) }

func (g *globFS) Stat(name string) (fs.FileInfo, error) { return fs.Stat(g.fsys, name) }

func (g *globFS) ReadDir(name string) ([]fs.DirEntry, error) {
	entries, err := fs.ReadDir(g.fsys, name)
	if g.err == nil && (errors.Is(err, treefs.ErrLinkEscapes) || errors.Is(err, treefs.ErrLinkLoop)) {
		g.err = fmt.Errorf("%s: %w", name, unwrapPath(err))
	}
	return entries, err
}
