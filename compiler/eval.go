package compiler

import (
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/alecthomas/participle/v2/lexer"

	"github.com/cairn-cm/cairn/compiler/syntax"
	"github.com/cairn-cm/cairn/journal"
)

// scope is what an expression can see: the variables of its unit, the
// host's facts, and the file it stands in (for error lines and file()).
type scope struct {
	c    *compiler
	file *syntax.File
	// within names the module call a file is read for, ` (module "web"
	// called at site.cairn:4:1)`, so that an error one call's inputs cause
	// says which call; "" outside modules.
	within string
	vars   map[string]Value
	// unset are variables declared without a value (see unit.unset).
	unset map[string]bool
	facts map[string]Value
}

// errorf makes an error at pos of the scope's file.
func (s *scope) errorf(pos lexer.Position, format string, args ...any) *syntax.Error {
	e := errorAt(s.file, pos, format, args...)
	e.Msg += s.within
	return e
}

func errorAt(f *syntax.File, pos lexer.Position, format string, args ...any) *syntax.Error {
	e := &syntax.Error{Pos: pos, Msg: fmt.Sprintf(format, args...)}
	if f != nil && pos.Filename == f.Name {
		e.Line = f.Line(pos.Line)
	}
	return e
}

// eval evaluates an expression.
func (s *scope) eval(e *syntax.Expr) (Value, error) {
	v, err := s.evalAnd(e.Left)
	if err != nil || len(e.Right) == 0 {
		return v, err
	}
	if err := s.wantBool(v, e.Left.Pos, "||"); err != nil {
		return v, err
	}
	for _, r := range e.Right {
		if v.Bool {
			return v, nil
		}
		if v, err = s.evalAnd(r); err != nil {
			return v, err
		}
		if err := s.wantBool(v, r.Pos, "||"); err != nil {
			return v, err
		}
	}
	return v, nil
}

func (s *scope) wantBool(v Value, pos lexer.Position, op string) error {
	if v.Kind != KindBool {
		return s.errorf(pos, "%s takes booleans, not %s %s", op, v.Kind, v)
	}
	return nil
}

func (s *scope) evalAnd(a *syntax.And) (Value, error) {
	v, err := s.evalCompare(a.Left)
	if err != nil || len(a.Right) == 0 {
		return v, err
	}
	if err := s.wantBool(v, a.Left.Pos, "&&"); err != nil {
		return v, err
	}
	for _, r := range a.Right {
		if !v.Bool {
			return v, nil
		}
		if v, err = s.evalCompare(r); err != nil {
			return v, err
		}
		if err := s.wantBool(v, r.Pos, "&&"); err != nil {
			return v, err
		}
	}
	return v, nil
}

func (s *scope) evalCompare(c *syntax.Compare) (Value, error) {
	l, err := s.evalUnary(c.Left)
	if err != nil || c.Op == "" {
		return l, err
	}
	r, err := s.evalUnary(c.Right)
	if err != nil {
		return l, err
	}
	switch c.Op {
	case "==", "!=":
		if err := s.spend(c.Pos, min(l.weight(), r.weight())+1); err != nil {
			return Value{}, err
		}
		return Bool(l.Equal(r) == (c.Op == "==")), nil
	}
	a, aok := l.Number()
	b, bok := r.Number()
	if !aok || !bok {
		bad, pos := l, c.Left.Pos
		if aok {
			bad, pos = r, c.Right.Pos
		}
		return Value{}, s.errorf(pos, "%s compares numbers, not %s %s", c.Op, bad.Kind, bad)
	}
	switch c.Op {
	case "<":
		return Bool(a < b), nil
	case "<=":
		return Bool(a <= b), nil
	case ">":
		return Bool(a > b), nil
	}
	return Bool(a >= b), nil
}

func (s *scope) evalUnary(u *syntax.Unary) (Value, error) {
	if u.Not != nil {
		v, err := s.evalUnary(u.Not)
		if err != nil {
			return v, err
		}
		if v.Kind != KindBool {
			return v, s.errorf(u.Not.Pos, "! takes a boolean, not %s %s", v.Kind, v)
		}
		return Bool(!v.Bool), nil
	}
	return s.evalPrimary(u.Primary)
}

