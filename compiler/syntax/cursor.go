package syntax

import (
	"github.com/alecthomas/participle/v2"
	"github.com/alecthomas/participle/v2/lexer"
)

// cursor is what the hand parsers of items and expressions read: the
// tokens of one top-level block (or of one interpolation), comments left
// out, ending with an EOF token. Parse fills one buffer a block at a time
// and uses it again for the next: participle's PeekingLexer, which it
// replaces, took a fresh buffer for every block (grown a token at a time:
// 16 MB of a 10,000-resource compile's 100 MB of allocation) and its
// grammar of File a parse context and reflect values for each.
type cursor struct {
	toks []lexer.Token
	i    int
}

// Peek returns the next token; at the end, the EOF token.
func (c *cursor) Peek() *lexer.Token { return &c.toks[c.i] }

// Next consumes the next token and returns it; at the end, it returns the
// EOF token and stays there.
func (c *cursor) Next() *lexer.Token {
	t := &c.toks[c.i]
	if t.Type != lexer.EOF {
		c.i++
	}
	return t
}

// fill reads the tokens of lex into c, up to and with the EOF token,
// reusing c's buffer.
func (c *cursor) fill(lex lexer.Lexer) error {
	c.toks, c.i = c.toks[:0], 0
	for {
		t, err := lex.Next()
		if err != nil {
			return err
		}
		c.toks = append(c.toks, t)
		if t.Type == lexer.EOF {
			return nil
		}
	}
}

// parseItems parses the items of one chunk: items while the next token
// is a name, then the end, as participle's grammar File = Item* did (an
// item's own error is the deepest, and was what participle returned).
func parseItems(c *cursor) ([]*Item, error) {
	var items []*Item
	for c.Peek().Type == Ident {
		it := &Item{}
		if err := parseItem(c, it); err != nil {
			return nil, err
		}
		items = append(items, it)
	}
	if t := c.Peek(); t.Type != lexer.EOF {
		return nil, &participle.UnexpectedTokenError{Unexpected: *t}
	}
	return items, nil
}

// fromPeeking is a cursor over the tokens lex has left, for the
// participle.Parseable methods (Item.Parse, Expr.Parse), which participle's
// grammars call: only the tests' (fileParser, and the old grammar they
// compare the hand parser with); lex is where it was. Every token stream the parsers see has
// its comments taken out before (codeLexer, interpLexer), so that lex's
// elided tokens are none.
func fromPeeking(lex *lexer.PeekingLexer) *cursor {
	cp := lex.MakeCheckpoint()
	c := &cursor{}
	for {
		t := lex.Next()
		c.toks = append(c.toks, *t)
		if t.EOF() {
			break
		}
	}
	lex.LoadCheckpoint(cp)
	return c
}

// advance moves lex past the tokens c consumed.
func (c *cursor) advance(lex *lexer.PeekingLexer) {
	for range c.i {
		lex.Next()
	}
}
