package compiler

import (
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/alecthomas/participle/v2/lexer"

	"github.com/cairn-cm/cairn/compiler/syntax"
)

// HostGroup is a group block of the hosts block: which hosts belong to it
// and which git branch they follow.
type HostGroup struct {
	Name   string
	Match  []string
	Branch string
	// Pos is the group block's position.
	Pos lexer.Position
	// vars are the values it gives top-level variables, set at varsPos of
	// file.
	vars    map[string]Value
	varsPos lexer.Position
	file    *syntax.File
	item    *syntax.Item
}

// Hosts reads the host groups of the configuration at the top of fsys, for
// the agent: which group a host is in and which branch it follows.
func Hosts(fsys fs.FS) ([]HostGroup, error) {
	c := &compiler{fsys: fsys, files: map[string]*syntax.File{}}
	files, err := c.topFiles(".")
	if err != nil {
		return nil, err
	}
	groups := c.readGroups(c.hostsOf(files))
	if len(c.errs) > 0 {
		return nil, c.errs
	}
	return groups, nil
}

// GroupOf returns the first group one of whose patterns matches host.
func GroupOf(groups []HostGroup, host string) (HostGroup, bool) {
	for _, g := range groups {
		for _, m := range g.Match {
			if ok, _ := path.Match(m, host); ok {
				return g, true
			}
		}
	}
	return HostGroup{}, false
}

// hostsOf returns the checked hosts blocks of the root's top-level files.
func (c *compiler) hostsOf(files []*syntax.File) []*block {
	var out []*block
	for _, f := range files {
		for _, it := range f.Items {
			if it.Name == "hosts" && it.IsBlock() {
				if b := checkBlock(f, it, nil, &c.errs); b != nil {
					out = append(out, b)
				}
			}
		}
	}
	return out
}

// readGroups evaluates the group blocks of the hosts blocks. Their
// attributes see no facts and no variables: they decide what those are.
func (c *compiler) readGroups(hosts []*block) []HostGroup {
	var groups []HostGroup
	seen := map[string]lexer.Position{}
	for _, h := range hosts {
		s := &scope{c: c, file: h.file, vars: map[string]Value{}, facts: map[string]Value{}}
		for _, g := range h.children {
			name, ok := c.label(s, g, 0)
			if !ok {
				continue
			}
			if first, dup := seen[name]; dup {
				c.errs = append(c.errs, s.errorf(g.item.Pos, "host group %q is defined twice (first at %s)", name, first))
				continue
			}
			seen[name] = g.item.Pos
			hg := HostGroup{Name: name, Pos: g.item.Pos, item: g.item}
			hg.Match, _ = c.strings(s, g, "match")
			for _, m := range hg.Match {
				if _, err := path.Match(m, ""); err != nil {
					c.errs = append(c.errs, s.errorf(g.attrs["match"].Pos, "bad host pattern %q: %v", m, err))
				}
			}
			hg.Branch, _, _ = c.str(s, g, "branch")
			if v, ok := c.value(s, g, "vars", tObject); ok {
				hg.vars = v.Fields
				hg.varsPos, hg.file = g.attrs["vars"].Value.Pos, g.file
			}
			groups = append(groups, hg)
		}
	}
	return groups
}

// settleHost decides the host's group and branch and fills the facts.
func (c *compiler) settleHost(hosts []*block) (*Result, error) {
	res := &Result{Host: c.opts.Host, Facts: map[string]string{}}
	if c.opts.Host == "" {
		return nil, fmt.Errorf("no host name to compile for (use --host)")
	}
	res.Groups = c.readGroups(hosts)
	if len(c.errs) > 0 {
		return res, nil
	}
	var group HostGroup
	switch {
	case c.opts.Group != "":
		found := false
		for _, g := range res.Groups {
			if g.Name == c.opts.Group {
				group, found = g, true
			}
		}
		if !found && len(res.Groups) > 0 {
			names := make([]string, len(res.Groups))
			for i, g := range res.Groups {
				names[i] = g.Name
			}
			return nil, fmt.Errorf("--group %q: no such host group (groups: %s)%s", c.opts.Group, strings.Join(names, ", "), didYouMean(c.opts.Group, names))
		}
		group.Name = c.opts.Group
	case len(res.Groups) > 0:
		g, ok := GroupOf(res.Groups, c.opts.Host)
		if !ok {
			first := hosts[0]
			c.errs = append(c.errs, errorAt(first.file, first.item.Pos, "host %q matches no group of the hosts block (use --group, or add a pattern)", c.opts.Host))
			return res, nil
		}
		group = g
	}
	res.Group, res.Branch = group.Name, group.Branch
	c.groupVars, c.group = group.vars, group
	for k, v := range c.opts.Facts {
		res.Facts[k] = v
	}
	res.Facts["hostname"] = c.opts.Host
	res.Facts["group"] = group.Name
	res.Facts["branch"] = group.Branch
	c.facts = make(map[string]Value, len(res.Facts))
	for k, v := range res.Facts {
		c.facts[k] = Str(v)
	}
	return res, nil
}
