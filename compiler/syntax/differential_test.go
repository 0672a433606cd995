package syntax

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"
)

// sameAsOld checks that Parse and parseOld, the old participle grammar of
// items, agree on src: the same tree, or the same error (but where the old
// grammar put it at an item's name, atNameBefore).
func sameAsOld(t *testing.T, src string) {
	t.Helper()
	sameAs(t, src, "the old grammar", parseOld, atNameBefore)
}

// sameAsParticiple checks that Parse and parseParticiple, the items of
// each chunk read by participle's grammar of File rather than by
// parseItems, agree on src: the same tree, or the same error.
func sameAsParticiple(t *testing.T, src string) {
	t.Helper()
	sameAs(t, src, "participle's grammar of File", parseParticiple, nil)
}

// sameAs checks that Parse and parse, which the messages call other, agree
// on src: the same tree, or the same error, or errors that excuse, when
// set, lets differ.
func sameAs(t *testing.T, src, other string, parse func(name, src string) (*File, error), excuse func(src string, old, new error) bool) {
	t.Helper()
	got, gerr := Parse("d.cairn", src)
	want, werr := parse("d.cairn", src)
	switch {
	case werr != nil && gerr != nil:
		if gerr.Error() != werr.Error() && (excuse == nil || !excuse(src, werr, gerr)) {
			t.Errorf("Parse(%q):\nerror %q\n%s said %q", src, gerr, other, werr)
		}
	case werr != nil:
		t.Errorf("Parse(%q) succeeded; %s said %q", src, other, werr)
	case gerr != nil:
		t.Errorf("Parse(%q) = %q; %s accepted it", src, gerr, other)
	case !reflect.DeepEqual(got, want):
		t.Errorf("Parse(%q): the tree differs from that of %s:\n%s", src, other, lineDiff(dump(want), dump(got)))
	}
}

// atNameBefore reports whether the old grammar's error old is the one
// error the hand parser deliberately gives elsewhere: an "unexpected" error
// in an item inside a block, which the old grammar put at the item's name,
// whatever the mistake after it, as soon as the block had more than two
// tokens before it ("x { a = 1 b = }" was `unexpected "b"`, its lookahead
// given up), where the hand parser, like the old grammar in a block's
// first two tokens and outside blocks, puts it at the token that is wrong
// (`unexpected "}"`).
func atNameBefore(src string, old, new error) bool {
	var o, n *Error
	if !errors.As(old, &o) || !errors.As(new, &n) || !strings.HasPrefix(o.Msg, "unexpected ") ||
		!strings.HasPrefix(n.Msg, "unexpected ") || n.Pos.Offset <= o.Pos.Offset {
		return false
	}
	// The tokens up to the new error's: the text after the chunk that
	// holds it may not even lex.
	toks, err := Lex("d.cairn", src[:n.Pos.Offset])
	if err != nil {
		return false
	}
	depth := 0
	for _, t := range toks {
		if t.Type == Comment {
			continue
		}
		if t.Pos.Offset == o.Pos.Offset {
			return t.Type == Ident && o.Msg == fmt.Sprintf("unexpected %q", t.Value) && depth > 0
		}
		switch {
		case isPunct(&t, "{"), isPunct(&t, "["), isPunct(&t, "("):
			depth++
		case isPunct(&t, "}"), isPunct(&t, "]"), isPunct(&t, ")"):
			depth--
		}
	}
	return false
}

