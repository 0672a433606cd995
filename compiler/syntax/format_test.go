package syntax

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/alecthomas/participle/v2/lexer"
	"github.com/rogpeppe/go-internal/txtar"
)

var update = flag.Bool("update", false, "rewrite the want.cairn sections of testdata/format/*.txtar")

// TestFormatGolden formats the in.cairn section of every
// testdata/format/*.txtar and compares with its want.cairn section.
func TestFormatGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/format/*.txtar")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no golden files in testdata/format")
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			ar, err := txtar.ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			in, want := section(ar, "in.cairn"), section(ar, "want.cairn")
			if in == nil {
				t.Fatalf("%s: no in.cairn section", file)
			}
			got := checkFormat(t, "in.cairn", string(in.Data))
			if *update {
				if want == nil {
					ar.Files = append(ar.Files, txtar.File{Name: "want.cairn"})
					want = &ar.Files[len(ar.Files)-1]
				}
				want.Data = got
				if err := os.WriteFile(file, txtar.Format(ar), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if want == nil {
				t.Fatalf("%s: no want.cairn section (run with -update)", file)
			}
			if string(got) != string(want.Data) {
				t.Errorf("Format(in.cairn) differs from want.cairn:\n%s", lineDiff(string(want.Data), string(got)))
			}
			// The canonical form is a fixed point.
			checkFormat(t, "want.cairn", string(want.Data))
		})
	}
}

func section(ar *txtar.Archive, name string) *txtar.File {
	for i := range ar.Files {
		if ar.Files[i].Name == name {
			return &ar.Files[i]
		}
	}
	return nil
}

// checkFormat formats src, which must parse, and checks the properties
// every output must have: it parses to the same tree, keeps every comment
// in order, ends in one newline, and formats to itself.
func checkFormat(t *testing.T, name, src string) []byte {
	t.Helper()
	f, err := Parse(name, src)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	out := Format(f)
	g, err := Parse(name, string(out))
	if err != nil {
		t.Fatalf("the formatted text does not parse: %v\n--- input\n%s--- output\n%s", err, src, out)
	}
	if a, b := dump(f), dump(g); a != b {
		t.Fatalf("formatting changed the tree:\n%s\n--- input\n%s--- output\n%s", lineDiff(a, b), src, out)
	}
	if a, b := commentTexts(f), commentTexts(g); !reflect.DeepEqual(a, b) {
		t.Fatalf("formatting changed the comments:\nbefore %q\nafter  %q\n--- output\n%s", a, b, out)
	}
	if len(out) > 0 && (!strings.HasSuffix(string(out), "\n") || strings.HasSuffix(string(out), "\n\n")) {
		t.Fatalf("the output does not end in exactly one newline: %q", out)
	}
	if again := Format(g); string(again) != string(out) {
		t.Fatalf("formatting is not idempotent:\n%s\n--- input\n%s", lineDiff(string(out), string(again)), src)
	}
	return out
}

func commentTexts(f *File) []string {
	var cs []string
	for _, c := range f.Comments {
		cs = append(cs, c.Value)
	}
	return cs
}

var positionType = reflect.TypeFor[lexer.Position]()

// dump prints a syntax tree without its positions, for comparing trees.
func dump(f *File) string {
	var b strings.Builder
	dumpValue(&b, reflect.ValueOf(f.Items), 0)
	return b.String()
}

func dumpValue(b *strings.Builder, v reflect.Value, depth int) {
	ind := strings.Repeat("  ", depth)
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			b.WriteString("nil\n")
			return
		}
		dumpValue(b, v.Elem(), depth)
	case reflect.Slice:
		fmt.Fprintf(b, "[%d]\n", v.Len())
		for i := range v.Len() {
			fmt.Fprintf(b, "%s- ", ind)
			dumpValue(b, v.Index(i), depth+1)
		}
	case reflect.Struct:
		fmt.Fprintf(b, "%s\n", v.Type().Name())
		for i := range v.NumField() {
			fv, ft := v.Field(i), v.Type().Field(i)
			if ft.Type == positionType {
				continue
			}
			if fv.Kind() == reflect.Pointer && fv.IsNil() || fv.Kind() == reflect.Slice && fv.Len() == 0 ||
				fv.Kind() == reflect.String && fv.String() == "" {
				continue
			}
			fmt.Fprintf(b, "%s  %s: ", ind, ft.Name)
			dumpValue(b, fv, depth+2)
		}
	default:
		fmt.Fprintf(b, "%#v\n", v.Interface())
	}
}

// lineDiff shows two texts line by line where they differ.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := range max(len(w), len(g)) {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		mark := " "
		if wl != gl || i >= len(w) || i >= len(g) {
			mark = "!"
		}
		fmt.Fprintf(&b, "%s %3d want %q\n%s     got  %q\n", mark, i+1, wl, mark, gl)
	}
	return b.String()
}

// TestFormatProperties checks small inputs for one property each, where a
// golden file would hide what matters.
func TestFormatProperties(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty file", "", ""},
		{"only blank lines", "\n\n  \n", ""},
		{"leading blank lines dropped", "\n\n\na = 1\n", "a = 1\n"},
		{"final newline added", "a = 1", "a = 1\n"},
		{"trailing blank lines dropped", "a = 1\n\n\n", "a = 1\n"},
		{"blank lines never doubled", "a = 1\n\n\n\nb = 2\n", "a = 1\n\nb = 2\n"},
		{"no blank after brace", "x {\n\n  a = 1\n}\n", "x {\n  a = 1\n}\n"},
		{"no blank before brace", "x {\n  a = 1\n\n}\n", "x {\n  a = 1\n}\n"},
		{"empty block", "x \"l\" {\n\n}\n", "x \"l\" {}\n"},
		{"one item a line", "x { a = 1 b = 2 }\n", "x {\n  a = 1\n  b = 2\n}\n"},
		{"alignment", "a = 1\nlong = 2\n", "a    = 1\nlong = 2\n"},
		{"blank line ends a run", "a = 1\n\nlong = 2\n", "a = 1\n\nlong = 2\n"},
		{"comment ends a run", "a = 1\n# c\nlong = 2\n", "a = 1\n# c\nlong = 2\n"},
		{"block ends a run", "a = 1\nb {}\nlong = 2\n", "a = 1\nb {}\nlong = 2\n"},
		{"multi-line attribute ends a run", "a = 1\nl = [\n1]\nlong = 2\n", "a = 1\nl = [\n  1,\n]\nlong = 2\n"},
		{"operators", "a = !x&&y||z==1&&w<=2\n", "a = !x && y || z == 1 && w <= 2\n"},
		{"calls", "a = f( 1 ,g(x) , )\n", "a = f(1, g(x))\n"},
		{"parentheses kept", "a = ! ( x || y )\n", "a = !(x || y)\n"},
		{"references", "a = var . x\n", "a = var.x\n"},
		{"numbers as written", "a = [-1, 2.50, 007]\n", "a = [-1, 2.50, 007]\n"},
		{"strings as written", "a = \"\\u00e9 $${x} \\t\"\n", "a = \"\\u00e9 $${x} \\t\"\n"},
		{"inline list", "a = [ 1,2 , ]\n", "a = [1, 2]\n"},
		{"empty list spanning lines", "a = [\n]\n", "a = []\n"},
		{"inline object", "a = {x=1 \"y z\"=2}\n", "a = { x = 1, \"y z\" = 2 }\n"},
		{"empty object", "a = {  }\n", "a = {}\n"},
		{"trailing comment", "a = 1    # c\n", "a = 1 # c\n"},
		{"own-line comment re-indented", "x {\n        # c\n a = 1\n}\n", "x {\n  # c\n  a = 1\n}\n"},
		{"comment inside expression moves to the line's end", "a = x && # why\n  y\nb = 2\n", "a = x && y # why\nb = 2\n"},
		{"second line comment gets its own line", "a = f(1, # one\n 2) # two\n", "a = f(1, 2) # one\n# two\n"},
		{"comment in a header", "x /* c */ \"l\" {\n  a = 1\n}\n", "x \"l\" { /* c */\n  a = 1\n}\n"},
		{"comment in an empty block", "x {\n  # c\n}\n", "x {\n  # c\n}\n"},
		{"comment after an empty block", "x {} # c\n", "x {} # c\n"},
		{"block comment kept verbatim", "/* a\n     b */\nx = 1\n", "/* a\n     b */\nx = 1\n"},
		{"heredoc body verbatim", "x {\na = <<EOT\n  b\n\tc\nEOT\n}\n", "x {\n  a = <<EOT\n  b\n\tc\nEOT\n}\n"},
		{"heredoc in a call", "a = f(<<EOT\nx\nEOT\n, 1)\n", "a = f(<<EOT\nx\nEOT\n, 1)\n"},
		{"heredoc ending a list", "a = [<<EOT\nx\nEOT\n]\n", "a = [\n  <<EOT\nx\nEOT\n]\n"},
		{"comment before a heredoc", "a = # c\n<<EOT\nx\nEOT\n", "a = # c\n  <<EOT\nx\nEOT\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := checkFormat(t, "t.cairn", tt.in)
			if string(got) != tt.want {
				t.Errorf("Format(%q):\n%s", tt.in, lineDiff(tt.want, string(got)))
			}
		})
	}
}

