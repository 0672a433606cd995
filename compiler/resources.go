package compiler

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"slices"
	"strconv"
	"strings"

	"github.com/alecthomas/participle/v2/lexer"

	"github.com/cairn-cm/cairn/internal/treefs"
	"github.com/cairn-cm/cairn/journal"
)

// attr is one attribute of a step being built, and the configuration
// attribute it comes from (for the error position).
type attr struct {
	key, value string
	from       string
}

// mkStep builds a step with canonical values: each argument and attribute
// checked by the journal's own rules, defaults left out, attributes sorted.
// A bad value is reported at the attribute (or label) it came from.
func (c *compiler) mkStep(s *scope, b *block, op string, args []string, attrs ...attr) (journal.Step, bool) {
	sig := journal.Lookup(op)
	st := journal.Step{Op: op, Args: make([]string, len(args))}
	ok := true
	for i, a := range args {
		v, err := journal.CanonicalValue(sig.Args[i].Kind, a)
		if err != nil {
			pos := b.item.Pos
			if it := b.attrs[argAttr(b, op, i)]; it != nil {
				pos = it.Value.Pos
			} else if len(b.item.Labels) > 0 {
				pos = b.item.Labels[0].Pos // the object a block manages is its label
			}
			c.errs = append(c.errs, s.errorf(pos, "%s: %s: %v", describe(b, s), strings.ToLower(sig.Args[i].Name), err))
			ok = false
		}
		st.Args[i] = v
	}
	for _, a := range attrs {
		spec := sig.Attr(a.key)
		v, err := journal.CanonicalValue(spec.Kind, a.value)
		if err != nil {
			pos := b.item.Pos
			if it := b.attrs[a.from]; it != nil {
				pos = it.Value.Pos
			}
			c.errs = append(c.errs, s.errorf(pos, "%s: %s: %v", describe(b, s), a.from, err))
			ok = false
			continue
		}
		if v == spec.Default && spec.Default != "" {
			continue
		}
		st.Attrs = append(st.Attrs, journal.Attr{Key: a.key, Value: v})
	}
	slices.SortFunc(st.Attrs, func(x, y journal.Attr) int { return strings.Compare(x.Key, y.Key) })
	return st, ok
}

// argAttr names the attribute argument i of a step comes from, or "" for
// the block's label.
func argAttr(b *block, op string, i int) string {
	switch {
	case op == journal.OpExec && i == 0:
		return "command"
	case op == journal.OpSymlink && i == 0:
		return "target"
	case op == journal.OpCopy && i == 0:
		return "source"
	case op == journal.OpCheck && i == 1:
		for _, k := range checkKinds {
			if b.attrs[k.attr] != nil {
				return k.attr
			}
		}
	}
	return ""
}

// describe names a block as messages do: TYPE "LABEL".
func describe(b *block, s *scope) string {
	if len(b.item.Labels) == 0 {
		return b.spec.typ
	}
	if b.label != "" {
		return b.spec.typ + " " + strconv.Quote(b.label)
	}
	if lit, ok := b.item.Labels[0].Template.Literal(); ok {
		return b.spec.typ + " " + strconv.Quote(lit)
	}
	return b.spec.typ + " " + b.item.Labels[0].Raw
}

// optional appends an attribute to a step's list when the configuration
// sets it, checked against the type the block's table gives it.
func (c *compiler) optional(s *scope, b *block, list []attr, key, from string) []attr {
	if v, present := c.value(s, b, from, b.spec.attr(from).typ); present {
		if text, ok := v.Text(); ok {
			list = append(list, attr{key: key, value: text, from: from})
		}
	}
	return list
}

func (c *compiler) optionalBool(s *scope, b *block, list []attr, key, from string) []attr {
	if v, present := c.value(s, b, from, tBool); present {
		list = append(list, attr{key: key, value: strconv.FormatBool(v.Bool), from: from})
	}
	return list
}

// ownership adds mode, owner and group, and notes the users and groups the
// node needs first.
func (c *compiler) ownership(s *scope, b *block, n *node, list []attr) []attr {
	list = c.optional(s, b, list, "mode", "mode")
	if v, present, ok := c.str(s, b, "owner"); present && ok {
		list = append(list, attr{key: "owner", value: v, from: "owner"})
		n.owners = append(n.owners, v)
	}
	if v, present, ok := c.str(s, b, "group"); present && ok {
		list = append(list, attr{key: "group", value: v, from: "group"})
		n.groups = append(n.groups, v)
	}
	return list
}

