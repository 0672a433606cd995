package compiler

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"text/template"
	"text/template/parse"
	"unsafe"
)

// Templates run under the limits of limits.go. text/template has no limits
// of its own, so the compiler keeps them from outside:
//
//   - output goes through a writer that refuses to grow past MaxTextSize
//     and charges every byte to the evaluation budget (MaxEvalWork);
//   - every function a template can call that could build or compare much
//     (cairn's join, lower, upper and indent, and Go's print, printf,
//     println, html, js, urlquery, eq, ne, lt, le, gt and ge) is cairn's,
//     and works out the size of its result before it builds it;
//   - each parsed template is instrumented: a step is counted at the start
//     of every range iteration and of every template call, and at every
//     function call (MaxTemplateSteps), and template calls nest at most
//     MaxTemplateDepth deep. The counters are functions named after
//     keywords (range, template, end), which no template can call itself.
//
// The remaining builtins (and, or, not, len, index, slice, call) take time
// in proportion to their arguments' count, never to their size.

// render renders a block's template with the facts, the unit's variables
// and the block's own vars. A missing key is an error, never "<no value>".
func (c *compiler) render(s *scope, b *block) ([]byte, bool) {
	name, _, ok := c.str(s, b, "template")
	if !ok {
		return nil, false
	}
	pos := b.attrs["template"].Value.Pos
	p, ok := c.repoFile(s, b, "template", name, pos)
	if !ok {
		return nil, false
	}
	t, err := c.template(p)
	if err != nil {
		c.errs = append(c.errs, s.errorf(pos, "%s: %v", describe(b, s), err))
		return nil, false
	}
	data := map[string]any{"fact": c.goMap(s.facts), "var": c.goMap(s.vars), "vars": map[string]any{}}
	if v, present := c.value(s, b, "vars", tObject); present {
		data["vars"] = c.goValue(v)
	}
	if c.work > MaxEvalWork {
		c.fail(s.spend(pos, 0))
		return nil, false
	}
	c.tdepth = 0
	out := &templateOutput{c: c}
	if err := t.Execute(out, data); err != nil {
		var le *limitError
		if errors.As(err, &le) && le.spent {
			return nil, false // the evaluation budget's error is on the list
		}
		c.errs = append(c.errs, s.errorf(pos, "%s: %v", describe(b, s), err))
		return nil, false
	}
	return out.buf.Bytes(), true
}

// templateOutput is where a template renders: at most MaxTextSize bytes,
// each charged to the evaluation budget.
type templateOutput struct {
	c   *compiler
	buf bytes.Buffer
}

func (w *templateOutput) Write(p []byte) (int, error) {
	if w.buf.Len()+len(p) > MaxTextSize {
		return 0, &limitError{msg: fmt.Sprintf("the template renders more than the %s a file may hold", sizeText(MaxTextSize))}
	}
	if err := w.c.charge(len(p)); err != nil {
		return 0, err
	}
	return w.buf.Write(p)
}

// step counts one step of the templates (MaxTemplateSteps).
func (c *compiler) step() error {
	if c.tsteps++; c.tsteps > MaxTemplateSteps {
		return &limitError{msg: fmt.Sprintf("templates take more than %d steps (range iterations, template and function calls) in one compile", MaxTemplateSteps)}
	}
	return nil
}

// template returns the parsed template at repository path p, parsed once
// per compile however many blocks render it.
func (c *compiler) template(p string) (*template.Template, error) {
	if t, ok := c.templates[p]; ok {
		return t.t, t.err
	}
	var t *template.Template
	text, err := c.readInput(p)
	if err == nil {
		// text/template parses nested actions recursively, without a
		// bound: a million nested {{if}} overflow the stack, which no
		// recover catches.
		if line, deep := templateNesting(string(text)); deep {
			err = fmt.Errorf("%s:%d: actions nest more than %d deep", p, line, MaxTemplateNesting)
		}
	}
	if err == nil {
		t, err = template.New(p).Funcs(c.templateFuncs()).Option("missingkey=error").Parse(string(text))
	}
	if err == nil {
		for _, x := range t.Templates() {
			if x.Tree != nil {
				instrument(x.Tree)
			}
		}
	}
	if c.templates == nil {
		c.templates = map[string]parsedTemplate{}
	}
	c.templates[p] = parsedTemplate{t, err}
	return t, err
}

