package compiler

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/cairn-cm/cairn/compiler/syntax"
	"github.com/cairn-cm/cairn/journal"
)

// resolve turns every node's needs into dependencies on other nodes: a
// path's nearest managed parent directory, the users and groups it names,
// a service's package, unit and restart_on files, and explicit after
// entries. It also finishes the steps that need other nodes: a restart's
// on= hash and a gid given as a group's name.
func (c *compiler) resolve() {
	var dirs journal.PathTree[*node] // by component: a deep path's ancestors cost O(len)
	files := map[string]*node{}
	users := map[string]*node{}
	groups := map[string]*node{}
	pkgs := map[string]*node{}
	units := map[string]*node{}
	for _, n := range c.nodes {
		if n.dir != "" {
			dirs.Set(n.dir, n)
		}
		if n.file != "" {
			files[n.file] = n
		}
		if n.user != "" {
			users[n.user] = n
		}
		if n.group != "" {
			groups[n.group] = n
		}
		if n.pkg != "" {
			pkgs[n.pkg] = n
		}
		if n.unitName != "" {
			units[n.unitName] = n
		}
	}
	for _, n := range c.nodes {
		for _, p := range n.paths {
			var nearest *node
			for _, dn := range dirs.Ancestors(p) {
				if dn != n {
					nearest = dn
				}
			}
			if nearest != nil {
				n.dep(nearest)
			}
		}
		for _, name := range n.owners {
			if un := users[name]; un != nil && un != n {
				n.dep(un)
			}
		}
		for _, name := range n.groups {
			if gn := groups[name]; gn != nil && gn != n {
				n.dep(gn)
			}
		}
		if n.gidName != "" {
			c.resolveGid(n, groups[n.gidName])
		}
		for _, name := range n.pkgs {
			if pn := pkgs[name]; pn != nil {
				n.dep(pn)
			} else if n.pkgExplicit {
				n.errorf(n.scope.c, "package", "%s: no package block %q%s", n.what(), name, didYouMean(name, sortedKeys(pkgs)))
			}
		}
		for _, name := range n.units {
			if un := units[name]; un != nil {
				n.dep(un)
			}
		}
		if n.restart != nil {
			c.resolveRestart(n, files)
		}
		for _, a := range n.after {
			c.resolveAfter(n, a)
		}
	}
}

// dep records that d comes before n, once. A node that waits for a whole
// module call can need thousands: past a few, a set keeps this linear.
func (n *node) dep(d *node) {
	if n.depSet != nil {
		if _, ok := n.depSet[d]; ok {
			return
		}
		n.depSet[d] = struct{}{}
	} else {
		if slices.Contains(n.deps, d) {
			return
		}
		if len(n.deps) == 16 {
			n.depSet = make(map[*node]struct{}, 64)
			for _, x := range n.deps {
				n.depSet[x] = struct{}{}
			}
			n.depSet[d] = struct{}{}
		}
	}
	n.deps = append(n.deps, d)
}

// errorf reports a finding at one of the node's attributes (or the block).
func (n *node) errorf(c *compiler, attr string, format string, args ...any) {
	pos := n.pos
	if d := n.block(); d != nil {
		if it := d.attrs[attr]; it != nil {
			pos = it.Value.Pos
		}
	}
	c.errs = append(c.errs, n.scope.errorf(pos, format, args...))
}

// block finds the node's block again by position, for attribute positions:
// once its tree is dropped (dropTrees), by parsing its file's text again.
func (n *node) block() *block {
	for _, d := range n.unit.deferred {
		if d.pos != n.pos {
			continue
		}
		if d.b != nil {
			return d.b
		}
		f, err := syntax.Parse(d.scope.file.Name, d.scope.file.Src)
		if err != nil {
			return nil // it parsed before: not reached
		}
		for _, it := range f.Items {
			if it.Pos == d.pos {
				var discard syntax.ErrorList
				return checkBlock(f, it, nil, &discard)
			}
		}
		return nil
	}
	return nil
}

func (c *compiler) resolveGid(n *node, g *node) {
	if g == nil {
		n.errorf(c, "gid", "%s: gid %q is neither a number nor a group block", n.what(), n.gidName)
		return
	}
	gid, ok := g.steps[0].Lookup("gid")
	if !ok {
		n.errorf(c, "gid", "%s: gid names group %q, which sets no gid", n.what(), n.gidName)
		return
	}
	setAttr(&n.steps[0], "gid", gid)
}