// resource turns a resource block into a node.
func (c *compiler) resource(u *unit, s *scope, b *block) {
	label, ok := c.label(s, b, 0)
	if !ok {
		return
	}
	n := &node{
		addr: b.spec.typ + "." + label, pos: b.item.Pos, chain: chain(u, b.item.Pos), scope: s, unit: u,
	}
	errs := len(c.errs)
	var steps []journal.Step
	add := func(st journal.Step, ok bool) {
		if ok {
			steps = append(steps, st)
		}
	}
	switch b.spec.typ {
	case "dir":
		n.dir = label
		n.paths = []string{label}
		add(c.mkStep(s, b, journal.OpMkdir, []string{label}, c.ownership(s, b, n, nil)...))
	case "file":
		n.file = label
		n.paths = []string{label}
		src, sum, fillPath := c.content(s, b, label)
		if len(c.errs) == errs {
			st, ok := c.mkStep(s, b, journal.OpCopy, []string{src, label}, c.ownership(s, b, n, []attr{{key: "sha256", value: sum, from: "source"}})...)
			if fillPath != "" {
				n.fills = append(n.fills, fill{step: len(steps), path: fillPath, pos: b.attrs["source"].Value.Pos, noun: "source file"})
				c.want(fillPath)
			}
			add(st, ok)
		}
	case "unit":
		if serviceUnit(label) != label {
			c.errs = append(c.errs, s.errorf(b.item.Labels[0].Pos, "%s: a unit's name needs its type, like %s.service or %s.timer", describe(b, s), label, label))
			break
		}
		n.unitName = label
		p := "/etc/systemd/system/" + label
		n.paths = []string{p}
		src, sum, fillPath := c.content(s, b, label)
		if len(c.errs) == errs {
			if fillPath != "" {
				pos := b.attrs["source"].Value.Pos
				n.fills = append(n.fills, fill{step: 0, path: fillPath, pos: pos, noun: "source file"}, fill{step: 1, path: fillPath, key: "on", pos: pos, noun: "source file", unitPath: p})
				c.want(fillPath)
			}
			add(c.mkStep(s, b, journal.OpCopy, []string{src, p}, attr{key: "sha256", value: sum, from: "source"}))
			add(c.mkStep(s, b, journal.OpSystemdReload, nil, attr{key: "on", value: reloadHash(p, sum), from: "source"}))
			if c.boolean(s, b, "enabled", false) {
				add(c.mkStep(s, b, journal.OpSystemdEnable, []string{label}))
			}
			if c.boolean(s, b, "running", false) {
				add(c.mkStep(s, b, journal.OpSystemdStart, []string{label}))
			}
		}
	case "symlink":
		n.paths = []string{label}
		if target, _, ok := c.str(s, b, "target"); ok {
			add(c.mkStep(s, b, journal.OpSymlink, []string{target, label}))
		}
	case "absent":
		n.paths = []string{label}
		add(c.mkStep(s, b, journal.OpRm, []string{label}))
	case "user":
		n.user = label
		list := c.optional(s, b, nil, "uid", "uid")
		list = c.optional(s, b, list, "home", "home")
		list = c.optional(s, b, list, "shell", "shell")
		list = c.optionalBool(s, b, list, "system", "system")
		if v, present := c.value(s, b, "gid", tNumberName); present {
			if _, err := strconv.ParseUint(v.Str, 10, 32); err == nil {
				list = append(list, attr{key: "gid", value: v.Str, from: "gid"})
			} else {
				n.groups = append(n.groups, v.Str)
				n.gidName = v.Str
			}
		}
		if groups, present := c.strings(s, b, "groups"); present && len(groups) > 0 {
			list = append(list, attr{key: "groups", value: strings.Join(groups, ","), from: "groups"})
			n.groups = append(n.groups, groups...)
		}
		add(c.mkStep(s, b, journal.OpUseradd, []string{label}, list...))
	case "group":
		n.group = label
		list := c.optional(s, b, nil, "gid", "gid")
		list = c.optionalBool(s, b, list, "system", "system")
		add(c.mkStep(s, b, journal.OpGroupadd, []string{label}, list...))
	case "package":
		n.pkg = label
		add(c.mkStep(s, b, journal.OpAptInstall, []string{label}, c.optional(s, b, nil, "version", "version")...))
	case "service":
		unitName := serviceUnit(label)
		n.units = []string{unitName}
		pkg, present, _ := c.str(s, b, "package")
		if !present {
			pkg = label
		}
		n.pkgs = []string{pkg}
		n.pkgExplicit = present
		if c.boolean(s, b, "enabled", true) {
			add(c.mkStep(s, b, journal.OpSystemdEnable, []string{unitName}))
		}
		running := c.boolean(s, b, "running", true)
		if running {
			add(c.mkStep(s, b, journal.OpSystemdStart, []string{unitName}))
		}
		if files, present := c.strings(s, b, "restart_on"); present && len(files) > 0 {
			if !running {
				// A restart starts the unit: it would undo running = false.
				c.errs = append(c.errs, s.errorf(b.attrs["restart_on"].Pos, "%s: restart_on restarts a running service; it cannot go with running = false", describe(b, s)))
				break
			}
			n.restart = &restartNeed{unit: unitName, files: files, pos: b.attrs["restart_on"].Value.Pos}
		}
	case "kube":
		if p, ok := c.repoDir(s, b, label); ok {
			st, ok := c.mkStep(s, b, journal.OpKubectlApply, []string{p}, c.optionalBool(s, b, []attr{{key: "sha256", value: zeroHash, from: ""}}, "kustomize", "kustomize")...)
			n.fills = append(n.fills, fill{step: 0, path: p, dir: true, pos: b.item.Labels[0].Pos, noun: "directory"})
			add(st, ok)
		}
	case "playbook":
		if p, ok := c.repoFile(s, b, "playbook", label, b.item.Labels[0].Pos); ok {
			st, ok := c.mkStep(s, b, journal.OpPlaybook, []string{p}, attr{key: "sha256", value: zeroHash})
			n.fills = append(n.fills, fill{step: 0, path: p, pos: b.item.Labels[0].Pos, noun: "playbook"})
			c.want(p)
			add(st, ok)
		}
	case "exec":
		command, _, ok := c.str(s, b, "command")
		if !ok {
			break
		}
		list := c.optional(s, b, nil, "undo", "undo")
		list = c.optional(s, b, list, "creates", "creates")
		list = c.optional(s, b, list, "timeout", "timeout")
		add(c.mkStep(s, b, journal.OpExec, []string{command}, list...))
	case "check":
		add(c.check(s, b))
	}
	if len(c.errs) > errs {
		return
	}
	n.steps = steps
	c.addNode(u, s, b, n)
}

