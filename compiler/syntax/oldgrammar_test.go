package syntax

import (
	"github.com/alecthomas/participle/v2"
	"github.com/alecthomas/participle/v2/lexer"
)

// The grammar that parsed items before item.go did, participle's reflective
// one, kept to check the hand parser against: the same tree for what it
// accepts, the same error for what it rejects.

type oldFile struct {
	Items []*oldItem `parser:"@@*"`
}

type oldItem struct {
	Pos    lexer.Position
	EndPos lexer.Position

	Name  string `parser:"@Ident"`
	Value *Expr  `parser:"( '=' @@"`

	Labels []*oldStr   `parser:"| @@* '{'"`
	Body   []*oldItem  `parser:"  @@*"`
	Close  *oldClosing `parser:"  @@ )"`
}

type oldClosing struct {
	Pos  lexer.Position
	Text string `parser:"@'}'"`
}

type oldStr struct {
	Pos lexer.Position
	Raw string `parser:"@(String | Heredoc)"`
}

var oldParser = participle.MustBuild[oldFile](
	participle.Lexer(definition{}),
	participle.Elide("Comment"),
	participle.UseLookahead(2),
)

// fileParser is participle's grammar of File, Item*, with Item (and Expr)
// parsing themselves through participle.Parseable: what Parse read files
// with before parseItems; TestSameAsParticiple compares the two.
var fileParser = participle.MustBuild[File](
	participle.Lexer(definition{}),
	participle.Elide("Comment"),
	participle.UseLookahead(2),
)

// parseParticiple is Parse through fileParser.
func parseParticiple(name, src string) (*File, error) {
	return parseWith(name, src, upgraded(func(peek *lexer.PeekingLexer) ([]*Item, error) {
		f, err := fileParser.ParseFromLexer(peek)
		if err != nil {
			return nil, err
		}
		return f.Items, nil
	}))
}

// upgraded is a chunk parser of parseWith that reads the chunk's tokens
// through participle's PeekingLexer, with parse.
func upgraded(parse func(*lexer.PeekingLexer) ([]*Item, error)) func(lexer.Lexer) ([]*Item, error) {
	return func(code lexer.Lexer) ([]*Item, error) {
		peek, err := lexer.Upgrade(code)
		if err != nil {
			return nil, err
		}
		return parse(peek)
	}
}

// parseOld is Parse with the old grammar.
func parseOld(name, src string) (*File, error) {
	return parseWith(name, src, upgraded(func(peek *lexer.PeekingLexer) ([]*Item, error) {
		f, err := oldParser.ParseFromLexer(peek)
		if err != nil {
			return nil, err
		}
		return fromOld(f.Items), nil
	}))
}

func fromOld(olds []*oldItem) []*Item {
	if olds == nil {
		return nil
	}
	items := make([]*Item, len(olds))
	for i, o := range olds {
		it := &Item{Pos: o.Pos, EndPos: o.EndPos, Name: o.Name, Value: o.Value, Body: fromOld(o.Body)}
		if o.Labels != nil {
			it.Labels = make([]*Str, len(o.Labels))
			for j, l := range o.Labels {
				it.Labels[j] = &Str{Pos: l.Pos, Raw: l.Raw}
			}
		}
		if o.Close != nil {
			it.Close = &Closing{Pos: o.Close.Pos, Text: o.Close.Text}
		}
		items[i] = it
	}
	return items
}
