package syntax

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/alecthomas/participle/v2/lexer"
)

var typeNames = map[lexer.TokenType]string{
	lexer.EOF: "EOF", Comment: "Comment", Ident: "Ident", Number: "Number",
	String: "String", Heredoc: "Heredoc", Punct: "Punct",
}

// tokenString shows a token as TYPE "VALUE" LINE:COL@OFFSET.
func tokenString(t lexer.Token) string {
	return fmt.Sprintf("%s %q %d:%d@%d", typeNames[t.Type], t.Value, t.Pos.Line, t.Pos.Column, t.Pos.Offset)
}

func TestLex(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"empty", "", []string{`EOF "" 1:1@0`}},
		{"white space only", " \t\n ", []string{`EOF "" 2:2@4`}},
		{"idents", "a _b c-d e_9", []string{
			`Ident "a" 1:1@0`, `Ident "_b" 1:3@2`, `Ident "c-d" 1:6@5`, `Ident "e_9" 1:10@9`, `EOF "" 1:13@12`}},
		{"numbers", "0 12 -3 4.5 -0.25", []string{
			`Number "0" 1:1@0`, `Number "12" 1:3@2`, `Number "-3" 1:6@5`, `Number "4.5" 1:9@8`,
			`Number "-0.25" 1:13@12`, `EOF "" 1:18@17`}},
		{"number then dot", "1.x", []string{`Number "1" 1:1@0`, `Punct "." 1:2@1`, `Ident "x" 1:3@2`, `EOF "" 1:4@3`}},
		{"strings", `"a" "b\"c" "${f("x")}"`, []string{
			`String "\"a\"" 1:1@0`, `String "\"b\\\"c\"" 1:5@4`, `String "\"${f(\"x\")}\"" 1:12@11`, `EOF "" 1:23@22`}},
		{"string with a literal ${", `"$${x}"`, []string{`String "\"$${x}\"" 1:1@0`, `EOF "" 1:8@7`}},
		{"heredoc", "a <<EOT\nx\nEOT\nb", []string{
			`Ident "a" 1:1@0`, `Heredoc "<<EOT\nx\nEOT" 1:3@2`, `Ident "b" 4:1@14`, `EOF "" 4:2@15`}},
		{"indented heredoc", "<<-EOT\n  x\n  EOT\n", []string{`Heredoc "<<-EOT\n  x\n  EOT" 1:1@0`, `EOF "" 4:1@17`}},
		{"heredoc marker needs a name", "a <<1", []string{
			`Ident "a" 1:1@0`, `Punct "<" 1:3@2`, `Punct "<" 1:4@3`, `Number "1" 1:5@4`, `EOF "" 1:6@5`}},
		{"comments", "# a\n// b\n/* c\nd */ e", []string{
			`Comment "# a" 1:1@0`, `Comment "// b" 2:1@4`, `Comment "/* c\nd */" 3:1@9`, `Ident "e" 4:6@19`, `EOF "" 4:7@20`}},
		{"comment at end of file", "# a", []string{`Comment "# a" 1:1@0`, `EOF "" 1:4@3`}},
		{"one-byte punctuation", "{}[](),.=<>!:", []string{
			`Punct "{" 1:1@0`, `Punct "}" 1:2@1`, `Punct "[" 1:3@2`, `Punct "]" 1:4@3`, `Punct "(" 1:5@4`,
			`Punct ")" 1:6@5`, `Punct "," 1:7@6`, `Punct "." 1:8@7`, `Punct "=" 1:9@8`, `Punct "<" 1:10@9`,
			`Punct ">" 1:11@10`, `Punct "!" 1:12@11`, `Punct ":" 1:13@12`, `EOF "" 1:14@13`}},
		{"two-byte punctuation", "== != <= >= && ||", []string{
			`Punct "==" 1:1@0`, `Punct "!=" 1:4@3`, `Punct "<=" 1:7@6`, `Punct ">=" 1:10@9`,
			`Punct "&&" 1:13@12`, `Punct "||" 1:16@15`, `EOF "" 1:18@17`}},
		{"columns count bytes", "\"é\" x\n\tt", []string{
			`String "\"é\"" 1:1@0`, `Ident "x" 1:6@5`, `Ident "t" 2:2@8`, `EOF "" 2:3@9`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			toks, err := Lex("t.cairn", tt.in)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, tok := range toks {
				got = append(got, tokenString(tok))
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Lex(%q):\ngot  %q\nwant %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestParsePositions checks where items, block ends and interpolated
// expressions are.
func TestParsePositions(t *testing.T) {
	src := "# head\n" + // line 1
		"file \"/etc/${fact.x}\" {\n" + // 2: the interpolation starts at column 13
		"\tmode = \"0644\"\n" + // 3
		"  content = \"é ${var.a} and ${ lower(var.b) }\"\n" + // 4
		"  body = <<-EOT\n" + // 5
		"    one ${fact.y}\n" + // 6
		"      $${not} ${var.z}\n" + // 7
		"    EOT\n" + // 8
		"}\n" + // 9
		"x = 1\n" // 10
	f, err := Parse("p.cairn", src)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Items) != 2 || len(f.Comments) != 1 || f.Src != src || f.Name != "p.cairn" {
		t.Fatalf("got %d items, %d comments, name %q", len(f.Items), len(f.Comments), f.Name)
	}
	file, x := f.Items[0], f.Items[1]
	var got []string
	at := func(what string, p lexer.Position) {
		got = append(got, fmt.Sprintf("%s %d:%d", what, p.Line, p.Column))
		if want := offsetOf(src, p.Line, p.Column); p.Offset != want || p.Filename != "p.cairn" {
			t.Errorf("%s: offset %d, file %q; want offset %d of line %d column %d", what, p.Offset, p.Filename, want, p.Line, p.Column)
		}
	}
	at("file", file.Pos)
	at("label", file.Labels[0].Pos)
	at("label ${", interpolations(file.Labels[0])[0])
	at("}", file.Close.Pos)
	at("mode", file.Body[0].Pos)
	at("mode value", file.Body[0].Value.Pos)
	at("content", file.Body[1].Pos)
	for _, p := range interpolations(file.Body[1].Value.Left.Left.Left.Primary.Str) {
		at("content ${", p)
	}
	at("body", file.Body[2].Pos)
	for _, p := range interpolations(file.Body[2].Value.Left.Left.Left.Primary.Str) {
		at("body ${", p)
	}
	at("x", x.Pos)
	at("x end", x.EndPos) // participle's EndPos: where the next token starts
	want := []string{
		"file 2:1",
		"label 2:6",
		"label ${ 2:14",
		"} 9:1",
		"mode 3:2",
		"mode value 3:9",
		"content 4:3",
		"content ${ 4:19", // "é" is two bytes
		"content ${ 4:33", // the space after ${ is not part of the expression
		"body 5:3",
		"body ${ 6:11", // columns in the source, before <<- strips the indentation
		"body ${ 7:17", // after the literal $${not}
		"x 10:1",
		"x end 11:1",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("positions:\ngot  %q\nwant %q", got, want)
	}
	// The columns point at the expressions' text.
	for _, c := range []struct {
		line, col int
		text      string
	}{{2, 14, "fact.x"}, {4, 19, "var.a"}, {4, 33, "lower"}, {6, 11, "fact.y"}, {7, 17, "var.z"}} {
		if got := src[offsetOf(src, c.line, c.col):]; !strings.HasPrefix(got, c.text) {
			t.Errorf("%d:%d points at %.10q, want %q", c.line, c.col, got, c.text)
		}
	}
}

// offsetOf returns the byte offset of line:col in src.
func offsetOf(src string, line, col int) int {
	off := 0
	for range line - 1 {
		off += strings.IndexByte(src[off:], '\n') + 1
	}
	return off + col - 1
}

// interpolations returns the positions of the expressions a string holds.
func interpolations(s *Str) []lexer.Position {
	var ps []lexer.Position
	for _, p := range s.Template.Parts {
		if p.Expr != nil {
			ps = append(ps, p.Expr.Pos)
		}
	}
	return ps
}

// TestTemplates checks how strings and heredocs split into literal text
// and interpolations.
func TestTemplates(t *testing.T) {
	tests := []struct {
		name string
		in   string // the attribute's value
		want []string
	}{
		{"plain", `"abc"`, []string{`lit "abc"`}},
		{"empty", `""`, nil},
		{"escapes", `"a\nb\tc\"d\\e\u00e9\x41"`, []string{"lit \"a\\nb\\tc\\\"d\\\\eéA\""}},
		{"interpolation", `"a ${var.x} b"`, []string{`lit "a "`, `expr var.x`, `lit " b"`}},
		{"only an interpolation", `"${var.x}"`, []string{`expr var.x`}},
		{"two in a row", `"${a}${b}"`, []string{`expr a`, `expr b`}},
		{"literal ${", `"$${var.x}"`, []string{`lit "${var.x}"`}},
		{"literal ${ then interpolation", `"$${a} ${b}"`, []string{`lit "${a} "`, `expr b`}},
		{"lone dollar", `"$5 and $"`, []string{`lit "$5 and $"`}},
		{"escape next to interpolation", `"\t${a}\n"`, []string{`lit "\t"`, `expr a`, `lit "\n"`}},
		{"heredoc", "<<EOT\n  a ${b}\nc\nEOT", []string{`lit "  a "`, `expr b`, `lit "\nc\n"`}},
		{"heredoc keeps backslashes", "<<EOT\na\\nb\nEOT", []string{`lit "a\\nb\n"`}},
		{"empty heredoc", "<<EOT\nEOT", nil},
		{"indented heredoc", "<<-EOT\n    a\n      b\n\n    c ${d}\n    EOT", []string{`lit "a\n  b\n\nc "`, `expr d`, `lit "\n"`}},
		{"indented heredoc with tabs", "<<-EOT\n\t\ta\n\t\t\tb\n\tEOT", []string{"lit \"a\\n\\tb\\n\""}},
		{"heredoc literal ${", "<<EOT\n$${x} ${y}\nEOT", []string{`lit "${x} "`, `expr y`, `lit "\n"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse("t.cairn", "a = "+tt.in+"\n")
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range f.Items[0].Value.Left.Left.Left.Primary.Str.Template.Parts {
				if p.Expr != nil {
					got = append(got, "expr "+strings.TrimSpace(exprText(f.Src, p.Expr)))
				} else {
					got = append(got, fmt.Sprintf("lit %q", p.Lit))
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parts of %q:\ngot  %q\nwant %q", tt.in, got, tt.want)
			}
		})
	}
}

// exprText returns the source text of an interpolated expression, from its
// position to its end, which checks both.
func exprText(src string, e *Expr) string {
	return src[e.Pos.Offset:e.EndPos.Offset]
}

// TestErrors checks the message, the position and the whole text of each
// kind of error.
func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // (*Error).Error()
	}{
		{"unclosed string", "a = \"abc\n",
			"t.cairn:1:5: string is not closed on its line\n  a = \"abc\n      ^"},
		{"backslash before the line end", "a = \"x\\\nb = \"\n",
			"t.cairn:1:5: string is not closed on its line\n  a = \"x\\\n      ^"},
		{"unclosed block at its brace", "x \"l\" {\n  a = 1\n  y {\n  }\n",
			"t.cairn:1:7: \"{\" is never closed\n  x \"l\" {\n        ^"},
		{"stray brace", "a = 1\n}\n",
			"t.cairn:2:1: \"}\" closes nothing\n  }\n  ^"},
		{"mismatched brackets", "a = [1, 2)\n",
			"t.cairn:1:10: \")\" does not match \"[\" at 1:5\n  a = [1, 2)\n           ^"},
		{"mismatched brace", "x {\n  a = (1}\n",
			"t.cairn:2:9: \"}\" does not match \"(\" at 2:7\n    a = (1}\n          ^"},
		{"bad escape", "a = \"x \\q y\"\n",
			"t.cairn:1:8: invalid escape in string \"x \\q y\"\n  a = \"x \\q y\"\n         ^"},
		{"bad escape after an interpolation", "a = \"${b} \\q\"\n",
			"t.cairn:1:11: invalid escape in string \"${b} \\q\"\n  a = \"${b} \\q\"\n            ^"},
		{"carriage return", "a = 1\r\n",
			"t.cairn:1:6: carriage return (\\r) in configuration: use \\n line ends\n  a = 1\n       ^"},
		{"carriage return in a comment", "a = 1\n# c\r\n",
			"t.cairn:2:4: carriage return (\\r) in configuration: use \\n line ends\n  # c\n     ^"},
		{"carriage return in a string", "a = \"x\ry\"\n",
			"t.cairn:1:7: carriage return (\\r) in configuration: use \\n line ends\n  a = \"x\ry\"\n        ^"},
		{"carriage return after a heredoc marker", "a = <<EOT\r\nx\r\nEOT\r\n",
			"t.cairn:1:10: carriage return (\\r) in configuration: use \\n line ends\n  a = <<EOT\n           ^"},
		{"carriage return in a heredoc", "a = <<EOT\nx\r\nEOT\n",
			"t.cairn:2:2: carriage return (\\r) in configuration: use \\n line ends\n  x\n   ^"},
		{"unexpected token", "a = 1 2\n",
			"t.cairn:1:7: unexpected number 2\n  a = 1 2\n        ^"},
		{"unexpected punctuation", "x \"l\" = 1\n",
			"t.cairn:1:7: unexpected \"=\"\n  x \"l\" = 1\n        ^"},
		{"unexpected character", "a = @\n",
			"t.cairn:1:5: unexpected character '@'\n  a = @\n      ^"},
		{"unexpected letter in a number", "a = 12ab\n",
			"t.cairn:1:7: unexpected 'a' in number\n  a = 12ab\n        ^"},
		{"empty interpolation", "a = \"x ${}\"\n",
			"t.cairn:1:10: empty interpolation ${}\n  a = \"x ${}\"\n           ^"},
		{"unclosed interpolation", "a = \"${x\"\n",
			"t.cairn:1:6: interpolation ${ is not closed on its line\n  a = \"${x\"\n       ^"},
		{"unterminated heredoc", "a = <<EOT\nx\n",
			"t.cairn:1:5: heredoc <<EOT is never closed: no line holds only EOT (white space may come before it, not after)\n  a = <<EOT\n      ^"},
		{"heredoc marker at end of file", "a = <<EOT",
			"t.cairn:1:10: heredoc <<EOT: a newline must follow the marker\n  a = <<EOT\n           ^"},
		{"unterminated block comment", "a = 1\nb = 2 /* x\n",
			"t.cairn:2:7: comment /* is never closed\n  b = 2 /* x\n        ^"},
		{"error in an interpolation on a later line", "a = 1\nb = \"xx ${ a b }\"\n",
			"t.cairn:2:14: unexpected \"b\" (expected the end of ${...})\n  b = \"xx ${ a b }\"\n               ^"},
		{"lex error in an interpolation", "a = 1\nb = \"é ${ a + }\"\n",
			"t.cairn:2:14: unexpected character '+'\n  b = \"é ${ a + }\"\n              ^"},
		{"error in a heredoc interpolation", "a = <<-EOT\n    xx ${ a b }\n    EOT\n",
			"t.cairn:2:13: unexpected \"b\" (expected the end of ${...})\n      xx ${ a b }\n              ^"},
		{"unclosed heredoc interpolation", "a = <<EOT\n  ${x\nEOT\n",
			"t.cairn:2:3: interpolation ${ is not closed on its line\n    ${x\n    ^"},
		{"caret under a tab", "x {\n\ta = \"${ 1 2 }\"\n}\n",
			"t.cairn:2:12: unexpected number 2 (expected the end of ${...})\n  \ta = \"${ 1 2 }\"\n  \t          ^"},
		{"interpolated object key", "a = {\"${x}\" = 1}\n",
			"t.cairn:1:6: an object key cannot hold an interpolation\n  a = {\"${x}\" = 1}\n       ^"},
		{"end of file", "a\n",
			"t.cairn:2:1: unexpected end of file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("t.cairn", tt.in)
			if err == nil {
				t.Fatalf("Parse(%q) succeeded", tt.in)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Parse(%q) = %T %v, want an *Error", tt.in, err, err)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("Parse(%q):\ngot  %q\nwant %q", tt.in, got, tt.want)
			}
			if e.Line != "" && e.Line != LineAt(tt.in, e.Pos.Line) {
				t.Errorf("Line = %q, not line %d of the source", e.Line, e.Pos.Line)
			}
		})
	}
}

func TestCaret(t *testing.T) {
	tests := []struct {
		line string
		col  int
		want string
	}{
		{"abc", 1, "^"},
		{"abc", 3, "  ^"},
		{"\t\tx", 3, "\t\t^"},
		{"é x", 4, "  ^"}, // é is two bytes, one character
		{"ab", 9, "  ^"},  // past the end of the line
	}
	for _, tt := range tests {
		if got := Caret(tt.line, tt.col); got != tt.want {
			t.Errorf("Caret(%q, %d) = %q, want %q", tt.line, tt.col, got, tt.want)
		}
	}
}

func TestErrorList(t *testing.T) {
	a := &Error{Pos: lexer.Position{Filename: "a", Line: 1, Column: 2}, Msg: "one", Line: "xy"}
	b := &Error{Pos: lexer.Position{Filename: "b", Line: 3, Column: 1}, Msg: "two"}
	l := ErrorList{a, b}
	if got, want := l.Error(), "a:1:2: one\n  xy\n   ^\nb:3:1: two"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	var e *Error
	if !errors.As(error(l), &e) || e != a {
		t.Errorf("errors.As did not find the first *Error")
	}
	if got := LineAt("a\nb\n", 2); got != "b" {
		t.Errorf("LineAt = %q", got)
	}
	if got := LineAt("a\nb", 3); got != "" {
		t.Errorf("LineAt past the end = %q", got)
	}
}

// TestObjectKeys checks that quoted keys are unquoted and that the formatter
// still prints them as written.
func TestObjectKeys(t *testing.T) {
	src := `a = { plain = 1, "q\"x" = 2, "b c" = 3 }` + "\n"
	f, err := Parse("t.cairn", src)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, it := range f.Items {
		WalkExpr(it.Value, func(p *Primary) bool {
			if p.Object != nil {
				for _, oi := range p.Object.Items {
					keys = append(keys, oi.Key)
				}
			}
			return true
		})
	}
	if want := []string{"plain", `q"x`, "b c"}; !reflect.DeepEqual(keys, want) {
		t.Errorf("keys = %q, want %q", keys, want)
	}
	if got := string(Format(f)); got != src {
		t.Errorf("Format = %q, want %q", got, src)
	}
}

// TestLimits checks that input nesting deeper than MaxNesting, and input
// that is not UTF-8, are errors at the right place rather than a crash or a
// silently wrong path.
func TestLimits(t *testing.T) {
	deep := strings.Repeat("[", MaxNesting+1) + strings.Repeat("]", MaxNesting+1)
	tests := []struct {
		name, src, want string
	}{
		// The block's own brace counts: the 100th [ is the 101st bracket open.
		{"brackets", "x {\n  a = " + deep + "\n}\n", fmt.Sprintf("t.cairn:2:%d: brackets nest more than %d deep", 6+MaxNesting, MaxNesting)},
		{"brackets in an interpolation", "x {\n  a = \"${" + strings.Repeat("(", MaxNesting+1) + "}\"\n}\n", fmt.Sprintf("t.cairn:2:%d: brackets nest more than %d deep", 10+MaxNesting, MaxNesting)},
		{"nots", "x {\n  a = " + strings.Repeat("!", MaxNesting+1) + "true\n}\n", fmt.Sprintf("t.cairn:2:%d: more than %d ! in a row", 7+MaxNesting, MaxNesting)},
		{"latin-1", "x {\n  a = \"caf\xe9\"\n}\n", "t.cairn:2:11: byte 0xe9 is not UTF-8: configuration files are UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("t.cairn", tt.src)
			if err == nil {
				t.Fatal("no error")
			}
			if got, _, _ := strings.Cut(err.Error(), "\n"); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
	ok := "x {\n  a = " + strings.Repeat("[", MaxNesting-1) + strings.Repeat("]", MaxNesting-1) + "\n  b = " + strings.Repeat("!", MaxNesting) + "true\n}\n"
	if _, err := Parse("t.cairn", ok); err != nil {
		t.Errorf("nesting of exactly %d: %v", MaxNesting, err)
	}
}