// addNode records a finished node in its unit and the compile.
func (c *compiler) addNode(u *unit, s *scope, b *block, n *node) {
	if first := u.addrs[n.addr]; first != nil {
		c.errs = append(c.errs, s.errorf(b.item.Pos, "%s is declared twice (first at %s)", n.what(), posString(first.pos)))
		return
	}
	u.addrs[n.addr] = n
	if after, present := c.strings(s, b, "after"); present {
		for _, a := range after {
			n.after = append(n.after, afterRef{addr: a, unit: u, scope: s, pos: b.attrs["after"].Value.Pos})
		}
	}
	for i := range n.steps {
		c.journalBytes += stepSize(&n.steps[i])
	}
	if c.journalBytes > MaxJournalSize {
		c.halted = true
		c.errs = append(c.errs, s.errorf(b.item.Pos, "%s: the journal passes the %s it may hold here: the compile stops", n.what(), sizeText(MaxJournalSize)))
		return
	}
	n.idx = len(c.nodes)
	c.nodes = append(c.nodes, n)
	u.nodes = append(u.nodes, n)
}

// stepSize is about what a step takes in the journal: its words and the
// spaces between them.
func stepSize(st *journal.Step) int64 {
	n := len(st.Op)
	for _, a := range st.Args {
		n += 1 + len(a)
	}
	for _, a := range st.Attrs {
		n += 2 + len(a.Key) + len(a.Value)
	}
	return int64(n)
}

// zeroHash stands in for a sha256 that is filled in once the file is hashed.
var zeroHash = strings.Repeat("0", 64)

// unitSuffixes are the systemd unit types a service label may name.
var unitSuffixes = []string{".service", ".socket", ".timer", ".target", ".mount", ".path", ".slice", ".swap", ".automount"}

func serviceUnit(name string) string {
	for _, suf := range unitSuffixes {
		if strings.HasSuffix(name, suf) {
			return name
		}
	}
	return name + ".service"
}

// content returns a file or unit block's COPY source and sha256: a
// repository path (hashed later: fillPath is set), or "-" with content the
// compiler writes to the blob directory.
func (c *compiler) content(s *scope, b *block, label string) (src, sum, fillPath string) {
	var given []string
	for _, k := range []string{"source", "content", "template"} {
		if b.attrs[k] != nil {
			given = append(given, k)
		}
	}
	if len(given) != 1 {
		if len(given) == 0 {
			c.errs = append(c.errs, s.errorf(b.item.Pos, "%s: give one of source, content or template", describe(b, s)))
		} else {
			c.errs = append(c.errs, s.errorf(b.attrs[given[1]].Pos, "%s: give only one of source, content or template, not %s", describe(b, s), strings.Join(given, " and ")))
		}
		return "", "", ""
	}
	var data []byte
	switch given[0] {
	case "source":
		name, _, ok := c.str(s, b, "source")
		if !ok {
			return "", "", ""
		}
		p, ok := c.repoFile(s, b, "source file", name, b.attrs["source"].Value.Pos)
		if !ok {
			return "", "", ""
		}
		return p, zeroHash, p
	case "content":
		text, _, ok := c.str(s, b, "content")
		if !ok {
			return "", "", ""
		}
		data = []byte(text)
	case "template":
		var ok bool
		if data, ok = c.render(s, b); !ok {
			return "", "", ""
		}
	}
	h := sha256.Sum256(data)
	sum = hex.EncodeToString(h[:])
	if err := c.putBlob(sum, data); err != nil {
		c.errs = append(c.errs, s.errorf(b.item.Pos, "%s: %v", describe(b, s), err))
	}
	return "-", sum, ""
}