// corpus returns every configuration text the repository holds: the
// formatter's and the golden tests' archives, the fuzz corpora and the
// examples.
func corpus(t testing.TB) []string {
	var srcs []string
	for _, name := range glob(t, "testdata/format/*.txtar", "../../testdata/compiler/*.txtar", "../../testdata/script/*.txtar") {
		ar, err := txtar.ParseFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range ar.Files {
			if strings.HasSuffix(f.Name, ".cairn") || strings.HasPrefix(name, "testdata/format/") {
				srcs = append(srcs, string(f.Data))
			}
		}
	}
	for _, name := range glob(t, "testdata/fuzz/FuzzParse/*", "testdata/fuzz/FuzzParseDifferential/*", "../testdata/fuzz/FuzzCompile/*") {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			if arg, ok := strings.CutPrefix(line, "string("); ok {
				if s, err := strconv.Unquote(strings.TrimSuffix(arg, ")")); err == nil {
					srcs = append(srcs, s)
				}
			}
		}
	}
	err := filepath.WalkDir("../../examples", func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".cairn") {
			return err
		}
		data, err := os.ReadFile(p)
		srcs = append(srcs, string(data))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(srcs) < 100 {
		t.Fatalf("only %d configurations in the corpus", len(srcs))
	}
	return srcs
}

// glob returns the files that match any of the patterns.
func glob(t testing.TB, patterns ...string) []string {
	var names []string
	for _, pat := range patterns {
		m, err := filepath.Glob(pat)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, m...)
	}
	return names
}

// itemErrors are inputs that reach every error of the item parser, with the
// error: each was checked against the old grammar's (TestSameAsOld checks
// them again).
var itemErrors = []struct {
	name, in, want string
}{
	{"attribute without a value", "a =\n",
		"t.cairn:2:1: unexpected end of file"},
	{"attribute value not an expression", "a = ,\n",
		"t.cairn:1:5: unexpected \",\"\n  a = ,\n      ^"},
	{"name alone", "x\ny = 1\n",
		"t.cairn:2:1: unexpected \"y\"\n  y = 1\n  ^"},
	{"missing = or {", "x 1\n",
		"t.cairn:1:3: unexpected number 1\n  x 1\n    ^"},
	{"label that is not a string", "x y {\n}\n",
		"t.cairn:1:3: unexpected \"y\"\n  x y {\n    ^"},
	{"label that is a number", "x \"a\" 2 {\n}\n",
		"t.cairn:1:7: unexpected number 2\n  x \"a\" 2 {\n        ^"},
	{"labels then =", "x \"a\" = 1\n",
		"t.cairn:1:7: unexpected \"=\"\n  x \"a\" = 1\n        ^"},
	{"block without a name", "\"a\" {\n}\n",
		"t.cairn:1:1: unexpected string \"a\"\n  \"a\" {\n  ^"},
	{"item that is not a name", "x {\n  1 = 2\n}\n",
		"t.cairn:2:3: unexpected number 1\n    1 = 2\n    ^"},
	{"string in a body", "x {\n  \"a\"\n}\n",
		"t.cairn:2:3: unexpected string \"a\"\n    \"a\"\n    ^"},
	{"missing = in a body", "x {\n  a 1\n}\n",
		"t.cairn:2:5: unexpected number 1\n    a 1\n      ^"},
	{"nested block missing {", "x {\n  y \"l\" z\n}\n",
		"t.cairn:2:9: unexpected \"z\"\n    y \"l\" z\n          ^"},
	{"error in a nested block", "x {\n  y {\n    z {\n      a = = 1\n    }\n  }\n}\n",
		"t.cairn:4:11: unexpected \"=\"\n        a = = 1\n            ^"},
	{"two values", "x {\n  a = 1 2\n}\n",
		"t.cairn:2:9: unexpected number 2\n    a = 1 2\n          ^"},
	{"block after a value", "a = 1 {\n}\n",
		"t.cairn:1:7: unexpected \"{\"\n  a = 1 {\n        ^"},
	{"brace in a body", "x {\n  {\n  }\n}\n",
		"t.cairn:2:3: unexpected \"{\"\n    {\n    ^"},
	{"bracket in a body", "x {\n  [1]\n}\n",
		"t.cairn:2:3: unexpected \"[\"\n    [1]\n    ^"},
	{"unterminated block", "x {\n  a = 1\n",
		"t.cairn:1:3: \"{\" is never closed\n  x {\n    ^"},
	{"unterminated nested block", "x {\n  y {\n  a = 1\n}\n",
		"t.cairn:1:3: \"{\" is never closed\n  x {\n    ^"},
	{"stray }", "x {\n}\n}\n",
		"t.cairn:3:1: \"}\" closes nothing\n  }\n  ^"},
	{"block closed by ]", "x {\n  a = 1\n]\n",
		"t.cairn:3:1: \"]\" does not match \"{\" at 1:3\n  ]\n  ^"},
	{"error in the second chunk", "x {\n}\ny {\n  a\n}\n",
		"t.cairn:5:1: unexpected \"}\"\n  }\n  ^"},
	{"error after an object value", "a = {} == {}\n",
		"t.cairn:1:8: unexpected \"==\"\n  a = {} == {}\n         ^"},
	// The old grammar put these at the name of the item ("b", "z"),
	// whatever the mistake after it, once the block had more than two
	// tokens before it: the hand parser puts them at the token that is
	// wrong, as the old grammar did in a block's first two tokens ("x {
	// a 1 }") and outside blocks.
	{"missing value in a later item", "x {\n  a = 1\n  b =\n}\n",
		"t.cairn:4:1: unexpected \"}\"\n  }\n  ^"},
	{"name alone in a later item", "x {\n  a = 1\n  b\n}\n",
		"t.cairn:4:1: unexpected \"}\"\n  }\n  ^"},
	{"missing = in a later item", "x {\n  a = 1\n  b 1\n}\n",
		"t.cairn:3:5: unexpected number 1\n    b 1\n      ^"},
	{"later block missing {", "x {\n  y {}\n  z \"l\" \"m\"\n}\n",
		"t.cairn:4:1: unexpected \"}\"\n  }\n  ^"},
	{"first item of a labelled block", "x \"l\" {\n  b\n}\n",
		"t.cairn:3:1: unexpected \"}\"\n  }\n  ^"},
	{"blocks nested too deep", strings.Repeat("x {\n", MaxNesting+1) + strings.Repeat("}\n", MaxNesting+1),
		"t.cairn:101:3: brackets nest more than 100 deep\n  x {\n    ^"},
}