// parsedTemplate is a template parsed once, or why it could not be.
type parsedTemplate struct {
	t   *template.Template
	err error
}

// templateNesting reports whether the actions of a template nest more than
// MaxTemplateNesting deep, and the line where they first do: {{if}},
// {{range}}, {{with}}, {{block}} and {{define}} open a level each, and so
// does every {{else if}} and {{else with}} (text/template nests them in
// the else branch, and one {{end}} closes them all). It reads the actions
// as text/template's lexer does, quoted strings and comments passed over,
// but only as far as it needs: a template it misreads is one text/template
// refuses.
func templateNesting(text string) (line int, deep bool) {
	var frames []int // the levels each open action's {{end}} closes
	depth := 0
	for i := 0; ; {
		j := strings.Index(text[i:], "{{")
		if j < 0 {
			return 0, false
		}
		start := i + j
		i = start + 2
		if strings.HasPrefix(text[i:], "- ") || strings.HasPrefix(text[i:], "-\t") || strings.HasPrefix(text[i:], "-\n") || strings.HasPrefix(text[i:], "-\r") {
			i += 2
		}
		for i < len(text) && strings.IndexByte(" \t\r\n", text[i]) >= 0 {
			i++
		}
		if strings.HasPrefix(text[i:], "/*") {
			k := strings.Index(text[i:], "*/")
			if k < 0 {
				return 0, false
			}
			i += k + 2
			continue
		}
		// The action's first two words; the rest is read to its }}.
		var words []string
		for i < len(text) && !strings.HasPrefix(text[i:], "}}") {
			switch ch := text[i]; {
			case ch == '"' || ch == '\'' || ch == '`':
				k := i + 1
				for k < len(text) && text[k] != ch {
					if text[k] == '\\' && ch != '`' {
						k++
					}
					k++
				}
				i = min(k+1, len(text)) // an unterminated string ends the text
				if len(words) < 2 {
					words = append(words, "")
				}
			case ch == '_' || ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z':
				k := i
				for k < len(text) && (text[k] == '_' || text[k] >= 'a' && text[k] <= 'z' || text[k] >= 'A' && text[k] <= 'Z' || text[k] >= '0' && text[k] <= '9') {
					k++
				}
				if len(words) < 2 {
					words = append(words, text[i:k])
				}
				i = k
			case ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n':
				i++
			default:
				if len(words) < 2 {
					words = append(words, "")
				}
				i++
			}
		}
		if len(words) == 0 {
			continue
		}
		switch words[0] {
		case "if", "range", "with", "block", "define":
			frames = append(frames, 1)
			depth++
		case "else":
			if len(words) > 1 && (words[1] == "if" || words[1] == "with") && len(frames) > 0 {
				frames[len(frames)-1]++
				depth++
			}
		case "end":
			if n := len(frames); n > 0 {
				depth -= frames[n-1]
				frames = frames[:n-1]
			}
		}
		if depth > MaxTemplateNesting {
			return 1 + strings.Count(text[:start], "\n"), true
		}
	}
}

// instrument makes a parsed template count its steps: a call of range at
// the start of every range body, and of template and end around the
// template's own body (see templateFuncs).
func instrument(t *parse.Tree) {
	var walk func(l *parse.ListNode)
	walk = func(l *parse.ListNode) {
		if l == nil {
			return
		}
		for _, n := range l.Nodes {
			var br *parse.BranchNode
			switch n := n.(type) {
			case *parse.RangeNode:
				br = &n.BranchNode
				if br.List == nil {
					br.List = &parse.ListNode{NodeType: parse.NodeList, Pos: n.Pos}
				}
				br.List.Nodes = append([]parse.Node{callNode(t, n.Pos, "range")}, br.List.Nodes...)
			case *parse.IfNode:
				br = &n.BranchNode
			case *parse.WithNode:
				br = &n.BranchNode
			default:
				continue
			}
			walk(br.List)
			walk(br.ElseList)
		}
	}
	walk(t.Root)
	root := t.Root
	if root == nil {
		root = &parse.ListNode{NodeType: parse.NodeList}
		t.Root = root
	}
	root.Nodes = append(append([]parse.Node{callNode(t, root.Pos, "template")}, root.Nodes...), callNode(t, root.Pos, "end"))
}

