package steps

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/cairn-cm/cairn/journal"
	"github.com/cairn-cm/cairn/rootfs"
)

// TestGroupMkdirReplacingLinkWaitsForCopiesBefore applies a journal whose
// COPYs write through a link, /a -> t, to a directory, followed by a MKDIR
// of /a itself, which replaces the link with a directory. The journal is
// legal (only a parent made by a later MKDIR is an error, not a
// grandparent), and the ops run in its order: the files land in t/b, then
// /a becomes a directory. A group of parallel ops in which that MKDIR waits
// for nothing before it lets it replace the link while the COPYs still
// look for /a/b: they then fail (their directory is gone), or the move
// depends on which goroutine came first.
func TestGroupMkdirReplacingLinkWaitsForCopiesBefore(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(16))
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "x"), []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sum, _ := HashReader(strings.NewReader("x\n"))
	const files = 24
	var lines []string
	for i := range files {
		lines = append(lines, fmt.Sprintf("COPY x /a/b/f%d sha256=%s", i, sum))
	}
	lines = append(lines, "MKDIR /a")
	j, err := journal.Parse("relink.journal", []byte(strings.Join(lines, "\n")+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if errs := journal.Check(j.Steps); len(errs) > 0 {
		t.Fatalf("the journal is not legal: %v", errs)
	}
	for trial := range 20 {
		base := t.TempDir()
		rootDir := filepath.Join(base, "root")
		if err := os.MkdirAll(filepath.Join(rootDir, "t/b"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("t", filepath.Join(rootDir, "a")); err != nil {
			t.Fatal(err)
		}
		root, err := rootfs.Open(rootDir)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		a, err := Open(ctx, Options{Root: root, StateDir: filepath.Join(base, "state"), Create: true})
		if err != nil {
			root.Close()
			t.Fatal(err)
		}
		_, err = a.Apply(ctx, Move{Journal: "relink.journal", Steps: j.Steps, Source: os.DirFS(src), SourceName: src})
		a.Close()
		root.Close()
		if err != nil {
			t.Fatalf("trial %d: the move failed: %v", trial, err)
		}
		for i := range files {
			if _, err := os.Lstat(filepath.Join(rootDir, fmt.Sprintf("t/b/f%d", i))); err != nil {
				t.Fatalf("trial %d: t/b/f%d was not written before /a was replaced: %v", trial, i, err)
			}
		}
		if fi, err := os.Lstat(filepath.Join(rootDir, "a")); err != nil || !fi.IsDir() {
			t.Fatalf("trial %d: /a is not a directory: %v", trial, err)
		}
	}
}