func (s *scope) evalPrimary(p *syntax.Primary) (Value, error) {
	switch {
	case p.Number != nil:
		return Num(*p.Number), nil
	case p.Str != nil:
		return s.evalTemplate(p.Pos, p.Str.Template)
	case p.Bool != nil:
		return Bool(*p.Bool == "true"), nil
	case p.List != nil:
		out := make([]Value, 0, len(p.List.Items))
		size := elemWeight * len(p.List.Items)
		for _, x := range p.List.Items {
			v, err := s.eval(x)
			if err != nil {
				return v, err
			}
			out = append(out, v)
			size += v.weight()
		}
		if err := s.checkValue(p.Pos, "list", size); err != nil {
			return Value{}, err
		}
		return Value{Kind: KindList, List: out, size: size}, nil
	case p.Object != nil:
		obj := Value{Kind: KindObject, Fields: make(map[string]Value, len(p.Object.Items))}
		size := elemWeight * len(p.Object.Items)
		for _, it := range p.Object.Items {
			if _, dup := obj.Fields[it.Key]; dup {
				return obj, s.errorf(it.Pos, "key %q is given twice", it.Key)
			}
			v, err := s.eval(it.Value)
			if err != nil {
				return v, err
			}
			obj.Fields[it.Key] = v
			obj.Keys = append(obj.Keys, it.Key)
			size += len(it.Key) + v.weight()
		}
		if err := s.checkValue(p.Pos, "object", size); err != nil {
			return Value{}, err
		}
		sort.Strings(obj.Keys)
		obj.size = size
		return obj, nil
	case p.Call != nil:
		return s.call(p.Call)
	case p.Ref != nil:
		return s.ref(p.Ref)
	case p.Paren != nil:
		return s.eval(p.Paren)
	}
	return Value{}, s.errorf(p.Pos, "empty expression")
}

// evalTemplate evaluates a string. A string that is one interpolation and
// nothing else keeps the interpolated value's type.
func (s *scope) evalTemplate(pos lexer.Position, t *syntax.Template) (Value, error) {
	if lit, ok := t.Literal(); ok {
		return Str(lit), nil
	}
	if len(t.Parts) == 1 {
		return s.eval(t.Parts[0].Expr)
	}
	texts := make([]string, len(t.Parts))
	n := 0
	for i, part := range t.Parts {
		if part.Expr == nil {
			texts[i] = part.Lit
			n += len(part.Lit)
			continue
		}
		v, err := s.eval(part.Expr)
		if err != nil {
			return v, err
		}
		text, ok := v.Text()
		if !ok {
			return v, s.errorf(part.Expr.Pos, "cannot interpolate %s %s into a string", v.Kind, v)
		}
		texts[i] = text
		n += len(text)
	}
	if err := s.checkText(pos, "interpolation", n); err != nil {
		return Value{}, err
	}
	return Str(strings.Join(texts, "")), nil
}

// ref resolves var.NAME and fact.NAME.
func (s *scope) ref(r *syntax.Ref) (Value, error) {
	name := strings.Join(r.Parts, ".")
	if len(r.Parts) != 2 {
		return Value{}, s.errorf(r.Pos, "unknown reference %q: references are var.NAME or fact.NAME", name)
	}
	var table map[string]Value
	switch r.Parts[0] {
	case "var":
		table = s.vars
	case "fact":
		table = s.facts
	default:
		return Value{}, s.errorf(r.Pos, "unknown reference %q: references are var.NAME or fact.NAME%s", name, didYouMean(r.Parts[0], []string{"var", "fact"}))
	}
	v, ok := table[r.Parts[1]]
	if !ok && r.Parts[0] == "var" && s.unset[r.Parts[1]] {
		return v, errReported
	}
	if !ok {
		what := "undefined variable"
		if r.Parts[0] == "fact" {
			what = "unknown fact"
		}
		return v, s.errorf(r.Pos, "%s %q%s", what, name, didYouMean(r.Parts[1], keys(table)))
	}
	return v, nil
}

func keys(m map[string]Value) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// didYouMean returns `; did you mean "X"?` for the closest candidate, or "".
func didYouMean(word string, candidates []string) string {
	if s := journal.Suggest(word, candidates); s != "" {
		return fmt.Sprintf("; did you mean %q?", s)
	}
	return ""
}