// callNode is {{NAME}}, a call of a function without arguments that prints
// nothing, at pos of t (where an error it returns is reported).
func callNode(t *parse.Tree, pos parse.Pos, name string) *parse.ActionNode {
	id := parse.NewIdentifier(name).SetTree(t).SetPos(pos)
	cmd := &parse.CommandNode{NodeType: parse.NodeCommand, Pos: pos, Args: []parse.Node{id}}
	pipe := &parse.PipeNode{NodeType: parse.NodePipe, Pos: pos, Cmds: []*parse.CommandNode{cmd}}
	return &parse.ActionNode{NodeType: parse.NodeAction, Pos: pos, Pipe: pipe}
}

// templateFuncs are the functions of the compile's templates: cairn's own
// (join, lower, upper, indent), Go's builtins that could build or compare
// much, replaced by bounded ones, and the counters instrument calls.
func (c *compiler) templateFuncs() template.FuncMap {
	// built charges a result of n bytes, refused past MaxTextSize before
	// it is built.
	built := func(n int) error {
		if n > MaxTextSize || n < 0 {
			return &limitError{msg: fmt.Sprintf("the result would pass the %s a string may hold", sizeText(MaxTextSize))}
		}
		return c.charge(n)
	}
	// sized charges the size of a printed list of arguments, each printed
	// at most grow times as long as it is (escaping).
	sized := func(grow int, args []any) error {
		if err := c.step(); err != nil {
			return err
		}
		n, err := c.printedSize(args)
		if err != nil {
			return err
		}
		return built(grow * n)
	}
	return template.FuncMap{
		"join": func(sep string, items []any) (string, error) {
			if err := c.step(); err != nil {
				return "", err
			}
			parts := make([]string, len(items))
			n := len(sep) * max(len(items)-1, 0)
			for i, it := range items {
				if err := c.charge(elemWeight); err != nil {
					return "", err
				}
				k, err := c.printedSize([]any{it})
				if err != nil {
					return "", err
				}
				if n += k; n > MaxTextSize {
					break
				}
				parts[i] = fmt.Sprint(it)
			}
			if err := built(n); err != nil {
				return "", err
			}
			return strings.Join(parts, sep), nil
		},
		"lower": func(s string) (string, error) {
			if err := c.step(); err != nil {
				return "", err
			}
			if err := built(len(s)); err != nil {
				return "", err
			}
			return strings.ToLower(s), nil
		},
		"upper": func(s string) (string, error) {
			if err := c.step(); err != nil {
				return "", err
			}
			if err := built(len(s)); err != nil {
				return "", err
			}
			return strings.ToUpper(s), nil
		},
		"indent": func(n int, s string) (string, error) {
			if err := c.step(); err != nil {
				return "", err
			}
			if n < 0 {
				return "", fmt.Errorf("indent %d: the count cannot be negative", n)
			}
			lines := strings.SplitAfter(s, "\n")
			padded := 0
			for _, l := range lines {
				if l != "" && l != "\n" {
					padded++
				}
			}
			if padded > 0 && n > (MaxTextSize-len(s))/padded {
				return "", &limitError{msg: fmt.Sprintf("indent %d: the result would pass the %s a string may hold", n, sizeText(MaxTextSize))}
			}
			if err := built(len(s) + n*padded); err != nil {
				return "", err
			}
			pad := strings.Repeat(" ", n)
			for i, l := range lines {
				if l != "" && l != "\n" {
					lines[i] = pad + l
				}
			}
			return strings.Join(lines, ""), nil
		},
		"print": func(args ...any) (string, error) {
			if err := sized(1, args); err != nil {
				return "", err
			}
			return fmt.Sprint(args...), nil
		},
		"println": func(args ...any) (string, error) {
			if err := sized(1, append(args, "\n")); err != nil {
				return "", err
			}
			return fmt.Sprintln(args...), nil
		},
		"printf": func(format string, args ...any) (string, error) {
			if err := c.step(); err != nil {
				return "", err
			}
			n, err := c.printedSize(args)
			if err != nil {
				return "", err
			}
			// Escaping verbs (%q, %x, %U) print a byte at most 10 times;
			// a width or precision pads each verb up to fmt's own bound.
			if err := built(len(format) + 10*n + formatPadding(format)); err != nil {
				return "", err
			}
			return fmt.Sprintf(format, args...), nil
		},
		"html": func(args ...any) (string, error) {
			if err := sized(6, args); err != nil {
				return "", err
			}
			return template.HTMLEscaper(args...), nil
		},
		"js": func(args ...any) (string, error) {
			if err := sized(6, args); err != nil {
				return "", err
			}
			return template.JSEscaper(args...), nil
		},
		"urlquery": func(args ...any) (string, error) {
			if err := sized(3, args); err != nil {
				return "", err
			}
			return template.URLQueryEscaper(args...), nil
		},
		"eq": func(a reflect.Value, bs ...reflect.Value) (bool, error) {
			if err := c.compareCost(a, bs...); err != nil {
				return false, err
			}
			return eq(a, bs...)
		},
		"ne": func(a, b reflect.Value) (bool, error) {
			if err := c.compareCost(a, b); err != nil {
				return false, err
			}
			equal, err := eq(a, b)
			return !equal, err
		},
		"lt": func(a, b reflect.Value) (bool, error) {
			if err := c.compareCost(a, b); err != nil {
				return false, err
			}
			return lt(a, b)
		},
		"le": func(a, b reflect.Value) (bool, error) {
			if err := c.compareCost(a, b); err != nil {
				return false, err
			}
			return le(a, b)
		},
		"gt": func(a, b reflect.Value) (bool, error) {
			if err := c.compareCost(a, b); err != nil {
				return false, err
			}
			less, err := le(a, b)
			return !less && err == nil, err
		},
		"ge": func(a, b reflect.Value) (bool, error) {
			if err := c.compareCost(a, b); err != nil {
				return false, err
			}
			less, err := lt(a, b)
			return !less && err == nil, err
		},
		// The counters of instrument.
		"range": func() (string, error) { return "", c.step() },
		"template": func() (string, error) {
			if c.tdepth++; c.tdepth > MaxTemplateDepth {
				return "", &limitError{msg: fmt.Sprintf("template calls nest more than %d deep", MaxTemplateDepth)}
			}
			return "", c.step()
		},
		"end": func() (string, error) {
			c.tdepth--
			return "", nil
		},
	}
}

