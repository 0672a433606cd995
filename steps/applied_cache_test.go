package steps

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
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
	if got := third.Applied(); len(got.Steps) != 2 || got != moved {
		t.Errorf("after a move the next open has %d steps (%p), want the 2 the move committed (%p), not decoded again", len(got.Steps), got, moved)
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