func TestFormatSource(t *testing.T) {
	got, err := FormatSource("a.cairn", "x {a=1}")
	if err != nil || string(got) != "x {\n  a = 1\n}\n" {
		t.Errorf("FormatSource = %q, %v", got, err)
	}
	_, err = FormatSource("a.cairn", "x {")
	var e *Error
	if err == nil || !errors.As(err, &e) || e.Pos.Line != 1 || e.Pos.Column != 3 {
		t.Errorf("FormatSource of an unclosed block: err = %v, want an *Error at 1:3", err)
	}
}

// TestDumpSeesDifferences makes sure the tree comparison the formatting
// tests rely on can fail.
func TestDumpSeesDifferences(t *testing.T) {
	pairs := [][2]string{
		{"a = 1\n", "a = 2\n"},
		{"a = x || y\n", "a = x && y\n"},
		{"x \"a\" {}\n", "x \"b\" {}\n"},
		{"a = [1, 2]\n", "a = [[1], 2]\n"},
		{"a = \"${x}\"\n", "a = \"${y}\"\n"},
		{"a = (x)\n", "a = x\n"},
	}
	for _, p := range pairs {
		f, err := Parse("a", p[0])
		if err != nil {
			t.Fatal(err)
		}
		g, err := Parse("b", p[1])
		if err != nil {
			t.Fatal(err)
		}
		if dump(f) == dump(g) {
			t.Errorf("dump does not tell %q from %q", p[0], p[1])
		}
	}
	f, _ := Parse("a", "a = \"${x}\"\n")
	g, _ := Parse("a", "\n\na   =    \"${x}\"\n")
	if dump(f) != dump(g) {
		t.Errorf("dump differs on positions alone:\n%s", lineDiff(dump(f), dump(g)))
	}
}

