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

// Parse implements participle.Parseable.
func (e *Expr) Parse(lex *lexer.PeekingLexer) error {
	t := lex.Peek()
	if !startsExpr(t) {
		return participle.NextMatch
	}
	e.Pos = t.Pos
	l, err := parseAnd(lex)
	if err != nil {
		return err
	}
	e.Left = l
	for isPunct(lex.Peek(), "||") {
		lex.Next()
		r, err := parseAnd(lex)
		if err != nil {
			return err
		}
		e.Right = append(e.Right, r)
	}
	e.EndPos = lex.RawPeek().Pos
	return nil
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

// parseExpr parses an expression that must be there.
func parseExpr(lex *lexer.PeekingLexer) (*Expr, error) {
	e := &Expr{}
	if err := e.Parse(lex); err != nil {
		if err == participle.NextMatch {
			return nil, unexpected(lex.Peek(), "an expression")
		}
		return nil, err
	}
	return e, nil
}

func parseAnd(lex *lexer.PeekingLexer) (*And, error) {
	a := &And{Pos: lex.Peek().Pos}
	l, err := parseCompare(lex)
	if err != nil {
		return nil, err
	}
	a.Left = l
	for isPunct(lex.Peek(), "&&") {
		lex.Next()
		r, err := parseCompare(lex)
		if err != nil {
			return nil, err
		}
		a.Right = append(a.Right, r)
	}
	return a, nil
}

func parseCompare(lex *lexer.PeekingLexer) (*Compare, error) {
	c := &Compare{Pos: lex.Peek().Pos}
	l, err := parseUnary(lex)
	if err != nil {
		return nil, err
	}
	c.Left = l
	if t := lex.Peek(); t.Type == Punct {
		switch t.Value {
		case "==", "!=", "<=", ">=", "<", ">":
			c.Op = t.Value
			lex.Next()
			if c.Right, err = parseUnary(lex); err != nil {
				return nil, err
			}
		}
	}
	return c, nil
}

func parseUnary(lex *lexer.PeekingLexer) (*Unary, error) {
	// A run of ! is read in a loop, and bounded, so that no input can make
	// the parser or the evaluator recurse without end.
	var nots []*Unary
	for isPunct(lex.Peek(), "!") {
		if len(nots) == MaxNesting {
			return nil, &participle.ParseError{Msg: fmt.Sprintf("more than %d ! in a row", MaxNesting), Pos: lex.Peek().Pos}
		}
		nots = append(nots, &Unary{Pos: lex.Next().Pos})
	}
	p, err := parsePrimary(lex)
	if err != nil {
		return nil, err
	}
	u := &Unary{Pos: p.Pos, Primary: p}
	for i := len(nots) - 1; i >= 0; i-- {
		nots[i].Not = u
		u = nots[i]
	}
	return u, nil
}

func parsePrimary(lex *lexer.PeekingLexer) (*Primary, error) {
	t := lex.Peek()
	p := &Primary{Pos: t.Pos}
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
				return nil, unexpected(lex.Peek(), `")"`)
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
					return nil, err
				}
				c.Args = append(c.Args, a)
				if !isPunct(lex.Peek(), ",") {
					break
				}
				lex.Next()
			}
			if !isPunct(lex.Peek(), ")") {
				return nil, unexpected(lex.Peek(), `")"`)
			}
			lex.Next()
			p.Call = c
		} else {
			r := &Ref{Pos: t.Pos, Parts: []string{t.Value}}
			for isPunct(lex.Peek(), ".") {
				lex.Next()
				n := lex.Peek()
				if n.Type != Ident {
					return nil, unexpected(n, "Ident")
				}
				lex.Next()
				r.Parts = append(r.Parts, n.Value)
			}
			p.Ref = r
		}
	default:
		return nil, unexpected(t, "an expression")
	}
	if err != nil {
		return nil, err
	}
	p.EndPos = lex.RawPeek().Pos
	return p, nil
}

func parseList(lex *lexer.PeekingLexer) (*List, error) {
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
	l.EndPos = lex.RawPeek().Pos
	return l, nil
}

func parseObject(lex *lexer.PeekingLexer) (*Object, error) {
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
	o.EndPos = lex.RawPeek().Pos
	return o, nil
}