func TestItemErrors(t *testing.T) {
	for _, tt := range itemErrors {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("t.cairn", tt.in)
			if err == nil {
				t.Fatalf("Parse(%q) succeeded", tt.in)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("Parse(%q):\ngot  %q\nwant %q", tt.in, got, tt.want)
			}
			sameAsOld(t, tt.in)
		})
	}
	deep := strings.Repeat("x {\n", MaxNesting) + strings.Repeat("}\n", MaxNesting)
	if _, err := Parse("t.cairn", deep); err != nil {
		t.Errorf("blocks nested %d deep: %v", MaxNesting, err)
	}
}

// TestSameAsOld checks the hand parser of items against the old grammar on
// every configuration of the repository.
func TestSameAsOld(t *testing.T) {
	for _, src := range corpus(t) {
		sameAsOld(t, src)
	}
	for _, src := range []string{"", "x {}", "x \"a\" \"b\" {}", "x <<EOT\nl\nEOT\n{\n}\n", "x {\n  y {}\n  a = 1\n}\n# c\n"} {
		sameAsOld(t, src)
	}
}

// TestSameAsParticiple checks Parse against participle's grammar of File
// on every configuration of the repository and every item error.
func TestSameAsParticiple(t *testing.T) {
	for _, src := range corpus(t) {
		sameAsParticiple(t, src)
	}
	for _, tt := range itemErrors {
		sameAsParticiple(t, tt.in)
	}
}

// FuzzParseDifferential checks the hand parser of items against the old
// grammar: the same tree for what the old grammar accepts, the same error
// (FILE:LINE:COL and message) for what it rejects.
func FuzzParseDifferential(f *testing.F) {
	for _, src := range corpus(f) {
		f.Add(src)
	}
	for _, tt := range itemErrors {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, src string) {
		sameAsOld(t, src)
		sameAsParticiple(t, src)
	})
}
