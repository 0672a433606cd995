package syntax

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/alecthomas/participle/v2"
	"github.com/alecthomas/participle/v2/lexer"
)

// fileGrammar is the EBNF of File: Item* (Item and Expr are parsed by
// hand, item.go and expr.go, and participle's grammar of File, which the
// tests build, shows them as names only).
const fileGrammar = `File      = Item* .
`

// Grammar returns the whole grammar of the language in participle's EBNF,
// for the documentation (docs/language.md shows it).
func Grammar() string { return fileGrammar + itemGrammar + exprGrammar }

// Parse reads one configuration file. The error, if any, is an *Error
// naming FILE:LINE:COL with the source line.
func Parse(name string, src string) (*File, error) {
	var c cursor
	return parseWith(name, src, func(code lexer.Lexer) ([]*Item, error) {
		if err := c.fill(code); err != nil {
			return nil, err
		}
		return parseItems(&c)
	})
}

// parseWith is Parse with the items of each chunk of the file, the tokens
// code hands out up to its EOF, parsed by chunk.
func parseWith(name, src string, chunk func(code lexer.Lexer) ([]*Item, error)) (*File, error) {
	if !utf8.ValidString(src) {
		return nil, invalidUTF8(name, src)
	}
	// The tokens are read a top-level block at a time into one buffer, used
	// again for every block: a whole file's tokens, hundreds of thousands
	// of them, were a large part of the parse's time and memory.
	code := &codeLexer{lex: lexState{file: name, src: src, line: 1}}
	f := &File{Name: name, Src: src, lines: &lineIndex{}}
	for {
		items, err := chunk(code)
		if err != nil {
			return nil, convert(err, src) // the lexer's errors are *Error already
		}
		f.Items = append(f.Items, items...)
		if code.eof {
			break
		}
		code.chunkEnd = false
	}
	f.Comments = code.comments
	if err := readTemplates(f.Items, src); err != nil {
		return nil, err
	}
	return f, nil
}

// parseInterpolation parses the expression inside ${...}, found at pos.
func parseInterpolation(text string, pos lexer.Position, src string) (*Expr, error) {
	if e := plainRef(text, pos); e != nil {
		return e, nil
	}
	return parseInterpolationExpr(text, pos, src)
}

// parseInterpolationExpr is parseInterpolation without plainRef's short cut.
func parseInterpolationExpr(text string, pos lexer.Position, src string) (*Expr, error) {
	if strings.TrimLeft(text, " \t") == "" {
		return nil, &Error{Pos: pos, Msg: "empty interpolation ${}", Line: LineAt(src, pos.Line)}
	}
	peek := &cursor{}
	if err := peek.fill(&interpLexer{lex: lexState{file: pos.Filename, src: text, line: 1}, base: pos}); err != nil {
		var e *Error
		if errors.As(err, &e) {
			return nil, shift(e, pos, src)
		}
		return nil, err
	}
	e, err := parseExpr(peek)
	if err == nil && peek.Peek().Type != lexer.EOF {
		err = unexpected(peek.Peek(), "the end of ${...}")
	}
	if err != nil {
		err = convert(err, src)
		var ce *Error
		if errors.As(err, &ce) {
			ce.Msg = strings.Replace(ce.Msg, "end of file", "end of ${...}", 1)
		}
		return nil, err
	}
	if err := readExprTemplates(e, src); err != nil {
		return nil, err
	}
	return e, nil
}

// plainRef builds the tree of an interpolation that is a plain reference,
// like var.name or fact.hostname (most of them are), without a lexer and in
// one allocation; it returns nil for anything else, which
// parseInterpolation parses in full.
func plainRef(text string, pos lexer.Position) *Expr {
	lead := len(text) - len(strings.TrimLeft(text, " \t"))
	body := strings.TrimRight(text[lead:], " \t")
	if body == "" {
		return nil
	}
	n := 1
	for k := 0; k < len(body); k++ {
		switch c := body[k]; {
		case c == '.':
			if k == 0 || k == len(body)-1 || body[k-1] == '.' {
				return nil
			}
			n++
		case k == 0 || body[k-1] == '.':
			if !isIdentStart(c) {
				return nil
			}
		case !isIdentChar(c):
			return nil
		}
	}
	if n == 1 && (body == "true" || body == "false") {
		return nil
	}
	at := advance(pos, lead)
	end := advance(at, len(body))
	r := &refTree{}
	parts := r.parts[:0:len(r.parts)]
	if n > len(r.parts) {
		parts = make([]string, 0, n)
	}
	for p := range strings.SplitSeq(body, ".") {
		parts = append(parts, p)
	}
	r.ref = Ref{Pos: at, Parts: parts}
	r.ch.pr = Primary{Pos: at, EndPos: end, Ref: &r.ref}
	r.ch.un = Unary{Pos: at, Primary: &r.ch.pr}
	r.ch.cmp = Compare{Pos: at, Left: &r.ch.un}
	r.ch.and = And{Pos: at, Left: &r.ch.cmp}
	r.ch.e = Expr{Pos: at, EndPos: end, Left: &r.ch.and}
	return &r.ch.e
}

