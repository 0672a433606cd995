package compiler

import (
	"errors"

	"github.com/cairn-cm/cairn/compiler/syntax"
	"github.com/cairn-cm/cairn/journal"
)

// The accessors below evaluate one attribute of a block in a scope and
// check its type. A finding goes to the compiler's list and ok is false;
// an absent attribute gives the zero value and present=false.

// value evaluates attribute name and checks it against typ.
func (c *compiler) value(s *scope, b *block, name string, typ attrType) (v Value, present bool) {
	it := b.attrs[name]
	if it == nil {
		return Value{}, false
	}
	v, err := s.eval(it.Value)
	if err != nil {
		c.fail(err)
		return Value{}, false
	}
	if !fits(v, typ) {
		c.errs = append(c.errs, s.errorf(it.Value.Pos, "%s: want %s, got %s %s", name, typ, v.Kind, v))
		return Value{}, false
	}
	if (typ == tNumber || typ == tNumberName) && isDigits(v.Str) {
		// A number here is a user or group id: in range, or the journal
		// would refuse it (or, worse, chown would take it for "no change").
		if _, err := journal.ParseID(v.Str); err != nil {
			c.errs = append(c.errs, s.errorf(it.Value.Pos, "%s: %v", name, err))
			return Value{}, false
		}
	}
	return v, true
}

// isDigits reports whether v is a non-empty string of decimal digits.
func isDigits(v string) bool {
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return false
		}
	}
	return v != ""
}

// errReported is the error of an expression whose cause is already on the
// compiler's list (a variable declared without a value); fail drops it.
var errReported = errors.New("reported already")

// fail adds an evaluation error to the list.
func (c *compiler) fail(err error) {
	if errors.Is(err, errReported) {
		return
	}
	if se, ok := err.(*syntax.Error); ok {
		c.errs = append(c.errs, se)
		return
	}
	c.errs = append(c.errs, &syntax.Error{Msg: err.Error()})
}

func fits(v Value, typ attrType) bool {
	switch typ {
	case tString:
		return v.Kind == KindString || v.Kind == KindNumber
	case tBool:
		return v.Kind == KindBool
	case tNumber:
		return (v.Kind == KindNumber || v.Kind == KindString) && isDigits(v.Str)
	case tNumberName:
		return v.Kind == KindNumber || v.Kind == KindString
	case tStrings:
		if v.Kind != KindList {
			return false
		}
		for _, x := range v.List {
			if x.Kind != KindString && x.Kind != KindNumber {
				return false
			}
		}
		return true
	case tObject:
		return v.Kind == KindObject
	}
	return true
}

// str evaluates a string attribute.
func (c *compiler) str(s *scope, b *block, name string) (string, bool, bool) {
	n := len(c.errs)
	v, present := c.value(s, b, name, tString)
	return v.Str, present, len(c.errs) == n
}

// boolean evaluates a boolean attribute, def when absent.
func (c *compiler) boolean(s *scope, b *block, name string, def bool) bool {
	v, present := c.value(s, b, name, tBool)
	if !present {
		return def
	}
	return v.Bool
}

// strings evaluates a list-of-strings attribute.
func (c *compiler) strings(s *scope, b *block, name string) ([]string, bool) {
	v, present := c.value(s, b, name, tStrings)
	if !present {
		return nil, false
	}
	out := make([]string, len(v.List))
	for i, x := range v.List {
		out[i] = x.Str
	}
	return out, true
}

// label evaluates label i of a block; it must be a non-empty string.
func (c *compiler) label(s *scope, b *block, i int) (string, bool) {
	l := b.item.Labels[i]
	v, err := s.evalTemplate(l.Pos, l.Template)
	if err != nil {
		c.fail(err)
		return "", false
	}
	text, ok := v.Text()
	if !ok || text == "" {
		c.errs = append(c.errs, s.errorf(l.Pos, "%s block: the %s label must be a non-empty string", b.spec.typ, b.spec.labels[i]))
		return "", false
	}
	if i == 0 {
		b.label = text
	}
	return text, true
}