// printedSize is about how many bytes fmt prints args in with %v: the
// bytes of their strings and 32 for every other value, lists and maps
// walked through. The walk stops past MaxTextSize; it charges the values
// it visits.
func (c *compiler) printedSize(args []any) (int, error) {
	n, visited := 0, 0
	var walk func(x any)
	walk = func(x any) {
		if n > MaxTextSize {
			return
		}
		visited++
		switch x := x.(type) {
		case string:
			n += len(x)
		case []any:
			n += 2
			for _, y := range x {
				walk(y)
			}
		case map[string]any:
			n += 5
			for k, y := range x {
				n += len(k) + 2
				walk(y)
			}
		default:
			n += 32
		}
	}
	for _, a := range args {
		walk(a)
	}
	if err := c.charge(elemWeight * visited); err != nil {
		return 0, err
	}
	if n > MaxTextSize {
		return n, &limitError{msg: fmt.Sprintf("the result would pass the %s a string may hold", sizeText(MaxTextSize))}
	}
	return n, nil
}

// formatPadding bounds the padding a printf format adds: for each verb,
// its largest width or precision (fmt refuses those over 1e6; a * takes
// one from the arguments, so counts 1e6).
func formatPadding(format string) int {
	const fmtMax = 1e6
	pad := 0
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			continue
		}
		largest := 0
		for i++; i < len(format); i++ {
			ch := format[i]
			if ch == '*' {
				largest = fmtMax
				continue
			}
			if ch >= '0' && ch <= '9' {
				v := 0
				for ; i < len(format) && format[i] >= '0' && format[i] <= '9'; i++ {
					if v < fmtMax {
						v = v*10 + int(format[i]-'0')
					}
				}
				i--
				largest = max(largest, min(v, fmtMax))
				continue
			}
			if strings.IndexByte("+-# .[]", ch) < 0 {
				break // the verb
			}
		}
		pad += largest
	}
	return pad
}

