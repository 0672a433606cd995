package steps

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/cairn-cm/cairn/journal"
	"github.com/cairn-cm/cairn/rootfs"
)

// TestAppliedCache: a process that opens the state again finds the applied
// journal it decoded before when applied.json is unchanged, and decodes it
// again after a move or a change made to the file in place.
func TestAppliedCache(t *testing.T) {
	ctx := context.Background()
	root, err := rootfs.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	state := filepath.Join(t.TempDir(), "state")
	open := func() *Applier {
		t.Helper()
		a, err := Open(ctx, Options{Root: root, StateDir: state, Create: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close() })
		return a
	}
	move := func(a *Applier, lines ...string) {
		t.Helper()
		steps, err := journal.ParseSteps("t.journal", lines)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Apply(ctx, Move{Journal: "t.journal", Steps: steps}); err != nil {
			t.Fatal(err)
		}
	}
	a := open()
	move(a, "MKDIR /srv mode=0755")
	a.Close()

	first := open()
	before := first.Applied()
	first.Close()
	second := open()
	if second.Applied() != before || len(before.Steps) != 1 {
		t.Errorf("an unchanged applied.json was decoded again (or wrongly): %p %p", before, second.Applied())
	}
	move(second, "MKDIR /srv mode=0755", "MKDIR /srv/www mode=0755")
	moved := second.Applied()
	second.Close()
	third := open()
	if got := third.Applied(); len(got.Steps) != 2 || got == moved {
		t.Errorf("after a move the next open has %d steps (%p), want the 2 the move committed, decoded afresh (not %p, made during the move)", len(got.Steps), got, moved)
	}
	third.Close()

	// A change made in place, of the same size: the file's ctime tells.
	name := filepath.Join(state, appliedFile)
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	edited := bytes.Replace(data, []byte(`MKDIR /srv/www"`), []byte(`MKDIR /srv/wxw"`), 1)
	if bytes.Equal(edited, data) {
		t.Fatalf("no /srv/www in %s", data)
	}
	if err := os.WriteFile(name, edited, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := open().Applied(); !bytes.Contains([]byte(got.Steps[1].Step), []byte("/srv/wxw")) {
		t.Errorf("an applied.json changed in place was not read again: %q", got.Steps[1].Step)
	}
}

// TestAppliedImagesLazy: the original images of an applied journal read
// from the state stay encoded until a move asks for them, and are then
// the images the move recorded; images of the wrong type are refused by
// the plan of a move that may read them (exit 2, before any change), not
// in the middle of a move, while a run with nothing to do never decodes
// them.
func TestAppliedImagesLazy(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "srv"), 0o755); err != nil {
		t.Fatal(err)
	}
	root, err := rootfs.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	state := filepath.Join(t.TempDir(), "state")
	open := func() (*Applier, error) {
		a, err := Open(ctx, Options{Root: root, StateDir: state, Create: true})
		if err == nil {
			t.Cleanup(func() { a.Close() })
		}
		return a, err
	}
	a, err := open()
	if err != nil {
		t.Fatal(err)
	}
	steps, err := journal.ParseSteps("t.journal", []string{"MKDIR /srv mode=0700", "MKDIR /srv/www mode=0755"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Apply(ctx, Move{Journal: "t.journal", Steps: steps}); err != nil {
		t.Fatal(err)
	}
	want := a.Applied().Images()
	if len(want) != 2 || want["path:/srv"].Type != TypeDir || !want["path:/srv/www"].Absent {
		t.Fatalf("the move recorded %v; want /srv a directory and /srv/www absent", want)
	}
	a.Close()

	b, err := open()
	if err != nil {
		t.Fatal(err)
	}
	loaded := b.Applied()
	if loaded.Originals != nil || loaded.lazy == nil || loaded.lazy.m != nil {
		t.Fatalf("the images were decoded on open: %v", loaded.Originals)
	}
	if got := loaded.Images(); !reflect.DeepEqual(got, want) {
		t.Errorf("Images() = %v; want %v", got, want)
	}
	b.Close()

	name := filepath.Join(state, appliedFile)
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Replace(data, []byte(`"type":"dir"`), []byte(`"type":7`), 1)
	if bytes.Equal(bad, data) {
		t.Fatalf(`no "type":"dir" in %s`, data)
	}
	if err := os.WriteFile(name, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := open()
	if err != nil {
		t.Fatalf("open with a bad image: %v", err)
	}
	res, err := c.Apply(ctx, Move{Journal: "t.journal", Steps: steps, Repair: true})
	if err != nil || res.Outcome != OutcomeUnchanged {
		t.Fatalf("a no-op with a bad image = %v, %v; want unchanged", res, err)
	}
	if c.Applied().lazy.checked || c.Applied().lazy.m != nil {
		t.Errorf("a no-op decoded the original images")
	}
	if _, err := c.Apply(ctx, Move{Journal: "t.journal", Steps: steps[:1]}); err == nil || ExitCode(err) != ExitBadInput || !strings.Contains(err.Error(), "is corrupt") {
		t.Errorf("a move with a bad image = %v; want exit 2, corrupt", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "srv", "www")); err != nil {
		t.Errorf("the refused move changed the root: %v", err)
	}
	// A move with no op but another commit records the journal anew,
	// original images included: it too is refused.
	if _, err := c.Apply(ctx, Move{Journal: "t.journal", Steps: steps, Commit: "c0ffee"}); err == nil || ExitCode(err) != ExitBadInput {
		t.Errorf("a move to another commit with a bad image = %v; want exit 2", err)
	}
}
