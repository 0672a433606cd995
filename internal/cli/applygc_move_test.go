package cli_test

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/metrics"
	"strings"
	"testing"

	"github.com/cairn-cm/cairn/internal/cli"
)

// TestApplyGCRemovalMove: a move to a small journal from a large applied
// one holds what the applied journal holds (its steps, the plan's inverse
// ops, their images), not what the new one does. A memory limit sized by
// the new journal's steps alone sat below that live heap, and the
// collector ran without end: 1,340 collections and 14 s of CPU instead of
// 18 and 0.9 s to remove 20,000 directories.
func TestApplyGCRemovalMove(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	if err := os.MkdirAll(filepath.Join(root, "srv"), 0o755); err != nil {
		t.Fatal(err)
	}
	const n = 5_000
	var big strings.Builder
	big.WriteString("MKDIR /srv\n")
	for i := range n {
		fmt.Fprintf(&big, "MKDIR /srv/d%05d\n", i)
	}
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bigJ, smallJ := write("big.journal", big.String()), write("small.journal", "MKDIR /srv\n")
	if code := cli.Run([]string{"journal", "apply", "--root", root, bigJ}, io.Discard, io.Discard); code != 0 {
		t.Fatalf("apply of %d steps: exit %d", n, code)
	}
	cycles := func() uint64 {
		s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
		metrics.Read(s)
		return s[0].Value.Uint64()
	}
	before := cycles()
	if code := cli.Run([]string{"journal", "apply", "--root", root, smallJ}, io.Discard, io.Discard); code != 0 {
		t.Fatalf("apply of 1 step: exit %d", code)
	}
	got := cycles() - before
	t.Logf("%d collections", got)
	if got > 150 {
		t.Errorf("the move that removed %d directories ran %d collections", n, got)
	}
}
