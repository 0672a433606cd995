package compiler

import (
	"fmt"
	"sort"
	"strings"

	"github.com/cairn-cm/cairn/compiler/syntax"
)

// attrType is what an attribute's value must be.
type attrType uint8

const (
	tString attrType = iota
	tBool
	tNumber     // a whole number, or a string of digits
	tStrings    // a list of strings
	tObject     // an object
	tAny        // any value (module inputs, variable defaults)
	tNumberName // a number, or a name (a user's gid)
)

// String says what the type wants, as messages do.
func (t attrType) String() string {
	return [...]string{"a string", "a boolean", "a number", "a list of strings", "an object", "a value", "a number or a name"}[t]
}

// attrSpec is one attribute a block takes.
type attrSpec struct {
	name     string
	typ      attrType
	required bool
}

// blockSpec is one block type of the language: its labels, its attributes,
// and the blocks it may hold.
type blockSpec struct {
	typ    string
	labels []string // what each label is, for messages
	attrs  []attrSpec
	// inputs: any further attribute is accepted (a module's inputs).
	inputs bool
	// children are the block types it may hold.
	children []string
	// resource: it manages an object and takes when and after.
	resource bool
	// nested: it may only stand inside another block.
	nested bool
}

var common = []attrSpec{{name: "when", typ: tBool}, {name: "after", typ: tStrings}}

var fileBody = []attrSpec{
	{name: "source", typ: tString}, {name: "content", typ: tString}, {name: "template", typ: tString},
	{name: "vars", typ: tObject},
}

var ownership = []attrSpec{{name: "mode", typ: tString}, {name: "owner", typ: tString}, {name: "group", typ: tString}}

// blockSpecs is the table of block types, sorted by type.
var blockSpecs = []*blockSpec{
	{typ: "absent", labels: []string{"path"}, resource: true},
	{typ: "check", labels: []string{"name"}, resource: true, attrs: []attrSpec{
		{name: "http", typ: tString}, {name: "tcp", typ: tString}, {name: "command", typ: tString},
		{name: "unit_active", typ: tString}, {name: "file", typ: tString},
		{name: "timeout", typ: tString}, {name: "interval", typ: tString},
	}},
	{typ: "dir", labels: []string{"path"}, resource: true, attrs: ownership},
	{typ: "exec", labels: []string{"name"}, resource: true, attrs: []attrSpec{
		{name: "command", typ: tString, required: true}, {name: "undo", typ: tString}, {name: "creates", typ: tString},
		{name: "timeout", typ: tString},
	}},
	{typ: "file", labels: []string{"path"}, resource: true, attrs: append(append([]attrSpec{}, fileBody...), ownership...)},
	{typ: "group", labels: []string{"name"}, resource: true, attrs: []attrSpec{
		{name: "gid", typ: tNumber}, {name: "system", typ: tBool},
	}},
	{typ: "hosts", children: []string{"host-group"}},
	{typ: "include", labels: []string{"pattern"}, attrs: []attrSpec{{name: "when", typ: tBool}}},
	{typ: "kube", labels: []string{"directory"}, resource: true, attrs: []attrSpec{{name: "kustomize", typ: tBool}}},
	{typ: "module", labels: []string{"name"}, inputs: true, attrs: []attrSpec{
		{name: "source", typ: tString, required: true}, {name: "when", typ: tBool}, {name: "after", typ: tStrings},
	}},
	{typ: "package", labels: []string{"name"}, resource: true, attrs: []attrSpec{{name: "version", typ: tString}}},
	{typ: "playbook", labels: []string{"path"}, resource: true},
	{typ: "plugin", labels: []string{"name"}, resource: true, attrs: []attrSpec{
		{name: "command", typ: tString, required: true}, {name: "args", typ: tStrings}, {name: "env", typ: tObject},
	}},
	{typ: "service", labels: []string{"name"}, resource: true, attrs: []attrSpec{
		{name: "enabled", typ: tBool}, {name: "running", typ: tBool}, {name: "restart_on", typ: tStrings},
		{name: "package", typ: tString},
	}},
	{typ: "symlink", labels: []string{"path"}, resource: true, attrs: []attrSpec{{name: "target", typ: tString, required: true}}},
	{typ: "unit", labels: []string{"name"}, resource: true, attrs: append(append([]attrSpec{}, fileBody...),
		attrSpec{name: "enabled", typ: tBool}, attrSpec{name: "running", typ: tBool})},
	{typ: "user", labels: []string{"name"}, resource: true, attrs: []attrSpec{
		{name: "uid", typ: tNumber}, {name: "gid", typ: tNumberName}, {name: "home", typ: tString},
		{name: "shell", typ: tString}, {name: "groups", typ: tStrings}, {name: "system", typ: tBool},
	}},
	{typ: "variable", labels: []string{"name"}, attrs: []attrSpec{
		{name: "default", typ: tAny}, {name: "description", typ: tString},
	}},
}