// compareCost counts a comparison as a step and charges the bytes of the
// strings it compares.
func (c *compiler) compareCost(a reflect.Value, bs ...reflect.Value) error {
	if err := c.step(); err != nil {
		return err
	}
	n := 1
	for _, v := range append([]reflect.Value{a}, bs...) {
		if v = indirectInterface(v); v.Kind() == reflect.String {
			n += v.Len()
		}
	}
	return c.charge(n)
}

// goMap returns a map of values as template data, converted once per
// compile (the facts, a unit's variables).
func (c *compiler) goMap(m map[string]Value) map[string]any {
	key := reflect.ValueOf(m).UnsafePointer()
	if e, ok := c.goMaps[key]; ok {
		return e.out
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = c.goValue(v)
	}
	if c.goMaps == nil {
		c.goMaps = map[unsafe.Pointer]goMapEntry{}
	}
	c.goMaps[key] = goMapEntry{m, out}
	return out
}

// goValue returns a value as template data (Value.GoValue). A list or
// object is converted once per compile, however many lists hold it, and
// its elements are charged to the evaluation budget once.
func (c *compiler) goValue(v Value) any {
	var key goKey
	switch {
	case v.Kind == KindList && len(v.List) > 0:
		key = goKey{unsafe.Pointer(unsafe.SliceData(v.List)), len(v.List)}
	case v.Kind == KindObject && len(v.Fields) > 0:
		key = goKey{reflect.ValueOf(v.Fields).UnsafePointer(), -1}
	case v.Kind == KindList:
		return []any{}
	case v.Kind == KindObject:
		return map[string]any{}
	default:
		return v.GoValue()
	}
	if e, ok := c.goValues[key]; ok {
		return e.out
	}
	c.work += int64(elemWeight * (len(v.List) + len(v.Keys)))
	var out any
	if v.Kind == KindList {
		l := make([]any, len(v.List))
		for i, x := range v.List {
			l[i] = c.goValue(x)
		}
		out = l
	} else {
		m := make(map[string]any, len(v.Keys))
		for _, k := range v.Keys {
			m[k] = c.goValue(v.Fields[k])
		}
		out = m
	}
	if c.goValues == nil {
		c.goValues = map[goKey]goValueEntry{}
	}
	c.goValues[key] = goValueEntry{v, out}
	return out
}

// goKey names a list (its elements' array and length) or an object (its
// map) that goValue converted.
type goKey struct {
	p unsafe.Pointer
	n int
}

// goMapEntry and goValueEntry keep what they converted alive, so that no
// other map or list takes its address while the compile runs.
type goMapEntry struct {
	in  map[string]Value
	out map[string]any
}

type goValueEntry struct {
	in  Value
	out any
}

// The comparison functions below are text/template's own (Go's
// text/template/funcs.go, BSD licence), which cairn's replace to count
// their cost.

var (
	errBadComparisonType = errors.New("invalid type for comparison")
	errNoComparison      = errors.New("missing argument for comparison")
)

type basic int

const (
	invalidKind basic = iota
	boolKind
	complexKind
	intKind
	floatKind
	stringKind
	uintKind
)

func basicKind(v reflect.Value) (basic, error) {
	switch v.Kind() {
	case reflect.Bool:
		return boolKind, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return intKind, nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return uintKind, nil
	case reflect.Float32, reflect.Float64:
		return floatKind, nil
	case reflect.Complex64, reflect.Complex128:
		return complexKind, nil
	case reflect.String:
		return stringKind, nil
	}
	return invalidKind, errBadComparisonType
}

