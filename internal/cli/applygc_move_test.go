package cli_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestApplyGCRemovalMove: a move to a small journal from a large applied
// one holds what the applied journal holds (its steps, the plan's inverse
// ops, their images), not what the new one does. A memory limit sized by
// the new journal's steps alone sat below that live heap, and the
// collector ran without end: 1,340 collections and 14 s of CPU instead of
// 18 and 0.9 s to remove 20,000 directories. The moves run in processes of
// their own (the test binary as cairn), whose collections gctrace counts:
// in the test's process the collector also marks what the tests before
// left live, and counted 291 collections of a loaded run for 12 of a quiet
// one.
func TestApplyGCRemovalMove(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin", "cairn") // the name testscript.Main runs as the command
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(self, bin); err != nil {
		t.Fatal(err)
	}
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
	// apply runs the move to journal and returns the collections it ran.
	apply := func(journal string) int {
		t.Helper()
		cmd := exec.Command(bin, "journal", "apply", "--root", root, journal)
		cmd.Env = append(os.Environ(), "GOGC=", "GOMEMLIMIT=", "GODEBUG=gctrace=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("apply %s: %v\n%.2000s", filepath.Base(journal), err, out)
		}
		return len(regexp.MustCompile(`(?m)^gc \d+ @`).FindAll(out, -1))
	}
	bigJ, smallJ := write("big.journal", big.String()), write("small.journal", "MKDIR /srv\n")
	if got := apply(bigJ); got == 0 {
		t.Fatal("gctrace counted no collection in the move of 5,001 steps: the count would prove nothing")
	}
	got := apply(smallJ)
	t.Logf("%d collections", got)
	if got > 150 {
		t.Errorf("the move that removed %d directories ran %d collections", n, got)
	}
}