// hostGroupSpec is a group block inside hosts: a host group, not a Unix one.
var hostGroupSpec = &blockSpec{typ: "group", labels: []string{"name"}, nested: true, attrs: []attrSpec{
	{name: "match", typ: tStrings, required: true}, {name: "branch", typ: tString}, {name: "vars", typ: tObject},
}}

func init() {
	for _, b := range blockSpecs {
		if b.resource {
			b.attrs = append(b.attrs, common...)
		}
	}
}

func lookupSpec(typ string) *blockSpec {
	i := sort.Search(len(blockSpecs), func(i int) bool { return blockSpecs[i].typ >= typ })
	if i < len(blockSpecs) && blockSpecs[i].typ == typ {
		return blockSpecs[i]
	}
	return nil
}

func (b *blockSpec) attr(name string) *attrSpec {
	for i := range b.attrs {
		if b.attrs[i].name == name {
			return &b.attrs[i]
		}
	}
	return nil
}

func (b *blockSpec) attrNames() []string {
	out := make([]string, len(b.attrs))
	for i, a := range b.attrs {
		out[i] = a.name
	}
	return out
}

// block is a block checked against its spec: its attributes by name, its
// labels' literal text where they have no interpolation.
type block struct {
	item  *syntax.Item
	file  *syntax.File
	spec  *blockSpec
	attrs map[string]*syntax.Item
	// inputs are a module's further attributes, in source order.
	inputs   []*syntax.Item
	children []*block
	// label is the block's first label once evaluated, for messages.
	label string
}

// checkBlock checks an item of a file's top level (or of a hosts block)
// against the table: a known type, its labels, known attributes given
// once, required attributes present, allowed nested blocks. It collects
// every finding, and returns nil for a block that cannot be compiled: an
// unknown type, the wrong labels, a required attribute missing.
func checkBlock(f *syntax.File, it *syntax.Item, spec *blockSpec, errs *syntax.ErrorList) *block {
	if spec == nil {
		if !it.IsBlock() {
			*errs = append(*errs, errorAt(f, it.Pos, "attribute %q outside a block: attributes belong inside a block", it.Name))
			return nil
		}
		spec = lookupSpec(it.Name)
		if spec == nil {
			names := make([]string, len(blockSpecs))
			for i, s := range blockSpecs {
				names[i] = s.typ
			}
			*errs = append(*errs, errorAt(f, it.Pos, "unknown block type %q%s", it.Name, didYouMean(it.Name, names)))
			return nil
		}
	}
	b := &block{item: it, file: f, spec: spec, attrs: map[string]*syntax.Item{}}
	if len(it.Labels) != len(spec.labels) {
		*errs = append(*errs, errorAt(f, it.Pos, "%s block takes %s, got %d label(s)", spec.typ, labelsWant(spec), len(it.Labels)))
		return nil
	}
	for _, child := range it.Body {
		if child.IsBlock() {
			if len(spec.children) == 0 {
				*errs = append(*errs, errorAt(f, child.Pos, "%s block cannot hold a %s block", spec.typ, child.Name))
				continue
			}
			if child.Name != "group" {
				*errs = append(*errs, errorAt(f, child.Pos, "%s block holds only group blocks, not %s%s", spec.typ, child.Name, didYouMean(child.Name, []string{"group"})))
				continue
			}
			if cb := checkBlock(f, child, hostGroupSpec, errs); cb != nil {
				b.children = append(b.children, cb)
			}
			continue
		}
		if prev, dup := b.attrs[child.Name]; dup {
			*errs = append(*errs, errorAt(f, child.Pos, "attribute %q is given twice (first at %d:%d)", child.Name, prev.Pos.Line, prev.Pos.Column))
			continue
		}
		if spec.attr(child.Name) == nil {
			if spec.inputs {
				b.inputs = append(b.inputs, child)
				b.attrs[child.Name] = child
				continue
			}
			*errs = append(*errs, errorAt(f, child.Pos, "unknown attribute %q in %s block%s", child.Name, spec.typ, didYouMean(child.Name, spec.attrNames())))
			continue
		}
		b.attrs[child.Name] = child
	}
	complete := true
	for _, a := range spec.attrs {
		if a.required && b.attrs[a.name] == nil {
			*errs = append(*errs, errorAt(f, it.Pos, "%s block: attribute %q is required", spec.typ, a.name))
			complete = false
		}
	}
	if !complete {
		return nil // compiling it would only report the missing attribute again
	}
	return b
}

func labelsWant(spec *blockSpec) string {
	switch len(spec.labels) {
	case 0:
		return "no label"
	case 1:
		return "one label (its " + spec.labels[0] + ")"
	}
	return fmt.Sprintf("%d labels (%s)", len(spec.labels), strings.Join(spec.labels, ", "))
}