// resolveRestart adds a service's restart step: its on= hash covers the
// path and content hash of every restart_on file, so it changes exactly when
// one of them does.
func (c *compiler) resolveRestart(n *node, managed map[string]*node) {
	h := sha256.New()
	// The hash covers the set of files: their order in the list is no change.
	files := slices.Clone(n.restart.files)
	slices.Sort(files)
	for _, p := range slices.Compact(files) {
		fn := managed[p]
		if fn == nil {
			c.errs = append(c.errs, n.scope.errorf(n.restart.pos, "%s: restart_on %q is not managed by a file block%s", n.what(), p, didYouMean(p, sortedKeys(managed))))
			continue
		}
		n.dep(fn)
		fmt.Fprintf(h, "%s\x00%s\n", p, fn.steps[0].Get("sha256"))
	}
	st := journal.Step{Op: journal.OpSystemdRestart, Args: []string{n.restart.unit},
		Attrs: []journal.Attr{{Key: "on", Value: hex.EncodeToString(h.Sum(nil))}}}
	n.steps = append(n.steps, st)
}

// resolveAfter resolves one after entry: TYPE.LABEL in the node's own unit,
// or module.NAME for every node of that module call.
func (c *compiler) resolveAfter(n *node, a afterRef) {
	typ, label, ok := strings.Cut(a.addr, ".")
	if !ok || typ == "" || label == "" {
		c.errs = append(c.errs, a.scope.errorf(a.pos, "after: %q is not an address (TYPE.LABEL, like package.nginx or module.web)", a.addr))
		return
	}
	if typ == "module" {
		m := a.unit.children[label]
		if m == nil && c.declaredAnywhere(a.unit, typ, label) {
			return // a call left out by its when condition orders nothing
		}
		if m == nil {
			c.errs = append(c.errs, a.scope.errorf(a.pos, "after: no module call %q here%s", label, didYouMean(label, sortedKeys(a.unit.children))))
			return
		}
		for _, d := range m.nodes {
			if d == n {
				c.errs = append(c.errs, a.scope.errorf(a.pos, "after: %s is inside module %q", n.what(), label))
				return
			}
			n.dep(d)
		}
		return
	}
	d := a.unit.addrs[a.addr]
	if d == nil {
		if lookupSpec(typ) == nil {
			c.errs = append(c.errs, a.scope.errorf(a.pos, "after: unknown block type %q in %q", typ, a.addr))
			return
		}
		// A block left out by its when condition orders nothing.
		if !c.declaredAnywhere(a.unit, typ, label) {
			c.errs = append(c.errs, a.scope.errorf(a.pos, "after: no block %s here%s", a.addr, didYouMean(a.addr, sortedKeys(a.unit.addrs))))
		}
		return
	}
	if d == n {
		c.errs = append(c.errs, a.scope.errorf(a.pos, "after: %s names itself", n.what()))
		return
	}
	n.dep(d)
}

// declaredAnywhere reports whether a unit has a block TYPE "LABEL" at all,
// kept or left out by its condition.
func (c *compiler) declaredAnywhere(u *unit, typ, label string) bool {
	for _, d := range u.deferred {
		if d.typ != typ {
			continue
		}
		if !d.literal || d.label == label {
			return true // an interpolated label may be it
		}
	}
	return false
}

// order returns the nodes in a stable topological order that keeps source
// order wherever the dependencies allow: nodes are taken in source order,
// and each is placed right after what it needs, which is placed first (in
// its own source order) if it is not placed yet. A block written before
// what it needs pulls that forward to just before itself; nothing else
// moves. A cycle is reported with every block in it.
func (c *compiler) order() []*node {
	const (
		unvisited = iota
		visiting
		placed
	)
	state := make([]uint8, len(c.nodes))
	out := make([]*node, 0, len(c.nodes))
	var stack []*node
	var visit func(n *node) bool
	visit = func(n *node) bool {
		switch state[n.idx] {
		case placed:
			return true
		case visiting:
			c.reportCycle(stack, n)
			return false
		}
		state[n.idx] = visiting
		stack = append(stack, n)
		deps := n.deps
		if len(deps) > 1 {
			deps = slices.Clone(deps)
			slices.SortFunc(deps, func(a, b *node) int { return a.idx - b.idx })
		}
		for _, d := range deps {
			if !visit(d) {
				return false
			}
		}
		stack = stack[:len(stack)-1]
		state[n.idx] = placed
		out = append(out, n)
		return true
	}
	for _, n := range c.nodes {
		if !visit(n) {
			return nil
		}
	}
	return out
}

// reportCycle reports the cycle that closes when the node on top of stack
// needs again, which is on the stack: each node there needs the next. The
// report starts at the block first in source order and is made there.
func (c *compiler) reportCycle(stack []*node, again *node) {
	cycle := stack[slices.Index(stack, again):]
	first := 0
	for i, n := range cycle {
		if n.idx < cycle[first].idx {
			first = i
		}
	}
	cycle = append(slices.Clone(cycle[first:]), cycle[:first]...)
	parts := make([]string, 0, len(cycle)+1)
	for _, n := range cycle {
		parts = append(parts, fmt.Sprintf("%s (%s)", n.what(), n.chain))
	}
	parts = append(parts, cycle[0].what())
	msg := "dependency cycle: " + strings.Join(parts, " needs ")
	c.errs = append(c.errs, cycle[0].scope.errorf(cycle[0].pos, "%s", msg))
}
