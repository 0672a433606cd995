package syntax

import "github.com/alecthomas/participle/v2/lexer"

// File is one parsed configuration file.
type File struct {
	// Name is the file's name as errors show it.
	Name  string
	Items []*Item `parser:"@@*"`
	// Comments are the file's comments in order, for the formatter.
	Comments []lexer.Token `parser:""`
	// Src is the file's text.
	Src string `parser:""`
}

// Item is an attribute (NAME = EXPR) or a block (TYPE "LABEL"... { ITEMS }).
type Item struct {
	Pos    lexer.Position
	EndPos lexer.Position

	Name  string `parser:"@Ident"`
	Value *Expr  `parser:"( '=' @@"`

	Labels []*Str   `parser:"| @@* '{'"`
	Body   []*Item  `parser:"  @@*"`
	Close  *Closing `parser:"  @@ )"`
}

// IsBlock reports whether it is a block rather than an attribute.
func (it *Item) IsBlock() bool { return it.Value == nil }

// Closing is the closing brace of a block, kept for its position.
type Closing struct {
	Pos  lexer.Position
	Text string `parser:"@'}'"`
}

// Expr is an expression: one or more operands joined by ||.
type Expr struct {
	Pos    lexer.Position
	EndPos lexer.Position

	Left  *And   `parser:"@@"`
	Right []*And `parser:"( '||' @@ )*"`
}

// And is operands joined by &&.
type And struct {
	Pos   lexer.Position
	Left  *Compare   `parser:"@@"`
	Right []*Compare `parser:"( '&&' @@ )*"`
}

// Compare is an operand, or two compared.
type Compare struct {
	Pos   lexer.Position
	Left  *Unary `parser:"@@"`
	Op    string `parser:"( @( '==' | '!=' | '<=' | '>=' | '<' | '>' )"`
	Right *Unary `parser:"  @@ )?"`
}

// Unary is a negated operand or a primary.
type Unary struct {
	Pos     lexer.Position
	Not     *Unary   `parser:"  '!' @@"`
	Primary *Primary `parser:"| @@"`
}

// Primary is a literal, a list, an object, a call, a reference or an
// expression in parentheses.
type Primary struct {
	Pos    lexer.Position
	EndPos lexer.Position

	Number *string `parser:"  @Number"`
	Str    *Str    `parser:"| @@"`
	Bool   *string `parser:"| @( 'true' | 'false' )"`
	List   *List   `parser:"| @@"`
	Object *Object `parser:"| @@"`
	Call   *Call   `parser:"| @@"`
	Ref    *Ref    `parser:"| @@"`
	Paren  *Expr   `parser:"| '(' @@ ')'"`
}

// Str is a quoted string or a heredoc, as written; Template holds its parts
// once the parser has read its interpolations.
type Str struct {
	Pos      lexer.Position
	Raw      string    `parser:"@(String | Heredoc)"`
	Template *Template `parser:""`
}

// List is [EXPR, ...].
type List struct {
	Pos    lexer.Position
	EndPos lexer.Position
	Items  []*Expr `parser:"'[' ( @@ ( ',' @@ )* ','? )? ']'"`
}

// Object is { KEY = EXPR ... }.
type Object struct {
	Pos    lexer.Position
	EndPos lexer.Position
	Items  []*ObjectItem `parser:"'{' ( @@ ','? )* '}'"`
}

// ObjectItem is one KEY = EXPR of an object.
type ObjectItem struct {
	Pos   lexer.Position
	Key   string `parser:"( @Ident | @String )"`
	Value *Expr  `parser:"'=' @@"`
}

// Call is NAME(ARGS).
type Call struct {
	Pos  lexer.Position
	Name string  `parser:"@Ident '('"`
	Args []*Expr `parser:"( @@ ( ',' @@ )* ','? )? ')'"`
}

// Ref is a dotted reference: var.NAME, fact.NAME.
type Ref struct {
	Pos   lexer.Position
	Parts []string `parser:"@Ident ( '.' @Ident )*"`
}