// functions are the language's built-in functions, by name.
var functions = map[string]func(s *scope, c *syntax.Call, args []Value) (Value, error){
	"glob": func(s *scope, c *syntax.Call, args []Value) (Value, error) {
		pat, str, err := s.twoStrings(c, args)
		if err != nil {
			return Value{}, err
		}
		// Matching takes up to a step for each byte of the pattern and
		// each of the string.
		if len(pat) > 0 && len(str) > MaxEvalWork/len(pat) {
			return Value{}, s.spend(c.Pos, MaxEvalWork+1)
		}
		if err := s.spend(c.Pos, len(pat)*len(str)+1); err != nil {
			return Value{}, err
		}
		ok, err := path.Match(pat, str)
		if err != nil {
			return Value{}, s.errorf(c.Args[0].Pos, "bad pattern %q: %v", pat, err)
		}
		return Bool(ok), nil
	},
	"contains": func(s *scope, c *syntax.Call, args []Value) (Value, error) {
		if err := s.arity(c, args, 2); err != nil {
			return Value{}, err
		}
		if args[0].Kind != KindList {
			return Value{}, s.errorf(c.Args[0].Pos, "contains: the first argument must be a list, not %s", args[0].Kind)
		}
		if err := s.spend(c.Pos, args[0].weight()+len(args[0].List)*(args[1].weight()+elemWeight)); err != nil {
			return Value{}, err
		}
		return Bool(slices.ContainsFunc(args[0].List, args[1].Equal)), nil
	},
	"join": func(s *scope, c *syntax.Call, args []Value) (Value, error) {
		if err := s.arity(c, args, 2); err != nil {
			return Value{}, err
		}
		sep, ok := args[0].Text()
		if !ok || args[1].Kind != KindList {
			return Value{}, s.errorf(c.Pos, "join takes a separator and a list")
		}
		parts := make([]string, len(args[1].List))
		n := len(sep) * max(len(parts)-1, 0)
		for i, x := range args[1].List {
			if parts[i], ok = x.Text(); !ok {
				return Value{}, s.errorf(c.Args[1].Pos, "join: element %d is %s, not a string", i+1, x.Kind)
			}
			n += len(parts[i])
		}
		if err := s.checkText(c.Pos, "join", n); err != nil {
			return Value{}, err
		}
		return Str(strings.Join(parts, sep)), nil
	},
	"lower": stringFunc(strings.ToLower),
	"upper": stringFunc(strings.ToUpper),
	"file": func(s *scope, c *syntax.Call, args []Value) (Value, error) {
		if err := s.arity(c, args, 1); err != nil {
			return Value{}, err
		}
		name, ok := args[0].Text()
		if !ok {
			return Value{}, s.errorf(c.Args[0].Pos, "file takes a path")
		}
		p, err := s.c.repoPath(s.file, name)
		if err != nil {
			return Value{}, s.errorf(c.Args[0].Pos, "file(%q): %v", name, err)
		}
		data, err := s.c.readInput(p)
		if err != nil {
			return Value{}, s.errorf(c.Args[0].Pos, "file(%q): %v", name, err)
		}
		if err := s.spend(c.Pos, len(data)); err != nil {
			return Value{}, err
		}
		return Str(string(data)), nil
	},
}

func stringFunc(f func(string) string) func(s *scope, c *syntax.Call, args []Value) (Value, error) {
	return func(s *scope, c *syntax.Call, args []Value) (Value, error) {
		if err := s.arity(c, args, 1); err != nil {
			return Value{}, err
		}
		text, ok := args[0].Text()
		if !ok {
			return Value{}, s.errorf(c.Args[0].Pos, "%s takes a string, not %s", c.Name, args[0].Kind)
		}
		if err := s.spend(c.Pos, len(text)); err != nil {
			return Value{}, err
		}
		return Str(f(text)), nil
	}
}

func (s *scope) arity(c *syntax.Call, args []Value, n int) error {
	if len(args) != n {
		return s.errorf(c.Pos, "%s takes %d arguments, not %d", c.Name, n, len(args))
	}
	return nil
}

func (s *scope) twoStrings(c *syntax.Call, args []Value) (string, string, error) {
	if err := s.arity(c, args, 2); err != nil {
		return "", "", err
	}
	a, ok1 := args[0].Text()
	b, ok2 := args[1].Text()
	if !ok1 || !ok2 {
		return "", "", s.errorf(c.Pos, "%s takes two strings", c.Name)
	}
	return a, b, nil
}

func (s *scope) call(c *syntax.Call) (Value, error) {
	fn, ok := functions[c.Name]
	if !ok {
		names := make([]string, 0, len(functions))
		for n := range functions {
			names = append(names, n)
		}
		sort.Strings(names)
		return Value{}, s.errorf(c.Pos, "unknown function %q%s", c.Name, didYouMean(c.Name, names))
	}
	args := make([]Value, len(c.Args))
	for i, a := range c.Args {
		v, err := s.eval(a)
		if err != nil {
			return v, err
		}
		args[i] = v
	}
	return fn(s, c, args)
}
