package syntax

import (
	"github.com/alecthomas/participle/v2"
	"github.com/alecthomas/participle/v2/lexer"
)

// Items, like expressions, are parsed by hand and plugged into participle
// as a participle.Parseable: participle's grammar is left with File alone
// (Item*). Its reflective parser branched at every disjunction of an item
// (two tokens of lookahead) and allocated a parse context, deferred field
// sets and reflect values for each, which made items most of a compile's
// parse time and memory; this parser reads each token once and allocates
// only the tree.
//
// The errors are those participle's grammar gave: "unexpected TOKEN" at the
// first token that cannot continue an item, with no "(expected ...)" (the
// grammar's own errors never said it). The codeLexer has already reported
// every bracket left open, closed by the wrong one or closing nothing, so a
// block's body always ends at its "}".

// itemGrammar is the EBNF of Item, as Grammar shows it.
const itemGrammar = `Item      = Ident ( "=" Expr | String* "{" Item* "}" ) .
`

// Parse implements participle.Parseable: one attribute or block, or
// NextMatch if the next token cannot start one. It is for participle's
// grammar of File, which only the tests build (fileParser; Grammar shows
// its EBNF, fileGrammar); Parse reads items with parseItems.
func (it *Item) Parse(lex *lexer.PeekingLexer) error {
	if lex.Peek().Type != Ident {
		return participle.NextMatch
	}
	c := fromPeeking(lex)
	err := parseItem(c, it)
	c.advance(lex)
	return err
}

// parseItem parses the item that starts at the next token, an Ident, into
// it. Blocks nest no deeper than the codeLexer lets brackets nest
// (MaxNesting), which bounds the recursion.
func parseItem(lex *cursor, it *Item) error {
	t := lex.Next()
	it.Pos, it.Name = t.Pos, t.Value
	t = lex.Peek()
	if isPunct(t, "=") {
		lex.Next()
		e, err := newExpr(lex)
		if err != nil {
			if err == participle.NextMatch {
				return unexpected(lex.Peek(), "")
			}
			return err
		}
		it.Value = e
		it.EndPos = lex.Peek().Pos
		return nil
	}
	// The labels: strings, or heredocs, which the grammar has always let
	// stand for them.
	for t.Type == String || t.Type == Heredoc {
		lex.Next()
		it.Labels = append(it.Labels, &Str{Pos: t.Pos, Raw: t.Value})
		t = lex.Peek()
	}
	if !isPunct(t, "{") {
		return unexpected(t, "")
	}
	lex.Next()
	for t = lex.Peek(); t.Type == Ident; t = lex.Peek() {
		child := &Item{}
		if err := parseItem(lex, child); err != nil {
			return err
		}
		it.Body = append(it.Body, child)
	}
	if !isPunct(t, "}") {
		return unexpected(t, "")
	}
	lex.Next()
	it.Close = &Closing{Pos: t.Pos, Text: t.Value}
	it.EndPos = lex.Peek().Pos
	return nil
}