// TestFormatTricky checks the formatting properties on inputs that mix
// heredocs, comments and brackets in unusual ways.
func TestFormatTricky(t *testing.T) {
	for _, in := range []string{
		"x <<A\na\nA\n \"l\" <<B\nb\nB\n {}\n",
		"x <<A\na\nA\n # c\n {\n}\n",
		"a = (<<EOT\nx\nEOT\n)\n",
		"a = <<EOT\nx\nEOT\n || b\n",
		"a = <<-EOT\n  x\n    EOT\n",
		"a = <<EOT\n  EOT\nb = 1\n",
		"a = {\n  k = <<EOT\nx\nEOT\n, j = 2 }\n",
		"a = { k = <<EOT\nx\nEOT\n }\n",
		"a = f(<<A\nx\nA\n, <<B\ny\nB\n)\n",
		"a = f(<<A\nx\nA\n# c\n, 2)\n",
		"a = f(/* x */ <<A\nx\nA\n, /* y */ <<B\ny\nB\n)\n",
		"a = [\n<<A\nx\nA\n # c\n]\n",
		"a = [<<A\nx\nA\n, # c\n2]\n",
		"a = 1 /* x\ny */\nbb = 2 # z\nc = 3 # w\n",
		"a = 1 /* x\ny */ b = 2\n",
		"x {} /* c */ y = 1\n",
		"x { a = 1 } /* c */ # d\n",
		"x \"a\" /* c */ \"b\" {}\n",
		"a = 1 # x\n\n\n# y\n\n\nb = 2\n",
		"a = f(1, # x\n\n\n 2) # y\n\nb = 1\n",
		"a = [ # x\n# y\n\n1, # z\n\n\n# w\n2 /* v */ , /* u */\n# t\n]\n",
		"a = [[[\n1]]]\n",
		"a = [1, [\n2], 3]\n",
		"a = { \"é\" = 1, b = 2 }\nccc = { x = 1 }\n",
		"a = {\n\"é\" = 1\nbb = 2\n}\n",
		"a = 1 // x */ y\n/* # */ b = 2\n",
		"/* a */ /* b */ # c\n/* d */\n",
		"x {\n  /* a */ }\n",
		"x { /* a */ }\n",
		"x {\n} # a\n# b\n",
		"a = f(\n# only\n)\n",
		"a = [ /* a\nb */ ]\n",
		"a = f(/* a\nb */ 1, /* c\nd */ 2)\n",
		"a = !/* c */x\n",
		"a = x /* c */ == /* d */ y\n",
		"a = (\n# c\nx)\n",
		"a = var.\n# c\nx\n",
		"x {\n  y {\n    z {\n      a = [\n        { b = [\n          1,\n        ] },\n      ]\n    }\n  }\n}\n",
	} {
		t.Run("", func(t *testing.T) { checkFormat(t, "t.cairn", in) })
	}
}
