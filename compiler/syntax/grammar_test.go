package syntax

import (
	"os"
	"strings"
	"testing"
)

// TestGrammar checks that the grammar docs/language.md shows is Grammar(),
// and that the part of it participle parses, File, is what participle's
// grammar says.
func TestGrammar(t *testing.T) {
	data, err := os.ReadFile("../../docs/language.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(data), "The grammar, in the EBNF of participle")
	if !ok {
		t.Fatal("docs/language.md does not introduce the grammar")
	}
	_, block, ok := strings.Cut(after, "```\n")
	if !ok {
		t.Fatal("docs/language.md: no code block after the grammar's introduction")
	}
	block, _, ok = strings.Cut(block, "```\n")
	if !ok {
		t.Fatal("docs/language.md: the grammar's code block is not closed")
	}
	if got := Grammar(); block != got {
		t.Errorf("docs/language.md shows\n%s\nGrammar() is\n%s", block, got)
	}
	if got, want := strings.Join(strings.Fields(fileParser.String()), " "), strings.Join(strings.Fields(fileGrammar), " "); got != want {
		t.Errorf("participle's grammar is %q, fileGrammar says %q", got, want)
	}
}
