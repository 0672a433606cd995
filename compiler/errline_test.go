package compiler_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// TestErrorsOnOneLongLine: errors show at most a window of the source line
// they point into. A configuration on one long line with an error in every
// block made each error repeat the whole line: 134 KB of input printed
// 1 GB of errors and took 4 GB of memory, and 16 MiB would exhaust any
// machine, past every limit of the compile.
func TestErrorsOnOneLongLine(t *testing.T) {
	const blocks = 2000
	var b strings.Builder
	for i := range blocks {
		fmt.Fprintf(&b, "dir \"/d%d\" { bogus = 1 } ", i)
	}
	b.WriteString("\n")
	dir := filepath.Join(t.TempDir(), "config")
	writeTree(t, dir, map[string]string{"site.cairn": b.String()})
	_, err := compileDir(t, dir, "")
	if err == nil {
		t.Fatal("want errors")
	}
	msg := err.Error()
	if n := strings.Count(msg, "bogus"); n < blocks {
		t.Fatalf("%d errors name the attribute, want %d:\n%.2000s", n, blocks, msg)
	}
	if len(msg) > blocks*500 {
		t.Fatalf("the errors hold %d bytes for %d findings: each repeats the source line", len(msg), blocks)
	}
	// The caret still points at the attribute, in the window shown.
	paras := strings.Split(msg, "\n")
	for i := 0; i+2 < len(paras) && i < 3*50; i += 3 {
		line, caret := []rune(paras[i+1]), paras[i+2]
		col := len(caret) - 1 // one space a character
		if col >= len(line) || !strings.HasPrefix(string(line[col:]), "bogus") {
			t.Errorf("the caret does not point at the attribute:\n%s\n%s\n%s", paras[i], string(line), caret)
		}
	}
}

// TestErrorsOnManyLines checks that every error of a file with many of them
// shows its own line, the last one included. How long they take is
// BenchmarkErrorsOnManyLines's business: each error finds its line through
// the file's index, not by scanning from the start.
func TestErrorsOnManyLines(t *testing.T) {
	const blocks = 10_000
	err := compileManyErrors(t, blocks)
	if msg := err.Error(); !strings.Contains(msg, fmt.Sprintf("site.cairn:%d:", blocks)) || !strings.Contains(msg, fmt.Sprintf("dir \"/d%d\" { bogus = 1 }\n", blocks-1)) {
		t.Errorf("the last error does not show its line:\n%s", msg[max(len(msg)-500, 0):])
	}
}

// BenchmarkErrorsOnManyLines compiles a file of 100,000 blocks with an
// error each: linear in the errors (it was quadratic, 62 s).
func BenchmarkErrorsOnManyLines(b *testing.B) {
	for b.Loop() {
		compileManyErrors(b, 100_000)
	}
}

// compileManyErrors compiles a file of n blocks, each with an unknown
// attribute, and returns the error.
func compileManyErrors(tb testing.TB, n int) error {
	tb.Helper()
	var sb strings.Builder
	for i := range n {
		fmt.Fprintf(&sb, "dir \"/d%d\" { bogus = 1 }\n", i)
	}
	dir := filepath.Join(tb.TempDir(), "config")
	writeTree(tb, dir, map[string]string{"site.cairn": sb.String()})
	_, err := compileDir(tb, dir, "")
	if err == nil {
		tb.Fatal("want errors")
	}
	return err
}
