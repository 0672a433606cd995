package syntax

import (
	"fmt"
	"io"
	"strings"

	"github.com/alecthomas/participle/v2/lexer"
)

// Token types of the configuration language.
const (
	Comment lexer.TokenType = -(iota + 2)
	Ident
	Number
	String
	Heredoc
	Punct
)

var symbols = map[string]lexer.TokenType{
	"EOF":     lexer.EOF,
	"Comment": Comment,
	"Ident":   Ident,
	"Number":  Number,
	"String":  String,
	"Heredoc": Heredoc,
	"Punct":   Punct,
}

// definition is the lexer participle uses. It is written by hand rather than
// from regular expressions: it is several times faster, it counts columns in
// bytes as the journal does, and heredocs need a back-reference that Go's
// regular expressions lack.
type definition struct{}

func (definition) Symbols() map[string]lexer.TokenType { return symbols }

func (definition) Lex(filename string, r io.Reader) (lexer.Lexer, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	return definition{}.LexString(filename, string(data))
}

func (definition) LexString(filename, input string) (lexer.Lexer, error) {
	toks, err := Lex(filename, input)
	if err != nil {
		return nil, err
	}
	return &sliceLexer{toks: toks}, nil
}

// sliceLexer hands participle tokens lexed beforehand.
type sliceLexer struct {
	toks []lexer.Token
	i    int
}

func (l *sliceLexer) Next() (lexer.Token, error) {
	t := l.toks[l.i]
	if l.i < len(l.toks)-1 {
		l.i++
	}
	return t, nil
}

// Lex splits input into tokens, comments included, ending with an EOF token.
// White space and newlines separate tokens and are dropped.
func Lex(filename, input string) ([]lexer.Token, error) {
	lx := lexState{file: filename, src: input, line: 1, lineStart: 0}
	toks := make([]lexer.Token, 0, len(input)/5+1)
	for {
		t, err := lx.next()
		if err != nil {
			return nil, err
		}
		toks = append(toks, t)
		if t.Type == lexer.EOF {
			return toks, nil
		}
	}
}

type lexState struct {
	file      string
	src       string
	i         int
	line      int
	lineStart int
}

func (l *lexState) pos(at int) lexer.Position {
	return lexer.Position{Filename: l.file, Offset: at, Line: l.line, Column: at - l.lineStart + 1}
}

func (l *lexState) errorf(at int, format string, args ...any) error {
	return &Error{Pos: l.pos(at), Msg: fmt.Sprintf(format, args...), Line: lineFrom(l.src, l.lineStart)}
}

// newlines advances the line count over src[from:to].
func (l *lexState) newlines(from, to int) {
	for k := from; k < to; k++ {
		if l.src[k] == '\n' {
			l.line++
			l.lineStart = k + 1
		}
	}
}

func (l *lexState) next() (lexer.Token, error) {
	src := l.src
	for l.i < len(src) {
		c := src[l.i]
		switch {
		case c == '\n':
			l.i++
			l.line++
			l.lineStart = l.i
			continue
		case c == ' ' || c == '\t':
			l.i++
			continue
		case c == '\r':
			return lexer.Token{}, l.errorf(l.i, crMessage)
		}
		break
	}
	start := l.i
	p := l.pos(start)
	if start >= len(src) {
		return lexer.EOFToken(p), nil
	}
	tok := func(t lexer.TokenType, end int) (lexer.Token, error) {
		l.i = end
		return lexer.Token{Type: t, Value: src[start:end], Pos: p}, nil
	}
	c := src[start]
	switch {
	case c == '#' || (c == '/' && start+1 < len(src) && src[start+1] == '/'):
		end := strings.IndexByte(src[start:], '\n')
		if end < 0 {
			end = len(src) - start
		}
		if err := l.noCR(start, start+end); err != nil {
			return lexer.Token{}, err
		}
		return tok(Comment, start+end)
	case c == '/' && start+1 < len(src) && src[start+1] == '*':
		end := strings.Index(src[start+2:], "*/")
		if end < 0 {
			return lexer.Token{}, l.errorf(start, "comment /* is never closed")
		}
		if err := l.noCR(start, start+2+end+2); err != nil {
			return lexer.Token{}, err
		}
		t, _ := tok(Comment, start+2+end+2)
		l.newlines(start, l.i)
		return t, nil
	case isIdentStart(c):
		end := start + 1
		for end < len(src) && isIdentChar(src[end]) {
			end++
		}
		return tok(Ident, end)
	case isDigit(c) || (c == '-' && start+1 < len(src) && isDigit(src[start+1])):
		end := start + 1
		for end < len(src) && isDigit(src[end]) {
			end++
		}
		if end+1 < len(src) && src[end] == '.' && isDigit(src[end+1]) {
			end++
			for end < len(src) && isDigit(src[end]) {
				end++
			}
		}
		if end < len(src) && isIdentChar(src[end]) {
			return lexer.Token{}, l.errorf(end, "unexpected %q in number", src[end])
		}
		return tok(Number, end)
	case c == '"':
		end, err := l.stringEnd(start)
		if err != nil {
			return lexer.Token{}, err
		}
		if err := l.noCR(start, end); err != nil {
			return lexer.Token{}, err
		}
		return tok(String, end)
	case c == '<' && strings.HasPrefix(src[start:], "<<") && start+2 < len(src) &&
		(isIdentStart(src[start+2]) || (src[start+2] == '-' && start+3 < len(src) && isIdentStart(src[start+3]))):
		end, err := l.heredocEnd(start)
		if err != nil {
			return lexer.Token{}, err
		}
		if err := l.noCR(start, end); err != nil {
			return lexer.Token{}, err
		}
		t, _ := tok(Heredoc, end)
		l.newlines(start, end)
		return t, nil
	}
	if start+1 < len(src) {
		switch src[start : start+2] {
		case "==", "!=", "<=", ">=", "&&", "||":
			return tok(Punct, start+2)
		}
	}
	if strings.IndexByte("{}[](),.=<>!:", c) >= 0 {
		return tok(Punct, start+1)
	}
	if c >= 0x80 {
		return lexer.Token{}, l.errorf(start, "unexpected character %q", firstRune(src[start:]))
	}
	return lexer.Token{}, l.errorf(start, "unexpected character %q", c)
}