// refTree is the tree of a plain reference of up to three parts, in one
// allocation.
type refTree struct {
	ch    chain
	ref   Ref
	parts [3]string
}

// interpLexer lexes the text of an interpolation, placing its tokens at
// their positions in the file.
type interpLexer struct {
	lex   lexState
	base  lexer.Position
	depth int // brackets open
}

func (l *interpLexer) Next() (lexer.Token, error) {
	t, err := l.lex.next()
	for err == nil && t.Type == Comment {
		t, err = l.lex.next()
	}
	if err == nil && t.Type == Punct {
		switch t.Value {
		case "[", "(", "{":
			if l.depth++; l.depth > MaxNesting {
				// Like the lexer's own errors, at a position in the text,
				// which parseInterpolation shifts into the file.
				return t, &Error{Pos: t.Pos, Msg: fmt.Sprintf("brackets nest more than %d deep", MaxNesting)}
			}
		case "]", ")", "}":
			l.depth--
		}
	}
	t.Pos = within(t.Pos, l.base)
	return t, err
}

// shift moves an error found in an interpolation's text to its place in the
// file.
func shift(e *Error, base lexer.Position, src string) *Error {
	p := within(e.Pos, base)
	return &Error{Pos: p, Msg: e.Msg, Line: LineAt(src, p.Line)}
}

// within turns p, a position in the text of an interpolation (which is on
// one line), into a position in the file, where that text starts at base.
// (lexer.Position.Add keeps base's column on any line but the first.)
func within(p, base lexer.Position) lexer.Position {
	return lexer.Position{
		Filename: base.Filename,
		Offset:   base.Offset + p.Offset,
		Line:     base.Line + p.Line - 1,
		Column:   base.Column + p.Column - 1,
	}
}

// convert turns a participle error into an *Error with the source line and a
// message in the words of the language.
func convert(err error, src string) error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var perr participle.Error
	if !errors.As(err, &perr) {
		return err
	}
	pos := perr.Position()
	msg := perr.Message()
	var ut *participle.UnexpectedTokenError
	if errors.As(err, &ut) {
		msg = describeUnexpected(ut)
	}
	return &Error{Pos: pos, Msg: msg, Line: LineAt(src, pos.Line)}
}

func describeUnexpected(ut *participle.UnexpectedTokenError) string {
	t := ut.Unexpected
	var what string
	switch {
	case t.EOF():
		what = "unexpected end of file"
	case t.Type == String || t.Type == Heredoc:
		what = "unexpected string " + clip(t.Value)
	case t.Type == Number:
		what = "unexpected number " + t.Value
	case t.Type == Ident:
		what = fmt.Sprintf("unexpected %q", t.Value)
	default:
		what = fmt.Sprintf("unexpected %q", t.Value)
	}
	if ut.Expect != "" {
		return what + " (expected " + ut.Expect + ")"
	}
	return what
}

func clip(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + "…"
	}
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return s
}

func readTemplates(items []*Item, src string) error {
	for _, it := range items {
		for _, l := range it.Labels {
			if err := readStr(l, src); err != nil {
				return err
			}
		}
		if it.Value != nil {
			if err := readExprTemplates(it.Value, src); err != nil {
				return err
			}
		}
		if err := readTemplates(it.Body, src); err != nil {
			return err
		}
	}
	return nil
}

func readStr(s *Str, src string) error {
	t, err := readTemplate(s.Raw, s.Pos, src)
	if err != nil {
		return err
	}
	s.Template = t
	return nil
}

// readExprTemplates fills the templates of every string in e.
func readExprTemplates(e *Expr, src string) error {
	var err error
	WalkExpr(e, func(p *Primary) bool {
		if err != nil {
			return false
		}
		if p.Str != nil {
			// readStr reads the interpolations' own strings: walking into
			// them again would unquote their object keys twice.
			err = readStr(p.Str, src)
			return false
		}
		if p.Object != nil {
			for _, it := range p.Object.Items {
				if strings.HasPrefix(it.Key, `"`) {
					var t *Template
					if t, err = readTemplate(it.Key, it.Pos, src); err != nil {
						return false
					}
					lit, ok := t.Literal()
					if !ok {
						err = &Error{Pos: it.Pos, Msg: "an object key cannot hold an interpolation", Line: LineAt(src, it.Pos.Line)}
						return false
					}
					it.Key = lit
				}
			}
		}
		return true
	})
	return err
}

