package steps

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-cm/cairn/journal"
	"github.com/cairn-cm/cairn/rootfs"
)

// TestApplyNeverEscapesRoot applies journals whose paths run through links
// that point out of the root, by absolute and by relative targets, and
// checks that every write lands beneath the root (as openat2's
// RESOLVE_IN_ROOT resolves them) and that nothing outside changes, through
// the apply, drift, and the move back to the empty journal.
func TestApplyNeverEscapesRoot(t *testing.T) {
	base := t.TempDir()
	outside := filepath.Join(base, "outside")
	rootDir := filepath.Join(base, "root")
	for _, d := range []string{outside + "/etc", rootDir + "/real", rootDir + "/tmp"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(outside+"/etc/passwd", []byte("precious\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	links := map[string]string{
		"abs":     outside,            // absolute: restarts at the root
		"rel":     "../../../outside", // climbs: stops at the root
		"etc":     outside + "/etc",   // a directory outside
		"passwd":  outside + "/etc/passwd",
		"real/up": "../..",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(rootDir, name)); err != nil {
			t.Fatal(err)
		}
	}
	before, err := SnapTree(outside)
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "x"), []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sum, _ := HashReader(strings.NewReader("x\n"))
	// The host path of "outside", taken as an object path, names a
	// directory beneath the root: make it there, level by level.
	var lines []string
	var dirs []string
	for d := outside; d != "/"; d = filepath.Dir(d) {
		dirs = append([]string{d}, dirs...)
	}
	for _, d := range append(dirs, outside+"/etc", "/outside") {
		lines = append(lines, "MKDIR "+d)
	}
	lines = append(lines,
		"COPY x /abs/etc/passwd sha256="+sum, // /abs restarts at the root: ROOT/<outside>/etc/passwd
		"COPY x /rel/f sha256="+sum,          // ../../../outside stops at the root: ROOT/outside/f
		"COPY x /etc/passwd.new sha256="+sum, // /etc -> <outside>/etc: ROOT/<outside>/etc
		"SYMLINK /etc/shadow /real/up/tmp/l", // ../.. from /real stops at the root: ROOT/tmp/l
		"RM /passwd",                         // the link itself goes, never its target
	)
	text := strings.Join(lines, "\n") + "\n"
	j, err := journal.Parse("escape.journal", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	root, err := rootfs.Open(rootDir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	ctx := context.Background()
	a, err := Open(ctx, Options{Root: root, StateDir: filepath.Join(base, "state"), Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	move := func(steps []journal.Step) {
		t.Helper()
		if _, err := a.Apply(ctx, Move{Journal: "escape.journal", Steps: steps, Source: os.DirFS(src), SourceName: src, AllowRemoval: true}); err != nil {
			t.Fatalf("apply: %v", err)
		}
		after, err := SnapTree(outside)
		if err != nil {
			t.Fatal(err)
		}
		if d := DiffTrees(before, after, 5); len(d) > 0 {
			t.Fatalf("the tree outside the root changed:\n%s", strings.Join(d, "\n"))
		}
	}
	move(j.Steps)
	for _, p := range []string{outside + "/etc/passwd", "/outside/f", outside + "/etc/passwd.new"} {
		if _, err := os.Lstat(filepath.Join(rootDir, p)); err != nil {
			t.Errorf("%s did not land beneath the root: %v", p, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(rootDir, "tmp/l")); err != nil {
		t.Errorf("a link through real/up did not land at ROOT/tmp/l: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(rootDir, "passwd")); err == nil {
		t.Errorf("RM /passwd left the link in place")
	}
	if drifted, err := a.Drift(ctx); err != nil || len(drifted) > 0 {
		t.Errorf("drift after apply: %v %v", drifted, err)
	}
	move(nil)
	if target, err := os.Readlink(filepath.Join(rootDir, "passwd")); err != nil || target != links["passwd"] {
		t.Errorf("the link /passwd was not restored: %q %v", target, err)
	}
}