const crMessage = "carriage return (\\r) in configuration: use \\n line ends"

// noCR reports a carriage return inside src[start:end], a token that starts
// on the current line and may span several.
func (l *lexState) noCR(start, end int) error {
	i := strings.IndexByte(l.src[start:end], '\r')
	if i < 0 {
		return nil
	}
	at := start + i
	line, lineStart := l.line, l.lineStart
	for k := start; k < at; k++ {
		if l.src[k] == '\n' {
			line++
			lineStart = k + 1
		}
	}
	p := lexer.Position{Filename: l.file, Offset: at, Line: line, Column: at - lineStart + 1}
	return &Error{Pos: p, Msg: crMessage, Line: lineFrom(l.src, lineStart)}
}

func firstRune(s string) rune {
	for _, r := range s {
		return r
	}
	return 0
}

// stringEnd returns the offset just past the string that starts at start. An
// interpolation ${...} is part of the string and may hold quotes.
func (l *lexState) stringEnd(start int) (int, error) {
	src := l.src
	for k := start + 1; k < len(src); k++ {
		switch src[k] {
		case '\\':
			if k+1 < len(src) && src[k+1] == '\n' {
				// A backslash does not continue a string on the next line.
				return 0, l.errorf(start, "string is not closed on its line")
			}
			k++
		case '"':
			return k + 1, nil
		case '\n':
			return 0, l.errorf(start, "string is not closed on its line")
		case '$':
			if k+1 < len(src) && src[k+1] == '{' && (k == start+1 || src[k-1] != '$') {
				end := strings.IndexByte(src[k:], '}')
				nl := strings.IndexByte(src[k:], '\n')
				if end < 0 || (nl >= 0 && nl < end) {
					return 0, l.errorf(k, "interpolation ${ is not closed on its line")
				}
				k += end
			}
		}
	}
	return 0, l.errorf(start, "string is not closed on its line")
}

// heredocEnd returns the offset just past the heredoc that starts at start:
// <<NAME or <<-NAME, a newline, lines, and a line holding only NAME.
func (l *lexState) heredocEnd(start int) (int, error) {
	src := l.src
	k := start + 2
	if src[k] == '-' {
		k++
	}
	nameStart := k
	for k < len(src) && isIdentChar(src[k]) {
		k++
	}
	name := src[nameStart:k]
	if k < len(src) && src[k] == '\r' {
		return 0, l.errorf(k, crMessage)
	}
	if k >= len(src) || src[k] != '\n' {
		return 0, l.errorf(k, "heredoc <<%s: a newline must follow the marker", name)
	}
	k++
	for k <= len(src) {
		nl := strings.IndexByte(src[k:], '\n')
		lineEnd := len(src)
		if nl >= 0 {
			lineEnd = k + nl
		}
		if strings.TrimLeft(src[k:lineEnd], " \t") == name {
			return lineEnd, nil
		}
		if nl < 0 {
			break
		}
		k = lineEnd + 1
	}
	if err := l.noCR(start, len(src)); err != nil {
		return 0, err // "NAME\r" does not close it: say why
	}
	marker := src[start+2 : nameStart]
	return 0, l.errorf(start, "heredoc <<%s%s is never closed: no line holds only %s (white space may come before it, not after)", marker, name, name)
}

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdentChar(c byte) bool { return isIdentStart(c) || isDigit(c) || c == '-' }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