// repoFile resolves a repository file named in a block and checks that it
// is a regular file.
func (c *compiler) repoFile(s *scope, b *block, noun, name string, pos lexer.Position) (string, bool) {
	p, err := c.repoPath(s.file, name)
	if err != nil {
		c.errs = append(c.errs, s.errorf(pos, "%s: %v", describe(b, s), err))
		return "", false
	}
	if noun != "template" {
		// A source or playbook is hashed anyway, and the hash reports a
		// missing file at this same place (hashAll): a stat of its own for
		// each of thousands of sources cost more than the hashing.
		return p, true
	}
	if t, ok := c.templates[p]; ok && t.err == nil {
		return p, true // a template read and parsed for an earlier block
	}
	info, err := fs.Stat(c.fsys, p)
	switch {
	case err != nil && !missing(err):
		c.errs = append(c.errs, s.errorf(pos, "%s: %s: %v", describe(b, s), p, unwrapPath(err)))
		return "", false
	case err != nil:
		c.errs = append(c.errs, s.errorf(pos, "%s: missing %s %s", describe(b, s), noun, p))
		return "", false
	case !info.Mode().IsRegular():
		c.errs = append(c.errs, s.errorf(pos, "%s: %s is not a regular file", describe(b, s), p))
		return "", false
	}
	return p, true
}

// repoDir resolves a repository directory named by a block's label.
func (c *compiler) repoDir(s *scope, b *block, name string) (string, bool) {
	pos := b.item.Labels[0].Pos
	p, err := c.repoPath(s.file, name)
	if err != nil {
		c.errs = append(c.errs, s.errorf(pos, "%s: %v", describe(b, s), err))
		return "", false
	}
	info, err := fs.Stat(c.fsys, p)
	if err != nil && (errors.Is(err, treefs.ErrLinkEscapes) || errors.Is(err, treefs.ErrLinkLoop)) {
		c.errs = append(c.errs, s.errorf(pos, "%s: %s: %v", describe(b, s), p, unwrapPath(err)))
		return "", false
	}
	if err != nil || !info.IsDir() {
		c.errs = append(c.errs, s.errorf(pos, "%s: %s is not a directory of the configuration", describe(b, s), p))
		return "", false
	}
	return p, true
}

// checkKinds maps a check block's attributes to CHECK kinds.
var checkKinds = []struct{ attr, kind string }{
	{"command", "command"}, {"file", "file"}, {"http", "http"}, {"tcp", "tcp"}, {"unit_active", "unit-active"},
}

func (c *compiler) check(s *scope, b *block) (journal.Step, bool) {
	var kind, from string
	for _, k := range checkKinds {
		if b.attrs[k.attr] == nil {
			continue
		}
		if kind != "" {
			c.errs = append(c.errs, s.errorf(b.attrs[k.attr].Pos, "%s: give only one of command, file, http, tcp or unit_active", describe(b, s)))
			return journal.Step{}, false
		}
		kind, from = k.kind, k.attr
	}
	if kind == "" {
		c.errs = append(c.errs, s.errorf(b.item.Pos, "%s: give one of command, file, http, tcp or unit_active", describe(b, s)))
		return journal.Step{}, false
	}
	target, _, ok := c.str(s, b, from)
	if !ok {
		return journal.Step{}, false
	}
	list := c.optional(s, b, nil, "timeout", "timeout")
	list = c.optional(s, b, list, "interval", "interval")
	st, ok := c.mkStep(s, b, journal.OpCheck, []string{kind, target}, list...)
	if ok {
		if err := journal.CheckTarget(kind, target); err != nil {
			c.errs = append(c.errs, s.errorf(b.attrs[from].Value.Pos, "%s: %s: %v", describe(b, s), from, err))
			return st, false
		}
	}
	return st, ok
}

// reloadHash is the on= of a unit's SYSTEMD-RELOAD: the unit file's path and
// content hash, so that a changed, added, removed or renamed unit file
// reloads systemd.
func reloadHash(path, sum string) string {
	h := sha256.Sum256([]byte(path + "\x00" + sum))
	return hex.EncodeToString(h[:])
}
