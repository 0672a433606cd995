package syntax

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// TestWindow: an error shows at most maxLineShown bytes of its line (and
// the marks where it is cut), whole characters only, with the caret on the
// character it pointed at, wherever the column lies.
func TestWindow(t *testing.T) {
	// A long line of bytes that are not UTF-8 (all continuation bytes):
	// found by FuzzParseDifferential, window cut it past its end.
	for _, col := range []int{1, 100, 200} {
		if got, _ := window(strings.Repeat("\x8b", 200), col); len(got) > maxLineShown+2*len("…") {
			t.Errorf("window(200 continuation bytes, %d) = %d bytes", col, len(got))
		}
	}
	long := strings.Repeat("é", 300) + "X" + strings.Repeat("ü", 300)
	for _, tc := range []struct {
		line string
		col  int
	}{
		{"short", 3},
		{long, 1},
		{long, 601},       // X
		{long, len(long)}, // the last byte
		{long, len(long) + 5},
		{strings.Repeat("a", 1000), 500},
	} {
		got, col := window(tc.line, tc.col)
		if len(got) > maxLineShown+2*len("…") || !utf8.ValidString(got) {
			t.Errorf("window(%d bytes, %d) = %d bytes %q", len(tc.line), tc.col, len(got), got)
			continue
		}
		at := min(max(tc.col-1, 0), len(tc.line))
		if at < len(tc.line) && got[col-1:][:1] != tc.line[at:][:1] {
			t.Errorf("window(%d bytes, %d): column %d shows %q, want %q", len(tc.line), tc.col, col, got[col-1:][:1], tc.line[at:][:1])
		}
	}
}
