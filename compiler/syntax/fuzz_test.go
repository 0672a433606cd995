package syntax

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics and returns either a tree or an
// *Error, and that whatever parses formats to text that parses to the same
// tree with the same comments and formats to itself.
func FuzzParse(f *testing.F) {
	// Every configuration of the repository, the formatter's archives
	// among them.
	for _, src := range corpus(f) {
		f.Add(src)
	}
	for _, s := range []string{
		"", "a = 1", "x {", "}", "a = \"${}\"", "a = <<EOT\nx\nEOT\n", "a = [\n1, # c\n]\n",
		"a = f(# c\n<<EOT\nx\nEOT\n, 2)\n", "x /* c */ {}\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		file, err := Parse("fuzz.cairn", src)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Parse returned %T, not an *Error: %v", err, err)
			}
			if e.Pos.Line < 1 || e.Pos.Column < 1 || e.Pos.Offset < 0 || e.Pos.Offset > len(src) {
				t.Fatalf("error position %d:%d@%d out of the source: %v", e.Pos.Line, e.Pos.Column, e.Pos.Offset, err)
			}
			// Error shows the line: it must not fail on any line.
			if !strings.HasPrefix(err.Error(), "fuzz.cairn:") {
				t.Fatalf("error text %q does not start with the file's name", err)
			}
			return
		}
		out := Format(file)
		again, err := Parse("fuzz.cairn", string(out))
		if err != nil {
			t.Fatalf("the formatted text does not parse: %v\n--- input\n%q\n--- output\n%q", err, src, out)
		}
		if a, b := dump(file), dump(again); a != b {
			t.Fatalf("formatting changed the tree:\n%s\n--- input\n%q\n--- output\n%q", lineDiff(a, b), src, out)
		}
		if a, b := commentTexts(file), commentTexts(again); !reflect.DeepEqual(a, b) {
			t.Fatalf("formatting changed the comments: %q, then %q\n--- input\n%q\n--- output\n%q", a, b, src, out)
		}
		if twice := Format(again); string(twice) != string(out) {
			t.Fatalf("formatting is not idempotent:\n%s\n--- input\n%q", lineDiff(string(out), string(twice)), src)
		}
	})
}
