package compiler

import (
	"container/heap"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"strings"

	"github.com/cairn-cm/cairn/journal"
)

// resolve turns every node's needs into dependencies on other nodes: a
// path's nearest managed parent directory, the users and groups it names,
// a service's package, unit and restart_on files, and explicit after
// entries. It also finishes the steps that need other nodes: a restart's
// on= hash and a gid given as a group's name.
func (c *compiler) resolve() {
	dirs := map[string]*node{}
	files := map[string]*node{}
	users := map[string]*node{}
	groups := map[string]*node{}
	pkgs := map[string]*node{}
	units := map[string]*node{}
	for _, n := range c.nodes {
		if n.dir != "" {
			dirs[n.dir] = n
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
			for d := path.Dir(p); d != "/"; d = path.Dir(d) {
				if dn := dirs[d]; dn != nil && dn != n {
					n.dep(dn)
					break
				}
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
				n.errorf(n.scope.c, "package", "%s: no package block %q%s", n.what, name, didYouMean(name, sortedKeys(pkgs)))
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

// dep records that d comes before n.
func (n *node) dep(d *node) {
	for _, x := range n.deps {
		if x == d {
			return
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

// block finds the node's block again by position, for attribute positions.
func (n *node) block() *block {
	for _, d := range n.unit.deferred {
		if d.b.item.Pos == n.pos {
			return d.b
		}
	}
	return nil
}

func (c *compiler) resolveGid(n *node, g *node) {
	if g == nil {
		n.errorf(c, "gid", "%s: gid %q is neither a number nor a group block", n.what, n.gidName)
		return
	}
	gid, ok := g.steps[0].Lookup("gid")
	if !ok {
		n.errorf(c, "gid", "%s: gid names group %q, which sets no gid", n.what, n.gidName)
		return
	}
	setAttr(&n.steps[0], "gid", gid)
}

// resolveRestart adds a service's restart step: its on= hash covers the
// path and content hash of every restart_on file, so it changes exactly when
// one of them does.
func (c *compiler) resolveRestart(n *node, files map[string]*node) {
	h := sha256.New()
	for _, p := range n.restart.files {
		fn := files[p]
		if fn == nil {
			c.errs = append(c.errs, n.scope.errorf(n.restart.pos, "%s: restart_on %q is not managed by a file block%s", n.what, p, didYouMean(p, sortedKeys(files))))
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
				c.errs = append(c.errs, a.scope.errorf(a.pos, "after: %s is inside module %q", n.what, label))
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
		c.errs = append(c.errs, a.scope.errorf(a.pos, "after: %s names itself", n.what))
		return
	}
	n.dep(d)
}

// declaredAnywhere reports whether a unit has a block TYPE "LABEL" at all,
// kept or left out by its condition.
func (c *compiler) declaredAnywhere(u *unit, typ, label string) bool {
	for _, d := range u.deferred {
		if d.b.spec.typ != typ {
			continue
		}
		if lit, ok := d.b.item.Labels[0].Template.Literal(); !ok || lit == label {
			return true // an interpolated label may be it
		}
	}
	return false
}

// order returns the nodes in a stable topological order: among the nodes
// whose dependencies are placed, the one first in source order goes next. A
// cycle is reported with every block in it.
func (c *compiler) order() []*node {
	indeg := make([]int, len(c.nodes))
	users := make([][]*node, len(c.nodes))
	for _, n := range c.nodes {
		indeg[n.idx] = len(n.deps)
		for _, d := range n.deps {
			users[d.idx] = append(users[d.idx], n)
		}
	}
	ready := &nodeHeap{}
	for _, n := range c.nodes {
		if indeg[n.idx] == 0 {
			*ready = append(*ready, n)
		}
	}
	heap.Init(ready)
	out := make([]*node, 0, len(c.nodes))
	for ready.Len() > 0 {
		n := heap.Pop(ready).(*node)
		out = append(out, n)
		for _, u := range users[n.idx] {
			if indeg[u.idx]--; indeg[u.idx] == 0 {
				heap.Push(ready, u)
			}
		}
	}
	if len(out) < len(c.nodes) {
		c.reportCycle(indeg)
		return nil
	}
	return out
}

// reportCycle finds one cycle among the nodes left unplaced and names each
// block in it, in dependency order, with its position.
func (c *compiler) reportCycle(indeg []int) {
	var start *node
	for _, n := range c.nodes {
		if indeg[n.idx] > 0 {
			start = n
			break
		}
	}
	// Walk dependencies among unplaced nodes until one repeats.
	seen := map[*node]int{}
	var path []*node
	for n := start; n != nil; {
		if i, ok := seen[n]; ok {
			path = path[i:]
			break
		}
		seen[n] = len(path)
		path = append(path, n)
		var next *node
		for _, d := range n.deps {
			if indeg[d.idx] > 0 {
				next = d
				break
			}
		}
		n = next
	}
	// path lists each node then what it needs; print in run order.
	parts := make([]string, 0, len(path)+1)
	for i := len(path) - 1; i >= 0; i-- {
		parts = append(parts, fmt.Sprintf("%s (%s)", path[i].what, path[i].chain))
	}
	parts = append(parts, path[len(path)-1].what)
	first := path[len(path)-1]
	c.errs = append(c.errs, first.scope.errorf(first.pos, "dependency cycle: %s", strings.Join(parts, " → ")))
}

// nodeHeap orders ready nodes by source order.
type nodeHeap []*node

func (h nodeHeap) Len() int           { return len(h) }
func (h nodeHeap) Less(i, j int) bool { return h[i].idx < h[j].idx }
func (h nodeHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *nodeHeap) Push(x any)        { *h = append(*h, x.(*node)) }
func (h *nodeHeap) Pop() any {
	old := *h
	n := old[len(old)-1]
	*h = old[:len(old)-1]
	return n
}
