package syntax

import (
	"strings"

	"github.com/alecthomas/participle/v2/lexer"
)

// Error is one finding at a position of a configuration file: the message,
// and the source line it points into, shown with a caret under the column.
type Error struct {
	Pos lexer.Position
	Msg string
	// Line is the text of the source line at Pos.Line, without its newline,
	// or "" when it is not known.
	Line string
}

// Error formats e as FILE:LINE:COL: MSG, then the source line and a caret.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(PosString(e.Pos))
	b.WriteString(": ")
	b.WriteString(e.Msg)
	if e.Line != "" {
		line, col := window(e.Line, e.Pos.Column)
		b.WriteString("\n  ")
		b.WriteString(line)
		b.WriteString("\n  ")
		b.WriteString(Caret(line, col))
	}
	return b.String()
}

// maxLineShown is how much of a source line an error shows, in bytes.
const maxLineShown = 160

// window returns the part of line that an error shows, at most
// maxLineShown bytes around byte column col (1-based), with "…" where it is
// cut, and col in it. Every error on a long line would otherwise repeat all
// of it: a 16 MiB configuration on one line with an error a block would
// print terabytes.
func window(line string, col int) (string, int) {
	if len(line) <= maxLineShown {
		return line, col
	}
	at := min(max(col-1, 0), len(line))
	start := max(at-maxLineShown/2, 0)
	end := min(start+maxLineShown, len(line))
	start = max(min(start, end-maxLineShown), 0)
	// A whole character; start stays at most end, in a line of bytes that
	// are not UTF-8 (an error about one shows its line).
	for start < end && line[start]&0xC0 == 0x80 {
		start++
	}
	for end < len(line) && end > start && line[end]&0xC0 == 0x80 {
		end--
	}
	shown, prefix := line[start:end], ""
	if start > 0 {
		prefix = "…"
		shown = prefix + shown
	}
	if end < len(line) {
		shown += "…"
	}
	return shown, at - start + len(prefix) + 1
}

// PosString formats p as FILE:LINE:COL (the column counts bytes, 1-based).
func PosString(p lexer.Position) string { return p.String() }

// Caret returns the white space that lines a '^' up under byte column col
// of line: tabs stay tabs so that the caret sits under the character in any
// terminal.
func Caret(line string, col int) string {
	var b strings.Builder
	for i := 0; i < col-1 && i < len(line); i++ {
		if line[i] == '\t' {
			b.WriteByte('\t')
		} else if line[i]&0xC0 != 0x80 { // one space per character, not per byte
			b.WriteByte(' ')
		}
	}
	b.WriteByte('^')
	return b.String()
}

// LineAt returns line n (1-based) of src without its line end, or "".
func LineAt(src string, n int) string {
	if n < 1 {
		return ""
	}
	start := 0
	for line := 1; line < n; line++ {
		i := strings.IndexByte(src[start:], '\n')
		if i < 0 {
			return ""
		}
		start += i + 1
	}
	return lineFrom(src, start)
}

// lineFrom returns the line of src that starts at offset start, without
// its line end.
func lineFrom(src string, start int) string {
	end := strings.IndexByte(src[start:], '\n')
	if end < 0 {
		end = len(src) - start
	}
	return strings.TrimRight(src[start:start+end], "\r")
}

// ErrorList is every finding of a parse or a compile, in the order found.
type ErrorList []*Error

// Error joins the findings, one a paragraph.
func (l ErrorList) Error() string {
	parts := make([]string, len(l))
	for i, e := range l {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "\n")
}

// Errors returns the findings as errors, for errors.Is and errors.As.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}
