package compiler_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
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

// TestErrorsOnManyLines: an error on each line of a large file costs no
// more than an error on its first: finding each error's source line by
// scanning the file from its start made 100,000 of them take a minute.
func TestErrorsOnManyLines(t *testing.T) {
	const blocks = 100_000
	var b strings.Builder
	for i := range blocks {
		fmt.Fprintf(&b, "dir \"/d%d\" { bogus = 1 }\n", i)
	}
	dir := filepath.Join(t.TempDir(), "config")
	writeTree(t, dir, map[string]string{"site.cairn": b.String()})
	start := time.Now()
	_, err := compileDir(t, dir, "")
	if err == nil {
		t.Fatal("want errors")
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("%d errors took %v", blocks, d)
	}
	if msg := err.Error(); !strings.Contains(msg, fmt.Sprintf("site.cairn:%d:", blocks)) || !strings.Contains(msg, fmt.Sprintf("dir \"/d%d\" { bogus = 1 }\n", blocks-1)) {
		t.Errorf("the last error does not show its line:\n%s", msg[max(len(msg)-500, 0):])
	}
}
