package syntax

import (
	"reflect"
	"strings"
	"testing"

	"github.com/alecthomas/participle/v2/lexer"
)

// samePlainRef checks that plainRef, the short cut for interpolations that
// are plain references, builds the tree the expression parser builds from
// the same text, and takes no text the parser reads otherwise. (The
// one difference, which the short cut has always had: blanks after the
// reference are not part of it, where the parser ends the expression at
// the end of the text.)
func samePlainRef(t *testing.T, text string) {
	t.Helper()
	pos := lexer.Position{Filename: "r.cairn", Offset: 7, Line: 3, Column: 5}
	src := "\n\n    \"${" + text + "}\"\n"
	got := plainRef(text, pos)
	if trimmed := strings.TrimRight(text, " \t"); trimmed != text {
		if short := plainRef(trimmed, pos); !reflect.DeepEqual(got, short) {
			t.Errorf("plainRef(%q) differs from plainRef(%q)", text, trimmed)
		}
		text = trimmed
	}
	want, err := parseInterpolationExpr(text, pos, src)
	if got == nil {
		return // the parser reads it (a short cut may pass over "a .b")
	}
	if err != nil {
		t.Fatalf("plainRef(%q) took it; the parser says %v", text, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("plainRef(%q): the tree differs from the parser's:\n%s", text, lineDiff(dumpExpr(want), dumpExpr(got)))
	}
}

func dumpExpr(e *Expr) string {
	f := &File{Items: []*Item{{Name: "x", Value: e}}}
	return dump(f)
}

func TestPlainRef(t *testing.T) {
	for _, text := range []string{
		"var.a", " var.a ", "\tfact.hostname\t", "a", "a.b.c", "a.b.c.d.e", "a-b.c_d9", "true", "false", " true",
		"truex", "a.", ".a", "a..b", "a.-b", "a.9", "-a", "a b", "a .b", "", "  ", "a.b()", "var.a == 1", "!a",
		"module.x.y", "a.true",
	} {
		samePlainRef(t, text)
	}
	// samePlainRef passes over a text plainRef leaves to the parser: the
	// short cut must take the plain references it is for.
	for _, text := range []string{"var.a", " var.a ", "\tfact.hostname\t", "a", "a.b.c.d.e", "a-b.c_d9", "module.x.y"} {
		if plainRef(text, lexer.Position{}) == nil {
			t.Errorf("plainRef(%q) left a plain reference to the parser", text)
		}
	}
}

// FuzzPlainRef checks plainRef against the expression parser on any one
// line of text.
func FuzzPlainRef(f *testing.F) {
	for _, s := range []string{"var.a", " fact.x ", "a.b.c.d", "true", "a..b", "a.-b", "x(y)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		if strings.ContainsAny(text, "\n\r}") {
			return
		}
		samePlainRef(t, text)
	})
}