// indirectInterface returns the concrete value in an interface value.
func indirectInterface(v reflect.Value) reflect.Value {
	if v.Kind() != reflect.Interface {
		return v
	}
	if v.IsNil() {
		return reflect.Value{}
	}
	return v.Elem()
}

func isNil(v reflect.Value) bool {
	if !v.IsValid() {
		return true
	}
	switch v.Kind() {
	case reflect.Chan, reflect.Func, reflect.Interface, reflect.Map, reflect.Pointer, reflect.Slice:
		return v.IsNil()
	}
	return false
}

func canCompare(v1, v2 reflect.Value) bool {
	k1, k2 := v1.Kind(), v2.Kind()
	return k1 == k2 || k1 == reflect.Invalid || k2 == reflect.Invalid
}

// eq is a == b || a == c || ...
func eq(arg1 reflect.Value, arg2 ...reflect.Value) (bool, error) {
	arg1 = indirectInterface(arg1)
	if len(arg2) == 0 {
		return false, errNoComparison
	}
	k1, _ := basicKind(arg1)
	for _, arg := range arg2 {
		arg = indirectInterface(arg)
		k2, _ := basicKind(arg)
		truth := false
		if k1 != k2 {
			switch {
			case k1 == intKind && k2 == uintKind:
				truth = arg1.Int() >= 0 && uint64(arg1.Int()) == arg.Uint()
			case k1 == uintKind && k2 == intKind:
				truth = arg.Int() >= 0 && arg1.Uint() == uint64(arg.Int())
			default:
				if arg1.IsValid() && arg.IsValid() {
					return false, fmt.Errorf("incompatible types for comparison: %v and %v", arg1.Type(), arg.Type())
				}
			}
		} else {
			switch k1 {
			case boolKind:
				truth = arg1.Bool() == arg.Bool()
			case complexKind:
				truth = arg1.Complex() == arg.Complex()
			case floatKind:
				truth = arg1.Float() == arg.Float()
			case intKind:
				truth = arg1.Int() == arg.Int()
			case stringKind:
				truth = arg1.String() == arg.String()
			case uintKind:
				truth = arg1.Uint() == arg.Uint()
			default:
				if !canCompare(arg1, arg) {
					return false, fmt.Errorf("non-comparable types %s: %v, %s: %v", arg1, arg1.Type(), arg.Type(), arg)
				}
				if isNil(arg1) || isNil(arg) {
					truth = isNil(arg) == isNil(arg1)
				} else {
					if !arg.Type().Comparable() {
						return false, fmt.Errorf("non-comparable type %s: %v", arg, arg.Type())
					}
					truth = arg1.Interface() == arg.Interface()
				}
			}
		}
		if truth {
			return true, nil
		}
	}
	return false, nil
}

// lt is a < b.
func lt(arg1, arg2 reflect.Value) (bool, error) {
	arg1 = indirectInterface(arg1)
	k1, err := basicKind(arg1)
	if err != nil {
		return false, err
	}
	arg2 = indirectInterface(arg2)
	k2, err := basicKind(arg2)
	if err != nil {
		return false, err
	}
	if k1 != k2 {
		switch {
		case k1 == intKind && k2 == uintKind:
			return arg1.Int() < 0 || uint64(arg1.Int()) < arg2.Uint(), nil
		case k1 == uintKind && k2 == intKind:
			return arg2.Int() >= 0 && arg1.Uint() < uint64(arg2.Int()), nil
		}
		return false, fmt.Errorf("incompatible types for comparison: %v and %v", arg1.Type(), arg2.Type())
	}
	switch k1 {
	case floatKind:
		return arg1.Float() < arg2.Float(), nil
	case intKind:
		return arg1.Int() < arg2.Int(), nil
	case stringKind:
		return arg1.String() < arg2.String(), nil
	case uintKind:
		return arg1.Uint() < arg2.Uint(), nil
	}
	return false, errBadComparisonType
}

// le is a <= b.
func le(arg1, arg2 reflect.Value) (bool, error) {
	less, err := lt(arg1, arg2)
	if less || err != nil {
		return less, err
	}
	return eq(arg1, arg2)
}
