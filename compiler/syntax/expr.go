package syntax

import (
	"fmt"

	"github.com/alecthomas/participle/v2"
	"github.com/alecthomas/participle/v2/lexer"
)

// Expressions are parsed by hand, by recursive descent with one function
// per precedence level (|| over && over comparisons over !), and plugged
// into the participle grammar as a participle.Parseable: participle parses
// files, blocks and attributes, and calls Expr.Parse for every value. The
// hand parser is several times faster than participle's reflective one on
// the small expressions that make up most of a configuration, and values
// are most of what a compile parses (the grammar is in docs/language.md).

// exprGrammar is the EBNF of Expr and the types below it, as Grammar shows
// it.
const exprGrammar = `Expr      = And ( "||" And )* .
And       = Compare ( "&&" Compare )* .
Compare   = Unary ( ( "==" | "!=" | "<" | "<=" | ">" | ">=" ) Unary )? .
Unary     = "!" Unary | Primary .
Primary   = Number | String | Heredoc | "true" | "false" | List | Object
          | Ident "(" ( Expr ( "," Expr )* ","? )? ")"        (a function call)
          | Ident ( "." Ident )*                              (a reference)
          | "(" Expr ")" .
List      = "[" ( Expr ( "," Expr )* ","? )? "]" .
Object    = "{" ( ( Ident | String ) "=" Expr ","? )* "}" .
`

// unexpected is the error for token t where expect was wanted.
func unexpected(t *lexer.Token, expect string) error {
	return &participle.UnexpectedTokenError{Unexpected: *t, Expect: expect}
}

// isPunct reports whether t is the punctuation v.
func isPunct(t *lexer.Token, v string) bool { return t.Type == Punct && t.Value == v }

// Parse implements participle.Parseable, for participle's grammars that
// hold expressions (the tests'); Parse itself does not use participle.
func (e *Expr) Parse(lex *lexer.PeekingLexer) error {
	c := fromPeeking(lex)
	err := e.parse(c, &chain{})
	c.advance(lex)
	return err
}

// parse parses the expression that starts at the next token into e, or
// returns participle.NextMatch if no expression starts there. Its first
// operand's nodes are ch's (e may be ch's own).
func (e *Expr) parse(lex *cursor, ch *chain) error {
	t := lex.Peek()
	if !startsExpr(t) {
		return participle.NextMatch
	}
	e.Pos = t.Pos
	if err := parseAnd(lex, &ch.and, ch); err != nil {
		return err
	}
	e.Left = &ch.and
	for isPunct(lex.Peek(), "||") {
		lex.Next()
		r := &And{}
		if err := parseAnd(lex, r, nil); err != nil {
			return err
		}
		e.Right = append(e.Right, r)
	}
	e.EndPos = lex.Peek().Pos
	return nil
}

// chain is an expression and its first operand at every level, from And
// to Primary, in one allocation rather than five: most expressions are
// that one operand (a string, a number, a reference).
type chain struct {
	e   Expr
	and And
	cmp Compare
	un  Unary
	pr  Primary
}

// startsExpr reports whether an expression can start with t.
func startsExpr(t *lexer.Token) bool {
	switch t.Type {
	case Number, String, Heredoc, Ident:
		return true
	case Punct:
		switch t.Value {
		case "!", "[", "{", "(":
			return true
		}
	}
	return false
}

// newExpr parses the expression that starts at the next token, or
// returns participle.NextMatch if no expression starts there.
func newExpr(lex *cursor) (*Expr, error) {
	ch := &chain{}
	if err := ch.e.parse(lex, ch); err != nil {
		return nil, err
	}
	return &ch.e, nil
}

// parseExpr parses an expression that must be there.
func parseExpr(lex *cursor) (*Expr, error) {
	e, err := newExpr(lex)
	if err != nil {
		if err == participle.NextMatch {
			return nil, unexpected(lex.Peek(), "an expression")
		}
		return nil, err
	}
	return e, nil
}

// parseAnd parses operands joined by && into a; ch, when set, holds the
// first operand's nodes.
func parseAnd(lex *cursor, a *And, ch *chain) error {
	a.Pos = lex.Peek().Pos
	var l *Compare
	if ch != nil {
		l = &ch.cmp
	} else {
		l = &Compare{}
	}
	if err := parseCompare(lex, l, ch); err != nil {
		return err
	}
	a.Left = l
	for isPunct(lex.Peek(), "&&") {
		lex.Next()
		r := &Compare{}
		if err := parseCompare(lex, r, nil); err != nil {
			return err
		}
		a.Right = append(a.Right, r)
	}
	return nil
}

