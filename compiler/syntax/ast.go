package syntax

import (
	"sync"

	"github.com/alecthomas/participle/v2/lexer"
)

// File is one parsed configuration file.
type File struct {
	// Name is the file's name as errors show it.
	Name  string
	Items []*Item `parser:"@@*"`
	// Comments are the file's comments in order, for the formatter.
	Comments []lexer.Token `parser:""`
	// Src is the file's text.
	Src string `parser:""`
	// lines indexes Src's lines for Line; nil in a File not made by Parse.
	lines *lineIndex `parser:""`
}

// lineIndex is where each line of a file starts, found once.
type lineIndex struct {
	once   sync.Once
	starts []int
}

// Line returns line n (1-based) of the file without its line end, or "".
// It costs no more for the last line than for the first: errors on every
// line of a large file each need theirs.
func (f *File) Line(n int) string {
	if f.lines == nil {
		return LineAt(f.Src, n)
	}
	f.lines.once.Do(func() {
		f.lines.starts = append(f.lines.starts, 0)
		for i := 0; i < len(f.Src); i++ {
			if f.Src[i] == '\n' {
				f.lines.starts = append(f.lines.starts, i+1)
			}
		}
	})
	if n < 1 || n > len(f.lines.starts) {
		return ""
	}
	return lineFrom(f.Src, f.lines.starts[n-1])
}

// Item is an attribute (NAME = EXPR) or a block (TYPE "LABEL"... { ITEMS }).
// It and the types below are built by the hand parsers of item.go and
// expr.go, not from struct tags.
type Item struct {
	Pos    lexer.Position
	EndPos lexer.Position

	Name  string
	Value *Expr

	Labels []*Str
	Body   []*Item
	Close  *Closing
}

// IsBlock reports whether it is a block rather than an attribute.
func (it *Item) IsBlock() bool { return it.Value == nil }

// Closing is the closing brace of a block, kept for its position.
type Closing struct {
	Pos  lexer.Position
	Text string
}

// Expr is an expression: one or more operands joined by ||.
type Expr struct {
	Pos    lexer.Position
	EndPos lexer.Position

	Left  *And
	Right []*And
}

// And is operands joined by &&.
type And struct {
	Pos   lexer.Position
	Left  *Compare
	Right []*Compare
}

// Compare is an operand, or two compared.
type Compare struct {
	Pos   lexer.Position
	Left  *Unary
	Op    string
	Right *Unary
}

// Unary is a negated operand or a primary.
type Unary struct {
	Pos     lexer.Position
	Not     *Unary
	Primary *Primary
}

// Primary is a literal, a list, an object, a call, a reference or an
// expression in parentheses.
type Primary struct {
	Pos    lexer.Position
	EndPos lexer.Position

	Number *string
	Str    *Str
	Bool   *string
	List   *List
	Object *Object
	Call   *Call
	Ref    *Ref
	Paren  *Expr
}

// Str is a quoted string or a heredoc, as written; Template holds its parts
// once the parser has read its interpolations.
type Str struct {
	Pos      lexer.Position
	Raw      string
	Template *Template
}

// List is [EXPR, ...].
type List struct {
	Pos    lexer.Position
	EndPos lexer.Position
	Items  []*Expr
}

// Object is { KEY = EXPR ... }.
type Object struct {
	Pos    lexer.Position
	EndPos lexer.Position
	Items  []*ObjectItem
}

// ObjectItem is one KEY = EXPR of an object.
type ObjectItem struct {
	Pos   lexer.Position
	Key   string
	Value *Expr
}

// Call is NAME(ARGS).
type Call struct {
	Pos  lexer.Position
	Name string
	Args []*Expr
}

// Ref is a dotted reference: var.NAME, fact.NAME.
type Ref struct {
	Pos   lexer.Position
	Parts []string
}