// WalkExpr calls fn for every primary in e, depth first, in source order; a
// false return skips the primary's children.
func WalkExpr(e *Expr, fn func(*Primary) bool) {
	if e == nil {
		return
	}
	for _, a := range append([]*And{e.Left}, e.Right...) {
		for _, c := range append([]*Compare{a.Left}, a.Right...) {
			walkUnary(c.Left, fn)
			walkUnary(c.Right, fn)
		}
	}
}

func walkUnary(u *Unary, fn func(*Primary) bool) {
	for u != nil && u.Not != nil {
		u = u.Not
	}
	if u == nil || u.Primary == nil {
		return
	}
	p := u.Primary
	if !fn(p) {
		return
	}
	switch {
	case p.List != nil:
		for _, x := range p.List.Items {
			WalkExpr(x, fn)
		}
	case p.Object != nil:
		for _, it := range p.Object.Items {
			WalkExpr(it.Value, fn)
		}
	case p.Call != nil:
		for _, x := range p.Call.Args {
			WalkExpr(x, fn)
		}
	case p.Paren != nil:
		WalkExpr(p.Paren, fn)
	case p.Str != nil && p.Str.Template != nil:
		for _, part := range p.Str.Template.Parts {
			WalkExpr(part.Expr, fn)
		}
	}
}

// invalidUTF8 reports the first byte of src that is not UTF-8.
func invalidUTF8(name, src string) error {
	line, start := 1, 0
	for i := 0; i < len(src); {
		r, size := utf8.DecodeRuneInString(src[i:])
		if r == utf8.RuneError && size == 1 {
			return &Error{Pos: lexer.Position{Filename: name, Offset: i, Line: line, Column: i - start + 1},
				Msg: fmt.Sprintf("byte 0x%02x is not UTF-8: configuration files are UTF-8", src[i]), Line: LineAt(src, line)}
		}
		if r == '\n' {
			line, start = line+1, i+1
		}
		i += size
	}
	return nil
}

// codeLexer hands participle the tokens of a file but its comments, which
// it keeps for the formatter, and reports the first bracket closed by the
// wrong one or never closed, at the opening bracket: that is where the
// mistake usually is, and what participle's "unexpected end of file" would
// not say.
type codeLexer struct {
	lex      lexState
	comments []lexer.Token
	open     []lexer.Token // brackets not yet closed
	// chunkEnd is set once a top-level block's closing brace is handed
	// over: the next token is an EOF that ends the chunk. eof is set at the
	// end of the file.
	chunkEnd, eof bool
	after         lexer.Position // just past that brace
}

// MaxNesting bounds how deep blocks, lists, objects, calls and parentheses
// nest, and how many ! may stand in a row: no configuration needs more, and
// the bound keeps a hostile file from exhausting the stack.
const MaxNesting = 100

var closing = map[string]string{"{": "}", "[": "]", "(": ")"}

func (l *codeLexer) Next() (lexer.Token, error) {
	if l.chunkEnd {
		return lexer.EOFToken(l.after), nil
	}
	for {
		t, err := l.lex.next()
		if err != nil {
			return t, err
		}
		switch {
		case t.Type == Comment:
			l.comments = append(l.comments, t)
			continue
		case t.Type == lexer.EOF:
			if n := len(l.open); n > 0 {
				return t, l.errorAt(l.open[n-1].Pos, "%q is never closed", l.open[n-1].Value)
			}
			l.eof = true
		case t.Type == Punct:
			switch t.Value {
			case "{", "[", "(":
				if len(l.open) == MaxNesting {
					return t, l.errorAt(t.Pos, "brackets nest more than %d deep", MaxNesting)
				}
				l.open = append(l.open, t)
			case "}", "]", ")":
				n := len(l.open)
				if n == 0 {
					return t, l.errorAt(t.Pos, "%q closes nothing", t.Value)
				}
				open := l.open[n-1]
				l.open = l.open[:n-1]
				if closing[open.Value] != t.Value {
					return t, l.errorAt(t.Pos, "%q does not match %q at %d:%d", t.Value, open.Value, open.Pos.Line, open.Pos.Column)
				}
				if n == 1 && t.Value == "}" {
					l.chunkEnd = true
					l.after = advance(t.Pos, 1)
				}
			}
		}
		return t, nil
	}
}

func (l *codeLexer) errorAt(pos lexer.Position, format string, args ...any) error {
	return &Error{Pos: pos, Msg: fmt.Sprintf(format, args...), Line: LineAt(l.lex.src, pos.Line)}
}