func parseCompare(lex *cursor, c *Compare, ch *chain) error {
	c.Pos = lex.Peek().Pos
	var l *Unary
	var p *Primary
	if ch != nil {
		l, p = &ch.un, &ch.pr
	} else {
		l = &Unary{}
	}
	if err := parseUnary(lex, l, p); err != nil {
		return err
	}
	c.Left = l
	if t := lex.Peek(); t.Type == Punct {
		switch t.Value {
		case "==", "!=", "<=", ">=", "<", ">":
			c.Op = t.Value
			lex.Next()
			c.Right = &Unary{}
			if err := parseUnary(lex, c.Right, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// parseUnary parses a run of ! and a primary into u; p, when set, is
// where the primary goes.
func parseUnary(lex *cursor, u *Unary, p *Primary) error {
	// A run of ! is read in a loop, and bounded, so that no input can make
	// the parser or the evaluator recurse without end.
	var nots []lexer.Position
	for isPunct(lex.Peek(), "!") {
		if len(nots) == MaxNesting {
			return &participle.ParseError{Msg: fmt.Sprintf("more than %d ! in a row", MaxNesting), Pos: lex.Peek().Pos}
		}
		nots = append(nots, lex.Next().Pos)
	}
	if p == nil {
		p = &Primary{}
	}
	if err := parsePrimary(lex, p); err != nil {
		return err
	}
	if len(nots) == 0 {
		u.Pos, u.Primary = p.Pos, p
		return nil
	}
	in := &Unary{Pos: p.Pos, Primary: p}
	for i := len(nots) - 1; i > 0; i-- {
		in = &Unary{Pos: nots[i], Not: in}
	}
	u.Pos, u.Not = nots[0], in
	return nil
}

func parsePrimary(lex *cursor, p *Primary) error {
	t := lex.Peek()
	p.Pos = t.Pos
	var err error
	switch {
	case t.Type == Number:
		v := lex.Next().Value
		p.Number = &v
	case t.Type == String || t.Type == Heredoc:
		lex.Next()
		p.Str = &Str{Pos: t.Pos, Raw: t.Value}
	case t.Type == Ident && (t.Value == "true" || t.Value == "false"):
		v := lex.Next().Value
		p.Bool = &v
	case isPunct(t, "["):
		p.List, err = parseList(lex)
	case isPunct(t, "{"):
		p.Object, err = parseObject(lex)
	case isPunct(t, "("):
		lex.Next()
		if p.Paren, err = parseExpr(lex); err == nil {
			if !isPunct(lex.Peek(), ")") {
				return unexpected(lex.Peek(), `")"`)
			}
			lex.Next()
		}
	case t.Type == Ident:
		lex.Next()
		if isPunct(lex.Peek(), "(") {
			lex.Next()
			c := &Call{Pos: t.Pos, Name: t.Value}
			for !isPunct(lex.Peek(), ")") {
				a, err := parseExpr(lex)
				if err != nil {
					return err
				}
				c.Args = append(c.Args, a)
				if !isPunct(lex.Peek(), ",") {
					break
				}
				lex.Next()
			}
			if !isPunct(lex.Peek(), ")") {
				return unexpected(lex.Peek(), `")"`)
			}
			lex.Next()
			p.Call = c
		} else {
			r := &Ref{Pos: t.Pos, Parts: []string{t.Value}}
			for isPunct(lex.Peek(), ".") {
				lex.Next()
				n := lex.Peek()
				if n.Type != Ident {
					return unexpected(n, "Ident")
				}
				lex.Next()
				r.Parts = append(r.Parts, n.Value)
			}
			p.Ref = r
		}
	default:
		return unexpected(t, "an expression")
	}
	if err != nil {
		return err
	}
	p.EndPos = lex.Peek().Pos
	return nil
}

func parseList(lex *cursor) (*List, error) {
	l := &List{Pos: lex.Next().Pos}
	for !isPunct(lex.Peek(), "]") {
		e, err := parseExpr(lex)
		if err != nil {
			return nil, err
		}
		l.Items = append(l.Items, e)
		if !isPunct(lex.Peek(), ",") {
			break
		}
		lex.Next()
	}
	if !isPunct(lex.Peek(), "]") {
		return nil, unexpected(lex.Peek(), `"]"`)
	}
	lex.Next()
	l.EndPos = lex.Peek().Pos
	return l, nil
}

func parseObject(lex *cursor) (*Object, error) {
	o := &Object{Pos: lex.Next().Pos}
	for !isPunct(lex.Peek(), "}") {
		k := lex.Peek()
		if k.Type != Ident && k.Type != String {
			return nil, unexpected(k, `"}"`)
		}
		lex.Next()
		it := &ObjectItem{Pos: k.Pos, Key: k.Value}
		if !isPunct(lex.Peek(), "=") {
			return nil, unexpected(lex.Peek(), `"="`)
		}
		lex.Next()
		v, err := parseExpr(lex)
		if err != nil {
			return nil, err
		}
		it.Value = v
		o.Items = append(o.Items, it)
		if isPunct(lex.Peek(), ",") {
			lex.Next()
		}
	}
	lex.Next()
	o.EndPos = lex.Peek().Pos
	return o, nil
}
